"""Every URL rule, walked by every kind of person, answers as DESIGN.md's table says.

The expected answers are written here from the table, independently of
cop/core/permissions.py, so a wrong rule there (or a route nobody listed here) fails.
"""

from datetime import date, time

import pytest

from cop.auth import services as auth_services
from cop.auth.models import User
from cop.communities.models import (
    Community,
    Invitation,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Theme,
    Visibility,
)
from cop.core.time import utcnow
from cop.drafts import services as drafts
from cop.drafts.models import DraftStatus, Publication
from cop.drafts.workflow import add_comment, move, save_revision
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind, NoteVersion
from cop.workshops.models import Card, WorkshopDay, WorkshopSession
from cop.workshops.record import freeze
from tests.conftest import PASSWORD, reset_database

PRINCIPALS = ["anonymous", "non_member", "host", "facilitator", "editor", "participant", "observer"]
ALL_ROLES = {"host", "facilitator", "editor", "participant", "observer"}

# DESIGN.md, "Who may do what": the roles allowed for each row used by these pages.
TABLE = {
    "see_home": ALL_ROLES,  # community home, themes, published guides (+ anyone if public)
    "see_members_area": ALL_ROLES,  # members, programme, notes, session records
    "manage": {"host"},  # edit community, themes, roles; remove members
    "invite": {"host", "facilitator"},  # invite participants and observers
    "create_organisation": {"host"},  # organisations are created by hosts (or by joining)
    "write_notes": {"host", "facilitator", "editor", "participant"},  # create, write notes
    "plan": {"host", "facilitator"},  # plan days and sessions; run any session
    "edit_drafts": {"host", "editor"},  # create and edit guide drafts, revisions
    "review": {"host", "editor"},  # submit for review / approve
    "publish": {"host"},  # publish a version
    "comment": {"host", "facilitator", "editor", "participant"},  # comment, validate
    "write_sheet": {"host", "facilitator", "editor", "participant"},  # own organisation's
}

# endpoint -> (method, path template, form data or JSON body, who may: "everyone" |
# "logged_in" | a TABLE row). API endpoints (api.*) get their body as JSON.
ROUTES = {
    "static": ("GET", "/static/css/cop.css", None, "everyone"),
    "core.index": ("GET", "/", None, "everyone"),
    "core.healthz": ("GET", "/healthz", None, "everyone"),
    "core.set_language": ("POST", "/language", {"locale": "fr"}, "everyone"),
    "auth.register": ("GET", "/register", None, "everyone"),
    "auth.login": ("GET", "/login", None, "everyone"),
    "auth.logout": ("POST", "/logout", None, "everyone"),
    "auth.request_password_reset": ("GET", "/reset", None, "everyone"),
    "auth.reset_password": ("GET", "/reset/{reset_token}", None, "everyone"),
    "auth.account": ("GET", "/account", None, "logged_in"),
    "auth.update_preferences": (
        "POST",
        "/account/preferences",
        {"display_name": "Me", "locale": "en", "time_zone": "Europe/Paris"},
        "logged_in",
    ),
    "auth.change_password": (
        "POST",
        "/account/password",
        {"current_password": PASSWORD, "password": "new password 1", "confirm": "new password 1"},
        "logged_in",
    ),
    "auth.create_token": ("POST", "/account/tokens", {"name": "script"}, "logged_in"),
    "auth.delete_token": ("POST", "/account/tokens/{own_token_id}/delete", None, "logged_in"),
    "auth.export_data": ("GET", "/account/export.json", None, "logged_in"),
    "auth.delete_account": ("GET", "/account/delete", None, "logged_in"),
    "communities.create": ("GET", "/communities/new", None, "logged_in"),
    "communities.join": ("GET", "/join/{invitation_token}", None, "everyone"),
    "communities.home": ("GET", "/c/{slug}", None, "see_home"),
    "communities.members": ("GET", "/c/{slug}/members", None, "see_members_area"),
    "communities.edit": ("GET", "/c/{slug}/edit", None, "manage"),
    "communities.add_theme": ("POST", "/c/{slug}/themes", {"name": "Fresh theme"}, "manage"),
    "communities.rename_theme": (
        "POST",
        "/c/{slug}/themes/{theme_id}/rename",
        {"name": "Renamed"},
        "manage",
    ),
    "communities.move_theme": (
        "POST",
        "/c/{slug}/themes/{theme_id}/move",
        {"position": "1"},
        "manage",
    ),
    "communities.archive_theme": ("POST", "/c/{slug}/themes/{theme_id}/archive", None, "manage"),
    "communities.change_role": (
        "POST",
        "/c/{slug}/members/{target_membership_id}/role",
        {"role": "editor"},
        "manage",
    ),
    "communities.remove_member": (
        "POST",
        "/c/{slug}/members/{target_membership_id}/remove",
        None,
        "manage",
    ),
    "communities.invitations": ("GET", "/c/{slug}/invitations", None, "invite"),
    "communities.revoke_invitation": (
        "POST",
        "/c/{slug}/invitations/{invitation_id}/revoke",
        None,
        "invite",
    ),
    "notes.create": ("POST", "/c/{slug}/notes", {"title": "A new note"}, "write_notes"),
    "notes.show": ("GET", "/c/{slug}/notes/{note_id}", None, "see_members_area"),
    "notes.preview": (
        "POST",
        "/c/{slug}/notes/{note_id}/preview",
        {"text": "# Preview"},
        "see_members_area",
    ),
    "notes.history": ("GET", "/c/{slug}/notes/{note_id}/history", None, "see_members_area"),
    "notes.save_version": (
        "POST",
        "/c/{slug}/notes/{note_id}/versions",
        {"label": "mine"},
        "write_notes",
    ),
    "notes.version": (
        "GET",
        "/c/{slug}/notes/{note_id}/versions/{version_id}",
        None,
        "see_members_area",
    ),
    "notes.compare": (
        "GET",
        "/c/{slug}/notes/{note_id}/compare?from={version_id}",
        None,
        "see_members_area",
    ),
    "notes.restore_version": (
        "POST",
        "/c/{slug}/notes/{note_id}/versions/{version_id}/restore",
        None,
        "write_notes",
    ),
    "notes.export": ("GET", "/c/{slug}/notes/{note_id}/export.md", None, "see_members_area"),
    "workshops.programme": ("GET", "/c/{slug}/workshops", None, "see_members_area"),
    "workshops.programme_calendar": ("GET", "/c/{slug}/workshops.ics", None, "see_members_area"),
    "workshops.renew_calendar_link": ("POST", "/c/{slug}/calendar-link", None, "see_members_area"),
    "workshops.calendar_feed": ("GET", "/calendar/{calendar_token}.ics", None, "everyone"),
    "workshops.create_day": ("GET", "/c/{slug}/workshops/new", None, "plan"),
    "workshops.day": ("GET", "/c/{slug}/workshops/{day_id}", None, "see_members_area"),
    "workshops.day_calendar": ("GET", "/c/{slug}/workshops/{day_id}.ics", None, "see_members_area"),
    "workshops.edit_day": ("GET", "/c/{slug}/workshops/{day_id}/edit", None, "plan"),
    "workshops.day_attendance": ("GET", "/c/{slug}/workshops/{day_id}/attendance", None, "plan"),
    "workshops.duplicate_day": (
        "POST",
        "/c/{slug}/workshops/{day_id}/duplicate",
        {"date": "2027-01-15"},
        "plan",
    ),
    "workshops.add_session": ("GET", "/c/{slug}/workshops/{day_id}/sessions/new", None, "plan"),
    "workshops.session": ("GET", "/c/{slug}/sessions/{session_id}", None, "see_members_area"),
    "workshops.edit_session": ("GET", "/c/{slug}/sessions/{session_id}/edit", None, "plan"),
    "workshops.move_session": (
        "POST",
        "/c/{slug}/sessions/{session_id}/move",
        {"position": "0"},
        "plan",
    ),
    "workshops.remove_session": ("POST", "/c/{slug}/sessions/{session_id}/remove", None, "plan"),
    "workshops.park_item": (
        "POST",
        "/c/{slug}/sessions/{session_id}/parked",
        {"text": "Take this up tomorrow"},
        "plan",
    ),
    "workshops.session_record": (
        "GET",
        "/c/{slug}/sessions/{session_id}/record",
        None,
        "see_members_area",
    ),
    "workshops.session_record_export": (
        "GET",
        "/c/{slug}/sessions/{session_id}/record.csv",
        None,
        "see_members_area",
    ),
    "drafts.index": ("GET", "/c/{slug}/drafts", None, "see_members_area"),
    "drafts.create": ("POST", "/c/{slug}/drafts", {"title": "A guide"}, "edit_drafts"),
    "drafts.create_sheet": ("POST", "/c/{slug}/sheets", {"title": "Our sheet"}, "write_sheet"),
    "drafts.show": ("GET", "/c/{slug}/drafts/{draft_id}", None, "see_members_area"),
    "drafts.add_section": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections",
        {"title": "More"},
        "edit_drafts",
    ),
    "drafts.place_sheet": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sheets",
        {"sheet_id": "{signed_sheet_id}"},
        "edit_drafts",
    ),
    "drafts.rename_section": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/rename",
        {"title": "Renamed"},
        "edit_drafts",
    ),
    "drafts.move_section": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/move",
        {"direction": "down"},
        "edit_drafts",
    ),
    "drafts.remove_section": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/remove",
        None,
        "edit_drafts",
    ),
    "drafts.section": (
        "GET",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}",
        None,
        "see_members_area",
    ),
    "drafts.insert_material": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/material",
        {"session_id": "{session_id}", "kind": "card", "source_id": "{card_id}"},
        "edit_drafts",
    ),
    "drafts.move": ("POST", "/c/{slug}/drafts/{draft_id}/status", {"to": "approved"}, "review"),
    "drafts.publish": ("POST", "/c/{slug}/drafts/{approved_id}/publish", None, "publish"),
    "drafts.sign_off": ("POST", "/c/{slug}/drafts/{sheet_id}/sign-off", None, "write_sheet"),
    "drafts.comment": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/comments",
        {"body": "Is this right?"},
        "comment",
    ),
    "drafts.resolve": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/comments/{comment_id}/resolve",
        None,
        "review",
    ),
    "drafts.validate": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/sections/{section_id}/validation",
        {"verdict": "recognise"},
        "comment",
    ),
    "drafts.revisions": ("GET", "/c/{slug}/drafts/{draft_id}/revisions", None, "see_members_area"),
    "drafts.save_revision": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/revisions",
        {"message": "Checkpoint"},
        "edit_drafts",
    ),
    "drafts.revision": (
        "GET",
        "/c/{slug}/drafts/{draft_id}/revisions/1",
        None,
        "see_members_area",
    ),
    "drafts.compare": (
        "GET",
        "/c/{slug}/drafts/{draft_id}/compare?from=1",
        None,
        "see_members_area",
    ),
    "drafts.restore": (
        "POST",
        "/c/{slug}/drafts/{draft_id}/revisions/1/restore",
        None,
        "edit_drafts",
    ),
    "drafts.export": ("GET", "/c/{slug}/drafts/{draft_id}/export.md", None, "see_members_area"),
    "drafts.export_revision": (
        "GET",
        "/c/{slug}/drafts/{draft_id}/revisions/1/export.md",
        None,
        "see_members_area",
    ),
    "drafts.published": ("GET", "/p/{slug}/{guide_slug}", None, "see_home"),
    "drafts.published_export": ("GET", "/p/{slug}/{guide_slug}/v1.md", None, "see_home"),
    "api.me": ("GET", "/api/v1/me", None, "logged_in"),
    "api.list_communities": ("GET", "/api/v1/communities", None, "everyone"),
    "api.create_community": (
        "POST",
        "/api/v1/communities",
        {"name": "Another one", "slug": "another-one"},
        "logged_in",
    ),
    "api.show_community": ("GET", "/api/v1/communities/{slug}", None, "see_home"),
    "api.update_community": (
        "PATCH",
        "/api/v1/communities/{slug}",
        {"description": "Changed"},
        "manage",
    ),
    "api.list_themes": ("GET", "/api/v1/communities/{slug}/themes", None, "see_home"),
    "api.add_theme": (
        "POST",
        "/api/v1/communities/{slug}/themes",
        {"name": "Fresh theme"},
        "manage",
    ),
    "api.update_theme": (
        "PATCH",
        "/api/v1/communities/{slug}/themes/{theme_id}",
        {"archived": True},
        "manage",
    ),
    "api.list_members": ("GET", "/api/v1/communities/{slug}/members", None, "see_members_area"),
    "api.change_role": (
        "PATCH",
        "/api/v1/communities/{slug}/members/{target_membership_id}",
        {"role": "editor"},
        "manage",
    ),
    "api.remove_member": (
        "DELETE",
        "/api/v1/communities/{slug}/members/{target_membership_id}",
        None,
        "manage",
    ),
    "api.list_invitations": ("GET", "/api/v1/communities/{slug}/invitations", None, "invite"),
    "api.create_invitation": (
        "POST",
        "/api/v1/communities/{slug}/invitations",
        {"role": "participant"},
        "invite",
    ),
    "api.revoke_invitation": (
        "DELETE",
        "/api/v1/communities/{slug}/invitations/{invitation_id}",
        None,
        "invite",
    ),
    "api.list_notes": ("GET", "/api/v1/communities/{slug}/notes", None, "see_members_area"),
    "api.create_note": (
        "POST",
        "/api/v1/communities/{slug}/notes",
        {"title": "From the API"},
        "write_notes",
    ),
    "api.show_note": ("GET", "/api/v1/notes/{note_id}", None, "see_members_area"),
    "api.list_note_versions": (
        "GET",
        "/api/v1/notes/{note_id}/versions",
        None,
        "see_members_area",
    ),
    "api.show_note_version": (
        "GET",
        "/api/v1/notes/{note_id}/versions/{version_id}",
        None,
        "see_members_area",
    ),
    "api.list_workshops": (
        "GET",
        "/api/v1/communities/{slug}/workshops",
        None,
        "see_members_area",
    ),
    "api.list_organisations": ("GET", "/api/v1/organisations", None, "logged_in"),
    "api.show_organisation": (
        "GET",
        "/api/v1/organisations/{organisation_id}",
        None,
        "logged_in",
    ),
    "api.create_organisation": (
        "POST",
        "/api/v1/organisations",
        {"name": "New organisation", "kind": "ngo", "country": "FR"},
        "create_organisation",
    ),
}


def expected(principal: str, rule: str, visibility: str) -> str:
    """Return "allowed", "login", "forbidden" or "not_found" for this person and rule."""
    if rule == "everyone":
        return "allowed"
    if rule == "logged_in":
        return "login" if principal == "anonymous" else "allowed"
    if rule == "create_organisation":  # not tied to the walked community's visibility
        if principal == "anonymous":
            return "login"
        return "allowed" if principal in TABLE[rule] else "forbidden"
    if principal in ALL_ROLES:
        return "allowed" if principal in TABLE[rule] else "forbidden"
    if visibility == "private":
        return "not_found"
    if rule == "see_home":
        return "allowed"
    return "login" if principal == "anonymous" else "forbidden"


@pytest.fixture(scope="module")
def walk_app(tmp_path_factory):
    """Return one app for the whole walk (building an app per case is slow)."""
    from cop import create_app
    from tests.conftest import config_for_tests

    app = create_app(
        config_for_tests(tmp_path_factory.mktemp("walk"))
        | {"LOGIN_RATE_LIMIT": "100000 per minute"}
    )
    yield app
    with app.app_context():
        reset_database()
        db.engine.dispose()


@pytest.fixture
def app(walk_app):
    """Give each case empty tables on the shared app."""
    with walk_app.app_context():
        reset_database()
    return walk_app


def test_every_url_rule_is_in_the_walk(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - ROUTES.keys() == set(), "a new route needs a line in ROUTES"
    assert ROUTES.keys() - endpoints == set()


def build_world(app, visibility: str, principal: str) -> dict:
    """Create a community with one member per role, and the objects the routes act on."""
    with app.app_context():
        users = {
            name: auth_services.register_user(f"{name}@example.org", name.title(), PASSWORD)
            for name in PRINCIPALS[1:] + ["target"]
        }
        community = Community(slug="walk", name="Walk", visibility=Visibility(visibility))
        community.themes = [Theme(name="First", position=0), Theme(name="Second", position=1)]
        db.session.add(community)
        for name in ALL_ROLES:
            db.session.add(Membership(user=users[name], community=community, role=Role(name)))
        target = Membership(user=users["target"], community=community, role=Role.PARTICIPANT)
        invitation = Invitation(
            community=community,
            role=Role.PARTICIPANT,
            token="walk-token",
            expires_at=utcnow().replace(year=utcnow().year + 1),
            max_uses=5,
        )
        organisation = Organisation(name="Walkers", kind=OrganisationKind.NGO)
        note = Note(community=community, owner_kind=NoteOwnerKind.COMMUNITY, title="Walk notes")
        version = NoteVersion(note=note, text="An older text", contributors=[])
        db.session.add_all([note, version])
        db.session.add_all([target, invitation, organisation])
        target.calendar_token = "walk-calendar-token"
        day = WorkshopDay(
            community=community,
            title="Walk day",
            date=date(2027, 1, 8),
            starts_at_local=time(9, 0),
            ends_at_local=time(17, 0),
        )
        session = WorkshopSession(
            workshop_day=day, title="Walk session", starts_at_local=time(9, 30), duration_min=60
        )
        card = Card(session=session, author=users["target"], body="A card to quote")
        db.session.add_all([day, session, card])
        for membership in community.memberships:
            membership.organisation = organisation  # so that anyone may write a sheet
        db.session.flush()
        freeze(session, None)  # as if it had been run and closed: its record pages answer
        drafts = build_drafts(community, users, target)
        owner = users["target"] if principal == "anonymous" else users[principal]
        own_token_id = auth_services.create_api_token(owner, "mine")[0].id
        values = {
            "slug": community.slug,
            "theme_id": community.themes[0].id,
            "target_membership_id": target.id,
            "invitation_id": invitation.id,
            "invitation_token": invitation.token,
            "organisation_id": organisation.id,
            "note_id": note.id,
            "day_id": day.id,
            "session_id": session.id,
            "calendar_token": target.calendar_token,
            "version_id": version.id,
            "own_token_id": own_token_id,
            "reset_token": auth_services.make_password_reset_token(users["target"]),
            "card_id": card.id,
        } | drafts
        db.session.commit()
        return values


def build_drafts(community, users, target) -> dict:
    """Create what the draft routes act on.

    A guide in review (with a revision, a comment and a published v1), an approved guide,
    a sheet to sign off and a signed-off sheet.
    """
    author = users["target"]
    guide = drafts.create_guide(author, community, "Walk guide")
    db.session.flush()
    move(author, guide, DraftStatus.REVIEW)
    section = guide.sections[0]
    comment = add_comment(author, guide, section, "Check this")
    revision = save_revision(author, guide, "First")
    db.session.add(Publication(draft_id=guide.id, version=1, revision_id=revision.id))
    approved = drafts.create_guide(author, community, "Approved guide")
    db.session.flush()
    approved.status = DraftStatus.APPROVED
    sheet = drafts.create_sheet(author, target, "Our experience")
    signed = drafts.create_sheet(author, target, "Signed experience")
    signed.status = DraftStatus.SIGNED_OFF
    db.session.flush()
    return {
        "draft_id": guide.id,
        "guide_slug": guide.slug,
        "section_id": section.id,
        "comment_id": comment.id,
        "approved_id": approved.id,
        "sheet_id": sheet.id,
        "signed_sheet_id": signed.id,
    }


# Routes outside communities do not depend on visibility: they are walked once.
NOT_IN_A_COMMUNITY = ("everyone", "logged_in", "create_organisation")
CASES = [
    (endpoint, principal, visibility)
    for endpoint, (_method, _path, _data, rule) in sorted(ROUTES.items())
    for principal in PRINCIPALS
    for visibility in (["private"] if rule in NOT_IN_A_COMMUNITY else ["private", "public"])
]


@pytest.mark.parametrize(("endpoint", "principal", "visibility"), CASES)
def test_each_person_gets_the_answer_the_table_gives(app, endpoint, principal, visibility):
    method, template, data, rule = ROUTES[endpoint]
    values = build_world(app, visibility, principal)
    client = app.test_client()
    if principal != "anonymous":
        response = client.post(
            "/login", data={"email": f"{principal}@example.org", "password": PASSWORD}
        )
        assert response.status_code == 302
    is_api = endpoint.startswith("api.")
    if data:
        data = {
            key: value.format(**values) if isinstance(value, str) else value
            for key, value in data.items()
        }
    body = {"json": data} if is_api else {"data": data}
    response = client.open(template.format(**values), method=method, **body)
    response.close()
    location = response.headers.get("Location", "")
    logged_out = (
        response.status_code == 401 and response.get_json()["error"] == "unauthorized"
        if is_api
        else response.status_code == 302 and location.startswith("/login")
    )
    outcome = {
        "allowed": response.status_code < 400 and not location.startswith("/login"),
        "login": logged_out,
        "forbidden": response.status_code == 403,
        "not_found": response.status_code == 404,
    }
    want = expected(principal, rule, visibility)
    assert outcome[want], f"{principal} on {method} {template}: {response.status_code} {location}"
    if want != "allowed":
        assert_nothing_changed(app)


def assert_nothing_changed(app):
    """Check that a refused request left the community as build_world made it."""
    with app.app_context():
        community = db.session.scalar(db.select(Community).filter_by(slug="walk"))
        assert [theme.name for theme in community.themes] == ["First", "Second"]
        assert all(theme.archived_at is None for theme in community.themes)
        target = db.session.scalar(
            db.select(Membership).join(User).filter(User.email == "target@example.org")
        )
        assert target is not None and target.role is Role.PARTICIPANT
        assert db.session.scalar(db.select(Invitation.revoked_at)) is None
