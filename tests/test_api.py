"""The JSON API: the same communities, rules and services as the pages, for scripts and apps."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from cop.auth import services as auth_services
from cop.auth.models import NAME_MAX, ApiToken, User
from cop.communities import services as community_services
from cop.communities.models import (
    DESCRIPTION_MAX,
    SLUG_MAX,
    Community,
    Invitation,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Theme,
    Visibility,
)
from cop.extensions import db
from tests.conftest import PASSWORD, Factory, csrf_token_from

API = "/api/v1"
HOST, FACILITATOR, EDITOR, PARTICIPANT, OBSERVER = (
    Role.HOST,
    Role.FACILITATOR,
    Role.EDITOR,
    Role.PARTICIPANT,
    Role.OBSERVER,
)


# --- Helpers ---------------------------------------------------------------------------


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """Check an answer is the one JSON error shape, with this status, code and field."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "fields"}
    if field is not None:
        assert field in body["fields"], body
    return body


def database_state(app) -> dict:
    """Return every row an API call could write, to compare before and after a refusal."""
    with app.app_context():

        def rows(*columns):
            return db.session.execute(select(*columns).order_by(columns[0])).all()

        return {
            "communities": rows(
                Community.id,
                Community.slug,
                Community.name,
                Community.description,
                Community.visibility,
            ),
            "themes": rows(
                Theme.id, Theme.community_id, Theme.name, Theme.position, Theme.archived_at
            ),
            "memberships": rows(
                Membership.id,
                Membership.user_id,
                Membership.community_id,
                Membership.role,
                Membership.organisation_id,
            ),
            "invitations": rows(
                Invitation.id, Invitation.role, Invitation.uses, Invitation.revoked_at
            ),
            "organisations": rows(
                Organisation.id, Organisation.name, Organisation.kind, Organisation.country
            ),
        }


def bearer(app, user_id: int) -> dict:
    """Create a personal API token for the user; return the header that presents it."""
    with app.app_context():
        _token, secret = auth_services.create_api_token(db.session.get(User, user_id), "script")
        db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def community_id(app, slug: str) -> int:
    """Return the id of the community with this slug."""
    with app.app_context():
        return db.session.scalar(select(Community.id).filter_by(slug=slug))


def membership_id(app, slug: str, user_id: int) -> int:
    """Return the id of a user's membership in a community."""
    with app.app_context():
        return db.session.scalar(
            select(Membership.id).filter_by(user_id=user_id, community_id=community_id(app, slug))
        )


def theme_ids(app, slug: str) -> list[int]:
    """Return the ids of a community's themes, in order."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(Theme.id)
                .filter_by(community_id=community_id(app, slug))
                .order_by(Theme.position)
            )
        )


def invite(app, slug: str, role: Role, by: int) -> int:
    """Create an invitation through the service and return its id."""
    with app.app_context():
        community = db.session.get(Community, community_id(app, slug))
        invitation = community_services.create_invitation(
            db.session.get(User, by), community, role, 14, 25
        )
        db.session.commit()
        return invitation.id


# --- The caller ------------------------------------------------------------------------


def test_me_shows_the_account_and_memberships_of_the_caller_only(client, make, auth, app):
    host = make.user("Ana")
    organisation = make.organisation("Plateforme des ONG", OrganisationKind.NETWORK)
    beta = make.community(host, slug="beta")
    alpha = make.community(make.user(), slug="alpha")
    make.member(alpha, EDITOR, user_id=host, organisation_id=organisation)
    make.member(alpha, OBSERVER)

    assert_error(client.get(f"{API}/me"), 401, "unauthorized")
    auth.login(host)
    body = client.get(f"{API}/me").get_json()

    assert body["user"] == {
        "id": host,
        "email": make.email_of(host),
        "display_name": "Ana",
        "locale": None,
        "time_zone": None,
    }
    memberships = [
        (m["community"]["slug"], m["role"], m["organisation"] and m["organisation"]["name"])
        for m in body["memberships"]
    ]
    assert sorted(memberships) == [(alpha, "editor", "Plateforme des ONG"), (beta, "host", None)]


# --- Communities -----------------------------------------------------------------------


def test_listing_shows_own_and_public_communities_and_anonymous_callers_the_public_ones(
    client, make, auth
):
    me = make.user()
    mine = make.community(me, slug="mine-private")
    public = make.community(slug="someone-public", visibility=Visibility.PUBLIC)
    make.community(slug="someone-private")

    anonymous = client.get(f"{API}/communities").get_json()["communities"]
    assert [c["slug"] for c in anonymous] == [public]

    auth.login(me)
    listed = client.get(f"{API}/communities").get_json()["communities"]
    assert sorted(c["slug"] for c in listed) == sorted([mine, public])
    assert {c["slug"]: c["visibility"] for c in listed} == {mine: "private", public: "public"}


def test_host_creates_a_community_with_themes_and_an_address_made_from_its_name(
    client, make, auth, app
):
    ana = make.user("Ana")
    organisation = make.organisation("Collectif Ouest")
    auth.login(ana)

    response = client.post(
        f"{API}/communities",
        json={
            "name": "  Réseaux et plateformes ",
            "description": "We share what works.",
            "visibility": "public",
            "themes": ["Information sharing", " Advocacy ", "", "advocacy"],
            "organisation_id": organisation,
        },
    )

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["slug"] == "reseaux-et-plateformes"
    assert created["name"] == "Réseaux et plateformes"
    assert created["visibility"] == "public"
    assert response.headers["Location"].endswith(f"{API}/communities/reseaux-et-plateformes")
    assert client.get(response.headers["Location"]).get_json() == created

    themes = client.get(f"{API}/communities/reseaux-et-plateformes/themes").get_json()["themes"]
    assert [(t["name"], t["position"]) for t in themes] == [
        ("Information sharing", 0),
        ("Advocacy", 1),
    ]
    members = client.get(f"{API}/communities/reseaux-et-plateformes/members").get_json()
    assert [(m["user_id"], m["role"], m["organisation"]["name"]) for m in members["members"]] == [
        (ana, "host", "Collectif Ouest")
    ]


def test_a_chosen_address_is_kept_in_lowercase(client, make, auth):
    auth.login(make.user())
    response = client.post(f"{API}/communities", json={"name": "Réseau", "slug": " Mon-Reseau "})
    assert response.status_code == 201
    assert response.get_json()["slug"] == "mon-reseau"


def test_a_taken_address_answers_409_with_a_free_suggestion(client, make, auth, app):
    make.community(slug="ngo-network")
    make.community(slug="ngo-network-2")
    auth.login(make.user())
    before = database_state(app)

    response = client.post(f"{API}/communities", json={"name": "NGO network"})

    body = assert_error(response, 409, "conflict", "slug")
    assert "ngo-network-3" in body["message"]
    assert body["fields"]["slug"] == [body["message"]]
    assert database_state(app) == before
    retry = client.post(f"{API}/communities", json={"name": "NGO network", "slug": "ngo-network-3"})
    assert retry.status_code == 201


def test_host_updates_name_description_and_visibility(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    auth.login(host)

    response = client.patch(
        f"{API}/communities/{slug}",
        json={"name": " Renamed ", "description": "New words.", "visibility": "public"},
    )

    assert response.status_code == 200
    assert {k: response.get_json()[k] for k in ("slug", "name", "description", "visibility")} == {
        "slug": slug,
        "name": "Renamed",
        "description": "New words.",
        "visibility": "public",
    }
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        assert (community.name, community.visibility) == ("Renamed", Visibility.PUBLIC)
    partial = client.patch(f"{API}/communities/{slug}", json={"description": "Only this."})
    assert partial.get_json()["name"] == "Renamed"
    assert partial.get_json()["description"] == "Only this."


def test_an_unknown_community_is_404(client, make, auth):
    auth.login(make.user())
    assert_error(client.get(f"{API}/communities/nowhere"), 404, "not_found")
    assert_error(client.get(f"{API}/communities/nowhere/themes"), 404, "not_found")


# --- Themes ----------------------------------------------------------------------------


def test_host_adds_renames_moves_archives_and_restores_themes(client, make, auth, app):
    host = make.user()
    slug = make.community(host, themes=("Sharing", "Advocacy", "Mobilising"))
    sharing, advocacy, mobilising = theme_ids(app, slug)
    auth.login(host)

    added = client.post(f"{API}/communities/{slug}/themes", json={"name": " Capacity building "})
    assert added.status_code == 201
    assert (added.get_json()["name"], added.get_json()["position"]) == ("Capacity building", 3)

    moved = client.patch(
        f"{API}/communities/{slug}/themes/{mobilising}",
        json={"name": "Mobilising members", "position": 0},
    )
    assert moved.status_code == 200
    archived = client.patch(
        f"{API}/communities/{slug}/themes/{advocacy}", json={"archived": True}
    ).get_json()
    assert archived["archived"] is True and archived["archived_at"].endswith("Z")

    themes = client.get(f"{API}/communities/{slug}/themes").get_json()["themes"]
    assert [(t["id"], t["name"], t["position"], t["archived"]) for t in themes] == [
        (mobilising, "Mobilising members", 0, False),
        (sharing, "Sharing", 1, False),
        (advocacy, "Advocacy", 2, True),
        (added.get_json()["id"], "Capacity building", 3, False),
    ]

    restored = client.patch(
        f"{API}/communities/{slug}/themes/{advocacy}", json={"archived": False}
    ).get_json()
    assert restored["archived"] is False and restored["archived_at"] is None


def test_themes_of_a_public_community_are_public(client, make):
    slug = make.community(visibility=Visibility.PUBLIC, themes=("Sharing", "Advocacy"))
    themes = client.get(f"{API}/communities/{slug}/themes").get_json()["themes"]
    assert [(t["name"], t["archived"]) for t in themes] == [("Sharing", False), ("Advocacy", False)]


def test_a_theme_of_another_community_is_404(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    other = make.community(host)
    auth.login(host)
    foreign = theme_ids(app, other)[0]
    before = database_state(app)
    response = client.patch(f"{API}/communities/{slug}/themes/{foreign}", json={"name": "Mine"})
    assert_error(response, 404, "not_found")
    assert database_state(app) == before


# --- Members ---------------------------------------------------------------------------


def test_members_show_organisations_and_counts_but_never_emails(client, make, auth, app):
    host = make.user("Hana")
    slug = make.community(host)
    network = make.organisation("Réseau Sud", OrganisationKind.NETWORK)
    ngo = make.organisation("ONG Est", OrganisationKind.NGO)
    other_ngo = make.organisation("ONG Nord", OrganisationKind.NGO)
    editor = make.member(slug, EDITOR, organisation_id=network)
    make.member(slug, PARTICIPANT, organisation_id=ngo)
    make.member(slug, OBSERVER, organisation_id=other_ngo)
    observer = make.member(slug, OBSERVER)
    auth.login(observer)

    response = client.get(f"{API}/communities/{slug}/members")

    body = response.get_json()
    assert body["counts_by_organisation_kind"] == {"ngo": 2, "network": 1, "none": 2}
    by_user = {m["user_id"]: m for m in body["members"]}
    assert body["members"][0]["user_id"] == host  # hosts first
    assert by_user[editor]["role"] == "editor"
    assert by_user[editor]["id"] == membership_id(app, slug, editor)
    assert by_user[editor]["organisation"] == {
        "id": network,
        "name": "Réseau Sud",
        "kind": "network",
        "country": "FR",
    }
    assert by_user[host]["organisation"] is None
    assert by_user[host]["display_name"] == "Hana"
    assert by_user[host]["joined_at"].endswith("Z")
    text = response.get_data(as_text=True)
    for user_id in by_user:
        assert make.email_of(user_id) not in text
    assert "email" not in text


def test_host_changes_a_role_and_removes_a_member(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    participant = make.member(slug, PARTICIPANT)
    target = membership_id(app, slug, participant)
    auth.login(host)

    response = client.patch(f"{API}/communities/{slug}/members/{target}", json={"role": "editor"})
    assert response.status_code == 200
    assert (response.get_json()["id"], response.get_json()["role"]) == (target, "editor")
    with app.app_context():
        assert db.session.get(Membership, target).role is EDITOR

    response = client.delete(f"{API}/communities/{slug}/members/{target}")
    assert response.status_code == 204
    with app.app_context():
        assert db.session.get(Membership, target) is None
    assert_error(client.delete(f"{API}/communities/{slug}/members/{target}"), 404, "not_found")


def test_a_host_may_step_down_once_another_host_exists(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    make.member(slug, HOST)
    auth.login(host)
    mine = membership_id(app, slug, host)
    response = client.patch(f"{API}/communities/{slug}/members/{mine}", json={"role": "editor"})
    assert response.status_code == 200
    assert response.get_json()["role"] == "editor"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_the_last_host_can_be_neither_demoted_nor_removed(client, make, auth, app, method):
    host = make.user()
    slug = make.community(host)
    make.member(slug, FACILITATOR)
    auth.login(host)
    before = database_state(app)

    url = f"{API}/communities/{slug}/members/{membership_id(app, slug, host)}"
    response = getattr(client, method)(
        url, json={"role": "facilitator"} if method == "patch" else None
    )

    assert_error(response, 409, "conflict")
    assert database_state(app) == before


# --- Invitations -----------------------------------------------------------------------


def test_host_creates_lists_and_revokes_an_invitation(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    auth.login(host)

    response = client.post(f"{API}/communities/{slug}/invitations", json={"role": "editor"})

    assert response.status_code == 201
    invitation = response.get_json()
    with app.app_context():
        row = db.session.get(Invitation, invitation["id"])
        token, expires_at, created_at = row.token, row.expires_at, row.created_at
    assert invitation["url"] == f"http://cop.test/join/{token}"
    assert (invitation["role"], invitation["max_uses"], invitation["uses"]) == ("editor", 25, 0)
    assert abs(expires_at - created_at - timedelta(days=14)) < timedelta(minutes=1)
    assert (invitation["status"], invitation["revoked_at"]) == ("active", None)
    listed = client.get(f"{API}/communities/{slug}/invitations").get_json()["invitations"]
    assert [i["id"] for i in listed] == [invitation["id"]]

    response = client.delete(f"{API}/communities/{slug}/invitations/{invitation['id']}")

    assert response.status_code == 200
    assert response.get_json()["status"] == "revoked"
    assert response.get_json()["revoked_at"].endswith("Z")
    assert client.get(f"/join/{token}").status_code == 404


def test_an_invitation_takes_its_lifetime_and_number_of_uses(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    auth.login(host)
    response = client.post(
        f"{API}/communities/{slug}/invitations",
        json={"role": "observer", "expires_in_days": 365, "max_uses": 1000},
    )
    assert response.status_code == 201
    with app.app_context():
        row = db.session.get(Invitation, response.get_json()["id"])
        lifetime = row.expires_at - row.created_at
        assert abs(lifetime - timedelta(days=365)) < timedelta(minutes=1)
        assert row.max_uses == 1000


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (HOST, 403),
        (FACILITATOR, 403),
        (EDITOR, 403),
        (PARTICIPANT, 201),
        (OBSERVER, 201),
    ],
)
def test_a_facilitator_invites_only_participants_and_observers(
    client, make, auth, app, role, status
):
    slug = make.community()
    auth.login(make.member(slug, FACILITATOR))
    before = database_state(app)

    response = client.post(f"{API}/communities/{slug}/invitations", json={"role": role.value})

    if status == 403:
        assert_error(response, 403, "forbidden")
        assert database_state(app) == before
    else:
        assert response.status_code == 201
        assert response.get_json()["role"] == role.value


@pytest.mark.parametrize("role", list(Role))
def test_a_host_invites_any_role(client, make, auth, role):
    host = make.user()
    slug = make.community(host)
    auth.login(host)
    response = client.post(f"{API}/communities/{slug}/invitations", json={"role": role.value})
    assert response.status_code == 201
    assert response.get_json()["role"] == role.value


def test_a_facilitator_neither_sees_nor_revokes_invitations_for_roles_above_theirs(
    client, make, auth, app
):
    host = make.user()
    slug = make.community(host)
    editor_invitation = invite(app, slug, EDITOR, by=host)
    observer_invitation = invite(app, slug, OBSERVER, by=host)
    auth.login(make.member(slug, FACILITATOR))

    listed = client.get(f"{API}/communities/{slug}/invitations").get_json()["invitations"]
    assert [i["id"] for i in listed] == [observer_invitation]

    before = database_state(app)
    url = f"{API}/communities/{slug}/invitations/{editor_invitation}"
    assert_error(client.delete(url), 403, "forbidden")
    assert database_state(app) == before
    revoked = client.delete(f"{API}/communities/{slug}/invitations/{observer_invitation}")
    assert revoked.get_json()["status"] == "revoked"


def test_an_invitation_of_another_community_is_404(client, make, auth, app):
    host = make.user()
    slug = make.community(host)
    foreign = invite(app, make.community(host), OBSERVER, by=host)
    auth.login(host)
    before = database_state(app)
    assert_error(client.delete(f"{API}/communities/{slug}/invitations/{foreign}"), 404, "not_found")
    assert database_state(app) == before


# --- Organisations ---------------------------------------------------------------------


def test_logged_in_people_list_and_read_organisations(client, make, auth):
    zeta = make.organisation("Zeta network", OrganisationKind.NETWORK)
    alpha = make.organisation("Alpha foundation", OrganisationKind.FOUNDATION)
    assert_error(client.get(f"{API}/organisations"), 401, "unauthorized")
    assert_error(client.get(f"{API}/organisations/{alpha}"), 401, "unauthorized")

    auth.login(make.user())
    listed = client.get(f"{API}/organisations").get_json()["organisations"]
    assert [(o["id"], o["name"]) for o in listed] == [
        (alpha, "Alpha foundation"),
        (zeta, "Zeta network"),
    ]
    shown = client.get(f"{API}/organisations/{zeta}").get_json()
    assert (shown["name"], shown["kind"], shown["country"]) == ("Zeta network", "network", "FR")
    assert_error(client.get(f"{API}/organisations/{zeta + alpha + 1}"), 404, "not_found")


def test_a_host_creates_an_organisation(client, make, auth, app):
    host = make.user()
    make.community(host)
    auth.login(host)

    response = client.post(
        f"{API}/organisations", json={"name": " Collectif Ouest ", "kind": "ngo", "country": "be"}
    )

    assert response.status_code == 201
    created = response.get_json()
    assert (created["name"], created["kind"], created["country"]) == (
        "Collectif Ouest",
        "ngo",
        "BE",
    )
    assert client.get(response.headers["Location"]).get_json() == created
    no_country = client.post(f"{API}/organisations", json={"name": "Sans pays", "kind": "other"})
    assert no_country.get_json()["country"] is None


@pytest.mark.parametrize("role", [None, FACILITATOR, EDITOR, PARTICIPANT, OBSERVER])
def test_only_hosts_create_organisations(client, make, auth, app, role):
    slug = make.community()
    user = make.member(slug, role) if role else make.user()
    auth.login(user)
    before = database_state(app)
    response = client.post(f"{API}/organisations", json={"name": "Collectif", "kind": "ngo"})
    assert_error(response, 403, "forbidden")
    assert database_state(app) == before


def test_anonymous_callers_cannot_create_organisations(client, make, app):
    before = database_state(app)
    response = client.post(f"{API}/organisations", json={"name": "Collectif", "kind": "ngo"})
    assert_error(response, 401, "unauthorized")
    assert database_state(app) == before


# --- Who may do what -------------------------------------------------------------------

# Rows of DESIGN.md's table, written out here so the test checks the permissions module.
EVERYONE_ON_A_PUBLIC_COMMUNITY = "home"
ROLES_FOR = {
    "home": set(Role),
    "members_area": set(Role),
    "manage": {HOST},
    "invite": {HOST, FACILITATOR},
}


@dataclass(frozen=True)
class Endpoint:
    """One API call, the DESIGN.md row that governs it, and its status on success."""

    method: str
    path: str
    rule: str
    success: int
    body: dict | None = None


ENDPOINTS = {
    "show community": Endpoint("get", "/communities/{slug}", "home", 200),
    "update community": Endpoint("patch", "/communities/{slug}", "manage", 200, {"name": "New"}),
    "list themes": Endpoint("get", "/communities/{slug}/themes", "home", 200),
    "add theme": Endpoint("post", "/communities/{slug}/themes", "manage", 201, {"name": "New"}),
    "update theme": Endpoint(
        "patch", "/communities/{slug}/themes/{theme}", "manage", 200, {"archived": True}
    ),
    "list members": Endpoint("get", "/communities/{slug}/members", "members_area", 200),
    "change role": Endpoint(
        "patch", "/communities/{slug}/members/{membership}", "manage", 200, {"role": "observer"}
    ),
    "remove member": Endpoint("delete", "/communities/{slug}/members/{membership}", "manage", 204),
    "list invitations": Endpoint("get", "/communities/{slug}/invitations", "invite", 200),
    "invite": Endpoint(
        "post", "/communities/{slug}/invitations", "invite", 201, {"role": "participant"}
    ),
    "revoke invitation": Endpoint(
        "delete", "/communities/{slug}/invitations/{invitation}", "invite", 200
    ),
}
CALLERS = ["anonymous", "outsider", *(role.value for role in Role)]


def expected_status(caller: str, visibility: Visibility, endpoint: Endpoint) -> int:
    """Return what DESIGN.md's table promises this caller on this endpoint."""
    if caller in ("anonymous", "outsider"):
        if visibility is Visibility.PRIVATE:
            return 404  # a private community is invisible to non-members
        if endpoint.rule == EVERYONE_ON_A_PUBLIC_COMMUNITY:
            return endpoint.success
        return 401 if caller == "anonymous" else 403
    return endpoint.success if Role(caller) in ROLES_FOR[endpoint.rule] else 403


@pytest.mark.parametrize("visibility", list(Visibility))
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_permission_matrix(client, make, auth, app, visibility, caller, name):
    endpoint = ENDPOINTS[name]
    host = make.user("Host")
    slug = make.community(host, visibility=visibility)
    users = {"outsider": make.user(), "host": host}
    for role in (FACILITATOR, EDITOR, PARTICIPANT, OBSERVER):
        users[role.value] = make.member(slug, role)
    target = membership_id(app, slug, make.member(slug, PARTICIPANT))
    path = endpoint.path.format(
        slug=slug,
        theme=theme_ids(app, slug)[0],
        membership=target,
        invitation=invite(app, slug, OBSERVER, by=host),
    )
    if caller != "anonymous":
        auth.login(users[caller])
    before = database_state(app)

    response = getattr(client, endpoint.method)(API + path, json=endpoint.body)

    expected = expected_status(caller, visibility, endpoint)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert_error(
            response, expected, {401: "unauthorized", 403: "forbidden"}.get(expected, "not_found")
        )
    if endpoint.method == "get" or expected >= 400:
        assert database_state(app) == before
    else:
        assert database_state(app) != before


# --- Authentication --------------------------------------------------------------------


def test_a_bearer_token_authenticates_reads_and_writes(client, make, app):
    ana = make.user("Ana")
    headers = bearer(app, ana)

    me = client.get(f"{API}/me", headers=headers)
    assert me.status_code == 200 and me.get_json()["user"]["id"] == ana

    created = client.post(f"{API}/communities", json={"name": "By script"}, headers=headers)
    assert created.status_code == 201
    with app.app_context():
        token = db.session.scalar(select(ApiToken).filter_by(user_id=ana))
        assert token.last_used_at is not None
        community = db.session.scalar(select(Community).filter_by(slug="by-script"))
        assert [(m.user_id, m.role) for m in community.memberships] == [(ana, HOST)]


@pytest.mark.parametrize("path", ["/me", "/communities"])
def test_an_unknown_token_is_401_even_where_anonymous_callers_are_welcome(client, make, path):
    make.community(visibility=Visibility.PUBLIC)
    response = client.get(API + path, headers={"Authorization": "Bearer cop_not-a-real-token"})
    assert_error(response, 401, "unauthorized")


def test_a_deleted_token_no_longer_works(client, make, app):
    ana = make.user()
    headers = bearer(app, ana)
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    with app.app_context():
        for token in db.session.scalars(select(ApiToken).filter_by(user_id=ana)):
            db.session.delete(token)
        db.session.commit()
    assert_error(client.get(f"{API}/me", headers=headers), 401, "unauthorized")


def test_the_token_of_a_deleted_account_no_longer_works(client, make, app):
    ana = make.user()
    headers = bearer(app, ana)
    with app.app_context():
        auth_services.delete_account(db.session.get(User, ana))
        db.session.commit()
    assert_error(client.get(f"{API}/me", headers=headers), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/communities", {"name": "New network"}),
        ("patch", "/communities/{slug}", {"name": "New"}),
        ("post", "/organisations", {"name": "Org", "kind": "ngo"}),
        ("get", "/me", None),
    ],
)
def test_anonymous_calls_needing_an_account_are_401_json(client, make, app, method, path, body):
    slug = make.community(visibility=Visibility.PUBLIC)
    before = database_state(app)
    response = getattr(client, method)(API + path.format(slug=slug), json=body)
    assert_error(response, 401, "unauthorized")
    assert database_state(app) == before


# --- CSRF ------------------------------------------------------------------------------


@pytest.fixture
def csrf_make(csrf_app):
    """Return the factory of test data for the app with CSRF protection on."""
    return Factory(csrf_app)


def login_with_csrf(client, email: str) -> str:
    """Log in through the form, as a browser does; return the session's CSRF token."""
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return csrf_token_from(client.get("/").get_data(as_text=True))


CSRF_WRITES = [
    ("post", "/communities", {"name": "New network"}),
    ("patch", "/communities/{slug}", {"name": "New"}),
    ("post", "/communities/{slug}/themes", {"name": "New"}),
    ("delete", "/communities/{slug}/invitations/{invitation}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), CSRF_WRITES)
def test_a_cookie_authenticated_write_needs_the_csrf_header(
    csrf_app, csrf_make, method, path, body
):
    host = csrf_make.user()
    slug = csrf_make.community(host)
    url = API + path.format(slug=slug, invitation=invite(csrf_app, slug, OBSERVER, by=host))
    client = csrf_app.test_client()
    csrf_token = login_with_csrf(client, csrf_make.email_of(host))
    before = database_state(csrf_app)

    refused = getattr(client, method)(url, json=body)
    assert_error(refused, 400, "csrf")
    assert_error(
        getattr(client, method)(url, json=body, headers={"X-CSRFToken": "forged"}), 400, "csrf"
    )
    assert database_state(csrf_app) == before

    accepted = getattr(client, method)(url, json=body, headers={"X-CSRFToken": csrf_token})
    assert accepted.status_code in (200, 201), accepted.get_data(as_text=True)
    assert database_state(csrf_app) != before


def test_a_cookie_authenticated_read_needs_no_csrf_header(csrf_app, csrf_make):
    host = csrf_make.user()
    slug = csrf_make.community(host)
    client = csrf_app.test_client()
    login_with_csrf(client, csrf_make.email_of(host))
    assert client.get(f"{API}/communities/{slug}/members").status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), CSRF_WRITES)
def test_a_token_authenticated_write_needs_no_csrf_header(csrf_app, csrf_make, method, path, body):
    host = csrf_make.user()
    slug = csrf_make.community(host)
    url = API + path.format(slug=slug, invitation=invite(csrf_app, slug, OBSERVER, by=host))
    before = database_state(csrf_app)

    response = getattr(csrf_app.test_client(), method)(
        url, json=body, headers=bearer(csrf_app, host)
    )

    assert response.status_code in (200, 201), response.get_data(as_text=True)
    assert database_state(csrf_app) != before


def test_an_anonymous_write_is_401_not_a_csrf_error(csrf_app, csrf_make):
    slug = csrf_make.community(visibility=Visibility.PUBLIC)
    client = csrf_app.test_client()
    assert_error(client.post(f"{API}/communities", json={"name": "New"}), 401, "unauthorized")
    response = client.patch(f"{API}/communities/{slug}", json={"name": "New"})
    assert_error(response, 401, "unauthorized")


# --- Bad input -------------------------------------------------------------------------

LONG_NAME = "n" * (NAME_MAX + 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"name": LONG_NAME}, "name"),
        ({"name": "Ok", "description": "d" * (DESCRIPTION_MAX + 1)}, "description"),
        ({"name": "Ok", "description": ["list"]}, "description"),
        ({"name": "Ok", "themes": "x"}, "themes"),
        ({"name": "Ok", "themes": [1, 2]}, "themes"),
        ({"name": "Ok", "themes": [LONG_NAME]}, "themes"),
        ({"name": "Ok", "themes": [f"Theme {n}" for n in range(31)]}, "themes"),
        ({"name": "Ok", "visibility": "secret"}, "visibility"),
        ({"name": "Ok", "visibility": True}, "visibility"),
        ({"name": "Ok", "slug": "s" * (SLUG_MAX + 1)}, "slug"),
        ({"name": "Ok", "slug": "not a slug!"}, "slug"),
        ({"name": "Ok", "slug": "double--hyphen"}, "slug"),
        ({"name": "Ok", "slug": "admin"}, "slug"),
        ({"name": "日本語"}, "slug"),  # nothing left to make an address from
        ({"name": "Ok", "slug": 12}, "slug"),
        ({"name": "Ok", "organisation_id": 999}, "organisation_id"),
        ({"name": "Ok", "organisation_id": "1"}, "organisation_id"),
        ({"name": "Ok", "id": 3}, "id"),  # server-owned
        ({"name": "Ok", "created_at": "2024-01-01T00:00:00Z"}, "created_at"),
        ({"name": "Ok", "owner": "me"}, "owner"),
    ],
)
def test_creating_a_community_refuses_bad_fields(client, make, auth, app, body, field):
    make.organisation()
    auth.login(make.user())
    before = database_state(app)

    response = client.post(f"{API}/communities", json=body)

    assert_error(response, 400, "invalid", field)
    assert database_state(app) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": LONG_NAME}, "name"),
        ({"description": "d" * (DESCRIPTION_MAX + 1)}, "description"),
        ({"visibility": "secret"}, "visibility"),
        ({"slug": "new-address"}, "slug"),  # the address never changes
        ({"name": "Fine", "visibility": "hidden"}, "visibility"),  # all or nothing
    ],
)
def test_updating_a_community_refuses_bad_fields(client, make, auth, app, body, field):
    host = make.user()
    slug = make.community(host)
    auth.login(host)
    before = database_state(app)

    response = client.patch(f"{API}/communities/{slug}", json=body)

    assert_error(response, 400, "invalid", field)
    assert database_state(app) == before


@pytest.mark.parametrize(
    ("method", "body", "status", "code", "field"),
    [
        ("post", {}, 400, "invalid", "name"),
        ("post", {"name": 5}, 400, "invalid", "name"),
        ("post", {"name": LONG_NAME}, 400, "invalid", "name"),
        ("post", {"name": " advocacy "}, 409, "conflict", "name"),
        ("post", {"name": "New", "position": 0}, 400, "invalid", "position"),
        ("patch", {"name": "Advocacy"}, 409, "conflict", "name"),
        ("patch", {"name": "Renamed", "position": "1"}, 400, "invalid", "position"),
        ("patch", {"position": -1}, 400, "invalid", "position"),
        ("patch", {"position": 31}, 400, "invalid", "position"),
        ("patch", {"position": 1.5}, 400, "invalid", "position"),
        ("patch", {"archived": "yes"}, 400, "invalid", "archived"),
        ("patch", {"archived": 1}, 400, "invalid", "archived"),
        ("patch", {"archived": True, "id": 9}, 400, "invalid", "id"),
    ],
)
def test_theme_changes_refuse_bad_fields(
    client, make, auth, app, method, body, status, code, field
):
    host = make.user()
    slug = make.community(host, themes=("Sharing", "Advocacy"))
    sharing = theme_ids(app, slug)[0]
    auth.login(host)
    before = database_state(app)

    url = f"{API}/communities/{slug}/themes" + (f"/{sharing}" if method == "patch" else "")
    response = getattr(client, method)(url, json=body)

    assert_error(response, status, code, field)
    assert database_state(app) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "king"},
        {"role": 5},
        {"role": None},
        {"role": "HOST"},
        {"role": "observer", "x": 1},
    ],
)
def test_a_role_change_refuses_bad_roles(client, make, auth, app, body):
    host = make.user()
    slug = make.community(host)
    target = membership_id(app, slug, make.member(slug, PARTICIPANT))
    auth.login(host)
    before = database_state(app)

    response = client.patch(f"{API}/communities/{slug}/members/{target}", json=body)

    field = "role" if set(body) <= {"role"} else "x"
    assert_error(response, 400, "invalid", field)
    assert database_state(app) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "role"),
        ({"role": "king"}, "role"),
        ({"role": "observer", "expires_in_days": 0}, "expires_in_days"),
        ({"role": "observer", "expires_in_days": 366}, "expires_in_days"),
        ({"role": "observer", "expires_in_days": "7"}, "expires_in_days"),
        ({"role": "observer", "max_uses": 0}, "max_uses"),
        ({"role": "observer", "max_uses": 1001}, "max_uses"),
        ({"role": "observer", "max_uses": True}, "max_uses"),
        ({"role": "observer", "uses": 3}, "uses"),
        ({"role": "observer", "token": "mine"}, "token"),
    ],
)
def test_an_invitation_refuses_bad_fields(client, make, auth, app, body, field):
    host = make.user()
    slug = make.community(host)
    auth.login(host)
    before = database_state(app)

    response = client.post(f"{API}/communities/{slug}/invitations", json=body)

    assert_error(response, 400, "invalid", field)
    assert database_state(app) == before


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"kind": "ngo"}, 400, "invalid", "name"),
        ({"name": "Org", "kind": "castle"}, 400, "invalid", "kind"),
        ({"name": "Org"}, 400, "invalid", "kind"),
        ({"name": "Org", "kind": "ngo", "country": "XX"}, 400, "invalid", "country"),
        ({"name": "Org", "kind": "ngo", "country": "FRA"}, 400, "invalid", "country"),
        ({"name": "Org", "kind": "ngo", "country": ""}, 400, "invalid", "country"),
        ({"name": "Org", "kind": "ngo", "country": 33}, 400, "invalid", "country"),
        ({"name": LONG_NAME, "kind": "ngo"}, 400, "invalid", "name"),
        ({"name": "Org", "kind": "ngo", "id": 1}, 400, "invalid", "id"),
        ({"name": " existing NGO ", "kind": "ngo"}, 409, "conflict", "name"),
    ],
)
def test_an_organisation_refuses_bad_fields(client, make, auth, app, body, status, code, field):
    make.organisation("Existing NGO")
    host = make.user()
    make.community(host)
    auth.login(host)
    before = database_state(app)

    response = client.post(f"{API}/organisations", json=body)

    assert_error(response, status, code, field)
    assert database_state(app) == before


BODIES_THAT_ARE_NOT_JSON_OBJECTS = [
    pytest.param({"data": "{not json", "content_type": "application/json"}, id="invalid-json"),
    pytest.param({"json": ["name", "New"]}, id="array"),
    pytest.param({"json": "New"}, id="string"),
    pytest.param({"data": "null", "content_type": "application/json"}, id="null"),
    pytest.param({"data": "", "content_type": "application/json"}, id="empty"),
    pytest.param({"data": {"name": "New"}}, id="form-encoded"),
]


@pytest.mark.parametrize("request_body", BODIES_THAT_ARE_NOT_JSON_OBJECTS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/communities"),
        ("patch", "/communities/{slug}"),
        ("post", "/communities/{slug}/themes"),
        ("post", "/communities/{slug}/invitations"),
        ("post", "/organisations"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    client, make, auth, app, request_body, method, path
):
    host = make.user()
    slug = make.community(host)
    auth.login(host)
    before = database_state(app)

    response = getattr(client, method)(API + path.format(slug=slug), **request_body)

    assert_error(response, 400, "bad_request")
    assert database_state(app) == before
