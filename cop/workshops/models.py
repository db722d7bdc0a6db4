"""Workshop days, their agenda of sessions, and what facilitators park for later."""

import enum
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.auth.models import NAME_MAX, User
from cop.communities.models import Community, Theme, _enum
from cop.core.time import utcnow
from cop.extensions import db

DEFAULT_TIME_ZONE = "Europe/Paris"
URL_MAX = 500
QUESTION_MAX = 1000
PARKED_ITEM_MAX = 500
CARD_MAX = 500
CLUSTER_LABEL_MAX = 120
HIDDEN_REASON_MAX = 300
TAKEAWAY_MAX = 1000
GROUP_NAME_MAX = 80


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


class TakeawayKind(enum.StrEnum):
    """What a takeaway says, as the guide's sections sort them."""

    KEY_ISSUE = "key_issue"
    LEVER = "lever"
    CONDITION = "condition"


class SpotlightKind(enum.StrEnum):
    """What a facilitator can put in front of everyone."""

    CARD = "card"
    CLUSTER = "cluster"


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
    # What a facilitator puts in front of everyone: a card or a cluster (no foreign key, so
    # that removing the card or cluster needs no order of deletion).
    spotlight_kind: Mapped[SpotlightKind | None] = mapped_column(_enum(SpotlightKind))
    spotlight_id: Mapped[int | None]
    # While true, people assigned to a breakout group work in it; "everyone back" clears it.
    breakout_open: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workshop_day: Mapped[WorkshopDay] = relationship(back_populates="sessions")
    theme: Mapped[Theme | None] = relationship()
    facilitator: Mapped[User | None] = relationship()
    parked_items: Mapped[list["ParkedItem"]] = relationship(
        back_populates="session", order_by="ParkedItem.id", cascade="all, delete-orphan"
    )
    groups: Mapped[list["BreakoutGroup"]] = relationship(
        back_populates="session", order_by="BreakoutGroup.position", cascade="all, delete-orphan"
    )
    clusters: Mapped[list["Cluster"]] = relationship(
        back_populates="session", order_by="Cluster.position", cascade="all, delete-orphan"
    )
    cards: Mapped[list["Card"]] = relationship(
        back_populates="session", order_by="Card.id", cascade="all, delete-orphan"
    )
    takeaways: Mapped[list["Takeaway"]] = relationship(
        back_populates="session", order_by="Takeaway.position", cascade="all, delete-orphan"
    )
    record: Mapped["SessionRecord | None"] = relationship(
        back_populates="session", cascade="all, delete-orphan"
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


class BreakoutGroup(db.Model):
    """A smaller group of a session's participants, with its own note and cards."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    name: Mapped[str] = mapped_column(String(GROUP_NAME_MAX))
    position: Mapped[int] = mapped_column(default=0)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("note.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[WorkshopSession] = relationship(back_populates="groups")
    members: Mapped[list["BreakoutMember"]] = relationship(
        back_populates="group", order_by="BreakoutMember.id", cascade="all, delete-orphan"
    )


class BreakoutMember(db.Model):
    """A person assigned to a breakout group: at most one group per session."""

    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("breakout_group.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))

    group: Mapped[BreakoutGroup] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Cluster(db.Model):
    """A named group of cards, made by facilitators during the cluster phase."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    label: Mapped[str] = mapped_column(String(CLUSTER_LABEL_MAX))
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[WorkshopSession] = relationship(back_populates="clusters")


class Card(db.Model):
    """An idea card: plain text, shown escaped, posted during the collect phase.

    An anonymous card keeps its author (so they can edit or withdraw it) but shows it to
    nobody. A hidden card (moderation) keeps its text for the facilitators only.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("breakout_group.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    body: Mapped[str] = mapped_column(String(CARD_MAX))
    is_anonymous: Mapped[bool] = mapped_column(default=False)
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("cluster.id"))
    hidden_reason: Mapped[str | None] = mapped_column(String(HIDDEN_REASON_MAX))
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]

    session: Mapped[WorkshopSession] = relationship(back_populates="cards")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    cluster: Mapped[Cluster | None] = relationship()
    votes: Mapped[list["Vote"]] = relationship(back_populates="card", cascade="all, delete-orphan")


class Vote(db.Model):
    """One dot a person put on a card.

    DESIGN.md's `weight` is the number of a person's rows on a card. Each row takes a
    numbered place in the person's budget (`slot`, 1..dots per person) and in what one card
    may get from them (`card_slot`, 1..at most per card); the unique constraints make the
    database itself refuse a dot beyond either limit, whatever number of processes and
    sockets spend the same budget at once.
    """

    __table_args__ = (
        UniqueConstraint("session_id", "user_id", "slot"),
        UniqueConstraint("card_id", "user_id", "card_slot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    slot: Mapped[int]
    card_slot: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    card: Mapped[Card] = relationship(back_populates="votes")


takeaway_cluster = Table(
    "takeaway_cluster",
    db.metadata,
    Column("takeaway_id", ForeignKey("takeaway.id", ondelete="CASCADE"), primary_key=True),
    Column("cluster_id", ForeignKey("cluster.id", ondelete="CASCADE"), primary_key=True),
)


class Takeaway(db.Model):
    """What a session concluded, typed as the guide sorts it, tied to the session's theme."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    kind: Mapped[TakeawayKind] = mapped_column(_enum(TakeawayKind))
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("theme.id"))
    text: Mapped[str] = mapped_column(String(TAKEAWAY_MAX))
    position: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[WorkshopSession] = relationship(back_populates="takeaways")
    theme: Mapped[Theme | None] = relationship()
    clusters: Mapped[list[Cluster]] = relationship(
        secondary=takeaway_cluster, order_by="Cluster.position"
    )


class HandRaise(db.Model):
    """A raised hand in a session's queue, first raised first heard; lowering deletes it."""

    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class Attendance(db.Model):
    """A stretch of presence of a person in a session's room: from join to leave.

    Open rows (no `left_at`) recently seen are who is here now, across all processes.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_day_id: Mapped[int] = mapped_column(ForeignKey("workshop_day.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # The Socket.IO connection that is present, so that its leaving closes its own row.
    sid: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Renewed while the socket stays (cop/workshops/attendance.py): a stay left open by a
    # process that died stops counting as present.
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class SessionRecord(db.Model):
    """The frozen output of a closed session (docs/session-record.md gives `data`'s shape)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"), unique=True)
    data: Mapped[dict] = mapped_column(JSON)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    session: Mapped[WorkshopSession] = relationship(back_populates="record")
