"""Community rules: creation, themes, organisations, invitations, roles."""

import re
import secrets
import unicodedata
from collections import Counter
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from cop.auth.models import User
from cop.communities.models import (
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
from cop.core.errors import ConflictError, ServiceError
from cop.core.time import utcnow
from cop.extensions import db

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Paths under /c/ that a slug must not shadow, now or later.
RESERVED_SLUGS = frozenset({"new", "api", "static", "admin", "join", "p"})


# --- Reading ---------------------------------------------------------------------------


def communities_of(user) -> list[tuple[Community, Role]]:
    """Return the user's communities with their role there, by name."""
    if user is None or not user.is_authenticated:
        return []
    rows = db.session.execute(
        select(Community, Membership.role)
        .join(Membership)
        .where(Membership.user_id == user.id)
        .order_by(Community.name)
    )
    return [(community, role) for community, role in rows]


def public_communities() -> list[Community]:
    """Return the public communities, by name."""
    return list(
        db.session.scalars(
            select(Community).filter_by(visibility=Visibility.PUBLIC).order_by(Community.name)
        )
    )


def visible_communities(user) -> list[Community]:
    """Return the communities a user can see: their own and the public ones, by name."""
    own = {community.id: community for community, _role in communities_of(user)}
    for community in public_communities():
        own.setdefault(community.id, community)
    return sorted(own.values(), key=lambda community: community.name.casefold())


def members_of(community: Community) -> list[Membership]:
    """Return a community's memberships, hosts first, then by name."""
    order = {role: index for index, role in enumerate(Role)}
    memberships = db.session.scalars(
        select(Membership).filter_by(community_id=community.id).join(User)
    ).all()
    return sorted(
        memberships,
        key=lambda membership: (order[membership.role], membership.user.display_name.casefold()),
    )


def count_by_organisation_kind(memberships: list[Membership]) -> list[tuple[str, int]]:
    """Count members per organisation kind, largest first (None for no organisation)."""
    counts = Counter(
        membership.organisation.kind.value if membership.organisation else None
        for membership in memberships
    )
    return sorted(counts.items(), key=lambda item: (-item[1], item[0] or "~"))


def hosts_count(community: Community) -> int:
    """Count the community's hosts."""
    return db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .filter_by(community_id=community.id, role=Role.HOST)
    )


def communities_where_last_host(user: User) -> list[Community]:
    """Return the communities this user is the only host of."""
    return [
        membership.community
        for membership in user.memberships
        if membership.role is Role.HOST and hosts_count(membership.community) == 1
    ]


# --- Slugs -----------------------------------------------------------------------------


def slugify(text: str) -> str:
    """Turn a name into a URL slug: lowercase ASCII words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-")


def slug_problem(slug: str) -> str | None:
    """Return why a slug cannot be used as typed, or None."""
    if not slug or len(slug) > SLUG_MAX or not SLUG_PATTERN.match(slug):
        return _(
            "Use lowercase letters, digits and single hyphens (at most %(max)d characters).",
            max=SLUG_MAX,
        )
    if slug in RESERVED_SLUGS:
        return _("This address is reserved.")
    return None


def slug_is_taken(slug: str) -> bool:
    """Tell whether a community already uses this slug."""
    return (
        slug in RESERVED_SLUGS
        or db.session.scalar(select(Community.id).filter_by(slug=slug)) is not None
    )


def suggest_slug(slug: str) -> str:
    """Return a free slug close to `slug` (slug-2, slug-3, ...)."""
    base = slug[: SLUG_MAX - 4].rstrip("-") or "community"
    candidate, number = base, 2
    while slug_is_taken(candidate):
        candidate, number = f"{base}-{number}", number + 1
    return candidate


# --- Communities and themes ------------------------------------------------------------


def create_community(
    actor: User,
    name: str,
    slug: str,
    description: str = "",
    visibility: Visibility = Visibility.PRIVATE,
    theme_names: list[str] | None = None,
    organisation: Organisation | None = None,
) -> Community:
    """Create a community with its themes; the actor becomes its host."""
    problem = slug_problem(slug)
    if problem:
        raise ServiceError(problem, {"slug": [problem]})
    if slug_is_taken(slug):
        message = _(
            "The address “%(slug)s” is taken. “%(suggestion)s” is free.",
            slug=slug,
            suggestion=suggest_slug(slug),
        )
        raise ConflictError(message, {"slug": [message]})
    community = Community(
        name=name.strip(), slug=slug, description=description.strip(), visibility=visibility
    )
    db.session.add(community)
    for position, theme_name in enumerate(clean_theme_names(theme_names or [])):
        community.themes.append(Theme(name=theme_name, position=position))
    db.session.add(
        Membership(user=actor, community=community, role=Role.HOST, organisation=organisation)
    )
    db.session.flush()
    return community


def clean_theme_names(names: list[str]) -> list[str]:
    """Strip theme names and drop blanks and repeats, keeping the order."""
    seen, cleaned = set(), []
    for name in names:
        name = name.strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            cleaned.append(name)
    return cleaned


def update_community(
    community: Community,
    name: str | None = None,
    description: str | None = None,
    visibility: Visibility | None = None,
) -> Community:
    """Change a community's name, description or visibility."""
    if name is not None:
        community.name = name.strip()
    if description is not None:
        community.description = description.strip()
    if visibility is not None:
        community.visibility = visibility
    db.session.flush()
    return community


def _check_theme_name_free(community: Community, name: str, theme: Theme | None = None) -> None:
    for other in community.themes:
        if other is not theme and other.name.casefold() == name.casefold():
            message = _("The community already has a theme called “%(name)s”.", name=name)
            raise ConflictError(message, {"name": [message]})


def add_theme(community: Community, name: str) -> Theme:
    """Add a theme at the end of the community's list."""
    name = name.strip()
    _check_theme_name_free(community, name)
    position = max((theme.position for theme in community.themes), default=-1) + 1
    theme = Theme(name=name, position=position)
    community.themes.append(theme)
    db.session.flush()
    return theme


def rename_theme(theme: Theme, name: str) -> Theme:
    """Rename a theme."""
    name = name.strip()
    _check_theme_name_free(theme.community, name, theme)
    theme.name = name
    db.session.flush()
    return theme


def move_theme(theme: Theme, position: int) -> Theme:
    """Move a theme to `position` (0-based, clamped) among the community's themes."""
    themes = [other for other in theme.community.themes if other is not theme]
    position = max(0, min(position, len(themes)))
    themes.insert(position, theme)
    for index, other in enumerate(themes):
        other.position = index
    db.session.flush()
    return theme


def set_theme_archived(theme: Theme, archived: bool) -> Theme:
    """Archive a theme (hidden from new work, kept for what refers to it) or restore it."""
    if archived and theme.archived_at is None:
        theme.archived_at = utcnow()
    elif not archived:
        theme.archived_at = None
    db.session.flush()
    return theme


def theme_of(community: Community, theme_id: int) -> Theme | None:
    """Return the community's theme with this id, or None."""
    theme = db.session.get(Theme, theme_id)
    return theme if theme is not None and theme.community_id == community.id else None


# --- Organisations ---------------------------------------------------------------------


def all_organisations() -> list[Organisation]:
    """Return every organisation, by name."""
    return list(db.session.scalars(select(Organisation).order_by(Organisation.name)))


def find_organisation_by_name(name: str) -> Organisation | None:
    """Return the organisation with this name (case-insensitive), or None."""
    return db.session.scalar(
        select(Organisation).where(func.lower(Organisation.name) == name.strip().lower())
    )


def create_organisation(name: str, kind: OrganisationKind, country: str | None) -> Organisation:
    """Create an organisation; refuse a name already in use."""
    if find_organisation_by_name(name) is not None:
        message = _("An organisation called “%(name)s” already exists.", name=name.strip())
        raise ConflictError(message, {"name": [message]})
    organisation = Organisation(
        name=name.strip(), kind=kind, country=country.upper() if country else None
    )
    db.session.add(organisation)
    db.session.flush()
    return organisation


# --- Invitations and memberships ------------------------------------------------------


def create_invitation(
    actor: User, community: Community, role: Role, expires_in_days: int, max_uses: int
) -> Invitation:
    """Create an invitation link for a role (the caller checked the actor may)."""
    invitation = Invitation(
        community=community,
        role=role,
        token=secrets.token_urlsafe(24),
        created_by=actor,
        expires_at=utcnow() + timedelta(days=expires_in_days),
        max_uses=max_uses,
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation


def invitations_of(community: Community) -> list[Invitation]:
    """Return a community's invitations, newest first."""
    return list(
        db.session.scalars(
            select(Invitation)
            .filter_by(community_id=community.id)
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def invitation_of(community: Community, invitation_id: int) -> Invitation | None:
    """Return the community's invitation with this id, or None."""
    invitation = db.session.get(Invitation, invitation_id)
    return invitation if invitation and invitation.community_id == community.id else None


def revoke_invitation(invitation: Invitation) -> Invitation:
    """Revoke an invitation; a revoked link lets nobody in."""
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    db.session.flush()
    return invitation


def invitation_by_token(token: str) -> Invitation | None:
    """Return the invitation with this token, or None."""
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(Invitation).filter_by(token=token))


class InvitationError(ServiceError):
    """The invitation cannot be used; `reason` says why (unknown, expired, ...)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def invitation_problem_message(reason: str) -> str:
    """Explain why an invitation link cannot be used."""
    return {
        "unknown": _("This invitation link is not valid. Check that you copied it whole."),
        "expired": _("This invitation has expired. Ask the person who sent it for a new one."),
        "revoked": _("This invitation was withdrawn. Ask the person who sent it for a new one."),
        "used_up": _("This invitation has been used as many times as allowed. Ask for a new one."),
    }[reason]


def check_invitation(token: str) -> Invitation:
    """Return a usable invitation, or raise InvitationError saying why not."""
    invitation = invitation_by_token(token)
    reason = "unknown" if invitation is None else invitation.problem(utcnow())
    if reason:
        raise InvitationError(reason, invitation_problem_message(reason))
    return invitation


def accept_invitation(user: User, token: str, organisation: Organisation | None) -> Membership:
    """Join a community through an invitation, consuming one of its uses."""
    invitation = check_invitation(token)
    community = invitation.community
    existing = db.session.scalar(
        select(Membership).filter_by(user_id=user.id, community_id=community.id)
    )
    if existing is not None:
        raise ConflictError(_("You are already a member of this community."))
    # Count the use atomically, so two people cannot both take the last one.
    counted = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.uses < Invitation.max_uses)
        .values(uses=Invitation.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:
        raise InvitationError("used_up", invitation_problem_message("used_up"))
    db.session.refresh(invitation)
    membership = Membership(
        user=user, community=community, role=invitation.role, organisation=organisation
    )
    db.session.add(membership)
    db.session.flush()
    return membership


def membership_in(community: Community, membership_id: int) -> Membership | None:
    """Return the community's membership with this id, or None."""
    membership = db.session.get(Membership, membership_id)
    return membership if membership and membership.community_id == community.id else None


def _refuse_if_last_host(membership: Membership) -> None:
    if membership.role is Role.HOST and hosts_count(membership.community) == 1:
        raise ConflictError(
            _("A community needs at least one host: make another member a host first.")
        )


def change_role(membership: Membership, role: Role) -> Membership:
    """Give a member another role; the last host keeps theirs."""
    if role is not membership.role:
        _refuse_if_last_host(membership)
        membership.role = role
    db.session.flush()
    return membership


def remove_member(membership: Membership) -> None:
    """Remove a member from a community; the last host stays."""
    _refuse_if_last_host(membership)
    db.session.delete(membership)
    db.session.flush()
