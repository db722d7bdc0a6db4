"""Collaborative notes: the Yjs document, its append-only update log, and its versions."""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.auth.models import NAME_MAX, User
from cop.communities.models import Community, _enum
from cop.core.time import utcnow
from cop.extensions import db


class NoteOwnerKind(enum.StrEnum):
    """What a note belongs to; its rules of access come from its owner (permissions module)."""

    COMMUNITY = "community"
    SESSION = "session"
    BREAKOUT_GROUP = "breakout_group"
    DRAFT_SECTION = "draft_section"
    EXPERIENCE_SHEET = "experience_sheet"


class Note(db.Model):
    """One collaborative markdown document.

    `state` holds the Yjs updates merged so far (up to `NoteUpdate.seq == state_seq`);
    the updates accepted since then are the rows of `NoteUpdate`. `text` is the markdown
    of state plus log, refreshed by compaction a few seconds after activity.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    owner_kind: Mapped[NoteOwnerKind] = mapped_column(_enum(NoteOwnerKind))
    # The owning session, group, section or sheet; None when the community itself owns it.
    owner_id: Mapped[int | None]
    title: Mapped[str] = mapped_column(String(NAME_MAX))
    state: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    state_seq: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    # Who wrote since the last version: the next version's contributors.
    unversioned_contributors: Mapped[list[int]] = mapped_column(JSON, default=list)
    is_locked: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)

    community: Mapped[Community] = relationship()
    created_by: Mapped[User | None] = relationship()


class NoteUpdate(db.Model):
    """Yjs updates accepted by the server, not yet compacted into their note's state.

    The live server logs one row per group-commit window: the window's updates merged, with
    the ids of the people who wrote them. `seq` orders the rows across all notes and
    processes.
    """

    # AUTOINCREMENT: SQLite would otherwise reuse the seq of compacted (deleted) rows, and a
    # reused seq would hide an update behind its note's state_seq.
    __table_args__ = (
        Index("ix_note_update_note_id_seq", "note_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id"))
    update: Mapped[bytes] = mapped_column(LargeBinary)
    author_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NoteVersion(db.Model):
    """A saved text of a note: automatic after a burst of activity, or on demand with a label."""

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("note.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(NAME_MAX))
    text: Mapped[str] = mapped_column(Text)
    # Ids of the users whose updates went into this version since the previous one.
    contributors: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    note: Mapped[Note] = relationship()
