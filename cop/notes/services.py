"""Note rules: creation, the update log, compaction, versions."""

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from difflib import SequenceMatcher
from typing import NamedTuple

from pycrdt import Doc, Text, merge_updates
from sqlalchemy import String, bindparam, cast, delete, insert, select, update

from cop.auth.models import User
from cop.communities.models import Community
from cop.core.time import utcnow
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind, NoteUpdate, NoteVersion

log = logging.getLogger(__name__)

# The name of the Y.Text holding a note's markdown (the browser binds CodeMirror to it).
TEXT_NAME = "markdown"
# An automatic version is kept after a burst of activity, at most this often.
AUTOMATIC_VERSION_INTERVAL = timedelta(minutes=3)


def create_note(actor: User, community: Community, title: str) -> Note:
    """Create a free-standing community note."""
    note = Note(
        community=community,
        owner_kind=NoteOwnerKind.COMMUNITY,
        title=title.strip(),
        created_by=actor,
    )
    db.session.add(note)
    db.session.flush()
    return note


def notes_of(community: Community) -> list[Note]:
    """Return the community's own notes, most recently active first."""
    return list(
        db.session.scalars(
            select(Note)
            .filter_by(community_id=community.id, owner_kind=NoteOwnerKind.COMMUNITY)
            .order_by(Note.last_activity_at.desc(), Note.id.desc())
        )
    )


def note_in(community: Community, note_id: int) -> Note | None:
    """Return the community's note with this id, or None."""
    note = db.session.get(Note, note_id)
    return note if note is not None and note.community_id == community.id else None


def text_of_update(update: bytes) -> str:
    """Return the markdown held by a Yjs update (a whole state or a merge of updates)."""
    doc = Doc()
    if update:
        doc.apply_update(update)
    return str(doc.get(TEXT_NAME, type=Text))


def is_pycrdt_refusal(error: BaseException) -> bool:
    """Whether pycrdt raised `error` over input it could not take (not a thread being stopped).

    pycrdt refuses bad bytes with an Exception or, from deep in its Rust code, with a
    PanicException, which derives from BaseException and so escapes `except Exception`.
    A green thread being stopped (GreenletExit, also a BaseException) must go through.
    """
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def append_update(note_id: int, change: bytes, author_ids: set[int]) -> None:
    """Append an accepted update to a note's log, with who wrote it, and mark the note active.

    The update joins the session's transaction: it commits with the caller's other changes
    (a restored version, say). The live server logs through `LiveLog` instead.
    """
    connection = db.session.connection()
    values = _log_values(note_id, change, author_ids)
    for statement in (_MARK_ACTIVE, _APPEND):
        connection.execute(statement, values)


class LiveLog:
    """The live server's log writer: one batch of live updates (merged) per row and commit.

    The same row as `append_update`, through the database driver directly, on a connection
    of its own that stays open between batches: the live server logs up to a couple of
    hundred batches a second per busy note, and SQLAlchemy's execution layer, then taking a
    connection from the pool and giving it back, cost more than the statements themselves
    (docs/performance.md). One per app and process; green threads take turns on it.

    On SQLite, the commit that takes the write-ahead log past 1,000 pages (SQLite's
    default) also copies it into the database file (a checkpoint), and waits for the disk:
    7 to 10 ms on the test machine, every 300 commits or so, during which a live server's
    event loop stood still. So cop's connections wait for 10,000 pages (`_configure_sqlite`),
    and the log hands a checkpoint to `in_background` every `CHECKPOINT_EVERY_COMMITS`
    commits, which runs it in a thread of the operating system while the loop goes on.
    Commits go on meanwhile, so these never copy the very last pages, and the log only
    starts over after the commit at 10,000 pages, which has little left to copy: once every
    10 to 20 s in a busy note, for about 6 ms, where there were seven to ten stalls.
    """

    CHECKPOINT_EVERY_COMMITS = 250  # about 750 pages of write-ahead log

    def __init__(self, in_background: Callable[[Callable[[], None]], object] = lambda job: job()):
        self.lock = threading.Lock()
        self.connection = None  # a pooled DBAPI connection, taken on first use
        self.statements: dict[bool, list[DriverStatement]] = {}  # by mark_active
        self.in_background = in_background
        self.sqlite_file: str | None = None  # a SQLite database's file, once connected
        self.commits_since_checkpoint = 0
        self.checkpointing = False
        self.checkpoint_error: Exception | None = None  # from the background, logged here

    def append(self, note_id: int, change: bytes, author_ids: set[int], mark_active: bool) -> None:
        """Log one window and commit it; nothing is written if any statement fails.

        The note's activity time is written only when `mark_active` (the live server does it
        every 10 s); otherwise, on PostgreSQL, the note's row is only locked (the comment above
        `_MARK_ACTIVE` says why).
        """
        values = _log_values(note_id, change, author_ids)
        with self.lock:
            statements = self.statements.get(mark_active)
            if statements is None:
                statements = self.statements[mark_active] = _window_statements(
                    db.engine.dialect, mark_active
                )
            while True:
                kept = self.connection is not None
                if not kept:
                    self.connection = self._connect()
                connection = self.connection
                try:
                    cursor = connection.cursor()
                    for statement in statements:
                        cursor.execute(statement.sql, statement.parameters(values))
                    connection.commit()
                    break
                except BaseException as error:
                    self.connection = None
                    connection.invalidate()  # closed, with its transaction: it may be broken
                    # The database may have dropped a kept connection while it sat idle (a
                    # restart, an idle timeout), where the pool would have tested it before
                    # handing it out: try once more, on a new one.
                    if not (kept and isinstance(error, Exception)):
                        raise
        if self.sqlite_file is not None:
            self._checkpoint_now_and_then()

    def _connect(self):
        url = db.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.sqlite_file = url.database
        return db.engine.raw_connection()

    def _checkpoint_now_and_then(self) -> None:
        if self.checkpoint_error is not None:
            error, self.checkpoint_error = self.checkpoint_error, None
            log.error("could not checkpoint %s", self.sqlite_file, exc_info=error)
        self.commits_since_checkpoint += 1
        if (
            self.commits_since_checkpoint >= self.CHECKPOINT_EVERY_COMMITS
            and not self.checkpointing
        ):
            self.commits_since_checkpoint = 0
            self.checkpointing = True
            self.in_background(self._checkpoint)

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database file as far as no reader needs it.

        On a connection of its own: it runs in another thread. PASSIVE neither waits for
        nor holds up the other connections' reads and writes.
        """
        try:
            connection = sqlite3.connect(self.sqlite_file)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                connection.close()
        except sqlite3.Error as error:  # told by the next append: logging is not for this thread
            self.checkpoint_error = error
        finally:
            self.checkpointing = False

    def close(self) -> None:
        """Give the connection back to the pool."""
        with self.lock:
            if self.connection is not None:
                self.connection.close()
                self.connection = None


def _window_statements(dialect, mark_active: bool) -> list["DriverStatement"]:
    # SQLite locks the whole database for a write: the note's row needs no lock of its own.
    first = _MARK_ACTIVE if mark_active else None if dialect.name == "sqlite" else _LOCK_NOTE
    return [DriverStatement.compile(s, dialect) for s in (first, _APPEND) if s is not None]


def _log_values(note_id: int, change: bytes, author_ids: set[int]) -> dict:
    return {"note_id": note_id, "update": change, "author_ids": sorted(author_ids), "now": utcnow()}


# A log row's transaction writes or locks its note's row first (PostgreSQL; SQLite locks the
# whole database) before the row takes its seq: so a note's rows commit in seq order, and a
# compaction that has read seq n has seen every row of that note before n (store_compaction).
_MARK_ACTIVE = (
    update(Note.__table__)
    .where(Note.__table__.c.id == bindparam("note_id"))
    .values(last_activity_at=bindparam("now"))
)
_LOCK_NOTE = (
    select(Note.__table__.c.id).where(Note.__table__.c.id == bindparam("note_id")).with_for_update()
)
_APPEND = insert(NoteUpdate.__table__).values(
    note_id=bindparam("note_id"),
    update=bindparam("update"),
    author_ids=bindparam("author_ids"),
    created_at=bindparam("now"),
)


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once for a dialect, with what turns values into its parameters."""

    sql: str
    names: tuple[str, ...]  # in the order of a positional driver's placeholders
    positional: bool
    processors: dict[str, Callable]  # SQLAlchemy's conversions (JSON, SQLite dates)

    @classmethod
    def compile(cls, statement, dialect) -> "DriverStatement":
        """Compile `statement` for `dialect`."""
        compiled = statement.compile(dialect=dialect)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        return cls(compiled.string, names, compiled.positional, processors)

    def parameters(self, values: dict) -> tuple | dict:
        """Return the driver's parameters for these values (by bind name)."""
        processors = self.processors
        converted = [
            processors[name](values[name]) if name in processors else values[name]
            for name in self.names
        ]
        if self.positional:
            return tuple(converted)
        return dict(zip(self.names, converted, strict=True))


class LoggedUpdate(NamedTuple):
    """A row of a note's log."""

    seq: int
    update: bytes
    author_ids: list[int]


# How many rows of a note's log are read at once (see updates_since).
LOG_PAGE = 100


def updates_since(
    note_id: int, seq: int, pause: Callable[[], None] = lambda: None
) -> list[LoggedUpdate]:
    """Return the note's logged updates after `seq`, in order.

    A busy note's log holds a thousand rows or more at a compaction, which took 4 to 8 ms
    to read in one go, half of it turning each row's JSON list of authors into a list.
    So the rows are read `LOG_PAGE` at a time, with `pause` called between pages, and the
    authors are read as text, each distinct text parsed once: the same few people write
    most rows. Rows committed meanwhile are read too, as they would have been a moment
    later: a note's rows commit in seq order (`_MARK_ACTIVE`), so none is skipped.
    """
    rows = []
    parsed: dict[str | None, list[int]] = {}
    while True:
        page = db.session.execute(
            select(NoteUpdate.seq, NoteUpdate.update, cast(NoteUpdate.author_ids, String))
            .where(NoteUpdate.note_id == note_id, NoteUpdate.seq > seq)
            .order_by(NoteUpdate.seq)
            .limit(LOG_PAGE)
        ).all()
        for row_seq, change, authors in page:
            author_ids = parsed.get(authors)
            if author_ids is None:
                author_ids = parsed[authors] = json.loads(authors) if authors else []
            rows.append(LoggedUpdate(row_seq, change, author_ids))
        if len(page) < LOG_PAGE:
            return rows
        seq = rows[-1].seq
        pause()


def read_state_and_log(
    note_id: int, after_seq: int = 0, pause: Callable[[], None] = lambda: None
) -> tuple[bytes, int, list[LoggedUpdate]]:
    """Read a note's state, its seq, and its logged updates after both, consistently.

    The state and the log are two reads; a compaction committed between them would move
    updates from the log into a state this reader did not see. So the state's seq is read
    again after the log, and everything is read anew if it moved. `pause` is called
    between pages of the log (`updates_since`).
    """
    while True:
        state, state_seq = db.session.execute(
            select(Note.state, Note.state_seq).where(Note.id == note_id)
        ).one()
        rows = updates_since(note_id, max(after_seq, state_seq), pause)
        moved = db.session.scalar(select(Note.state_seq).where(Note.id == note_id))
        if moved == state_seq:
            return state, state_seq, rows


def full_state(note: Note) -> tuple[bytes, int]:
    """Return everything the database holds of a note as one update, and its last seq."""
    state, state_seq, rows = read_state_and_log(note.id)
    parts = [state] if state else []
    parts += [row.update for row in rows]
    last_seq = rows[-1].seq if rows else state_seq
    if not parts:
        return b"", last_seq
    return (merge_updates(*parts) if len(parts) > 1 else parts[0]), last_seq


@dataclass
class Compaction:
    """A note's state and text with its log merged in, ready to be stored."""

    note_id: int
    base_seq: int  # the state_seq it was computed from
    last_seq: int  # the last logged update it includes
    state: bytes
    text: str
    contributors: set[int]


def prepare_compaction(
    note_id: int,
    pause: Callable[[], None] = lambda: None,
    document: "CompactedDocument | None" = None,
) -> Compaction | None:
    """Merge a note's state and log in memory; None when the log is empty.

    This is the slow part of a compaction (tens of milliseconds on a busy note). It holds
    no lock, and calls `pause` between its steps: the live server passes a function that
    lets its other work run meanwhile, and a `document` it keeps between compactions, from
    which the text is read without integrating the whole state again.
    """
    state, state_seq, rows = read_state_and_log(note_id, pause=pause)
    if not rows:
        return None
    pause()
    merged = merge_in_steps(state, [row.update for row in rows], pause)
    if document is not None:
        text = document.text_after(state, state_seq, rows, pause)
    else:
        text = text_of_update(merged)
    pause()
    return Compaction(
        note_id=note_id,
        base_seq=state_seq,
        last_seq=rows[-1].seq,
        state=merged,
        text=text,
        contributors={author for row in rows for author in row.author_ids},
    )


# How many logged updates (or merged groups of them) one step of a compaction merges, or
# integrates. A busy note logs hundreds of batches a second; in a live server busy with 100
# clients, a step of this many takes about a millisecond (docs/performance.md).
COMPACTION_STEP = 10


def merge_in_steps(state: bytes, updates: list[bytes], pause: Callable[[], None]) -> bytes:
    """Merge a note's state (empty for a new note) with logged updates, a step at a time.

    Merging is associative: the updates are merged in groups, `pause` is called after each
    group, the groups are merged in groups the same way until one is left, and that one is
    merged with the state. One call over hundreds of updates and a large state held the live
    server for about 10 ms, and so did one over a hundred groups and the state
    (docs/performance.md).
    """
    groups = updates
    while len(groups) > 1:  # one group in the end: merging many at once with the state was slow
        groups = [
            merge_updates(*group) if len(group) > 1 else group[0]
            for group in _steps(groups, COMPACTION_STEP, pause)
        ]
    parts = ([state] if state else []) + groups
    return merge_updates(*parts) if len(parts) > 1 else parts[0]


def _steps(items: list, size: int, pause: Callable[[], None]):
    """Yield `items` in lists of `size`, calling `pause` after each."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
        pause()


class CompactedDocument:
    """A note's document as of its last compaction, kept by the live server between them.

    Reading the text of a merged state means integrating the whole state in a new
    document: several milliseconds for a busy note, in one call that lets no other green
    thread run. With this kept, a compaction integrates only what was logged since the
    previous one. The document holds exactly the log up to `seq`: the state at a seq is the
    merge of every update logged up to it, whoever compacted it, and integrating an update
    twice changes nothing.
    """

    def __init__(self) -> None:
        self.start_afresh()

    def start_afresh(self) -> None:
        """Forget everything integrated so far."""
        self.doc = Doc()
        self.text = self.doc.get(TEXT_NAME, type=Text)
        self.seq: int | None = None  # None: nothing integrated yet

    def text_after(
        self, state: bytes, state_seq: int, rows: list[LoggedUpdate], pause: Callable[[], None]
    ) -> str:
        """Integrate what a compaction read (the state at `state_seq`, then `rows`); its text."""
        try:
            if self.seq is None or self.seq < state_seq:
                # The first compaction, or another process compacted updates not seen here.
                self.start_afresh()
                if state:
                    self.doc.apply_update(state)
                    pause()
            for index, row in enumerate(rows, start=1):
                self.doc.apply_update(row.update)
                if index % COMPACTION_STEP == 0:
                    pause()
        except BaseException:  # a pycrdt panic derives from BaseException: start afresh next time
            self.seq = None
            raise
        self.seq = rows[-1].seq
        return str(self.text)


def store_compaction(
    compaction: Compaction, automatic_version: bool = True, delete_log: bool = True
) -> Note | None:
    """Store a prepared compaction, unless another one stored the note's state meanwhile.

    The write is conditional on the state_seq the compaction started from: of two
    processes compacting the same note at once, the second finds the seq moved, writes
    nothing and returns None (the next compaction starts from what the first stored). Rows
    up to `last_seq` are then merged, and deleted unless `delete_log` is False (see
    `delete_compacted_log`); updates logged meanwhile stay for the next compaction.
    """
    stored = db.session.execute(
        update(Note)
        .where(Note.id == compaction.note_id, Note.state_seq == compaction.base_seq)
        .values(state=compaction.state, state_seq=compaction.last_seq, text=compaction.text)
    )
    if stored.rowcount == 0:
        return None
    if delete_log:
        delete_compacted_log(compaction.note_id, compaction.last_seq)
    note = db.session.get(Note, compaction.note_id, populate_existing=True)
    note.unversioned_contributors = sorted(
        set(note.unversioned_contributors or []) | compaction.contributors
    )
    latest = latest_version(note)
    if automatic_version and (
        latest is None or utcnow() - latest.created_at >= AUTOMATIC_VERSION_INTERVAL
    ):
        save_version(note, label=None, actor=None)
    db.session.flush()
    return note


def delete_compacted_log(note_id: int, last_seq: int) -> None:
    """Delete the note's logged updates up to `last_seq`, which its state holds.

    Readers skip them once the state is stored (`read_state_and_log`), so this may come in
    a later transaction: a live server deletes a busy note's thousand rows apart from
    storing its state, which held its event loop for 10 ms in one go. Appends commit in seq
    order (`_MARK_ACTIVE`), so none is deleted unread.
    """
    db.session.execute(
        delete(NoteUpdate).where(NoteUpdate.note_id == note_id, NoteUpdate.seq <= last_seq)
    )


def compact_note(note_id: int, automatic_version: bool = True) -> Note | None:
    """Merge a note's logged updates into its state and refresh its text, in one go.

    Returns the note, or None if another compaction stored the note's state meanwhile.
    """
    compaction = prepare_compaction(note_id)
    if compaction is None:
        return db.session.get(Note, note_id)
    return store_compaction(compaction, automatic_version)


def latest_version(note: Note) -> NoteVersion | None:
    """Return the note's most recent version, or None."""
    return db.session.scalar(
        select(NoteVersion).filter_by(note_id=note.id).order_by(NoteVersion.id.desc()).limit(1)
    )


def save_version(note: Note, label: str | None, actor: User | None) -> NoteVersion | None:
    """Keep the note's current text as a version; None when nothing changed since the last."""
    latest = latest_version(note)
    if latest is not None and latest.text == note.text and label is None:
        return None
    version = NoteVersion(
        note_id=note.id,
        label=label.strip() if label else None,
        text=note.text,
        contributors=list(note.unversioned_contributors or []),
        created_by_id=actor.id if actor else None,
    )
    note.unversioned_contributors = []
    db.session.add(version)
    db.session.flush()
    return version


def current_text(note: Note) -> str:
    """Return the note's markdown including the updates not yet compacted."""
    update, _seq = full_state(note)
    return text_of_update(update)


def versions_of(note: Note) -> list[NoteVersion]:
    """Return the note's versions, newest first."""
    return list(
        db.session.scalars(
            select(NoteVersion).filter_by(note_id=note.id).order_by(NoteVersion.id.desc())
        )
    )


def version_of(note: Note, version_id: int) -> NoteVersion | None:
    """Return the note's version with this id, or None."""
    version = db.session.get(NoteVersion, version_id)
    return version if version is not None and version.note_id == note.id else None


def save_version_now(note: Note, label: str, actor: User) -> NoteVersion:
    """Keep the note's current text as a labelled version, on demand."""
    compact_note(note.id, automatic_version=False)
    return save_version(note, label=label, actor=actor)


WORD = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Compare two texts word by word: a list of ("same" | "removed" | "added", text).

    Lines are matched first, then words within the lines that changed: long texts with a
    few changes compare in a few milliseconds (a word-level match over the whole text would
    take seconds on a guide).
    """
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    parts: list[tuple[str, str]] = []
    matcher = SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for operation, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        before = "".join(old_lines[old_start:old_end])
        after = "".join(new_lines[new_start:new_end])
        if operation == "equal":
            parts.append(("same", before))
        else:
            parts += _words_diff(before, after)
    merged: list[tuple[str, str]] = []
    for kind, text in parts:
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def _words_diff(old: str, new: str) -> list[tuple[str, str]]:
    old_words, new_words = WORD.findall(old), WORD.findall(new)
    parts: list[tuple[str, str]] = []
    matcher = SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for operation, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if operation == "equal":
            parts.append(("same", "".join(old_words[old_start:old_end])))
            continue
        if old_end > old_start:
            parts.append(("removed", "".join(old_words[old_start:old_end])))
        if new_end > new_start:
            parts.append(("added", "".join(new_words[new_start:new_end])))
    return parts


def restore_version(note: Note, version: NoteVersion, actor: User) -> bytes | None:
    """Make the note's text that of `version` again, as a new logged change.

    Returns the Yjs update to broadcast (None when the text is already the same).
    """
    return replace_text(note, version.text, actor)


def _document_of(note: Note) -> Doc:
    """Return a Yjs document holding everything the database has of a note."""
    update, _seq = full_state(note)
    doc = Doc()
    if update:
        doc.apply_update(update)
    return doc


def replace_text(note: Note, new_text: str, actor: User) -> bytes | None:
    """Make a note's text `new_text` as one logged change; return the update to broadcast.

    None when the text is already the same. History is never rewritten: the change is
    computed against the current document and merges with whatever people type meanwhile.
    """
    doc = _document_of(note)
    text = doc.get(TEXT_NAME, type=Text)
    current = str(text)
    if current == new_text:
        return None
    before = doc.get_state()
    matcher = SequenceMatcher(a=current, b=new_text, autojunk=False)
    with doc.transaction():
        # From the end, so that earlier positions stay valid. pycrdt counts positions in
        # UTF-8 bytes, the diff in characters.
        for operation, start, end, new_start, new_end in reversed(matcher.get_opcodes()):
            if operation == "equal":
                continue
            byte_start = len(current[:start].encode())
            if end > start:
                del text[byte_start : byte_start + len(current[start:end].encode())]
            if new_end > new_start:
                text.insert(byte_start, new_text[new_start:new_end])
    change = doc.get_update(before)
    append_update(note.id, change, {actor.id})
    return change


def append_paragraph(note: Note, paragraph: str, actor: User) -> bytes:
    """Add a paragraph at the end of a note as one logged change; return the update."""
    doc = _document_of(note)
    text = doc.get(TEXT_NAME, type=Text)
    current = str(text)
    if not current or current.endswith("\n\n"):
        separator = ""
    else:
        separator = "\n" if current.endswith("\n") else "\n\n"
    before = doc.get_state()
    text += separator + paragraph.strip("\n") + "\n"
    change = doc.get_update(before)
    append_update(note.id, change, {actor.id})
    return change


def contributor_names(versions: list[NoteVersion]) -> dict[int, str]:
    """Return the display names of everyone who contributed to these versions."""
    ids = {user_id for version in versions for user_id in (version.contributors or [])}
    if not ids:
        return {}
    users = db.session.scalars(select(User).where(User.id.in_(ids)))
    return {user.id: user.display_name for user in users}
