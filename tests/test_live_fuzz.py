"""Fuzzing the live notes: what the server reads from clients, in process and over the wire.

In process, hypothesis feeds `summarise_update` and `decode_awareness` random bytes and
mutated real messages: they return or raise MalformedMessage, never anything else, never
hang, and an update they call "text only" really is text only once pycrdt applies it.

Against a real server, one participant sends hypothesis-made `sync-update` and
`awareness-update` payloads while another writes valid edits: every refused payload leaves
the stored note byte-identical, every accepted one is logged exactly as sent and keeps the
note a text note, cursors never carry a name the server did not give, and the worker stays
up. Examples are derandomized, so a run in CI replays the same ones.
"""

import random
import re
import signal
from contextlib import contextmanager

import pytest
import requests
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, merge_updates

from cop.communities.models import Role
from cop.extensions import db
from cop.live.encoding import (
    AwarenessEntry,
    MalformedMessage,
    UpdateSummary,
    decode_awareness,
    decode_state_vector,
    encode_awareness,
    summarise_update,
    var_string,
    var_uint,
)
from cop.live.notes import ALLOWED_CONTENT, EMPTY_UPDATE, Room, summary_of_logged
from cop.notes import services
from cop.notes.models import Note
from tests.live_client import YClient, wait_for
from tests.test_live_notes import LiveWorld
from tests.test_server import start_server  # noqa: F401 - the fixture

IN_PROCESS = settings(max_examples=400, deadline=None, derandomize=True, database=None)
AGAINST_A_SERVER = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
DECODE_LIMIT = 5  # seconds one decoding may take before it counts as a hang


# --- Strategies -------------------------------------------------------------------------

CLIENT_IDS = st.integers(0, 2**53 - 1)  # drawn, so that every example replays the same bytes
short_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def char_to_byte_index(text: Text, fraction: float) -> int:
    """Return a UTF-8 byte index of a character boundary in the text (pycrdt counts bytes)."""
    value = str(text)
    return len(value[: int(fraction * len(value))].encode())


def apply_operation(doc: Doc, operation: tuple) -> None:
    """Change a document in one of the ways a Yjs application could."""
    text = doc.get("markdown", type=Text)
    kind, fraction, words = operation
    if kind == "insert":
        text.insert(char_to_byte_index(text, fraction), words or "x")
    elif kind == "delete" and len(text):
        start = char_to_byte_index(text, fraction)
        end = char_to_byte_index(text, min(1.0, fraction + 0.3))
        if end > start:
            del text[start:end]
    elif kind == "format" and len(text):
        text.format(0, char_to_byte_index(text, fraction) or len(text), {"bold": True})
    elif kind == "formatted":
        text.insert(char_to_byte_index(text, fraction), words or "y", {"em": True})
    elif kind == "embed":  # at the very end, so that str(text) positions stay exact
        text.insert_embed(len(text), {"image": words})
    elif kind == "map":
        doc.get("other", type=Map)[words or "key"] = fraction
    elif kind == "nested":
        doc.get("other", type=Map)["nested"] = Text(words)
    elif kind == "array":
        doc.get("list", type=Array).append(words)
    elif kind == "subdoc":
        doc.get("other", type=Map)["sub"] = Doc(guid="00000000-0000-4000-8000-000000000000")


TEXT_OPERATIONS = ("insert", "delete", "format", "formatted", "embed")
OTHER_OPERATIONS = ("map", "nested", "array", "subdoc")
operation = st.tuples(
    st.sampled_from(TEXT_OPERATIONS + OTHER_OPERATIONS),
    st.floats(0, 1),
    short_text,
)


def fresh_client_id() -> int:
    """Return a client id no other update of this run uses (6 bytes as a var_uint, always).

    Honest Yjs clients never share an id; ids far apart keep a flipped bit from landing on
    another update's id (test_updates_reusing_a_client_id_... shows why that matters).
    """
    fresh_client_id.count += 1
    return 2**40 + random.Random(fresh_client_id.count).getrandbits(40)


fresh_client_id.count = 0


@st.composite
def real_updates(draw, operations=operation, max_operations=6, fresh_ids=False) -> bytes:
    """Return a real pycrdt update: a whole document, or the change of its last operations."""
    doc = Doc(client_id=fresh_client_id() if fresh_ids else draw(CLIENT_IDS))
    done = draw(st.lists(operations, max_size=max_operations))
    for each in done:
        apply_operation(doc, each)
    before = doc.get_state()
    for each in draw(st.lists(operations, min_size=1, max_size=3)):
        apply_operation(doc, each)
    return doc.get_update(before) if draw(st.booleans()) else doc.get_update()


text_updates = real_updates(
    operations=st.tuples(st.sampled_from(TEXT_OPERATIONS), st.floats(0, 1), short_text)
)


@st.composite
def mutated(draw, messages) -> bytes:
    """Return a real message with a few bytes flipped, set, cut, added or removed."""
    data = bytearray(draw(messages))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "remove"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x04, 0x08, 0x77]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=8))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "remove":
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | short_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(short_text, children),
    max_leaves=8,
)
awareness_states = st.none() | st.dictionaries(short_text, json_values, max_size=4)


@st.composite
def awareness_messages(draw, client_ids=CLIENT_IDS) -> bytes:
    entries = [
        AwarenessEntry(draw(client_ids), draw(st.integers(0, 2**32)), draw(awareness_states))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return encode_awareness(entries)


# --- In process -------------------------------------------------------------------------


class Hang(Exception):
    """A decoder ran past DECODE_LIMIT."""


@contextmanager
def watchdog(seconds: float = DECODE_LIMIT):
    """Raise Hang in the main thread if the block runs longer than `seconds`."""

    def expire(_signum, _frame):
        raise Hang(f"still decoding after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def text_only(summary: UpdateSummary) -> bool:
    """Tell whether the server's rule lets an update with this summary into a note."""
    return not (
        summary.root_names - {services.TEXT_NAME}
        or summary.content_kinds - ALLOWED_CONTENT
        or summary.has_parent_by_id
        or summary.has_map_entries_on_root
    )


@IN_PROCESS
@given(
    payload=st.binary(max_size=300)
    | mutated(text_updates)
    | mutated(real_updates())
    | text_updates
    | real_updates()
)
@example(payload=b"")
@example(payload=EMPTY_UPDATE)
@example(payload=b"\xff" * 12)  # a var_uint that never ends
@example(payload=b"\x01\xff\xff\xff\xff\x0f\x01\x00")  # a huge struct count, few bytes
def test_summarise_update_returns_or_refuses_and_text_only_means_text_only(payload):
    try:
        with watchdog():
            summary = summarise_update(payload)
    except MalformedMessage:
        event("malformed")
        return
    assert isinstance(summary, UpdateSummary)
    if not text_only(summary):
        event("not text only")
        return
    event("text only")
    # What the server would let in: pycrdt must see nothing but the markdown text either,
    # on an empty note and on a note that already holds text.
    for base in (b"", real_text_state()):
        doc = Doc()
        if base:
            doc.apply_update(base)
        try:
            doc.apply_update(payload)
        except BaseException:  # noqa: BLE001 - pycrdt panics; the server refuses those too
            continue
        assert set(doc.keys()) <= {services.TEXT_NAME}, doc.keys()
        update = doc.get_update()
        assert isinstance(services.text_of_update(update), str)


@st.composite
def updates_in_any_order(draw) -> list[bytes]:
    """Return the edits of three writers who see some of each other's, shuffled."""
    ids = draw(st.lists(CLIENT_IDS, min_size=3, max_size=3, unique=True))
    docs = [Doc(client_id=client_id) for client_id in ids]
    text_operation = st.tuples(st.sampled_from(("insert", "delete")), st.floats(0, 1), short_text)
    updates = []
    for _ in range(draw(st.integers(1, 8))):
        doc = draw(st.sampled_from(docs))
        before = doc.get_state()
        apply_operation(doc, draw(text_operation))
        updates.append(doc.get_update(before))
        if draw(st.booleans()):  # another writer receives it, and may build on it
            draw(st.sampled_from(docs)).apply_update(updates[-1])
    return draw(st.permutations(updates))


def state_vector_of(doc: Doc) -> dict[int, int]:
    """Return a document's state vector without the clients it holds nothing of (yrs names some)."""
    return {
        client: clock for client, clock in decode_state_vector(doc.get_state()).items() if clock
    }


def check_room_accounts_for_its_document(room: Room, summary: UpdateSummary) -> None:
    """Check what a room knows of its document after applying an update with this summary.

    Its state vector, learnt from each transaction, must be the document's; every run of
    the update with text must be counted as waiting exactly when Yjs kept it aside; the
    second halves of characters it knows must include every one the document holds.
    """
    state_vector = state_vector_of(room.doc)
    assert room.state_vector == state_vector
    for run in summary.runs:
        integrated = state_vector.get(run.client, 0) >= run.end
        event("a run integrated" if integrated else "a run kept aside")
        if run.text_bytes:
            assert integrated is not (run in room.waiting.get(run.client, ()))
    waiting = [run for runs in room.waiting.values() for run in runs]
    assert room.waiting_bytes == sum(run.text_bytes for run in waiting)
    assert all(state_vector.get(run.client, 0) < run.end for run in waiting)
    held = summarise_update(room.doc.get_update()).second_halves
    assert held <= room.second_halves
    if held:
        event("characters outside the BMP")


@IN_PROCESS
@given(updates=updates_in_any_order())
def test_the_room_counts_every_update_yjs_keeps_aside(updates):
    # Yjs keeps an update aside until what it builds on arrives; its text is then outside
    # the note's text, so the room must count it against the size limit.
    room = Room(note_id=1)
    for update in updates:
        summary = summarise_update(update)
        # Honest edits never cut a character, emoji included, in any order of arrival.
        assert not summary.splits_a_character(room.state_vector, room.second_halves)
        room.apply(update, summary)
        check_room_accounts_for_its_document(room, summary)


def test_the_room_reads_its_state_vector_only_after_an_update_that_may_wait(monkeypatch):
    # An update that Yjs integrates whole moves the room's state vector by itself; after
    # one that may wait, or one that may complete what waits, the room reads the vector.
    writer = Doc()
    text = writer.get("markdown", type=Text)
    updates = []
    for words in ("Hello", " world", "!", "?"):
        before = writer.get_state()
        text += words
        updates.append(writer.get_update(before))
    reads = []

    def decode_and_count(data):
        reads.append(data)
        return decode_state_vector(data)

    monkeypatch.setattr("cop.live.notes.decode_state_vector", decode_and_count)
    client = writer.client_id
    room = Room(note_id=1)
    room.apply(updates[0], summarise_update(updates[0]))
    assert (room.state_vector, len(reads)) == ({client: len("Hello")}, 0)
    room.apply(updates[2], summarise_update(updates[2]))  # Yjs keeps "!" aside
    assert (room.state_vector, len(reads)) == ({client: len("Hello")}, 1)
    assert room.waiting_bytes == len("!")
    room.apply(updates[1], summarise_update(updates[1]))  # " world", then "!"
    assert (room.state_vector, len(reads)) == ({client: len("Hello world!")}, 2)
    assert (room.waiting, room.waiting_bytes, room.held_back) == ({}, 0, {})
    room.apply(updates[3], summarise_update(updates[3]))
    assert (room.state_vector, len(reads)) == ({client: len("Hello world!?")}, 2)
    assert str(room.text) == "Hello world!?"


def root_item(words: str) -> bytes:
    """Return a string item at the start of the root text `markdown`, as Yjs encodes it."""
    return bytes([0x04]) + var_uint(1) + var_string("markdown") + var_string(words)


def update_pointing_forward(client: int) -> bytes:
    """Return an update whose first item was inserted after its own second (yrs waits)."""
    update = var_uint(1) + var_uint(2) + var_uint(client) + var_uint(0)
    update += bytes([0x04 | 0x80]) + var_uint(client) + var_uint(1) + var_string("a")
    return update + root_item("b") + var_uint(0)


@IN_PROCESS
@given(
    honest=updates_in_any_order(),
    crafted=st.lists(text_updates | mutated(text_updates), max_size=4),
    order=st.randoms(use_true_random=False),
)
@example(honest=[], crafted=[update_pointing_forward(7)], order=random.Random(0))
def test_the_room_accounts_for_whatever_it_lets_in(honest, crafted, order):
    # Crafted and damaged updates too (forged ids, references forward in a client's own
    # clocks, updates that wait for what never comes), through the checks accept_update
    # makes before it applies one.
    updates = honest + crafted
    order.shuffle(updates)
    room = Room(note_id=1)
    for update in updates:
        try:
            summary = summarise_update(update)
        except MalformedMessage:
            continue
        if not text_only(summary) or summary.splits_a_character(
            room.state_vector, room.second_halves
        ):
            continue
        try:
            room.apply(update, summary)
        except BaseException:  # noqa: BLE001 - pycrdt panics; accept_update refuses those
            continue
        check_room_accounts_for_its_document(room, summary)


NEVER_WRITTEN_BY_YJS = [
    pytest.param(
        var_uint(2)
        + (var_uint(1) + var_uint(7) + var_uint(0) + root_item("a"))
        + (var_uint(1) + var_uint(7) + var_uint(1) + root_item("b"))
        + var_uint(0),
        id="one client's structs twice",
    ),
    pytest.param(
        var_uint(1) + var_uint(1) + var_uint(7) + var_uint(0) + root_item("") + var_uint(0),
        id="an empty string",
    ),
]


@pytest.mark.parametrize("update", NEVER_WRITTEN_BY_YJS)
def test_updates_that_yjs_never_writes_are_malformed(update):
    # yrs misreads the first (its text reads past the data) and keeps the second aside.
    with pytest.raises(MalformedMessage):
        summarise_update(update)


@pytest.mark.parametrize("update", NEVER_WRITTEN_BY_YJS)
def test_the_room_reads_its_document_after_a_logged_update_it_cannot_read(update):
    # A restored version's change goes into the cache even if cop cannot read it (a
    # database edited by hand): the room then reads the document's state vector and text
    # length, and the edits that follow are accounted for as usual.
    room = Room(note_id=1)
    writer = Doc()
    text = writer.get("markdown", type=Text)
    text += "Hello"
    first = writer.get_update()
    room.apply(first, summarise_update(first))
    assert summary_of_logged(update) is None
    room.apply(update, summary_of_logged(update))
    assert room.state_vector == state_vector_of(room.doc)
    assert room.text_bytes_at_most == len(room.text)
    before = writer.get_state()
    text += " world"
    second = writer.get_update(before)
    room.apply(second, summarise_update(second))
    assert room.state_vector == state_vector_of(room.doc)
    assert (room.waiting, room.waiting_bytes) == ({}, 0)
    assert str(room.text).endswith("Hello world")


def real_text_state() -> bytes:
    doc = Doc()
    doc.get("markdown", type=Text).insert(0, "# Notes\n\n- a point")
    return doc.get_update()


@IN_PROCESS
@given(message=st.binary(max_size=300) | mutated(awareness_messages()) | awareness_messages())
@example(message=b"")
@example(message=b"\x01\x01\x01\x04null")
@example(message=b"\x01\x01\x01\x02[]")  # a state that is not an object
@example(message=b"\x02\x01\x01\x02{}")  # fewer entries than announced
def test_decode_awareness_returns_or_refuses(message):
    try:
        with watchdog():
            entries = decode_awareness(message)
    except MalformedMessage:
        event("malformed")
        return
    event("decoded")
    assert all(isinstance(entry, AwarenessEntry) for entry in entries)
    assert all(entry.state is None or isinstance(entry.state, dict) for entry in entries)
    # The server re-encodes what it decoded (size check, broadcast): that must work.
    assert decode_awareness(encode_awareness(entries)) == entries


def awareness_with_state_json(state_json: str) -> bytes:
    return b"\x01\x07\x01" + var_string(state_json)


def test_awareness_nested_too_deeply_is_malformed():
    # 2 KiB of JSON: well under every limit, deeper than Python's recursion limit.
    with pytest.raises(MalformedMessage):
        decode_awareness(awareness_with_state_json('{"a":' + "[" * 1000 + "]" * 1000 + "}"))


def test_awareness_with_an_integer_too_long_is_malformed():
    message = awareness_with_state_json('{"a":' + "9" * 4301 + "}")
    try:
        decode_awareness(message)
    except MalformedMessage:
        return
    pytest.fail("decoded")


def test_awareness_that_decodes_encodes_again():
    # JSON may escape a lone surrogate; Python decodes it, UTF-8 cannot encode it again.
    message = awareness_with_state_json('{"name":"\\ud800"}')
    try:
        entries = decode_awareness(message)
    except MalformedMessage:
        return
    encode_awareness(entries)


# --- Against a real server --------------------------------------------------------------

wrong_types = (
    st.text(max_size=20)
    | st.integers()
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
)
foreign_updates = real_updates(
    operations=st.tuples(st.sampled_from(OTHER_OPERATIONS), st.floats(0, 1), short_text),
    fresh_ids=True,
)
honest_text_updates = real_updates(
    operations=st.tuples(st.sampled_from(TEXT_OPERATIONS), st.floats(0, 1), short_text),
    fresh_ids=True,
)
# Three kinds of senders and payloads, fuzzed in turn (one mixed strategy would spend most
# examples on the simplest branches): a participant's mutated text updates, which the
# server may accept; a participant's garbage, foreign updates and wrong types, all refused;
# an observer's anything, all refused but the empty update.
near_valid_updates = mutated(honest_text_updates) | honest_text_updates
garbage = (
    st.binary(max_size=300) | mutated(real_updates(fresh_ids=True)) | foreign_updates | wrong_types
)
observer_payloads = honest_text_updates | mutated(honest_text_updates) | st.binary(max_size=100)


class Fuzzing:
    """A world, its clients, and what the fuzzing sent and saw."""

    def __init__(self, world: LiveWorld):
        self.world = world
        self.writer = world.client(Role.EDITOR)
        self.fuzzer = world.client(Role.PARTICIPANT)
        self.observer = world.client(Role.OBSERVER)
        self.watcher = world.client(Role.FACILITATOR)
        self.logged: list[bytes] = []  # every update the server logged, in order
        self.outcomes = {"accepted": 0, "refused": 0, "ignored": 0}
        self.refusals: set[str] = set()  # the error codes of the refused payloads

    def barrier(self, client: YClient) -> None:
        """Return once the server handled everything the client sent before."""
        client.sync()

    def log_grows_by(self, update: bytes) -> None:
        self.logged.append(update)
        expected = list(self.logged)
        wait_for(lambda: self.world.stored()[1] == expected, message="the update logged")

    def send_update(self, client: YClient, payload) -> None:
        """Send one payload and check the note afterwards against what the server said."""
        before = self.world.stored()
        errors = len(client.errors)
        client.send(payload)
        self.barrier(client)
        if len(client.errors) > errors:
            self.outcomes["refused"] += 1
            self.refusals.add(client.errors[-1]["error"])
            assert client.errors[-1]["error"] and client.errors[-1]["message"]
            assert self.world.stored() == before, client.errors[-1]
            return
        if payload == EMPTY_UPDATE:  # "nothing to add", even from an observer: no error
            self.outcomes["ignored"] += 1
            assert self.world.stored() == before
            return
        assert client is not self.observer, "the observer wrote"
        self.outcomes["accepted"] += 1
        assert isinstance(payload, bytes)
        self.log_grows_by(payload)
        self.assert_text_note()

    def edit(self, words: str) -> None:
        """Make a valid edit as the writer, at the end of the writer's text."""
        update = self.writer.insert(len(self.writer.text), words)
        self.log_grows_by(update)

    def assert_text_note(self) -> None:
        with self.world.app.app_context():
            update, _seq = services.full_state(db.session.get(Note, self.world.note_id))
        doc = Doc()
        doc.apply_update(update)
        assert set(doc.keys()) <= {services.TEXT_NAME}
        assert isinstance(services.text_of_update(update), str)

    def close(self) -> None:
        for client in (self.writer, self.fuzzer, self.observer, self.watcher):
            client.close()


# The python-socketio *client* of this test handles each incoming message in a thread of
# its own, so under this flood a binary attachment can be read before its header and the
# client's thread raises. That is the test client's race, not the server's: what this test
# checks is on the server's side and in the database.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_fuzzed_messages_leave_the_note_whole_and_the_worker_up(app, make, start_server):  # noqa: F811
    world = LiveWorld(
        app,
        make,
        start_server,
        # No compaction while fuzzing: the stored note changes only by appending to its log.
        LIVE_COMPACT_AFTER_IDLE_SECONDS="3600",
        LIVE_COMPACT_AT_LEAST_EVERY_SECONDS="3600",
    )
    run = Fuzzing(world)
    run.edit("# Minutes\n")

    edits = st.none() | short_text.filter(bool)

    @settings(AGAINST_A_SERVER, max_examples=90)
    @given(payload=near_valid_updates, words=edits)
    @example(payload=EMPTY_UPDATE, words=None)
    def near_valid(payload, words):
        if words:
            run.edit(words)
        run.send_update(run.fuzzer, payload)

    @settings(AGAINST_A_SERVER, max_examples=40)
    @given(payload=garbage)
    @example(payload=b"\x00")
    @example(payload=b"\x01\x01")
    def refused(payload):
        run.send_update(run.fuzzer, payload)

    @settings(AGAINST_A_SERVER, max_examples=20)
    @given(payload=observer_payloads)
    @example(payload=EMPTY_UPDATE)
    def from_observer(payload):
        run.send_update(run.observer, payload)

    near_valid()
    refused()
    from_observer()
    assert run.outcomes["accepted"] and run.outcomes["ignored"], run.outcomes
    assert {"malformed_update", "wrong_type", "read_only"} <= run.refusals, run.refusals

    # Awareness: the fuzzer claims its client id, then sends anything. Cursors never touch
    # the note, and whatever reaches others carries the fuzzer's server-side identity.
    fuzzer_id = run.fuzzer.doc.client_id
    claim = encode_awareness([AwarenessEntry(fuzzer_id, 1, {"cursor": None})])
    run.fuzzer.send(claim, "awareness-update")
    wait_for(lambda: run.watcher.awareness, message="the fuzzer's presence")
    note_before = world.stored()
    own_messages = awareness_messages(client_ids=st.just(fuzzer_id))

    @AGAINST_A_SERVER
    @given(
        message=st.binary(max_size=300)
        | mutated(own_messages)
        | own_messages
        | awareness_messages()
        | wrong_types
    )
    @example(message=encode_awareness([AwarenessEntry(fuzzer_id, 2, {"x": "y" * 5000})]))
    def one_awareness(message):
        run.fuzzer.send(message, "awareness-update")
        run.barrier(run.fuzzer)
        assert world.stored() == note_before

    one_awareness()
    codes = {error["error"] for error in run.fuzzer.errors}
    assert {"malformed_awareness", "awareness_too_large"} <= codes, codes
    run.barrier(run.watcher)
    names = {
        entry.state["user"]["name"]
        for message in list(run.watcher.awareness)
        for entry in decode_awareness(bytes(message))
        if entry.state is not None
    }
    seen_ids = {
        entry.client_id
        for message in list(run.watcher.awareness)
        for entry in decode_awareness(bytes(message))
    }
    assert seen_ids == {fuzzer_id}
    assert names == {display_name_of(world, Role.PARTICIPANT)}

    # A flood: what the rate limit refuses is not logged; what it lets through is, whole.
    flood = [single_insert("f") for _ in range(400)]
    errors = len(run.fuzzer.errors)
    for update in flood:
        run.fuzzer.send(update)
    run.barrier(run.fuzzer)
    refused = [error["error"] for error in run.fuzzer.errors[errors:]]
    assert refused and set(refused) == {"rate_limited"}
    # Each flood update inserts "f" from a client of its own, so the rows logged after the
    # earlier ones (merged by group-commit window) hold exactly the accepted ones' "f"s.
    accepted = len(flood) - len(refused)
    wait_for(
        lambda: text_of_updates(world.stored()[1][len(run.logged) :]) == "f" * accepted,
        message="the flood's accepted updates logged",
    )
    assert world.stored()[1][: len(run.logged)] == run.logged

    # The worker is up; a fresh client syncs, edits, and everyone agrees with the database.
    assert world.server.process.poll() is None
    assert requests.get(f"{world.server.url}/healthz", timeout=10).status_code == 200
    newcomer = world.client(Role.EDITOR)
    assert newcomer.value() == world.stored_text()
    newcomer.insert(0, "after the storm\n")
    wait_for(lambda: run.writer.value() == newcomer.value() == world.stored_text())
    assert (
        world.stored_text().startswith("after the storm\n") and "# Minutes\n" in run.writer.value()
    )
    assert not unexpected_tracebacks(world.server.log())
    newcomer.close()
    run.close()


KNOWN_REFUSAL = re.compile(r"^pycrdt refused an update on /yjs\|note-\d+$")


def unexpected_tracebacks(log: str) -> list[str]:
    """Return the tracebacks of a server log but those of refusals the server logs itself."""
    lines = log.splitlines()
    return [
        "\n".join(lines[max(0, at - 1) : at + 12])
        for at, line in enumerate(lines)
        if line.startswith("Traceback") and not (at and KNOWN_REFUSAL.match(lines[at - 1]))
    ]


def display_name_of(world: LiveWorld, role: Role) -> str:
    from cop.auth.models import User

    with world.app.app_context():
        return db.session.get(User, world.users[role]).display_name


def text_of_updates(updates: list[bytes]) -> str:
    """Return the text of these updates applied to an empty document."""
    return services.text_of_update(merge_updates(*updates)) if updates else ""


def single_insert(words: str) -> bytes:
    """Return an update inserting words at the start, from a client of its own."""
    doc = Doc()
    doc.get("markdown", type=Text).insert(0, words)
    return doc.get_update()


# --- Found by the fuzzing: reproductions of server bugs ---------------------------------


def insertion_between(origin: tuple[int, int], right_origin: tuple[int, int], words: str):
    """Return an update of a new client inserting words between two ids, as Yjs encodes it."""
    update = bytearray(var_uint(1) + var_uint(1) + var_uint(fresh_client_id()) + var_uint(0))
    update += bytes([0x04 | 0x80 | 0x40])  # a string item with an origin and a right origin
    for client, clock in (origin, right_origin):
        update += var_uint(client) + var_uint(clock)
    return bytes(update + var_string(words) + var_uint(0))  # and an empty delete set


def deletion(client: int, clock: int, length: int) -> bytes:
    """Return an update that only deletes `length` clock ticks of a client from `clock`."""
    return (
        var_uint(0)
        + var_uint(1)
        + var_uint(client)
        + var_uint(1)
        + var_uint(clock)
        + var_uint(length)
    )


def updates_reusing_one_client_id() -> list[bytes]:
    """Return two text updates of two documents that both use client id 5 (a forged id)."""
    one = Doc(client_id=5)
    one.get("markdown", type=Text).insert(0, "a")  # clock 0
    two = Doc(client_id=5)
    text = two.get("markdown", type=Text)
    for words in ("\U0001f600", "é", "\U0001f600"):  # clocks 0 to 4
        text.insert(0, words)
    return [one.get_update(), two.get_update()]


def test_updates_reusing_a_client_id_are_refused_where_they_would_cut_a_character(
    app,
    make,
    start_server,  # noqa: F811 - the fixture
):
    # Found by the fuzzing: pycrdt applying these one by one showed "\U0001f600éa" but
    # encoded (and merged) "éa", so a client that received them one by one differed forever
    # from the database.
    world = LiveWorld(app, make, start_server)
    watcher = world.client(Role.EDITOR)
    mallory = world.client()
    first, second = updates_reusing_one_client_id()
    mallory.send(first)
    wait_for(lambda: watcher.value() == "a", message="the first update broadcast")
    mallory.send(second)  # clock 0 is known: yrs would skip half of the first emoji
    wait_for(lambda: mallory.errors, message="the second update refused")
    assert [error["error"] for error in mallory.errors] == ["malformed_update"]
    late = world.client(Role.FACILITATOR)
    assert watcher.value() == late.value() == world.stored_text() == "a"
    for client in (watcher, mallory, late):
        client.close()


@pytest.mark.parametrize("emoji_came", ["live", "from the log"])
def test_an_insertion_or_deletion_inside_a_character_is_refused(
    app,
    make,
    start_server,  # noqa: F811 - the fixture
    emoji_came,
):
    world = LiveWorld(app, make, start_server)
    writer = Doc()
    writer.get("markdown", type=Text).insert(0, "x\U0001f600y")  # clocks 0 to 3: the emoji is 1-2
    if emoji_came == "live":
        editor = world.client(Role.EDITOR)
        editor.send(writer.get_update())
        wait_for(lambda: world.stored_text() == "x\U0001f600y", message="the emoji logged")
    else:  # the room learns the text from the database when its first client connects
        with app.app_context():
            services.append_update(world.note_id, writer.get_update(), {world.users[Role.EDITOR]})
            db.session.commit()
    mallory = world.client()
    emoji = writer.client_id
    mallory.send(insertion_between((emoji, 1), (emoji, 2), "Z"))
    mallory.send(deletion(emoji, 1, 1))  # the first half: yrs showed "xy", Yjs "x\ufffdy"
    mallory.send(deletion(emoji, 2, 1))  # the second half: yrs showed "x\U0001f600"
    wait_for(lambda: len(mallory.errors) == 3, message="the three cuts refused")
    assert [error["error"] for error in mallory.errors] == ["malformed_update"] * 3
    mallory.send(insertion_between((emoji, 2), (emoji, 3), "Z"))  # after the whole emoji
    wait_for(lambda: world.stored_text() == "x\U0001f600Zy", message="the insertion after it")
    late = world.client(Role.FACILITATOR)
    assert late.value() == "x\U0001f600Zy"
    mallory.send(deletion(emoji, 1, 2))  # the whole emoji
    wait_for(lambda: world.stored_text() == "xZy", message="the emoji deleted")
    wait_for(lambda: late.value() == "xZy", message="the late joiner sees it deleted")
    assert not mallory.errors[3:]
    mallory.close(), late.close()


def test_an_update_kept_aside_in_the_log_counts_when_the_note_is_opened(
    app,
    make,
    start_server,  # noqa: F811 - the fixture
):
    world = LiveWorld(app, make, start_server, LIVE_MAX_NOTE_BYTES="100")
    doc = Doc()
    text = doc.get("markdown", type=Text)
    text.insert(0, "a")
    before = doc.get_state()
    text.insert(1, "x" * 90)
    with app.app_context():  # logged without the "a" it builds on: kept aside when loaded
        services.append_update(world.note_id, doc.get_update(before), {world.users[Role.EDITOR]})
        db.session.commit()
    mallory = world.client()
    mallory.send(single_insert("y" * 30))  # 30 bytes, but 90 wait already
    wait_for(lambda: mallory.errors, message="the insertion refused")
    assert [error["error"] for error in mallory.errors] == ["note_too_large"]
    mallory.close()


def test_updates_sent_out_of_order_cannot_pass_the_note_size_limit(app, make, start_server):  # noqa: F811
    world = LiveWorld(app, make, start_server, LIVE_MAX_NOTE_BYTES="100")
    doc = Doc()
    text = doc.get("markdown", type=Text)
    text.insert(0, "a")
    updates = [doc.get_update()]
    for _ in range(2):
        before = doc.get_state()
        text.insert(len(text), "x" * 90)
        updates.append(doc.get_update(before))
    mallory = world.client()
    for update in updates[1:] + updates[:1]:  # each within the limit on its own
        mallory.send(update)
    mallory.sync()
    # The first 90 x wait for the "a" and count; the next 90 would pass the limit.
    wait_for(lambda: world.stored_text().startswith("a"), message="the 'a' logged")
    assert [error["error"] for error in mallory.errors] == ["note_too_large"]
    assert world.stored_text() == "a" + "x" * 90
    mallory.close()


def test_deleted_text_makes_room_under_the_note_size_limit(app, make, start_server):  # noqa: F811
    world = LiveWorld(app, make, start_server, LIVE_MAX_NOTE_BYTES="100")
    doc = Doc()
    text = doc.get("markdown", type=Text)

    def change(edit) -> bytes:
        before = doc.get_state()
        edit()
        return doc.get_update(before)

    mallory = world.client()
    mallory.send(change(lambda: text.insert(0, "x" * 90)))
    mallory.send(change(lambda: text.__delitem__(slice(0, 90))))
    mallory.send(change(lambda: text.insert(0, "y" * 90)))  # 180 bytes inserted, 90 kept
    wait_for(lambda: world.stored_text() == "y" * 90, message="the second insertion logged")
    assert mallory.errors == []
    mallory.send(change(lambda: text.insert(90, "z" * 20)))  # 110 bytes: over
    wait_for(lambda: mallory.errors, message="the insertion refused")
    assert [error["error"] for error in mallory.errors] == ["note_too_large"]
    assert world.stored_text() == "y" * 90
    mallory.close()
