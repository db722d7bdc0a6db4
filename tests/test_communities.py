"""Communities: creation, editing, themes, organisations, invitations, joining, roles."""

from datetime import timedelta

import pytest

from cop.communities.models import (
    Community,
    Invitation,
    Membership,
    Organisation,
    Role,
    Theme,
    Visibility,
)
from cop.core.time import utcnow
from cop.extensions import db


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def community_data(**overrides):
    return {
        "name": "Réseau Solidaire",
        "slug": "",
        "description": "Ideas.",
        "visibility": "public",
        "themes": "One\nTwo",
        "organisation": "",
    } | overrides


def test_creating_a_community_makes_the_creator_its_host(client, auth, make, app):
    user_id = make.user()
    auth.login(user_id)
    response = client.post("/communities/new", data=community_data())
    assert response.headers["Location"] == "/c/reseau-solidaire"
    with app.app_context():
        community = db.session.scalar(db.select(Community))
        assert community.visibility is Visibility.PUBLIC
        assert [theme.name for theme in community.themes] == ["One", "Two"]
        membership = db.session.scalar(db.select(Membership))
        assert (membership.user_id, membership.role) == (user_id, Role.HOST)


def test_a_taken_slug_is_refused_with_a_free_suggestion(client, auth, make, app):
    make.community(slug="reseau-solidaire")
    make.community(slug="reseau-solidaire-2")
    auth.login(make.user())
    response = client.post("/communities/new", data=community_data(slug="reseau-solidaire"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "is taken" in page and "reseau-solidaire-3" in page
    assert rows(app, Community) == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slug": "Not A Slug"}, "lowercase letters"),
        ({"slug": "../etc"}, "lowercase letters"),
        ({"slug": "a--b"}, "lowercase letters"),
        ({"slug": "new"}, "reserved"),
        ({"slug": "x" * 81}, "80"),
        ({"name": ""}, "This field is required"),
        ({"name": "n" * 201}, "200"),
        ({"description": "d" * 5001}, "5000"),
        ({"visibility": "secret"}, "Not a valid choice"),
        ({"themes": "t" * 201}, "200 characters"),
        ({"themes": "\n".join(f"theme {n}" for n in range(31))}, "At most 30"),
        ({"organisation": "new", "organisation_name": ""}, "Give the name"),
        ({"organisation": "99999"}, "Not a valid choice"),
        (
            {"organisation": "new", "organisation_name": "X", "organisation_country": "ZZ"},
            "Not a valid choice",
        ),
        (
            {"organisation": "new", "organisation_name": "X", "organisation_kind": "cult"},
            "Not a valid choice",
        ),
    ],
)
def test_bad_community_input_is_refused_and_nothing_written(
    client, auth, make, app, overrides, message
):
    auth.login(make.user())
    response = client.post("/communities/new", data=community_data(**overrides))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert rows(app, Community) == rows(app, Theme) == rows(app, Organisation) == 0


def test_html_in_community_fields_is_stored_as_typed_and_shown_escaped(client, auth, make, app):
    auth.login(make.user())
    payload = '<script>alert(1)</script>"><svg onload=alert(2)>'
    client.post(
        "/communities/new",
        data=community_data(name=payload, slug="xss", description=payload, themes=payload),
    )
    with app.app_context():
        community = db.session.scalar(db.select(Community))
        assert community.name == community.description == community.themes[0].name == payload
    page = client.get("/c/xss").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<svg onload" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


def test_the_host_edits_the_community(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    assert client.get(f"/c/{slug}/edit").status_code == 200
    response = client.post(
        f"/c/{slug}/edit",
        data={"name": "Renamed", "description": "New words", "visibility": "public"},
    )
    assert response.status_code == 302
    with app.app_context():
        community = db.session.scalar(db.select(Community))
        assert (community.name, community.description, community.visibility) == (
            "Renamed",
            "New words",
            Visibility.PUBLIC,
        )


def test_themes_are_added_renamed_reordered_archived_and_restored(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host, themes=("A", "B", "C"))
    auth.login(host)

    def names():
        with app.app_context():
            community = db.session.scalar(db.select(Community))
            db.session.refresh(community)
            return [(theme.name, theme.is_archived) for theme in community.themes]

    def theme_id(name):
        with app.app_context():
            return db.session.scalar(db.select(Theme.id).filter_by(name=name))

    assert client.post(f"/c/{slug}/themes", data={"name": "D"}).status_code == 302
    duplicate = client.post(f"/c/{slug}/themes", data={"name": "d"})
    assert duplicate.status_code == 400
    assert "already has a theme called" in duplicate.get_data(as_text=True)
    assert (
        client.post(f"/c/{slug}/themes/{theme_id('A')}/rename", data={"name": "Alpha"}).status_code
        == 302
    )
    assert (
        client.post(f"/c/{slug}/themes/{theme_id('D')}/move", data={"position": "0"}).status_code
        == 302
    )
    assert client.post(f"/c/{slug}/themes/{theme_id('B')}/archive").status_code == 302
    assert names() == [("D", False), ("Alpha", False), ("B", True), ("C", False)]
    home = client.get(f"/c/{slug}").get_data(as_text=True)
    assert "<li>B</li>" not in home and "<li>Alpha</li>" in home
    client.post(f"/c/{slug}/themes/{theme_id('B')}/archive", data={"restore": "1"})
    assert names()[2] == ("B", False)
    assert (
        client.post(f"/c/{slug}/themes/{theme_id('C')}/move", data={"position": "-1"}).status_code
        == 400
    )
    assert (
        client.post(f"/c/{slug}/themes/{theme_id('C')}/rename", data={"name": ""}).status_code
        == 400
    )
    assert names()[3] == ("C", False)


def test_a_theme_of_another_community_is_not_found(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    other = make.community(themes=("Foreign",))
    with app.app_context():
        foreign_id = db.session.scalar(db.select(Theme.id).filter_by(name="Foreign"))
    auth.login(host)
    assert client.post(f"/c/{slug}/themes/{foreign_id}/archive").status_code == 404
    assert client.post(f"/c/{other}/themes/{foreign_id}/archive").status_code == 404


def invite(client, slug, role="participant", days="7", uses="2"):
    return client.post(
        f"/c/{slug}/invitations", data={"role": role, "expires_in_days": days, "max_uses": uses}
    )


def latest_token(app) -> str:
    with app.app_context():
        return db.session.scalar(db.select(Invitation.token).order_by(Invitation.id.desc()))


def join(client, token, **overrides):
    data = {"organisation": "new", "organisation_name": "Org X", "organisation_kind": "ngo"}
    return client.post(f"/join/{token}", data=data | overrides)


def test_facilitators_invite_participants_and_observers_only(client, auth, make, app):
    slug = make.community()
    facilitator = make.member(slug, Role.FACILITATOR)
    auth.login(facilitator)
    page = client.get(f"/c/{slug}/invitations").get_data(as_text=True)
    assert 'value="observer"' in page and 'value="host"' not in page
    assert invite(client, slug, "observer").status_code == 302
    for role in ("host", "facilitator", "editor"):
        assert invite(client, slug, role).status_code == 400
    assert rows(app, Invitation) == 1


@pytest.mark.parametrize(
    ("days", "uses"), [("0", "5"), ("366", "5"), ("7", "0"), ("7", "1001"), ("x", "5"), ("7", "")]
)
def test_invitation_limits_are_checked(client, auth, make, app, days, uses):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    assert invite(client, slug, days=days, uses=uses).status_code == 400
    assert rows(app, Invitation) == 0


def test_joining_through_an_invitation_uses_it_up(app, make):
    host = make.user()
    slug = make.community(host_id=host)
    host_client = app.test_client()
    host_client.post(
        "/login", data={"email": make.email_of(host), "password": "correct horse battery"}
    )
    invite(host_client, slug, "editor", uses="1")
    token = latest_token(app)

    first, second = app.test_client(), app.test_client()
    for person, device in ((make.user(), first), (make.user(), second)):
        device.post(
            "/login", data={"email": make.email_of(person), "password": "correct horse battery"}
        )
    assert join(first, token).status_code == 302
    refused = join(second, token, organisation_name="Org Y")
    assert refused.status_code == 404
    assert "used as many times as allowed" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Invitation.uses)) == 1
        assert db.session.scalar(db.select(db.func.count()).select_from(Membership)) == 2
        assert db.session.scalar(db.select(Organisation.name)) == "Org X"


def test_joining_with_an_existing_organisation(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    organisation_id = make.organisation("Existing Org")
    auth.login(host)
    invite(client, slug)
    token = latest_token(app)
    auth.logout()
    joiner = make.user()
    auth.login(joiner)
    assert (
        client.post(f"/join/{token}", data={"organisation": str(organisation_id)}).status_code
        == 302
    )
    with app.app_context():
        membership = db.session.scalar(db.select(Membership).filter_by(user_id=joiner))
        assert membership.organisation.name == "Existing Org"
        assert membership.role is Role.PARTICIPANT


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked", "used_up"])
def test_unusable_invitations_show_a_clear_page_and_create_nothing(client, auth, make, app, state):
    slug = make.community()
    with app.app_context():
        community = db.session.scalar(db.select(Community).filter_by(slug=slug))
        invitation = Invitation(
            community=community,
            role=Role.PARTICIPANT,
            token="known-token",
            expires_at=utcnow() + timedelta(days=1),
            max_uses=1,
        )
        if state == "expired":
            invitation.expires_at = utcnow() - timedelta(seconds=1)
        if state == "revoked":
            invitation.revoked_at = utcnow()
        if state == "used_up":
            invitation.uses = 1
        db.session.add(invitation)
        db.session.commit()
    token = "no-such-token" if state == "unknown" else "known-token"
    messages = {
        "unknown": "not valid",
        "expired": "has expired",
        "revoked": "was withdrawn",
        "used_up": "as many times as allowed",
    }
    assert messages[state] in client.get(f"/join/{token}").get_data(as_text=True)
    auth.login(make.user())
    response = join(client, token)
    assert response.status_code == 404
    assert messages[state] in response.get_data(as_text=True)
    assert rows(app, Membership) == 1
    assert rows(app, Organisation) == 0


def test_joining_needs_an_organisation_and_a_member_cannot_join_twice(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    invite(client, slug)
    token = latest_token(app)
    response = client.get(f"/join/{token}")
    assert response.status_code == 302  # already a member: sent home
    auth.logout()
    auth.login(make.user())
    assert client.post(f"/join/{token}", data={"organisation": ""}).status_code == 400
    assert rows(app, Membership) == 1
    with app.app_context():
        assert db.session.scalar(db.select(Invitation.uses)) == 0


def test_a_host_revokes_an_invitation(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    invite(client, slug)
    with app.app_context():
        invitation_id = db.session.scalar(db.select(Invitation.id))
    assert client.post(f"/c/{slug}/invitations/{invitation_id}/revoke").status_code == 302
    with app.app_context():
        assert db.session.get(Invitation, invitation_id).revoked_at is not None


def test_a_facilitator_cannot_revoke_a_host_invitation(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    facilitator = make.member(slug, Role.FACILITATOR)
    auth.login(host)
    invite(client, slug, "editor")
    with app.app_context():
        invitation_id = db.session.scalar(db.select(Invitation.id))
    auth.logout()
    auth.login(facilitator)
    assert client.post(f"/c/{slug}/invitations/{invitation_id}/revoke").status_code == 403
    with app.app_context():
        assert db.session.get(Invitation, invitation_id).revoked_at is None


def membership_id(app, user_id) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Membership.id).filter_by(user_id=user_id))


def test_the_host_changes_roles_and_removes_members(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    participant = make.member(slug, Role.PARTICIPANT)
    auth.login(host)
    target = membership_id(app, participant)
    assert (
        client.post(f"/c/{slug}/members/{target}/role", data={"role": "editor"}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(Membership, target).role is Role.EDITOR
    assert client.post(f"/c/{slug}/members/{target}/role", data={"role": "king"}).status_code == 303
    with app.app_context():
        assert db.session.get(Membership, target).role is Role.EDITOR
    assert client.post(f"/c/{slug}/members/{target}/remove").status_code == 302
    with app.app_context():
        assert db.session.get(Membership, target) is None


def test_the_last_host_can_be_neither_demoted_nor_removed(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    own = membership_id(app, host)
    response = client.post(
        f"/c/{slug}/members/{own}/role", data={"role": "participant"}, follow_redirects=True
    )
    assert "at least one host" in response.get_data(as_text=True)
    response = client.post(f"/c/{slug}/members/{own}/remove", follow_redirects=True)
    assert "at least one host" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Membership, own).role is Role.HOST

    second = make.member(slug, Role.HOST)
    assert (
        client.post(f"/c/{slug}/members/{own}/role", data={"role": "participant"}).status_code
        == 302
    )
    with app.app_context():
        assert db.session.get(Membership, membership_id(app, second)).role is Role.HOST


def test_a_member_of_another_community_cannot_be_managed_from_here(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    other = make.community()
    stranger = make.member(other, Role.PARTICIPANT)
    auth.login(host)
    target = membership_id(app, stranger)
    assert client.post(f"/c/{slug}/members/{target}/remove").status_code == 404
    assert client.post(f"/c/{other}/members/{target}/remove").status_code == 404
    with app.app_context():
        assert db.session.get(Membership, target) is not None


def test_the_directory_lists_organisations_and_counts_by_kind(client, auth, make, app):
    from cop.communities.models import OrganisationKind

    host = make.user()
    slug = make.community(host_id=host)
    network = make.organisation("Big Network", OrganisationKind.NETWORK)
    city = make.organisation("City of Testville", OrganisationKind.LOCAL_AUTHORITY)
    make.member(slug, Role.PARTICIPANT, organisation_id=network)
    make.member(slug, Role.PARTICIPANT, organisation_id=network)
    make.member(slug, Role.OBSERVER, organisation_id=city)
    auth.login(host)
    page = client.get(f"/c/{slug}/members").get_data(as_text=True)
    assert "Big Network" in page and "City of Testville" in page
    assert "Network or platform of NGOs: 2" in page
    assert "Local authority: 1" in page
    assert "No organisation given: 1" in page


def test_facilitators_do_not_see_links_for_roles_they_may_not_hand_out(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    facilitator = make.member(slug, Role.FACILITATOR)
    auth.login(host)
    invite(client, slug, "editor")
    editor_token = latest_token(app)
    invite(client, slug, "observer")
    observer_token = latest_token(app)
    auth.logout()
    auth.login(facilitator)
    page = client.get(f"/c/{slug}/invitations").get_data(as_text=True)
    assert observer_token in page and editor_token not in page


def test_members_create_notes_listed_newest_activity_first(client, auth, make, app):
    from datetime import timedelta

    from cop.notes.models import Note

    host = make.user()
    slug = make.community(host_id=host)
    participant = make.member(slug, Role.PARTICIPANT)
    auth.login(participant)
    assert client.post(f"/c/{slug}/notes", data={"title": "First"}).status_code == 302
    assert client.post(f"/c/{slug}/notes", data={"title": "Second"}).status_code == 302
    assert client.post(f"/c/{slug}/notes", data={"title": ""}).status_code == 303
    assert client.post(f"/c/{slug}/notes", data={"title": "t" * 201}).status_code == 303
    with app.app_context():
        first = db.session.scalar(db.select(Note).filter_by(title="First"))
        first.last_activity_at += timedelta(minutes=5)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(Note)) == 2
    page = client.get(f"/c/{slug}").get_data(as_text=True)
    assert page.index(">First<") < page.index(">Second<")
    observer = make.member(slug, Role.OBSERVER)
    auth.logout()
    auth.login(observer)
    page = client.get(f"/c/{slug}").get_data(as_text=True)
    assert ">First<" in page and "Create the note" not in page
    assert client.post(f"/c/{slug}/notes", data={"title": "Nope"}).status_code == 403
