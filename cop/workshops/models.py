"""Workshop days, their agenda of sessions, and what facilitators park for later."""

import enum
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.auth.models import NAME_MAX, User
from cop.communities.models import Community, Theme, _enum
from cop.core.time import utcnow
from cop.extensions import db

DEFAULT_TIME_ZONE = "Europe/Paris"
URL_MAX = 500
QUESTION_MAX = 1000
PARKED_ITEM_MAX = 500


class WorkshopStatus(enum.StrEnum):
    """Where a workshop day stands."""

    PLANNED = "planned"
    LIVE = "live"
    CLOSED = "closed"


class Phase(enum.StrEnum):
    """The phases of a live session, in the order a facilitator runs them."""

    PREPARE = "prepare"
    COLLECT = "collect"
    CLUSTER = "cluster"
    VOTE = "vote"
    DISCUSS = "discuss"
    SYNTHESISE = "synthesise"
    CLOSED = "closed"


PHASES = list(Phase)


class WorkshopDay(db.Model):
    """A day of live workshops, planned in the local time of its time zone."""

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    title: Mapped[str] = mapped_column(String(NAME_MAX))
    date: Mapped[date]
    starts_at_local: Mapped[time]
    ends_at_local: Mapped[time]
    time_zone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIME_ZONE)
    description: Mapped[str] = mapped_column(Text, default="")
    video_call_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    status: Mapped[WorkshopStatus] = mapped_column(
        _enum(WorkshopStatus), default=WorkshopStatus.PLANNED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    community: Mapped[Community] = relationship()
    sessions: Mapped[list["WorkshopSession"]] = relationship(
        back_populates="workshop_day",
        order_by="WorkshopSession.position",
        cascade="all, delete-orphan",
    )

    def moment(self, local_time: time) -> datetime:
        """Return the aware datetime of a local time of this day, in the day's time zone."""
        return datetime.combine(self.date, local_time, tzinfo=ZoneInfo(self.time_zone))

    @property
    def starts_at(self) -> datetime:
        """Return when the day starts (aware)."""
        return self.moment(self.starts_at_local)

    @property
    def ends_at(self) -> datetime:
        """Return when the day ends (aware)."""
        return self.moment(self.ends_at_local)


class WorkshopSession(db.Model):
    """One session of a workshop day's agenda (DESIGN.md's `Session`).

    Named `WorkshopSession` in code so that it is never mistaken for the database session
    or Flask's session; its table is `workshop_session`.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_day_id: Mapped[int] = mapped_column(ForeignKey("workshop_day.id"), index=True)
    title: Mapped[str] = mapped_column(String(NAME_MAX))
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("theme.id"))
    position: Mapped[int] = mapped_column(default=0)
    starts_at_local: Mapped[time]
    duration_min: Mapped[int]
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    question: Mapped[str] = mapped_column(Text, default="")
    dots_per_person: Mapped[int] = mapped_column(default=3)
    max_dots_per_card: Mapped[int] = mapped_column(default=2)
    allows_anonymous_cards: Mapped[bool] = mapped_column(default=False)
    phase: Mapped[Phase] = mapped_column(_enum(Phase), default=Phase.PREPARE)
    # The countdown: running until timer_ends_at (UTC), or paused with this many seconds left.
    timer_ends_at: Mapped[datetime | None]
    timer_paused_seconds: Mapped[int | None]
    note_id: Mapped[int | None] = mapped_column(ForeignKey("note.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workshop_day: Mapped[WorkshopDay] = relationship(back_populates="sessions")
    theme: Mapped[Theme | None] = relationship()
    facilitator: Mapped[User | None] = relationship()
    parked_items: Mapped[list["ParkedItem"]] = relationship(
        back_populates="session", order_by="ParkedItem.id", cascade="all, delete-orphan"
    )

    @property
    def starts_at(self) -> datetime:
        """Return when the session starts (aware, in the day's time zone)."""
        return self.workshop_day.moment(self.starts_at_local)

    @property
    def ends_at(self) -> datetime:
        """Return when the session ends (aware, in the day's time zone)."""
        return self.starts_at + timedelta(minutes=self.duration_min)


class ParkedItem(db.Model):
    """Something a facilitator set aside in a session, to take up on a later day."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    text: Mapped[str] = mapped_column(String(PARKED_ITEM_MAX))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[WorkshopSession] = relationship(back_populates="parked_items")
    created_by: Mapped[User | None] = relationship()
