"""Marshmallow schemas of the JSON API: `load` checks what clients send, `dump` shapes answers.

Input is strict JSON: a string field takes only a string, a number only an integer, a flag
only true or false; unknown fields are refused (marshmallow's default, `RAISE`).
"""

from datetime import UTC

from flask import url_for
from flask_babel import gettext as _
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from cop.auth.models import NAME_MAX
from cop.communities.forms import THEMES_MAX
from cop.communities.models import (
    DESCRIPTION_MAX,
    SLUG_MAX,
    OrganisationKind,
    Role,
    Visibility,
)
from cop.core.formatting import is_country_code
from cop.core.time import utcnow
from cop.workshops.record import recorded_session_ids

INVITATION_DAYS_MIN, INVITATION_DAYS_MAX, INVITATION_DAYS_DEFAULT = 1, 365, 14
INVITATION_USES_MIN, INVITATION_USES_MAX, INVITATION_USES_DEFAULT = 1, 1000, 25


class Trimmed(fields.String):
    """A string with surrounding whitespace removed, so "  " counts as empty."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing else ("yes", 1 or "true" are refused)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UtcDateTime(fields.DateTime):
    """A stored naive UTC datetime, written as ISO 8601 with its "Z"."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _enum(cls, **kwargs) -> fields.Enum:
    """Return a field holding an enum by its value, which must be a string."""
    return fields.Enum(cls, by_value=fields.String, **kwargs)


def _name(**kwargs) -> Trimmed:
    """Return a name field: 1 to NAME_MAX characters once trimmed."""
    return Trimmed(validate=validate.Length(min=1, max=NAME_MAX), **kwargs)


def _check_country(code: str | None) -> None:
    if code is not None and not is_country_code(code):
        raise ValidationError(_("Give a two-letter ISO 3166 country code, such as FR."))


class InputSchema(Schema):
    """Base of the request schemas: unknown fields are an error."""

    class Meta:
        """Refuse fields the schema does not know."""

        unknown = RAISE


# --- Output ----------------------------------------------------------------------------


class OrganisationSchema(InputSchema):
    """An organisation; `POST /organisations` loads name, kind and country."""

    id = fields.Integer(dump_only=True)
    name = _name(required=True)
    kind = _enum(OrganisationKind, required=True)
    country = fields.String(load_default=None, allow_none=True, validate=_check_country)
    created_at = UtcDateTime(dump_only=True)


class UserSchema(Schema):
    """The caller's own account (only ever dumped for the caller)."""

    id = fields.Integer()
    email = fields.String()
    display_name = fields.String()
    locale = fields.String()
    time_zone = fields.String()


class OwnMembershipSchema(Schema):
    """One of the caller's memberships, for `GET /me`."""

    id = fields.Integer()
    community = fields.Function(
        lambda membership: {"slug": membership.community.slug, "name": membership.community.name}
    )
    role = _enum(Role)
    organisation = fields.Nested(OrganisationSchema, allow_none=True)
    joined_at = UtcDateTime()


class MemberSchema(Schema):
    """A member as other members see them: never their email."""

    id = fields.Integer()
    user_id = fields.Integer()
    display_name = fields.Function(lambda membership: membership.user.display_name)
    role = _enum(Role)
    organisation = fields.Nested(OrganisationSchema, only=("id", "name", "kind", "country"))
    joined_at = UtcDateTime()


class ThemeSchema(Schema):
    """A theme of a community, archived ones included and flagged."""

    id = fields.Integer()
    name = fields.String()
    position = fields.Integer()
    archived = fields.Boolean(attribute="is_archived")
    archived_at = UtcDateTime()


class CommunitySchema(Schema):
    """A community."""

    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    description = fields.String()
    visibility = _enum(Visibility)
    created_at = UtcDateTime()


class InvitationSchema(Schema):
    """An invitation, with the link to hand out and whether it still works."""

    id = fields.Integer()
    role = _enum(Role)
    url = fields.Function(
        lambda invitation: url_for("communities.join", token=invitation.token, _external=True)
    )
    created_at = UtcDateTime()
    expires_at = UtcDateTime()
    max_uses = fields.Integer()
    uses = fields.Integer()
    revoked_at = UtcDateTime()
    status = fields.Function(lambda invitation: invitation.problem(utcnow()) or "active")


# --- Input -----------------------------------------------------------------------------


class CreateCommunitySchema(InputSchema):
    """`POST /communities`: the slug is made from the name when left out."""

    name = _name(required=True)
    slug = Trimmed(load_default="", validate=validate.Length(max=SLUG_MAX))
    description = Trimmed(load_default="", validate=validate.Length(max=DESCRIPTION_MAX))
    visibility = _enum(Visibility, load_default=Visibility.PRIVATE)
    themes = fields.List(
        Trimmed(validate=validate.Length(max=NAME_MAX)),
        load_default=list,
        validate=validate.Length(max=THEMES_MAX),
    )
    organisation_id = fields.Integer(strict=True, load_default=None, allow_none=True)


class UpdateCommunitySchema(InputSchema):
    """`PATCH /communities/<slug>`: any of name, description, visibility."""

    name = _name()
    description = Trimmed(validate=validate.Length(max=DESCRIPTION_MAX))
    visibility = _enum(Visibility)


class CreateThemeSchema(InputSchema):
    """`POST /communities/<slug>/themes`."""

    name = _name(required=True)


class UpdateThemeSchema(InputSchema):
    """`PATCH /communities/<slug>/themes/<id>`: any of name, position, archived."""

    name = _name()
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=THEMES_MAX))
    archived = StrictBoolean()


class RoleSchema(InputSchema):
    """`PATCH /communities/<slug>/members/<id>`."""

    role = _enum(Role, required=True)


class CreateInvitationSchema(InputSchema):
    """`POST /communities/<slug>/invitations`."""

    role = _enum(Role, required=True)
    expires_in_days = fields.Integer(
        strict=True,
        load_default=INVITATION_DAYS_DEFAULT,
        validate=validate.Range(min=INVITATION_DAYS_MIN, max=INVITATION_DAYS_MAX),
    )
    max_uses = fields.Integer(
        strict=True,
        load_default=INVITATION_USES_DEFAULT,
        validate=validate.Range(min=INVITATION_USES_MIN, max=INVITATION_USES_MAX),
    )


# --- Notes -----------------------------------------------------------------------------


class NoteSummarySchema(Schema):
    """A note in a list, without its text."""

    id = fields.Integer()
    title = fields.String()
    community = fields.Function(lambda note: note.community.slug)
    is_locked = fields.Boolean()
    created_at = UtcDateTime()
    last_activity_at = UtcDateTime()
    url = fields.Function(
        lambda note: url_for(
            "notes.show", slug=note.community.slug, note_id=note.id, _external=True
        )
    )


class NoteVersionSchema(Schema):
    """A version of a note; `text` only when asked for one version."""

    id = fields.Integer()
    label = fields.String(allow_none=True)
    created_at = UtcDateTime()
    contributors = fields.List(fields.Integer())
    text = fields.String()


class CreateNoteSchema(InputSchema):
    """`POST /communities/<slug>/notes`."""

    title = _name(required=True)


class WorkshopSessionSchema(Schema):
    """A session of a workshop day's agenda."""

    id = fields.Integer()
    title = fields.String()
    position = fields.Integer()
    theme = fields.Function(
        lambda session: (
            {"id": session.theme.id, "name": session.theme.name} if session.theme else None
        )
    )
    starts_at = fields.Function(lambda session: session.starts_at.isoformat())
    ends_at = fields.Function(lambda session: session.ends_at.isoformat())
    duration_min = fields.Integer()
    facilitator = fields.Function(
        lambda session: session.facilitator.display_name if session.facilitator else None
    )
    question = fields.String()
    dots_per_person = fields.Integer()
    max_dots_per_card = fields.Integer()
    allows_anonymous_cards = fields.Boolean()
    phase = fields.Function(lambda session: session.phase.value)
    note_id = fields.Integer(allow_none=True)
    url = fields.Function(
        lambda session: url_for(
            "workshops.session",
            slug=session.workshop_day.community.slug,
            session_id=session.id,
            _external=True,
        )
    )
    # A session's record exists once it is closed (the live room closes it).
    record_url = fields.Method("_record_url")

    def _record_url(self, session) -> str | None:
        """Return the absolute address of the session's record page, or None while it has none."""
        if not recorded_session_ids([session.id]):
            return None
        return url_for(
            "workshops.session_record",
            slug=session.workshop_day.community.slug,
            session_id=session.id,
            _external=True,
        )


class WorkshopDaySchema(Schema):
    """A workshop day with its agenda; times in ISO 8601 with the day's UTC offset."""

    id = fields.Integer()
    title = fields.String()
    date = fields.Date()
    starts_at = fields.Function(lambda day: day.starts_at.isoformat())
    ends_at = fields.Function(lambda day: day.ends_at.isoformat())
    time_zone = fields.String()
    description = fields.String()
    video_call_url = fields.String(allow_none=True)
    status = fields.Function(lambda day: day.status.value)
    url = fields.Function(
        lambda day: url_for("workshops.day", slug=day.community.slug, day_id=day.id, _external=True)
    )
    sessions = fields.List(fields.Nested(WorkshopSessionSchema))
