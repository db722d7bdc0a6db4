"""JSON API under /api/v1: the same services and permissions as the pages.

Callers authenticate with the session cookie or `Authorization: Bearer <token>`. A write
authenticated by the cookie must carry the `X-CSRFToken` header, since a browser sends
cookies on its own; a token is sent deliberately, so a token-authenticated write needs none.
"""

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from cop.api import schemas
from cop.auth.services import authenticated_by_api_token
from cop.communities import services
from cop.communities.models import Organisation
from cop.core.errors import ServiceError, error_response
from cop.core.permissions import (
    Action,
    can_create_organisation,
    can_invite_role,
    community_or_abort,
    invitation_or_abort,
    invitations_managed_by,
    note_by_id_or_abort,
)
from cop.extensions import csrf, db
from cop.notes import services as note_services
from cop.workshops import services as workshop_services

bp = Blueprint("api", __name__)
# The global check would refuse token clients, which hold no session; `check_request` asks
# cookie-authenticated writes for the token instead.
csrf.exempt(bp)


class BadRequestBody(ServiceError):
    """The request body is not a JSON object."""

    code = "bad_request"


@bp.before_request
def check_request():
    """Refuse credentials that name nobody; check the CSRF token of cookie-authenticated writes."""
    if request.headers.get("Authorization") and not current_user.is_authenticated:
        return error_response(401, "unauthorized", _("This API token is not valid."))
    # An anonymous caller has no session to ride on: its writes meet the 401 of the views.
    if (
        current_app.config["WTF_CSRF_ENABLED"]
        and current_user.is_authenticated
        and not authenticated_by_api_token()
    ):
        csrf.protect()  # only checks the methods of WTF_CSRF_METHODS (POST, PUT, PATCH, DELETE)
    return None


@bp.after_request
def undo_on_error(response):
    """Write nothing when the answer is an error: views commit only once they succeed."""
    if response.status_code >= 400:
        db.session.rollback()
    return response


def _load(schema) -> dict:
    """Return the request's JSON object, validated by `schema`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestBody(
            _("Send a JSON object, with the header Content-Type: application/json.")
        )
    try:
        return schema.load(body)
    except ValidationError as error:
        raise ServiceError(_("Some fields are not valid."), error.messages) from error


def _actor():
    """Return the logged-in user itself, not the proxy, to hand to services."""
    return current_user._get_current_object()


def _created(body: dict, location: str):
    """Answer 201 with the new resource and where it lives."""
    return body, 201, {"Location": location}


def _organisation(organisation_id: int | None) -> Organisation | None:
    """Return the organisation a client named by id, or refuse an unknown id."""
    if organisation_id is None:
        return None
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        message = _("No organisation has this id.")
        raise ServiceError(message, {"organisation_id": [message]})
    return organisation


# --- The caller ------------------------------------------------------------------------


@bp.get("/me")
@login_required
def me():
    """Show the caller's account and memberships."""
    memberships = sorted(
        current_user.memberships, key=lambda membership: membership.community.name.casefold()
    )
    return {
        "user": schemas.UserSchema().dump(current_user),
        "memberships": schemas.OwnMembershipSchema(many=True).dump(memberships),
    }


# --- Communities -----------------------------------------------------------------------


@bp.get("/communities")
def list_communities():
    """List the communities the caller can see: their own and the public ones."""
    communities = services.visible_communities(current_user)
    return {"communities": schemas.CommunitySchema(many=True).dump(communities)}


@bp.post("/communities")
@login_required
def create_community():
    """Create a community with its themes; the caller becomes its host."""
    data = _load(schemas.CreateCommunitySchema())
    community = services.create_community(
        _actor(),
        data["name"],
        data["slug"].lower() or services.slugify(data["name"]),
        data["description"],
        data["visibility"],
        data["themes"],
        _organisation(data["organisation_id"]),
    )
    db.session.commit()
    return _created(
        schemas.CommunitySchema().dump(community),
        url_for(".show_community", slug=community.slug),
    )


@bp.get("/communities/<slug>")
def show_community(slug: str):
    """Show a community."""
    community, _membership = community_or_abort(slug, Action.VIEW_HOME)
    return schemas.CommunitySchema().dump(community)


@bp.patch("/communities/<slug>")
def update_community(slug: str):
    """Change a community's name, description or visibility (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    data = _load(schemas.UpdateCommunitySchema())
    services.update_community(community, **data)
    db.session.commit()
    return schemas.CommunitySchema().dump(community)


# --- Themes ----------------------------------------------------------------------------


@bp.get("/communities/<slug>/themes")
def list_themes(slug: str):
    """List a community's themes in order, archived ones flagged."""
    community, _membership = community_or_abort(slug, Action.VIEW_HOME)
    return {"themes": schemas.ThemeSchema(many=True).dump(community.themes)}


@bp.post("/communities/<slug>/themes")
def add_theme(slug: str):
    """Add a theme at the end of the list (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    data = _load(schemas.CreateThemeSchema())
    theme = services.add_theme(community, data["name"])
    db.session.commit()
    return _created(
        schemas.ThemeSchema().dump(theme),
        url_for(".list_themes", slug=slug) + f"#theme-{theme.id}",
    )


@bp.patch("/communities/<slug>/themes/<int:theme_id>")
def update_theme(slug: str, theme_id: int):
    """Rename, move, archive or restore a theme (hosts)."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    theme = services.theme_of(community, theme_id) or abort(404)
    data = _load(schemas.UpdateThemeSchema())
    if "name" in data:
        services.rename_theme(theme, data["name"])
    if "position" in data:
        services.move_theme(theme, data["position"])
    if "archived" in data:
        services.set_theme_archived(theme, data["archived"])
    db.session.commit()
    return schemas.ThemeSchema().dump(theme)


# --- Members ---------------------------------------------------------------------------


@bp.get("/communities/<slug>/members")
def list_members(slug: str):
    """List the members with their organisation, and how many there are by kind of it."""
    community, _membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    memberships = services.members_of(community)
    counts = services.count_by_organisation_kind(memberships)
    return {
        "members": schemas.MemberSchema(many=True).dump(memberships),
        # JSON keys are strings: "none" counts the members who gave no organisation.
        "counts_by_organisation_kind": {kind or "none": count for kind, count in counts},
    }


@bp.patch("/communities/<slug>/members/<int:membership_id>")
def change_role(slug: str, membership_id: int):
    """Give a member another role (hosts); the last host keeps theirs."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    target = services.membership_in(community, membership_id) or abort(404)
    data = _load(schemas.RoleSchema())
    services.change_role(target, data["role"])
    db.session.commit()
    return schemas.MemberSchema().dump(target)


@bp.delete("/communities/<slug>/members/<int:membership_id>")
def remove_member(slug: str, membership_id: int):
    """Remove a member (hosts); the last host stays."""
    community, _membership = community_or_abort(slug, Action.MANAGE_COMMUNITY)
    target = services.membership_in(community, membership_id) or abort(404)
    services.remove_member(target)
    db.session.commit()
    return "", 204


# --- Invitations -----------------------------------------------------------------------


@bp.get("/communities/<slug>/invitations")
def list_invitations(slug: str):
    """List, newest first, the invitations for roles the caller may hand out."""
    _community, membership = community_or_abort(slug, Action.INVITE)
    invitations = invitations_managed_by(membership)
    return {"invitations": schemas.InvitationSchema(many=True).dump(invitations)}


@bp.post("/communities/<slug>/invitations")
def create_invitation(slug: str):
    """Create an invitation link (hosts; facilitators for participants and observers)."""
    community, membership = community_or_abort(slug, Action.INVITE)
    data = _load(schemas.CreateInvitationSchema())
    if not can_invite_role(membership, data["role"]):
        abort(403)
    invitation = services.create_invitation(
        _actor(), community, data["role"], data["expires_in_days"], data["max_uses"]
    )
    db.session.commit()
    return _created(
        schemas.InvitationSchema().dump(invitation),
        url_for(".list_invitations", slug=slug) + f"#invitation-{invitation.id}",
    )


@bp.delete("/communities/<slug>/invitations/<int:invitation_id>")
def revoke_invitation(slug: str, invitation_id: int):
    """Revoke an invitation link, so that it lets nobody in any more."""
    _community, membership = community_or_abort(slug, Action.INVITE)
    invitation = invitation_or_abort(membership, invitation_id)
    services.revoke_invitation(invitation)
    db.session.commit()
    return schemas.InvitationSchema().dump(invitation)


# --- Organisations ---------------------------------------------------------------------


@bp.get("/organisations")
@login_required
def list_organisations():
    """List every organisation, by name."""
    organisations = services.all_organisations()
    return {"organisations": schemas.OrganisationSchema(many=True).dump(organisations)}


@bp.get("/organisations/<int:organisation_id>")
@login_required
def show_organisation(organisation_id: int):
    """Show an organisation."""
    organisation = db.session.get(Organisation, organisation_id) or abort(404)
    return schemas.OrganisationSchema().dump(organisation)


@bp.post("/organisations")
@login_required
def create_organisation():
    """Create an organisation (people who host a community); names are unique."""
    if not can_create_organisation(current_user):
        abort(403)
    data = _load(schemas.OrganisationSchema())
    organisation = services.create_organisation(data["name"], data["kind"], data["country"])
    db.session.commit()
    return _created(
        schemas.OrganisationSchema().dump(organisation),
        url_for(".show_organisation", organisation_id=organisation.id),
    )


# --- Notes -----------------------------------------------------------------------------


@bp.get("/communities/<slug>/notes")
def list_notes(slug: str):
    """List a community's notes, most recently active first."""
    community, _membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    notes = note_services.notes_of(community)
    return {"notes": schemas.NoteSummarySchema(many=True).dump(notes)}


@bp.post("/communities/<slug>/notes")
def create_note(slug: str):
    """Create a community note; the answer carries its id."""
    community, _membership = community_or_abort(slug, Action.WRITE_NOTES)
    data = _load(schemas.CreateNoteSchema())
    note = note_services.create_note(_actor(), community, data["title"])
    db.session.commit()
    return _created(_note_body(note), url_for(".show_note", note_id=note.id))


def _note_body(note) -> dict:
    """Dump a note with its current text (the log included, not only the last snapshot)."""
    return schemas.NoteSummarySchema().dump(note) | {"text": note_services.current_text(note)}


@bp.get("/notes/<int:note_id>")
def show_note(note_id: int):
    """Show a note with its current markdown."""
    return _note_body(note_by_id_or_abort(note_id))


@bp.get("/notes/<int:note_id>/versions")
def list_note_versions(note_id: int):
    """List a note's versions, newest first, without their text."""
    note = note_by_id_or_abort(note_id)
    versions = note_services.versions_of(note)
    return {"versions": schemas.NoteVersionSchema(many=True, exclude=("text",)).dump(versions)}


@bp.get("/notes/<int:note_id>/versions/<int:version_id>")
def show_note_version(note_id: int, version_id: int):
    """Show one version of a note, with its text."""
    note = note_by_id_or_abort(note_id)
    version = note_services.version_of(note, version_id) or abort(404)
    return schemas.NoteVersionSchema().dump(version)


# --- Workshops -------------------------------------------------------------------------


@bp.get("/communities/<slug>/workshops")
def list_workshops(slug: str):
    """List a community's workshop days in date order, each with its agenda."""
    community, _membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    days = workshop_services.days_of(community)
    return {"workshops": schemas.WorkshopDaySchema(many=True).dump(days)}
