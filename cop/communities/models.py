"""Communities, their themes, organisations, memberships and invitations."""

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.auth.models import NAME_MAX, User
from cop.core.time import utcnow
from cop.extensions import db

SLUG_MAX = 80
DESCRIPTION_MAX = 5000


def _enum(cls: type[enum.Enum]) -> Enum:
    """Store an enum by its value, as a portable VARCHAR with a CHECK constraint."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [member.value for member in members],
        name=cls.__name__.lower(),
    )


class OrganisationKind(enum.StrEnum):
    """What sort of body an organisation is (DESIGN.md, domain model)."""

    NGO = "ngo"
    NETWORK = "network"
    LOCAL_AUTHORITY = "local_authority"
    FOUNDATION = "foundation"
    RESEARCH = "research"
    PUBLIC_AGENCY = "public_agency"
    COMPANY = "company"
    OTHER = "other"


class Visibility(enum.StrEnum):
    """Who can see a community from outside."""

    PRIVATE = "private"
    PUBLIC = "public"


class Role(enum.StrEnum):
    """A member's role in one community, from most to least powerful."""

    HOST = "host"
    FACILITATOR = "facilitator"
    EDITOR = "editor"
    PARTICIPANT = "participant"
    OBSERVER = "observer"


class Organisation(db.Model):
    """A member organisation, shared across communities."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    kind: Mapped[OrganisationKind] = mapped_column(_enum(OrganisationKind))
    country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Community(db.Model):
    """A community of practice."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.PRIVATE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    themes: Mapped[list["Theme"]] = relationship(
        back_populates="community", order_by="Theme.position", cascade="all, delete-orphan"
    )
    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="community", cascade="all, delete-orphan"
    )
    invitations: Mapped[list["Invitation"]] = relationship(
        back_populates="community", cascade="all, delete-orphan"
    )

    @property
    def is_public(self) -> bool:
        """Tell whether anyone may see the community's home and published guides."""
        return self.visibility is Visibility.PUBLIC

    @property
    def active_themes(self) -> list["Theme"]:
        """Return the themes not archived, in order."""
        return [theme for theme in self.themes if theme.archived_at is None]


class Theme(db.Model):
    """One of a community's themes, ordered by position."""

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    position: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship(back_populates="themes")

    @property
    def is_archived(self) -> bool:
        """Tell whether the theme was archived (kept for what refers to it)."""
        return self.archived_at is not None


class Membership(db.Model):
    """A user's role in a community, and the organisation they belong to there."""

    __table_args__ = (UniqueConstraint("user_id", "community_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The secret of this member's calendar feed of the community's programme (a URL that
    # calendar apps fetch without logging in); None until the member first asks for it.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)

    user: Mapped[User] = relationship(back_populates="memberships")
    community: Mapped[Community] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation | None] = relationship()


class Invitation(db.Model):
    """A link that lets people join a community with a given role."""

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int]
    uses: Mapped[int] = mapped_column(default=0)
    revoked_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship(back_populates="invitations")
    created_by: Mapped[User | None] = relationship()

    def problem(self, now: datetime) -> str | None:
        """Return why the invitation cannot be used now ("revoked", ...), or None."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.uses >= self.max_uses:
            return "used_up"
        return None
