"""Live co-editing of notes over the y-socket.io protocol (DESIGN.md, "Live co-editing").

Each note is the Socket.IO namespace `/yjs|note-<id>`. A client sends `sync-step-1` (its
state vector; the ack returns what it lacks), `sync-update` (its edits) and
`awareness-update` (cursors); the server sends its own `sync-step-1` on connection so the
client returns what the server lacks. Accepted updates are committed to the note's log
before anyone else receives them; each room gathers what arrives while it logs and sends
its last batch, commits it in one transaction, and broadcasts it as one merged update
(group commit).
docs/live-protocol.md describes the protocol, the limits and the error events.
"""

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import chain

from flask import current_app, request, session
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from pycrdt import Doc, Text, merge_updates
from sqlalchemy import select

from cop.auth.services import api_token_for, authenticated_by_api_token
from cop.core.permissions import Verdict, membership_of, note_verdict
from cop.extensions import db, socketio
from cop.live.cursors import SharedCursors, latest_entries
from cop.live.encoding import (
    AwarenessEntry,
    MalformedMessage,
    Run,
    UpdateSummary,
    decode_awareness,
    decode_state_vector,
    encode_awareness,
    summarise_update,
)
from cop.live.identity import lasting_users, memberships_of
from cop.notes import services
from cop.notes.models import Note

log = logging.getLogger(__name__)

NAMESPACE = re.compile(r"^/yjs\|note-(\d+)$")
EMPTY_UPDATE = b"\x00\x00"  # no structs, no deletions: what a client sends when it lacks nothing
ALLOWED_CONTENT = {"string", "deleted", "format", "embed"}
# A busy note's activity time (which orders the community's notes) is written this often.
MARK_ACTIVE_EVERY_SECONDS = 10
# The rights check lets other work run after checking this many sockets.
RIGHTS_CHECKED_AT_ONCE = 20
# Updates the database refused are offered to it again after this long.
LOG_RETRY_SECONDS = 1
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#ff7f0e",
    "#0b5cad",
    "#a3261b",
)


@dataclass
class Connection:
    """One socket following one note, with the identity the server gives it."""

    sid: str
    namespace: str
    note_id: int
    user_id: int
    locale: str
    can_write: bool
    identity: dict
    session_nonce: str | None = None  # the cookie's, for a socket opened with one
    api_token_id: int | None = None  # the token's, for a socket opened with one
    login_id: str | None = None
    client_id: int | None = None  # the awareness client id this socket speaks for
    allowance: float = 0.0
    allowance_at: float = field(default_factory=time.monotonic)

    def take_token(self, rate: int) -> bool:
        """Spend one update from a bucket refilled at `rate` per second."""
        now = time.monotonic()
        self.allowance = min(rate, self.allowance + (now - self.allowance_at) * rate)
        self.allowance_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True


class Room:
    """One note's live state in this process: a cache of the document and what waits to go out."""

    def __init__(self, note_id: int):
        self.note_id = note_id
        self.namespace = f"/yjs|note-{note_id}"
        self.lock = threading.Lock()
        self.applied_seq = -1  # the last logged update this cache has applied; -1: none loaded
        self.new_document()
        self.pending_updates: list[tuple[bytes, int, str]] = []  # (update, user id, sid)
        self.pending_awareness: dict[int, AwarenessEntry] = {}
        self.awareness: dict[int, AwarenessEntry] = {}
        self.sids: set[str] = set()
        self.flusher_running = False
        # The flusher waits for `work_arrived`, or for a compaction to be due. Only then is the
        # event set: setting it on every change measured more CPU in a busy note.
        self.flusher_idle = False
        self.work_arrived = threading.Event()
        self.window_started_at = 0.0  # when the last broadcast's window began (monotonic)
        self.last_update_at = 0.0
        self.last_compaction_at = time.monotonic()
        self.needs_compaction = False
        self.logging_failed = False  # the database refused the last batch's updates
        # When this process last wrote the note's activity time (time.monotonic()).
        self.marked_active_at = -MARK_ACTIVE_EVERY_SECONDS
        # The database's document as of the last compaction (not this cache, which runs ahead).
        self.compacted = services.CompactedDocument()

    def new_document(self) -> None:
        """Start the cache afresh: an empty document, with nothing known or waiting."""
        self.doc = Doc()
        self.text = self.doc.get(services.TEXT_NAME, type=Text)
        # The document's state vector (each client's next clock). An update that Yjs
        # integrates whole moves it to the end of the update's runs; only after any other
        # is the document's own vector read, which costs more (see apply).
        self.state_vector: dict[int, int] = {}
        # Clients some of whose structs Yjs may keep aside, with the clock they reach: once
        # the state vector gets there, nothing of theirs waits any more.
        self.held_back: dict[int, int] = {}
        # Runs of structs with text that Yjs keeps aside until what they build on arrives,
        # by client: their text is not in `self.text` yet, but counts against the note's
        # size limit.
        self.waiting: dict[int, set[Run]] = {}
        self.waiting_bytes = 0
        # An upper bound of the text's UTF-8 bytes: the last measure plus every insertion
        # applied since. Measuring takes a pycrdt transaction, 3 % of a busy note's CPU.
        self.text_bytes_at_most = 0
        # The ids of the document's text that hold the second half of a character (see
        # UpdateSummary.splits_a_character).
        self.second_halves: set[tuple[int, int]] = set()

    def catch_up(self) -> None:
        """Apply what the database holds that this cache lacks (other processes' edits)."""
        state, state_seq, rows = services.read_state_and_log(self.note_id, self.applied_seq)
        updates = [row.update for row in rows]
        if self.applied_seq < state_seq and state:
            updates.insert(0, state)
        summaries = [summary_of_logged(update) for update in updates]
        with self.lock:
            # What the log holds aside counts once, when the note is opened; later, the
            # process whose client sent it counts it.
            opening = self.applied_seq == -1
            applied = 0
            try:
                for update in updates:
                    self.doc.apply_update(update)
                    applied += 1
            finally:
                self.text_bytes_at_most = len(self.text)
                # An update that pycrdt refused may have left some of itself aside too.
                tried = [summary for summary in summaries[: applied + 1] if summary is not None]
                self._take_stock(tried, count_waiting=opening)
            self.applied_seq = max(self.applied_seq, state_seq, rows[-1].seq if rows else 0)

    def apply(self, update: bytes, summary: UpdateSummary | None) -> None:
        """Apply an update to the cache, keeping its state vector and what waits.

        `summary` is the update's, or None for one from the database that cop cannot read.
        Call with the lock held. pycrdt may raise, even a panic deriving from BaseException.
        """
        whole = summary is not None and self._integrates_whole(summary)
        try:
            self.doc.apply_update(update)
        except BaseException:  # it may have left some of itself aside
            self.text_bytes_at_most = len(self.text)
            self._take_stock([summary] if summary is not None else [])
            raise
        if summary is None:
            self.text_bytes_at_most = len(self.text)
            self._take_stock([])
            return
        self.text_bytes_at_most += summary.inserted_bytes
        if not whole:
            self._take_stock([summary])
            return
        for run in summary.runs:
            self.state_vector[run.client] = run.end
        if summary.second_halves:
            self.second_halves |= summary.second_halves

    def _integrates_whole(self, summary: UpdateSummary) -> bool:
        """Tell whether Yjs integrates all of an update at once, and nothing else with it.

        So it does, as for nearly every edit, when it keeps nothing aside that the update
        could complete, each run of the update starts at its client's clock, and every item
        the update inserts next to is known already. Knowing it saves reading the state
        vector after the update (a pycrdt observer, or the whole vector: a tenth of the
        CPU an edit costs a busy note).
        """
        if self.held_back or summary.has_parent_by_id:
            return False
        known = self.state_vector
        for run in summary.runs:  # loops rather than all(): this runs for every edit
            if run.first != known.get(run.client, 0):
                return False
        for client, clock in chain(summary.origins, summary.right_origins):
            if clock >= known.get(client, 0):
                return False
        return True

    def _take_stock(self, summaries: list[UpdateSummary], count_waiting: bool = True) -> None:
        """After applying updates: read the state vector, and keep what Yjs left aside.

        The runs of `summaries` not integrated are held back; those with text also count
        as waiting if `count_waiting`. Runs that the new state vector reaches wait no more.
        """
        self.state_vector = {
            client: clock
            for client, clock in decode_state_vector(self.doc.get_state()).items()
            if clock  # yrs may name a client it holds nothing of
        }
        known = self.state_vector
        for summary in summaries:
            self.second_halves |= summary.second_halves
            for run in summary.runs:
                if known.get(run.client, 0) >= run.end:
                    continue
                self.held_back[run.client] = max(self.held_back.get(run.client, 0), run.end)
                if count_waiting and run.text_bytes:
                    runs = self.waiting.setdefault(run.client, set())
                    if run not in runs:  # two clients opening the note load the same runs
                        runs.add(run)
                        self.waiting_bytes += run.text_bytes
        for client, end in list(self.held_back.items()):
            if known.get(client, 0) >= end:
                del self.held_back[client]
        for client, runs in list(self.waiting.items()):
            for run in [run for run in runs if run.end <= known.get(client, 0)]:
                runs.remove(run)
                self.waiting_bytes -= run.text_bytes
            if not runs:
                del self.waiting[client]


def summary_of_logged(update: bytes) -> UpdateSummary | None:
    """Summarise an update read from the log (or a note's state); None if cop cannot read it."""
    try:
        return summarise_update(update)
    except MalformedMessage:  # never logged by cop; a database edited by hand, say
        log.warning("a logged update could not be read", exc_info=True)
        return None


class LiveNotes:
    """The rooms and connections of one app in this process, and the app's live limits."""

    def __init__(self, app):
        self.app = app
        config = app.config
        self.max_update_bytes = config["LIVE_MAX_UPDATE_BYTES"]
        self.max_note_bytes = config["LIVE_MAX_NOTE_BYTES"]
        self.max_awareness_bytes = config["LIVE_MAX_AWARENESS_BYTES"]
        self.max_updates_per_second = config["LIVE_MAX_UPDATES_PER_SECOND"]
        # With several processes (REDIS_URL), joining clients see the others' cursors too.
        self.shared_cursors = (
            SharedCursors(config["REDIS_URL"], config["SOCKETIO_CHANNEL"])
            if config["REDIS_URL"]
            else None
        )
        self.log = services.LiveLog(in_background=in_an_os_thread)
        self.rooms: dict[int, Room] = {}
        self.connections: dict[str, Connection] = {}
        self.lock = threading.Lock()
        self.watching_rights = False

    def room(self, note_id: int) -> Room:
        """Return the room of a note, creating it on first use."""
        with self.lock:
            if note_id not in self.rooms:
                self.rooms[note_id] = Room(note_id)
            return self.rooms[note_id]


def in_an_os_thread(job: Callable[[], None]) -> None:
    """Start `job` in a thread of the operating system's, and do not wait for it.

    For work that blocks on the disk and touches none of the event loop's objects (a SQLite
    checkpoint): a green thread would hold up the whole event loop meanwhile.
    """
    mode = socketio.server.eio.async_mode
    if mode == "eventlet":
        from eventlet import tpool

        socketio.start_background_task(tpool.execute, job)
    elif mode == "gevent":
        import gevent

        gevent.get_hub().threadpool.spawn(job)
    else:
        socketio.start_background_task(job)  # already a thread of the system's


def let_others_run() -> None:
    """Let the process's other green threads run (between the steps of long work)."""
    socketio.sleep(0)


def live() -> LiveNotes:
    """Return this app's live notes registry."""
    return current_app.extensions["cop_live_notes"]


def init_app(app) -> None:
    """Give the app its live notes registry and bind the y-socket.io events to its server.

    `connect` and `disconnect` go through Flask-SocketIO (below), which runs them in a Flask
    request context: the session cookie and the handshake headers are needed there. The three
    events that carry the editing traffic are bound to the python-socketio server directly,
    because a request context per event (the cookie opened again, the URL routed) was the
    largest cost of a busy note (docs/performance.md). They find the identity in the
    socket's `Connection` and enter an app context only for the rare work that needs one.
    """
    registry = LiveNotes(app)
    app.extensions["cop_live_notes"] = registry
    # Bound here rather than by decorators: a decorator binds to the Socket.IO server that
    # exists when the module is first imported, and each app (each test) gets a new one.
    socketio.on_event("connect", on_connect, namespace="*")
    socketio.on_event("disconnect", on_disconnect, namespace="*")
    for event, handler in (
        ("sync-step-1", on_sync_step_1),
        ("sync-update", on_sync_update),
        ("awareness-update", on_awareness_update),
    ):
        socketio.server.on(event, partial(handler, registry), namespace="*")


def identity_of(user, membership) -> dict:
    """Return the name, colours and organisation shown for a person's cursor and presence."""
    colour = COLOURS[user.id % len(COLOURS)]
    organisation = membership.organisation if membership else None
    return {
        "name": user.display_name,
        "color": colour,
        "colorLight": colour + "33",
        "organisation": organisation.name if organisation else None,
    }


# --- Connecting -----------------------------------------------------------------------


def on_connect(auth=None):
    """Admit a member of the note's community (cookie or API token), then sync with them."""
    if request.namespace == "/":
        return True  # the default namespace carries nothing; live documents have their own
    match = NAMESPACE.match(request.namespace or "")
    if not match:
        return False
    note = db.session.get(Note, int(match.group(1)))
    user = current_user._get_current_object() if current_user.is_authenticated else None
    secret = None
    if authenticated_by_api_token():  # an `Authorization: Bearer` handshake header
        user, secret = None, request.headers["Authorization"].partition(" ")[2].strip()
    elif user is None and isinstance(auth, dict) and isinstance(auth.get("token"), str):
        secret = auth["token"]
    by_cookie = user is not None
    token = None
    if secret is not None:
        token = api_token_for(secret)
        user = token.user if token is not None else None
        db.session.commit()
    if note is None or user is None:
        return False
    membership = membership_of(user, note.community)
    if note_verdict(user, note, write=False, membership=membership) is not Verdict.ALLOWED:
        return False
    can_write = note_verdict(user, note, write=True, membership=membership) is Verdict.ALLOWED
    registry = live()
    sid = request.sid
    registry.connections[sid] = Connection(
        sid=sid,
        namespace=request.namespace,
        note_id=note.id,
        user_id=user.id,
        locale=user.locale or "en",
        can_write=can_write,
        identity=identity_of(user, membership),
        allowance=registry.max_updates_per_second,
        session_nonce=user.session_nonce if by_cookie else None,
        login_id=session.get("login_id") if by_cookie else None,
        api_token_id=token.id if token is not None else None,
    )
    watch_rights(registry)
    room = registry.room(note.id)
    room.catch_up()
    with room.lock:
        room.sids.add(sid)
        state_vector = room.doc.get_state()
        # Withdrawn cursors too: a client that comes back learns that its old state was
        # withdrawn, and y-protocols then announces it again with a newer clock.
        present = list(room.awareness.values())
    if registry.shared_cursors is not None:
        present = latest_entries(registry.shared_cursors.load(note.id), present)
    namespace = request.namespace

    def receive_missing(update=None):
        if isinstance(update, (bytes, bytearray)):
            accept_update(registry, sid, namespace, bytes(update))

    socketio.emit(
        "sync-step-1", state_vector, to=sid, namespace=namespace, callback=receive_missing
    )
    if present:
        socketio.emit("awareness-update", encode_awareness(present), to=sid, namespace=namespace)
    return True


def on_disconnect(*_reason):
    """Forget the socket, withdraw its cursor, and compact the note when the room empties."""
    registry = live()
    connection = registry.connections.pop(request.sid, None)
    if connection is None:
        return
    room = registry.rooms.get(connection.note_id)
    if room is None:
        return
    with room.lock:
        room.sids.discard(connection.sid)
        if connection.client_id is not None and connection.client_id in room.awareness:
            previous = room.awareness[connection.client_id]
            gone = AwarenessEntry(connection.client_id, previous.clock + 1, None)
            room.awareness[connection.client_id] = gone
            room.pending_awareness[connection.client_id] = gone
        empty = not room.sids
    ensure_flusher(registry, room)
    if empty:
        room.needs_compaction = True


# --- Syncing --------------------------------------------------------------------------


def connection_for(registry: LiveNotes, namespace: str, sid: str) -> Connection | None:
    """Return the socket's connection, if it belongs to this namespace's note."""
    connection = registry.connections.get(sid)
    if connection is None or connection.namespace != namespace:
        return None
    return connection


def on_sync_step_1(registry: LiveNotes, namespace: str, sid: str, state_vector=None, *_rest):
    """Answer a client's state vector with the update it lacks (the ack)."""
    connection = connection_for(registry, namespace, sid)
    if connection is None or not isinstance(state_vector, (bytes, bytearray)):
        return None
    room = registry.room(connection.note_id)
    with registry.app.app_context():
        room.catch_up()
    with room.lock:
        try:
            return room.doc.get_update(bytes(state_vector))
        except BaseException as error:  # noqa: BLE001 - a pycrdt panic is a BaseException
            if not services.is_pycrdt_refusal(error):
                raise
            log.info("refused a malformed state vector on %s", namespace)
            return room.doc.get_update()


def on_sync_update(registry: LiveNotes, namespace: str, sid: str, update=None, *_rest):
    """Accept a client's edit, if it may write and the update is sound."""
    if isinstance(update, (bytes, bytearray)):
        accept_update(registry, sid, namespace, bytes(update))
    else:
        connection = connection_for(registry, namespace, sid)
        if connection is not None:
            refuse(registry, connection, "malformed_update")


MESSAGES = {
    "read_only": lambda: _("You can read this note but not change it."),
    "update_too_large": lambda: _("This change is too large to be sent at once."),
    "note_too_large": lambda: _("The note has reached its maximum length."),
    "rate_limited": lambda: _("Too many changes too quickly: some were not saved. Wait a moment."),
    "malformed_update": lambda: _("A change could not be read and was not saved."),
    "wrong_type": lambda: _("This change does not fit a text note and was not saved."),
    "awareness_too_large": lambda: _("Your cursor information is too large."),
    "malformed_awareness": lambda: _("Your cursor information could not be read."),
}


def refuse(registry: LiveNotes, connection: Connection, code: str) -> None:
    """Tell one client, in its language, why what it sent was refused."""
    with registry.app.app_context(), force_locale(connection.locale):
        message = MESSAGES[code]()
    socketio.server.emit(
        "note-error",
        {"error": code, "message": message},
        to=connection.sid,
        namespace=connection.namespace,
    )


def accept_update(registry: LiveNotes, sid: str, namespace: str, update: bytes) -> None:
    """Check an update against the rights and limits, apply it to the cache and queue it."""
    connection = connection_for(registry, namespace, sid)
    if connection is None or update == EMPTY_UPDATE:
        return
    if not connection.can_write:
        return refuse(registry, connection, "read_only")
    if len(update) > registry.max_update_bytes:
        return refuse(registry, connection, "update_too_large")
    if not connection.take_token(registry.max_updates_per_second):
        return refuse(registry, connection, "rate_limited")
    try:
        summary = summarise_update(update)
    except MalformedMessage:
        return refuse(registry, connection, "malformed_update")
    if (
        summary.root_names - {services.TEXT_NAME}
        or summary.content_kinds - ALLOWED_CONTENT
        or summary.has_parent_by_id
        or summary.has_map_entries_on_root
    ):
        return refuse(registry, connection, "wrong_type")
    room = registry.room(connection.note_id)
    with room.lock:
        if summary.splits_a_character(room.state_vector, room.second_halves):
            return refuse(registry, connection, "malformed_update")
        # pycrdt measures text in UTF-8 bytes, like the limit; the bound decides when it can.
        size = room.text_bytes_at_most + room.waiting_bytes + summary.inserted_bytes
        if size > registry.max_note_bytes:
            room.text_bytes_at_most = len(room.text)
            size = room.text_bytes_at_most + room.waiting_bytes + summary.inserted_bytes
        if size > registry.max_note_bytes:
            return refuse(registry, connection, "note_too_large")
        try:
            room.apply(update, summary)
        except BaseException as error:  # noqa: BLE001 - a pycrdt panic is a BaseException
            if not services.is_pycrdt_refusal(error):
                raise
            log.warning("pycrdt refused an update on %s", namespace, exc_info=True)
            return refuse(registry, connection, "malformed_update")
        room.pending_updates.append((update, connection.user_id, sid))
        room.last_update_at = time.monotonic()
    ensure_flusher(registry, room)


def on_awareness_update(registry: LiveNotes, namespace: str, sid: str, message=None, *_rest):
    """Relay a client's cursor and presence, with the name and colour the server knows."""
    connection = connection_for(registry, namespace, sid)
    if connection is None:
        return
    if not isinstance(message, (bytes, bytearray)):
        return refuse(registry, connection, "malformed_awareness")
    try:
        entries = decode_awareness(bytes(message))
    except MalformedMessage:
        return refuse(registry, connection, "malformed_awareness")
    if connection.client_id is None and len(entries) == 1:
        claim_client_id(registry, connection, entries[0].client_id)
    # The provider echoes everyone's cursors back: only this socket's own entry counts.
    own = [entry for entry in entries if entry.client_id == connection.client_id]
    if any(
        entry.state is not None and len(encode_awareness([entry])) > registry.max_awareness_bytes
        for entry in own
    ):
        return refuse(registry, connection, "awareness_too_large")
    room = registry.room(connection.note_id)
    with room.lock:
        for entry in own:
            known = room.awareness.get(entry.client_id)
            if known is not None and entry.clock <= known.clock:
                continue  # nothing new: relaying it again would only make echoes
            if entry.state is not None:
                entry.state["user"] = dict(connection.identity)
            room.awareness[entry.client_id] = entry
            room.pending_awareness[entry.client_id] = entry
    ensure_flusher(registry, room)


def claim_client_id(registry: LiveNotes, connection: Connection, client_id: int) -> None:
    """Bind the socket to the awareness client id of its first own message, if nobody has it."""
    if all(other.client_id != client_id for other in registry.connections.values()):
        connection.client_id = client_id


# --- Group commit, broadcast, compaction -----------------------------------------------


def ensure_flusher(registry: LiveNotes, room: Room) -> None:
    """Start the room's flusher unless it runs already; wake it if it waits for work."""
    with room.lock:
        if room.flusher_running:
            if room.flusher_idle:
                room.flusher_idle = False
                room.work_arrived.set()
            return
        room.flusher_running = True
    socketio.start_background_task(flush_loop, registry, room)


def flush_loop(registry: LiveNotes, room: Room) -> None:
    """Commit and broadcast a room's pending updates, batch by batch; compact when idle.

    A change that finds the room quiet goes out at once, with whatever the process read in
    the same turn of its event loop. What arrives while a broadcast is logged and sent goes
    out together in the next one, so a busy room's batches grow by themselves with the load
    (there is no timer to wait for). A window (LIVE_GROUP_COMMIT_SECONDS, or the room's
    clients divided by LIVE_ROOM_DELIVERIES_PER_SECOND) spaces the broadcasts further: each
    costs a send per client, and fewer, larger ones trade latency for CPU.
    """
    app = registry.app
    idle = app.config["LIVE_COMPACT_AFTER_IDLE_SECONDS"]
    longest = app.config["LIVE_COMPACT_AT_LEAST_EVERY_SECONDS"]
    try:
        # One app context for the flusher's life rather than one per batch (4 to 6 µs each,
        # a batch every few milliseconds in a busy note). What opens a database session
        # ends it: catch_up_for_waiting, compact.
        with app.app_context():
            while True:
                if room.logging_failed:
                    socketio.sleep(LOG_RETRY_SECONDS)
                else:
                    window = broadcast_window(app.config, len(room.sids))
                    # Without a window, this only lets the event loop read what has arrived.
                    socketio.sleep(max(0.0, room.window_started_at + window - time.monotonic()))
                started = time.monotonic()
                # Before the batch is logged, which the sender may see: what it builds on
                # then counts against the note's size limit when the sender's next edit comes.
                if room.waiting:
                    catch_up_for_waiting(room)
                if flush(registry, room):
                    room.window_started_at = started  # a pass that sent nothing opens no window
                now = time.monotonic()
                quiet = now - room.last_update_at >= idle
                overdue = now - room.last_compaction_at >= longest
                if room.needs_compaction and (quiet or overdue or not room.sids):
                    compact(room, pause=partial(send_between_steps, registry, room))
                with room.lock:
                    # What arrived meanwhile (while the log committed on PostgreSQL, or in a
                    # compaction's pauses) goes out now; anything later wakes the flusher.
                    if room.pending_updates or room.pending_awareness:
                        continue
                    if not room.needs_compaction:
                        room.flusher_running = False
                        if not room.sids:
                            registry.rooms.pop(room.note_id, None)
                        return
                    # Nothing to send: wait for a change, or for the compaction to be due.
                    room.flusher_idle = True
                    room.work_arrived.clear()
                    now = time.monotonic()
                    due = min(room.last_update_at + idle, room.last_compaction_at + longest)
                room.work_arrived.wait(max(0.0, due - now))
                room.flusher_idle = False
    except BaseException:
        with room.lock:
            room.flusher_running = False
            room.flusher_idle = False
        log.exception("the flusher of note %s stopped", room.note_id)
        raise


def send_between_steps(registry: LiveNotes, room: Room) -> None:
    """Let other work run, then log and send what the room's clients wrote meanwhile.

    The flusher's pause between the steps of a compaction, which takes tens of milliseconds
    in a busy note: what the clients wrote during one waited for its end, and made the
    slowest hundredth of deliveries (docs/performance.md). Nothing is sent while the
    database refuses the log, before the room's window allows, or while something waits
    for a catch-up (which would end the session the compaction reads with).
    """
    let_others_run()
    window = broadcast_window(registry.app.config, len(room.sids))
    if room.logging_failed or room.waiting or time.monotonic() < room.window_started_at + window:
        return
    started = time.monotonic()
    if flush(registry, room):
        room.window_started_at = started


def broadcast_window(config: Mapping[str, float], clients: int) -> float:
    """Return the least time between two broadcasts of a room with this many clients (0: none).

    The shortest is LIVE_GROUP_COMMIT_SECONDS; LIVE_ROOM_DELIVERIES_PER_SECOND, if set, widens
    a crowded room's window so that it sends its clients about that many messages a second.
    """
    shortest = config["LIVE_GROUP_COMMIT_SECONDS"]
    deliveries_per_second = config["LIVE_ROOM_DELIVERIES_PER_SECOND"]
    if not deliveries_per_second:
        return shortest
    return max(shortest, clients / deliveries_per_second)


def flush(registry: LiveNotes, room: Room) -> bool:
    """Log the pending updates merged, as one row, then broadcast that row to the room.

    Updates the database does not take are not broadcast: they wait, in order, for the next
    attempt (`room.logging_failed` makes the flusher wait longer before it).
    """
    with room.lock:
        updates, room.pending_updates = room.pending_updates, []
        awareness, room.pending_awareness = room.pending_awareness, {}
    if updates:
        merged = merge_updates(*[u for u, _, _ in updates]) if len(updates) > 1 else updates[0][0]
        now = time.monotonic()
        mark_active = now - room.marked_active_at >= MARK_ACTIVE_EVERY_SECONDS
        try:
            registry.log.append(room.note_id, merged, {user for _, user, _ in updates}, mark_active)
        except Exception:
            log.exception("could not log %d updates of note %s", len(updates), room.note_id)
            with room.lock:
                room.pending_updates[:0] = updates
            room.logging_failed = True
        else:
            room.logging_failed = False
            if mark_active:
                room.marked_active_at = now
            # applied_seq is left to catch_up(): other processes may have logged updates
            # between this cache's last catch-up and these, and jumping past them would
            # hide them.
            room.needs_compaction = True
            senders = {sid for _, _, sid in updates}
            skip = senders.pop() if len(senders) == 1 else None
            socketio.server.emit("sync-update", merged, namespace=room.namespace, skip_sid=skip)
    if awareness:
        entries = list(awareness.values())
        message = encode_awareness(entries)
        socketio.server.emit("awareness-update", message, namespace=room.namespace)
        if registry.shared_cursors is not None:
            registry.shared_cursors.store(room.note_id, entries)
    return bool(updates or awareness)


def catch_up_for_waiting(room: Room) -> None:
    """Give the room's waiting updates what they wait for, if the database has it.

    In several processes, what a client builds on may be another process's edit: that
    process logged it before broadcasting it, so it is in the database, not in this cache.
    """
    try:
        room.catch_up()
    except BaseException as error:  # noqa: BLE001 - a pycrdt panic must not stop the flusher
        if not services.is_pycrdt_refusal(error):
            raise
        log.exception("could not catch up note %s with the database", room.note_id)
    finally:
        db.session.remove()  # its read ends here: the flusher's app context lives on


def compact(room: Room, pause: Callable[[], None] = let_others_run) -> None:
    """Merge the note's log into its state and text (and keep a version after a burst).

    The read and the merge call `pause` between their steps, so that a busy note's clients
    are not held up while they run; only the writes at the end block: the state and text,
    then apart from them the log rows they hold. The flusher's `pause` also sends what the
    clients wrote meanwhile; a batch logged during the compaction asks for the next one.
    """
    room.needs_compaction = False
    try:
        compaction = services.prepare_compaction(room.note_id, pause=pause, document=room.compacted)
        if compaction is not None:
            stored = services.store_compaction(compaction, delete_log=False)
            db.session.commit()
            if stored is not None:
                pause()
                services.delete_compacted_log(compaction.note_id, compaction.last_seq)
                db.session.commit()
    except Exception:
        room.needs_compaction = True
        db.session.rollback()
        log.exception("could not compact note %s", room.note_id)
        return
    finally:
        db.session.remove()  # the flusher's app context lives on
    room.last_compaction_at = time.monotonic()


def flush_everything(app) -> None:
    """Commit and compact every room of this process (at shutdown)."""
    registry = app.extensions.get("cop_live_notes")
    if registry is None:
        return
    with app.app_context():
        for room in list(registry.rooms.values()):
            flush(registry, room)
            compact(room)
        registry.log.close()


def broadcast_update(note_id: int, update: bytes) -> None:
    """Send a change made outside the live protocol (a restored version) to every client.

    The change is already committed to the note's log; this process's cache takes it too.
    """
    registry = live()
    room = registry.rooms.get(note_id)
    if room is not None:
        with room.lock:
            room.apply(update, summary_of_logged(update))
        room.needs_compaction = True
        ensure_flusher(registry, room)
    socketio.emit("sync-update", update, namespace=f"/yjs|note-{note_id}")


# --- Rights that change while a socket is open ------------------------------------------


def watch_rights(registry: LiveNotes) -> None:
    """Start, once per app and process, the task that re-checks every open socket's rights."""
    with registry.lock:
        if registry.watching_rights:
            return
        registry.watching_rights = True
    socketio.start_background_task(_watch_rights_loop, current_app._get_current_object(), registry)


def _watch_rights_loop(app, registry: LiveNotes) -> None:
    while True:
        socketio.sleep(app.config["LIVE_RIGHTS_CHECK_SECONDS"])
        with app.app_context():
            try:
                check_rights(registry)
            except Exception:
                log.exception("could not re-check the rights of live sockets")
            finally:
                db.session.remove()


def check_rights(registry: LiveNotes) -> None:
    """Disconnect sockets whose person logged out, left, or lost the right to read the note.

    A change of role or a lock takes effect too: writing is re-decided for every socket.
    """
    connections = list(registry.connections.values())
    if not connections:
        return
    # A crowded note's check takes milliseconds: its edits go through between the steps.
    users = lasting_users(connections, let_others_run)
    let_others_run()
    notes = {
        note.id: note
        for note in db.session.scalars(
            select(Note).where(Note.id.in_({c.note_id for c in connections}))
        )
    }
    let_others_run()
    memberships = memberships_of(
        {(c.user_id, notes[c.note_id].community_id) for c in connections if c.note_id in notes}
    )
    for index, (connection, user) in enumerate(zip(connections, users, strict=True)):
        if index % RIGHTS_CHECKED_AT_ONCE == 0:
            let_others_run()
        note = notes.get(connection.note_id)
        allowed = user is not None and note is not None
        if allowed:
            membership = memberships.get((user.id, note.community_id))
            allowed = note_verdict(user, note, False, membership) is Verdict.ALLOWED
            connection.can_write = (
                allowed and note_verdict(user, note, True, membership) is Verdict.ALLOWED
            )
        if not allowed:
            socketio.server.disconnect(connection.sid, namespace=f"/yjs|note-{connection.note_id}")
