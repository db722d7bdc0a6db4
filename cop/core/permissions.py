"""Who may do what: the one place that answers, for HTTP views and socket handlers alike.

The rules are the table of DESIGN.md ("Who may do what"). A private community is
invisible (404) to everyone but its members; a public one shows its home, themes and
published guides to everyone and the rest to members only.
"""

import enum

from flask import abort, make_response
from flask_login import current_user
from sqlalchemy import select

from cop.communities.models import Community, Invitation, Membership, Role
from cop.communities.services import invitation_of, invitations_of
from cop.extensions import db, login_manager

HOST, FACILITATOR, EDITOR, PARTICIPANT, OBSERVER = (
    Role.HOST,
    Role.FACILITATOR,
    Role.EDITOR,
    Role.PARTICIPANT,
    Role.OBSERVER,
)
WRITERS = frozenset({HOST, FACILITATOR, EDITOR, PARTICIPANT})


class Action(enum.StrEnum):
    """Things a person may try to do in a community (rows of the table)."""

    VIEW_HOME = "view_home"
    VIEW_MEMBERS_AREA = "view_members_area"
    MANAGE_COMMUNITY = "manage_community"
    INVITE = "invite"
    PLAN_WORKSHOPS = "plan_workshops"
    TAKE_PART = "take_part"
    WRITE_NOTES = "write_notes"
    EDIT_DRAFTS = "edit_drafts"
    REVIEW = "review"
    PUBLISH = "publish"
    COMMENT = "comment"
    WRITE_SHEET = "write_sheet"


ALL_ROLES = frozenset(Role)
ROLES_ALLOWED: dict[Action, frozenset[Role]] = {
    Action.VIEW_HOME: ALL_ROLES,
    Action.VIEW_MEMBERS_AREA: ALL_ROLES,
    Action.MANAGE_COMMUNITY: frozenset({HOST}),
    Action.INVITE: frozenset({HOST, FACILITATOR}),
    Action.PLAN_WORKSHOPS: frozenset({HOST, FACILITATOR}),
    Action.TAKE_PART: WRITERS,
    Action.WRITE_NOTES: WRITERS,
    Action.EDIT_DRAFTS: frozenset({HOST, EDITOR}),
    Action.REVIEW: frozenset({HOST, EDITOR}),
    Action.PUBLISH: frozenset({HOST}),
    Action.COMMENT: WRITERS,
    Action.WRITE_SHEET: WRITERS,
}
# What anyone may do in a public community, without an account or a membership.
PUBLIC_ACTIONS = frozenset({Action.VIEW_HOME})
# Roles each inviting role may hand out through an invitation.
INVITABLE_ROLES: dict[Role, frozenset[Role]] = {
    HOST: ALL_ROLES,
    FACILITATOR: frozenset({PARTICIPANT, OBSERVER}),
}


class Verdict(enum.Enum):
    """The answer to "may this person do this here?", mapped onto HTTP statuses."""

    ALLOWED = 200
    LOGIN_REQUIRED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404


def membership_of(user, community: Community) -> Membership | None:
    """Return the user's membership in the community, or None."""
    if user is None or not user.is_authenticated:
        return None
    return db.session.scalar(
        select(Membership).filter_by(user_id=user.id, community_id=community.id)
    )


def decide(user, community: Community, action: Action, membership=...) -> Verdict:
    """Decide whether `user` may do `action` in `community`.

    Pass `membership` (possibly None) when it is already loaded; by default it is looked up.
    """
    if membership is ...:
        membership = membership_of(user, community)
    if membership is not None:
        if membership.role in ROLES_ALLOWED[action]:
            return Verdict.ALLOWED
        return Verdict.FORBIDDEN
    if not community.is_public:
        return Verdict.NOT_FOUND
    if action in PUBLIC_ACTIONS:
        return Verdict.ALLOWED
    if user is None or not user.is_authenticated:
        return Verdict.LOGIN_REQUIRED
    return Verdict.FORBIDDEN


def can(user, community: Community, action: Action) -> bool:
    """Tell whether `user` may do `action` in `community`."""
    return decide(user, community, action) is Verdict.ALLOWED


def can_invite_role(membership: Membership | None, role: Role) -> bool:
    """Tell whether this member may create an invitation for `role`."""
    return membership is not None and role in INVITABLE_ROLES.get(membership.role, ())


def can_create_organisation(user) -> bool:
    """Tell whether the user may create organisations directly: hosts of some community.

    Anyone else creates their own organisation while joining through an invitation.
    """
    if user is None or not user.is_authenticated:
        return False
    return any(
        decide(user, membership.community, Action.MANAGE_COMMUNITY, membership) is Verdict.ALLOWED
        for membership in user.memberships
    )


def roles_invitable_by(membership: Membership | None) -> list[Role]:
    """Return the roles this member may invite people with, most powerful first."""
    if membership is None:
        return []
    allowed = INVITABLE_ROLES.get(membership.role, frozenset())
    return [role for role in Role if role in allowed]


def enforce(verdict: Verdict) -> None:
    """Abort the request unless the verdict allows it."""
    if verdict is Verdict.ALLOWED:
        return
    if verdict is Verdict.LOGIN_REQUIRED:
        abort(make_response(login_manager.unauthorized()))
    abort(verdict.value)


def invitations_managed_by(membership: Membership) -> list[Invitation]:
    """Return the community's invitations this member may see, pass on and revoke.

    A facilitator sees only the links for roles they may hand out themselves.
    """
    return [
        invitation
        for invitation in invitations_of(membership.community)
        if can_invite_role(membership, invitation.role)
    ]


def invitation_or_abort(membership: Membership, invitation_id: int) -> Invitation:
    """Load an invitation of the member's community that they may manage, or abort."""
    invitation = invitation_of(membership.community, invitation_id)
    if invitation is None:
        abort(404)
    if not can_invite_role(membership, invitation.role):
        abort(403)
    return invitation


def community_or_abort(slug: str, action: Action) -> tuple[Community, Membership | None]:
    """Load a community by slug and check the current user may do `action` there."""
    community = db.session.scalar(select(Community).filter_by(slug=slug))
    if community is None:
        abort(404)
    membership = membership_of(current_user, community)
    enforce(decide(current_user, community, action, membership))
    return community, membership


# --- Notes -----------------------------------------------------------------------------
# Each owner kind of note says which action reads it and which writes it; later owners
# (sessions, breakout groups, draft sections, experience sheets) add their line here and
# reuse the notes engine unchanged. A locked note is written only by those who may plan
# and run workshops (hosts and facilitators).
NOTE_RULES: dict[str, tuple[Action, Action]] = {
    "community": (Action.VIEW_MEMBERS_AREA, Action.WRITE_NOTES),
    # A session's shared note: written by those who take part in sessions.
    "session": (Action.VIEW_MEMBERS_AREA, Action.TAKE_PART),
    # A breakout group's note: the same, so a facilitator and any group can look across.
    "breakout_group": (Action.VIEW_MEMBERS_AREA, Action.TAKE_PART),
    # A section of a guide draft: read by members (they comment and validate during review),
    # written by editors and hosts.
    "draft_section": (Action.VIEW_MEMBERS_AREA, Action.EDIT_DRAFTS),
    # A section of an experience sheet: written by members of the sheet's organisation only
    # (`sheet_verdict`), until it is signed off.
    "experience_sheet": (Action.VIEW_MEMBERS_AREA, Action.WRITE_SHEET),
}
LOCKED_NOTE_WRITERS = Action.PLAN_WORKSHOPS


def note_verdict(user, note, write: bool, membership=...) -> Verdict:
    """Decide whether `user` may read (or write, with `write=True`) a note."""
    read_action, write_action = NOTE_RULES[note.owner_kind.value]
    if membership is ...:
        membership = membership_of(user, note.community)
    verdict = decide(user, note.community, read_action, membership)
    if not write or verdict is not Verdict.ALLOWED:
        return verdict
    if note.owner_kind.value == "experience_sheet":
        return sheet_verdict(membership, _sheet_of_note(note))
    action = LOCKED_NOTE_WRITERS if note.is_locked else write_action
    return decide(user, note.community, action, membership)


def can_write_note(user, note) -> bool:
    """Tell whether `user` may change a note's text."""
    return note_verdict(user, note, write=True) is Verdict.ALLOWED


def note_by_id_or_abort(note_id: int, write: bool = False):
    """Load a note by id alone (the API) and check the current user may read (or write) it."""
    from cop.notes.models import Note

    note = db.session.get(Note, note_id)
    if note is None:
        abort(404)
    enforce(note_verdict(current_user, note, write))
    return note


def note_or_abort(slug: str, note_id: int, write: bool = False):
    """Load a community's note and check the current user may read (or write) it."""
    from cop.notes.services import note_in

    community, membership = community_or_abort(slug, Action.VIEW_HOME)
    note = note_in(community, note_id)
    if note is None:
        abort(404)
    enforce(note_verdict(current_user, note, write, membership))
    return note, membership


# --- Workshops -------------------------------------------------------------------------


def can_facilitate(membership: Membership | None) -> bool:
    """Tell whether this member may plan workshop days and run sessions."""
    return (
        membership is not None
        and decide(membership.user, membership.community, Action.PLAN_WORKSHOPS, membership)
        is Verdict.ALLOWED
    )


def workshop_day_or_abort(slug: str, day_id: int, action: Action):
    """Load a community's workshop day and check the current user may do `action` there."""
    from cop.workshops.services import day_in

    community, membership = community_or_abort(slug, action)
    day = day_in(community, day_id)
    if day is None:
        abort(404)
    return day, membership


def workshop_session_or_abort(slug: str, session_id: int, action: Action):
    """Load a community's session and check the current user may do `action` there."""
    from cop.workshops.services import session_in

    community, membership = community_or_abort(slug, action)
    session = session_in(community, session_id)
    if session is None:
        abort(404)
    return session, membership


# --- Drafts and experience sheets ------------------------------------------------------


def draft_or_abort(slug: str, draft_id: int, action: Action, kind=None):
    """Load a community's draft (of `kind`, if given), checking `action` in its community."""
    from cop.drafts.services import draft_in

    community, membership = community_or_abort(slug, action)
    draft = draft_in(community, draft_id, kind)
    if draft is None:
        abort(404)
    return draft, membership


def draft_edit_verdict(user, membership: Membership | None, draft) -> Verdict:
    """Decide whether this person may restructure a draft and save or restore its revisions.

    A guide: editors and hosts. An experience sheet: its writers (`sheet_verdict`).
    """
    if draft.kind.value == "experience_sheet":
        return sheet_verdict(membership, draft)
    return decide(user, draft.community, Action.EDIT_DRAFTS, membership)


def sheet_verdict(membership: Membership | None, sheet) -> Verdict:
    """Decide whether this member may write (or sign off) an experience sheet.

    Only members of the sheet's own organisation who may write sheets, and only before it
    is signed off.
    """
    from cop.drafts.models import DraftStatus

    if membership is None:
        return Verdict.FORBIDDEN
    verdict = decide(membership.user, membership.community, Action.WRITE_SHEET, membership)
    if verdict is not Verdict.ALLOWED:
        return verdict
    if sheet is None or membership.organisation_id != sheet.organisation_id:
        return Verdict.FORBIDDEN
    if sheet.status is DraftStatus.SIGNED_OFF:
        return Verdict.FORBIDDEN
    return Verdict.ALLOWED


def _sheet_of_note(note):
    """Return the experience sheet a note belongs to (its owner is one of the sheet's sections)."""
    from cop.drafts.models import DraftSection

    section = db.session.get(DraftSection, note.owner_id) if note.owner_id else None
    return section.draft if section is not None else None
