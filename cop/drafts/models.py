"""Guide drafts and experience sheets: sections, source links, review, revisions, publications.

A draft is a list of sections whose bodies are live notes (the notes engine, owner kind
`draft_section`). Source links hold the provenance of what editors took from session
records; the text carries only the reference `[^s<id>]` (DESIGN.md, "Source links live in
the text"). Revisions and publications are snapshots: a published version never changes.
"""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.auth.models import NAME_MAX, User
from cop.communities.models import SLUG_MAX, Community, Organisation, Theme, _enum
from cop.core.time import utcnow
from cop.extensions import db
from cop.notes.models import Note

COMMENT_MAX = 2000
QUOTE_MAX = 1000
MESSAGE_MAX = 300


class DraftKind(enum.StrEnum):
    """A guide, or an organisation's experience sheet (boxed inserts of guides)."""

    GUIDE = "guide"
    EXPERIENCE_SHEET = "experience_sheet"


class DraftStatus(enum.StrEnum):
    """Where a draft stands.

    Guides go draft → review → approved, and publishing takes them back to draft; experience
    sheets go draft → signed_off.
    """

    DRAFT = "draft"
    REVIEW = "review"
    APPROVED = "approved"
    SIGNED_OFF = "signed_off"


class SectionKind(enum.StrEnum):
    """What a section holds; the kinds of a sheet follow its template."""

    INTRO = "intro"
    KEY_ISSUES = "key_issues"
    LEVERS = "levers"
    CONDITIONS = "conditions"
    FREE = "free"
    # A signed-off experience sheet placed in a guide as a boxed insert (no note of its own).
    SHEET = "sheet"
    # The experience sheet's template.
    CONTEXT = "context"
    ACTORS = "actors"
    ACTIONS = "actions"
    RESULTS = "results"
    LESSONS = "lessons"
    REPRODUCE = "reproduce"
    CONTACT = "contact"


class SourceKind(enum.StrEnum):
    """What a source link points at in a session record."""

    CARD = "card"
    CLUSTER = "cluster"
    TAKEAWAY = "takeaway"
    NOTE_EXCERPT = "note_excerpt"


class MarkVerdict(enum.StrEnum):
    """A participant's answer to "is this what we said?" during review."""

    RECOGNISE = "recognise"
    NOT_WHAT_WE_SAID = "not_what_we_said"


class Draft(db.Model):
    """A guide draft, or an experience sheet of one organisation."""

    __table_args__ = (UniqueConstraint("community_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    kind: Mapped[DraftKind] = mapped_column(_enum(DraftKind))
    title: Mapped[str] = mapped_column(String(NAME_MAX))
    slug: Mapped[str] = mapped_column(String(SLUG_MAX))
    status: Mapped[DraftStatus] = mapped_column(_enum(DraftStatus), default=DraftStatus.DRAFT)
    # The language it is written in: its section titles and its footnotes use it.
    locale: Mapped[str] = mapped_column(String(10), default="en")
    # The organisation an experience sheet speaks for; None for guides.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    signed_off_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship()
    organisation: Mapped[Organisation | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    signed_off_by: Mapped[User | None] = relationship(foreign_keys=[signed_off_by_id])
    sections: Mapped[list["DraftSection"]] = relationship(
        back_populates="draft",
        order_by="DraftSection.position, DraftSection.id",
        foreign_keys="DraftSection.draft_id",
    )


class DraftSection(db.Model):
    """One section of a draft: a live note, or a boxed experience sheet in a guide."""

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    kind: Mapped[SectionKind] = mapped_column(_enum(SectionKind))
    title: Mapped[str] = mapped_column(String(NAME_MAX))
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("theme.id"))
    position: Mapped[int] = mapped_column(default=0)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("note.id"))
    # The experience sheet a section of kind `sheet` shows.
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("draft.id"))

    draft: Mapped[Draft] = relationship(back_populates="sections", foreign_keys=[draft_id])
    theme: Mapped[Theme | None] = relationship()
    note: Mapped[Note | None] = relationship()
    sheet: Mapped[Draft | None] = relationship(foreign_keys=[sheet_id])


class SourceLink(db.Model):
    """Where words of a section come from: an item of a session record.

    `evidence` is counted when the link is made, from the record and its people: sessions,
    contributions, organisation ids and counts by organisation kind (never a name).
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("draft_section.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("workshop_session.id"))
    source_kind: Mapped[SourceKind] = mapped_column(_enum(SourceKind))
    source_id: Mapped[int]
    quoted_text: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    section: Mapped[DraftSection] = relationship()


def _status_enum(column: str):
    """Store a status like `_enum`, its CHECK constraint named after its column.

    Two columns of one table would otherwise give two constraints of one name, which
    PostgreSQL refuses.
    """
    status = _enum(DraftStatus)
    status.name = column
    return status


class StatusChange(db.Model):
    """Every change of a draft's status, with who and when."""

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    from_status: Mapped[DraftStatus] = mapped_column(_status_enum("from_status"))
    to_status: Mapped[DraftStatus] = mapped_column(_status_enum("to_status"))
    # Set when the change is a publication: its version number.
    published_version: Mapped[int | None]
    by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    by: Mapped[User | None] = relationship()


class DraftRevision(db.Model):
    """An explicit snapshot of every section of a draft, with a message."""

    __table_args__ = (UniqueConstraint("draft_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    number: Mapped[int]
    message: Mapped[str] = mapped_column(String(MESSAGE_MAX))
    # The whole document as it was (cop/drafts/document.py): sections, sheets, sources.
    snapshot: Mapped[dict] = mapped_column(JSON)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class Publication(db.Model):
    """A published version (v1, v2…) of a guide: a revision, fixed for good."""

    __table_args__ = (UniqueConstraint("draft_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    version: Mapped[int]
    revision_id: Mapped[int] = mapped_column(ForeignKey("draft_revision.id"))
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The guide's body rendered and sanitised once, when published: it never changes.
    html: Mapped[str] = mapped_column(Text, default="")

    draft: Mapped[Draft] = relationship()
    revision: Mapped[DraftRevision] = relationship()


class PublicationFile(db.Model):
    """An export of a published version, made on its first download and kept.

    The version never changes, and a PDF of a long guide takes seconds to lay out.
    """

    __table_args__ = (UniqueConstraint("publication_id", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id"))
    format: Mapped[str] = mapped_column(String(8))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewComment(db.Model):
    """A review comment on a section and a quoted passage; replies point at their thread."""

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("draft.id"), index=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("draft_section.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("review_comment.id"))
    quoted: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    section: Mapped[DraftSection] = relationship()


class ValidationMark(db.Model):
    """A participant's verdict on a section during review: one per person and section."""

    __table_args__ = (UniqueConstraint("section_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("draft_section.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    verdict: Mapped[MarkVerdict] = mapped_column(_enum(MarkVerdict))
    comment: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
