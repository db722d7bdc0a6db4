"""Review and publication: status moves, revisions, published versions, comments, validation.

A guide goes draft → review → approved; editors and hosts submit and approve, a host
publishes an approved guide, which fixes its next version (v1, v2…) and takes the draft
back to draft for the next round. An experience sheet is signed off by a member of its
organisation. Every change of status is logged with who and when.
"""

from collections import Counter

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cop.auth.models import User
from cop.core.time import utcnow
from cop.drafts.document import html_of, snapshot_of
from cop.drafts.models import (
    COMMENT_MAX,
    MESSAGE_MAX,
    QUOTE_MAX,
    Draft,
    DraftKind,
    DraftRevision,
    DraftSection,
    DraftStatus,
    MarkVerdict,
    Publication,
    PublicationFile,
    ReviewComment,
    StatusChange,
    ValidationMark,
)
from cop.drafts.services import DraftError
from cop.extensions import db
from cop.notes.services import replace_text

# The moves a guide's status can make by hand (publishing is its own move). Who may make
# them is the permissions module's answer (Action.REVIEW), checked by the views.
MOVES = frozenset(
    {
        (DraftStatus.DRAFT, DraftStatus.REVIEW),
        (DraftStatus.REVIEW, DraftStatus.APPROVED),
        (DraftStatus.REVIEW, DraftStatus.DRAFT),
        (DraftStatus.APPROVED, DraftStatus.DRAFT),
    }
)


def _log(draft: Draft, to: DraftStatus, actor: User, version: int | None = None) -> None:
    db.session.add(
        StatusChange(
            draft_id=draft.id,
            from_status=draft.status,
            to_status=to,
            published_version=version,
            by_id=actor.id,
        )
    )
    draft.status = to


def move(actor: User, draft: Draft, to: DraftStatus) -> None:
    """Move a guide to another status, if that move exists."""
    if draft.kind is not DraftKind.GUIDE:
        raise DraftError(_("Only a guide goes through review."))
    if (draft.status, to) not in MOVES:
        raise DraftError(_("A guide cannot go from this status to that one."))
    _log(draft, to, actor)


def status_changes_of(draft: Draft) -> list[StatusChange]:
    """Return the draft's changes of status, newest first."""
    return list(
        db.session.scalars(
            select(StatusChange).filter_by(draft_id=draft.id).order_by(StatusChange.id.desc())
        )
    )


def sign_off(actor: User, sheet: Draft) -> None:
    """Sign off an experience sheet: a member of its organisation says it is ready.

    Its text is fixed from then on (its notes refuse writes), and guides may place it.
    """
    if sheet.kind is not DraftKind.EXPERIENCE_SHEET:
        raise DraftError(_("Only an experience sheet is signed off."))
    if sheet.status is DraftStatus.SIGNED_OFF:
        raise DraftError(_("This experience sheet is already signed off."))
    sheet.signed_off_by_id = actor.id
    sheet.signed_off_at = utcnow()
    _log(sheet, DraftStatus.SIGNED_OFF, actor)


# --- Revisions -------------------------------------------------------------------------


def _message(message: str) -> str:
    message = " ".join((message or "").split())
    if not message:
        raise DraftError(_("Say in a few words what this revision is."))
    if len(message) > MESSAGE_MAX:
        raise DraftError(_("A revision's message has at most %(max)d characters.", max=MESSAGE_MAX))
    return message


def save_revision(actor: User, draft: Draft, message: str) -> DraftRevision:
    """Snapshot every section of the draft as its next revision."""
    message = _message(message)
    number = (
        db.session.scalar(
            select(func.max(DraftRevision.number)).where(DraftRevision.draft_id == draft.id)
        )
        or 0
    ) + 1
    revision = DraftRevision(
        draft_id=draft.id,
        number=number,
        message=message,
        snapshot=snapshot_of(draft),
        author_id=actor.id,
    )
    db.session.add(revision)
    db.session.flush()
    return revision


def revisions_of(draft: Draft) -> list[DraftRevision]:
    """Return the draft's revisions, newest first."""
    return list(
        db.session.scalars(
            select(DraftRevision).filter_by(draft_id=draft.id).order_by(DraftRevision.number.desc())
        )
    )


def revision_of(draft: Draft, number: int) -> DraftRevision | None:
    """Return the draft's revision with this number, or None."""
    return db.session.scalar(select(DraftRevision).filter_by(draft_id=draft.id, number=number))


def restore_revision(
    actor: User, draft: Draft, revision: DraftRevision
) -> tuple[DraftRevision, dict[int, bytes]]:
    """Bring the texts of a revision back, as new changes, and save that as a new revision.

    Sections removed since the revision stay removed (the revision keeps their text); each
    other section's note gets the revision's text as one live change. Returns the new
    revision and the Yjs update of each changed note, by note id, to broadcast.
    """
    texts = {section["id"]: section["text"] for section in revision.snapshot["sections"]}
    changes = {}
    for section in draft.sections:
        if section.note is None or section.id not in texts:
            continue
        change = replace_text(section.note, texts[section.id], actor)
        if change is not None:
            changes[section.note.id] = change
    with force_locale(draft.locale):
        message = _("Restored revision %(number)d", number=revision.number)
    restored = save_revision(actor, draft, message)
    return restored, changes


# --- Publication -----------------------------------------------------------------------


def publish(actor: User, draft: Draft) -> Publication:
    """Publish an approved guide as its next version, and take it back to draft."""
    if draft.kind is not DraftKind.GUIDE:
        raise DraftError(_("Only a guide is published."))
    if draft.status is not DraftStatus.APPROVED:
        raise DraftError(_("A guide must be approved before it is published."))
    version = (
        db.session.scalar(
            select(func.max(Publication.version)).where(Publication.draft_id == draft.id)
        )
        or 0
    ) + 1
    with force_locale(draft.locale):
        message = _("Published as v%(version)d", version=version)
    revision = save_revision(actor, draft, message)
    publication = Publication(
        draft_id=draft.id,
        version=version,
        revision_id=revision.id,
        published_by_id=actor.id,
        html=str(html_of(revision.snapshot)),
    )
    db.session.add(publication)
    _log(draft, DraftStatus.DRAFT, actor, version)
    db.session.flush()
    return publication


def publications_of(draft: Draft) -> list[Publication]:
    """Return the guide's published versions, newest first."""
    return list(
        db.session.scalars(
            select(Publication).filter_by(draft_id=draft.id).order_by(Publication.version.desc())
        )
    )


def publication_of(draft: Draft, version: int | None = None) -> Publication | None:
    """Return one published version of a guide (the latest by default), or None."""
    query = select(Publication).filter_by(draft_id=draft.id)
    if version is not None:
        return db.session.scalar(query.filter_by(version=version))
    return db.session.scalar(query.order_by(Publication.version.desc()).limit(1))


def published_guides(community) -> list[tuple[Draft, Publication]]:
    """Return the community's published guides with their latest version, newest first."""
    latest = (
        select(Publication.draft_id, func.max(Publication.version).label("version"))
        .group_by(Publication.draft_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Draft, Publication)
        .join(Publication, Publication.draft_id == Draft.id)
        .join(
            latest,
            (latest.c.draft_id == Publication.draft_id) & (latest.c.version == Publication.version),
        )
        .where(Draft.community_id == community.id)
        .order_by(Publication.published_at.desc(), Publication.id.desc())
    )
    return [(draft, publication) for draft, publication in rows]


def published_file(publication: Publication, fmt: str) -> bytes:
    """Return an export of a published version: kept from its first download, else made now.

    Two processes making the same file at once both answer; the second one's row is refused
    by the unique constraint and dropped.
    """
    from cop.drafts.exports import export

    stored = db.session.scalar(
        select(PublicationFile.content).filter_by(publication_id=publication.id, format=fmt)
    )
    if stored is not None:
        return stored
    content, _mimetype = export(publication.revision.snapshot, fmt)
    try:
        with db.session.begin_nested():
            db.session.add(
                PublicationFile(publication_id=publication.id, format=fmt, content=content)
            )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    return content


# --- Review comments and validation ------------------------------------------------------


def _in_review(draft: Draft) -> None:
    if draft.status is not DraftStatus.REVIEW:
        raise DraftError(_("Comments and validation are open while the guide is in review."))


def _body(body: str, maximum: int = COMMENT_MAX) -> str:
    body = (body or "").strip()
    if not body:
        raise DraftError(_("A comment needs some text."))
    if len(body) > maximum:
        raise DraftError(_("A comment has at most %(max)d characters.", max=maximum))
    return body


def add_comment(
    actor: User,
    draft: Draft,
    section: DraftSection,
    body: str,
    quoted: str = "",
    parent: ReviewComment | None = None,
) -> ReviewComment:
    """Comment on a section (and a passage it quotes), or reply to a comment's thread."""
    _in_review(draft)
    quoted = " ".join((quoted or "").split())
    if len(quoted) > QUOTE_MAX:
        raise DraftError(_("A quoted passage has at most %(max)d characters.", max=QUOTE_MAX))
    if parent is not None:
        if parent.draft_id != draft.id or parent.section_id != section.id:
            raise DraftError(_("This comment is not one of this section's."))
        parent = thread_of(parent)
    comment = ReviewComment(
        draft_id=draft.id,
        section_id=section.id,
        parent_id=parent.id if parent else None,
        quoted="" if parent else quoted,
        body=_body(body),
        author_id=actor.id,
    )
    db.session.add(comment)
    db.session.flush()
    return comment


def comment_in(draft: Draft, comment_id: int) -> ReviewComment | None:
    """Return the draft's comment with this id, or None."""
    comment = db.session.get(ReviewComment, comment_id)
    return comment if comment is not None and comment.draft_id == draft.id else None


def thread_of(comment: ReviewComment) -> ReviewComment:
    """Return the comment that opens a comment's thread (itself if it opens one)."""
    if comment.parent_id is None:
        return comment
    return db.session.get(ReviewComment, comment.parent_id)


def set_resolved(actor: User, comment: ReviewComment, resolved: bool) -> None:
    """Resolve a comment's thread, or reopen it."""
    thread = thread_of(comment)
    thread.resolved_at = utcnow() if resolved else None
    thread.resolved_by_id = actor.id if resolved else None


def comments_of(draft: Draft) -> list[ReviewComment]:
    """Return every comment of a draft, oldest first."""
    return list(
        db.session.scalars(
            select(ReviewComment).filter_by(draft_id=draft.id).order_by(ReviewComment.id)
        )
    )


def open_comment_count(draft: Draft) -> int:
    """Count the draft's threads that are not resolved."""
    return db.session.scalar(
        select(func.count()).where(
            ReviewComment.draft_id == draft.id,
            ReviewComment.parent_id.is_(None),
            ReviewComment.resolved_at.is_(None),
        )
    )


def mark(
    actor: User, draft: Draft, section: DraftSection, verdict: MarkVerdict, comment: str = ""
) -> ValidationMark:
    """Record (or change) a person's verdict on a section during review."""
    _in_review(draft)
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise DraftError(_("A comment has at most %(max)d characters.", max=COMMENT_MAX))
    existing = db.session.scalar(
        select(ValidationMark).filter_by(section_id=section.id, user_id=actor.id)
    )
    if existing is None:
        existing = ValidationMark(section_id=section.id, user_id=actor.id)
        db.session.add(existing)
    existing.verdict = verdict
    existing.comment = comment
    existing.updated_at = utcnow()
    db.session.flush()
    return existing


def marks_by_section(draft: Draft) -> dict[int, Counter]:
    """Count the verdicts on each of the draft's sections."""
    counts: dict[int, Counter] = {}
    rows = db.session.execute(
        select(ValidationMark.section_id, ValidationMark.verdict, func.count())
        .join(DraftSection, DraftSection.id == ValidationMark.section_id)
        .where(DraftSection.draft_id == draft.id)
        .group_by(ValidationMark.section_id, ValidationMark.verdict)
    )
    for section_id, verdict, count in rows:
        counts.setdefault(section_id, Counter())[verdict.value] = count
    return counts


def marks_of_user(draft: Draft, user: User) -> dict[int, ValidationMark]:
    """Return a person's verdicts on the draft's sections, by section id."""
    if not user.is_authenticated:
        return {}
    marks = db.session.scalars(
        select(ValidationMark)
        .join(DraftSection, DraftSection.id == ValidationMark.section_id)
        .where(DraftSection.draft_id == draft.id, ValidationMark.user_id == user.id)
    )
    return {each.section_id: each for each in marks}
