"""Several server processes share live notes through Redis (DESIGN.md, "Running at scale").

Two real `python wsgi.py` processes on two ports, one database (the test database: SQLite
in WAL mode, or PostgreSQL with TEST_DATABASE_URL) and one Redis (TEST_REDIS_URL): clients
of either process see each other's edits and cursors, and a process that joins late answers
from the database, never with less than it holds.
"""

import time
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import select

from cop import ROOT
from cop.auth.models import User
from cop.communities.models import Role
from cop.extensions import db
from cop.live import cursors
from cop.live.encoding import AwarenessEntry, decode_awareness, encode_awareness
from tests.conftest import TEST_REDIS_URL
from tests.live_client import YClient, wait_for
from tests.test_live_notes import LiveWorld
from tests.test_server import free_port, server_environment, start_server  # noqa: F401

pytestmark = pytest.mark.skipif(
    not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set: no Redis to share the processes' rooms"
)


def redis_url_for_these_tests() -> str:
    """Return TEST_REDIS_URL on the next database number, apart from the other Redis tests.

    The login limit keeps its counters in REDIS_URL's database; a database of their own keeps
    these logins from counting against another test's limit. Redis Pub/Sub ignores database
    numbers, though: the Socket.IO channel (`flask-socketio`, not configurable in cop) is the
    same for every process on this Redis server, so another cop on it could hear these rooms.
    """
    parts = urlsplit(TEST_REDIS_URL)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


@pytest.fixture
def cluster(app, make, start_server):  # noqa: F811 - the fixture
    """Return a world served by two processes sharing Redis, and the two servers."""
    return start_cluster(app, make, start_server)


def start_cluster(app, make, start_server, **config):  # noqa: F811 - the fixture
    """Start two processes sharing Redis (and `config`); return the world and the servers."""
    shared = {
        "REDIS_URL": redis_url_for_these_tests(),
        "LOGIN_RATE_LIMIT": "1000 per minute",  # every test logs in, from the same address
        **config,
    }
    # The second process boots while the world is made and its first process starts.
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    second = start_server(
        [str(ROOT / "wsgi.py")], server_environment(database_url, free_port(), **shared)
    )
    world = LiveWorld(app, make, start_server, **shared)
    second.wait_until_healthy()
    return world, world.server, second


def close_all(*clients: YClient) -> None:
    for each in clients:
        each.close()


def test_clients_of_two_processes_see_each_others_edits_and_converge(cluster):
    world, first, second = cluster
    alice = world.client(Role.PARTICIPANT, server=first)
    bob = world.client(Role.EDITOR, server=second)
    alice.insert(0, "Hello")
    wait_for(lambda: bob.value() == "Hello", message="bob (process 2) sees alice (process 1)")
    bob.insert(5, ", world")
    wait_for(lambda: alice.value() == "Hello, world", message="alice sees bob")
    # Concurrent edits at the same place, each through its own process.
    alice.insert(12, " from Alice")
    bob.insert(12, " from Bob")
    wait_for(
        lambda: alice.value() == bob.value() and len(alice.value()) == 12 + 11 + 9,
        message="convergence across processes",
    )
    assert "from Alice" in alice.value() and "from Bob" in alice.value()
    wait_for(lambda: world.stored_text() == alice.value(), message="the database holds it all")
    assert not alice.errors and not bob.errors
    close_all(alice, bob)


def test_two_processes_writing_at_once_lose_nothing(cluster):
    # Both processes commit to one database at the same moments (on SQLite: two writers
    # of one file, each waiting for the other's lock).
    world, first, second = cluster
    alice = world.client(Role.PARTICIPANT, server=first)
    bob = world.client(Role.EDITOR, server=second)
    for index in range(40):
        alice.insert(index, "a")
        bob.insert(0, "b")
    wait_for(
        lambda: alice.value() == bob.value() and len(alice.value()) == 80,
        message="both processes' clients hold all 80 characters",
    )
    assert sorted(alice.value()) == ["a"] * 40 + ["b"] * 40
    wait_for(lambda: world.stored_text() == alice.value(), message="all 80 logged")
    assert not alice.errors and not bob.errors
    for server in (first, second):
        assert "could not" not in server.log(), server.log()[-3000:]
    close_all(alice, bob)


def test_a_process_that_never_opened_the_note_answers_with_everything(cluster):
    world, first, second = cluster
    alice = world.client(server=first)
    alice.insert(0, "one, ")
    alice.insert(5, "two, ")
    alice.insert(10, "three")
    wait_for(lambda: world.stored_text() == "one, two, three", message="alice's edits logged")
    carol = world.client(Role.EDITOR, server=second)
    assert carol.value() == "one, two, three"  # at once: the connection's sync already has it
    close_all(alice, carol)


def test_a_process_that_follows_the_note_catches_up_on_the_others_edits(cluster):
    world, first, second = cluster
    bob = world.client(Role.EDITOR, server=second)  # process 2 has the note open from now on
    alice = world.client(server=first)
    alice.insert(0, "written through process 1")
    wait_for(lambda: bob.value() == "written through process 1", message="bob sees it")
    carol = world.client(Role.FACILITATOR, server=second)
    assert carol.value() == "written through process 1"
    close_all(alice, bob, carol)


def test_a_process_that_wrote_since_still_answers_with_the_others_edits(cluster):
    # Process 2 follows the note; process 1 logs alice's edit; then process 2 logs one of
    # bob's. A client joining process 2 afterwards must still receive alice's edit (the
    # cache never answers with less than the database holds).
    world, first, second = cluster
    bob = world.client(Role.EDITOR, server=second)
    alice = world.client(server=first)
    alice.insert(0, "alice ")
    wait_for(lambda: bob.value() == "alice ", message="bob sees alice's edit")
    bob.insert(6, "bob")
    wait_for(lambda: alice.value() == "alice bob", message="alice sees bob's edit")
    wait_for(lambda: world.stored_text() == "alice bob", message="both edits logged")
    carol = world.client(Role.FACILITATOR, server=second)
    assert carol.value() == "alice bob"
    close_all(alice, bob, carol)


def display_name(world, role: Role) -> str:
    with world.app.app_context():
        return db.session.scalar(select(User.display_name).filter_by(id=world.users[role]))


def presence_of(client: YClient, client_id: int) -> list[AwarenessEntry]:
    """Return what a client received about one awareness client id, in order."""
    return [
        entry
        for message in list(client.awareness)
        for entry in decode_awareness(bytes(message))
        if entry.client_id == client_id
    ]


def test_the_size_limit_counts_the_other_process_edits_a_client_builds_on(
    app,
    make,
    start_server,  # noqa: F811 - the fixture
):
    world, first, second = start_cluster(app, make, start_server, LIVE_MAX_NOTE_BYTES="100")
    bob = world.client(Role.EDITOR, server=second)  # process 2 has the note open from now on
    alice = world.client(server=first)
    alice.insert(0, "a" * 60)
    wait_for(lambda: bob.value() == "a" * 60, message="bob (process 2) sees alice's text")
    # Built on alice's text, which process 2's cache has not seen: Yjs keeps it aside there
    # until process 2 catches up with the database, where process 1 logged alice's text.
    bob.insert(60, "b" * 30)
    wait_for(lambda: world.stored_text() == "a" * 60 + "b" * 30, message="bob's edit logged")
    bob.insert(90, "c" * 20)
    wait_for(lambda: bob.errors, message="process 2 refusing to pass the limit")
    assert [error["error"] for error in bob.errors] == ["note_too_large"]
    assert world.stored_text() == "a" * 60 + "b" * 30
    close_all(alice, bob)


def test_a_cursor_crosses_processes_under_the_name_the_server_knows(cluster):
    world, first, second = cluster
    alice = world.client(Role.PARTICIPANT, server=first)
    bob = world.client(Role.EDITOR, server=second)
    alice.insert(0, "some text to select")
    wait_for(lambda: bob.value() == "some text to select")
    claimed = {
        "user": {"name": "Somebody Else", "color": "#000000", "organisation": "Forged"},
        "cursor": {"anchor": 5, "head": 9},
    }
    alice_id = alice.doc.client_id
    alice.send(encode_awareness([AwarenessEntry(alice_id, 1, claimed)]), "awareness-update")
    wait_for(lambda: presence_of(bob, alice_id), message="alice's cursor reaches process 2")
    state = presence_of(bob, alice_id)[-1].state
    assert state["cursor"] == {"anchor": 5, "head": 9}
    assert state["user"]["name"] == display_name(world, Role.PARTICIPANT) != "Somebody Else"
    assert state["user"]["color"] != "#000000" and state["user"]["organisation"] != "Forged"
    # Leaving withdraws the cursor on the other process too.
    alice.close()
    wait_for(
        lambda: presence_of(bob, alice_id)[-1].state is None, message="alice's cursor withdrawn"
    )
    assert not bob.errors
    bob.close()


def test_a_client_joining_another_process_sees_the_cursors_already_there(cluster):
    world, first, second = cluster
    alice = world.client(Role.PARTICIPANT, server=first)
    bob = world.client(Role.EDITOR, server=second)
    alice_id = alice.doc.client_id
    cursor = {"cursor": {"anchor": 0, "head": 0}}
    alice.send(encode_awareness([AwarenessEntry(alice_id, 1, cursor)]), "awareness-update")
    wait_for(lambda: presence_of(bob, alice_id), message="alice's cursor reaching process 2")

    # Carol joins process 2 after alice's cursor last moved: she sees it as she joins, not
    # when it next moves (test clients never renew their state).
    carol = world.client(Role.OBSERVER, server=second)
    wait_for(lambda: presence_of(carol, alice_id), message="alice's cursor sent to a late joiner")
    state = presence_of(carol, alice_id)[-1].state
    assert state["cursor"] == cursor["cursor"]
    assert state["user"]["name"] == display_name(world, Role.PARTICIPANT)

    # A cursor withdrawn on process 1 reaches a later joiner of process 2 as withdrawn.
    alice.close()
    wait_for(lambda: presence_of(bob, alice_id)[-1].state is None, message="alice leaving")
    dave = world.client(Role.EDITOR, server=second)
    wait_for(lambda: presence_of(dave, alice_id), message="alice's withdrawal sent to dave")
    assert presence_of(dave, alice_id)[-1].state is None
    assert not (bob.errors or carol.errors or dave.errors)
    close_all(bob, carol, dave)


def test_shared_cursors_leave_out_stale_entries_and_do_without_redis(monkeypatch, caplog):
    store = cursors.SharedCursors(redis_url_for_these_tests(), f"test-{uuid.uuid4().hex}")
    here, gone = AwarenessEntry(1, 3, {"cursor": None}), AwarenessEntry(2, 5, None)
    store.store(7, [here, gone])
    store.store(7, [AwarenessEntry(1, 4, {"cursor": {"anchor": 1, "head": 1}})])
    assert sorted(store.load(7), key=lambda entry: entry.client_id) == [
        AwarenessEntry(1, 4, {"cursor": {"anchor": 1, "head": 1}}),
        gone,
    ]
    assert store.load(8) == []
    assert cursors.latest_entries([here], [AwarenessEntry(1, 2, None), gone]) == [here, gone]

    later = time.time() + cursors.LIFETIME + 1
    monkeypatch.setattr(cursors, "time", SimpleNamespace(time=lambda: later))
    assert store.load(7) == []  # not renewed for longer than y-protocols keeps a state

    unreachable = cursors.SharedCursors("redis://127.0.0.1:1/0", "test")
    unreachable.store(7, [here])
    assert unreachable.load(7) == []
    assert "could not share the cursors of note 7" in caplog.text
    assert "could not read the shared cursors of note 7" in caplog.text
