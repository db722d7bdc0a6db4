"""Live notes against a real server: sync, persistence before broadcast, rights, limits."""

import os
import signal
import time
from functools import partial

import pytest
from pycrdt import Doc, Map, Text
from sqlalchemy import func, select, text

from cop import ROOT
from cop.communities.models import Community, Role
from cop.extensions import db
from cop.live.notes import (
    Room,
    broadcast_window,
    catch_up_for_waiting,
    compact,
    live,
    send_between_steps,
)
from cop.notes import services
from cop.notes.models import Note, NoteUpdate
from tests.conftest import PASSWORD
from tests.live_client import YClient, login_cookie, wait_for
from tests.test_server import ServerProcess, free_port, server_environment, start_server  # noqa: F401


class LiveWorld:
    """A community with one member per role, a note, and a real server serving it."""

    def __init__(self, app, make, start_server, **extra: str):  # noqa: F811 - the fixture
        self.app = app
        self.slug = make.community()
        self.users = {role: make.member(self.slug, role) for role in Role}
        self.outsider = make.user()
        with app.app_context():
            community = db.session.scalar(select(Community).filter_by(slug=self.slug))
            self.note_id = services.create_note(None, community, "Live").id
            db.session.commit()
        self.make = make
        self.start_server = start_server
        self.database_url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.extra = extra  # the environment of every server of this world (e.g. REDIS_URL)
        self.server = self.start()

    def start(self, **extra) -> ServerProcess:
        """Start a server on the test database and wait until it answers."""
        port = free_port()
        environment = server_environment(self.database_url, port, **(self.extra | extra))
        server = self.start_server([str(ROOT / "wsgi.py")], environment)
        server.wait_until_healthy()
        return server

    def cookie(self, role_or_user) -> str:
        """Log a member in (by role, or a user id) and return their cookie."""
        user_id = self.users[role_or_user] if isinstance(role_or_user, Role) else role_or_user
        return login_cookie(self.server.url, self.make.email_of(user_id), PASSWORD)

    def client(self, role=Role.PARTICIPANT, server=None, **options) -> YClient:
        """Connect a Yjs client for a member of that role (to `server`, default the first)."""
        url = (server or self.server).url
        return YClient(url, self.note_id, self.cookie(role), **options)

    def stored(self) -> tuple[bytes, list[bytes], str]:
        """Return the note's state, its logged updates and its text, as the database holds them."""
        with self.app.app_context():
            note = db.session.get(Note, self.note_id)
            updates = db.session.scalars(
                select(NoteUpdate.update).filter_by(note_id=self.note_id).order_by(NoteUpdate.seq)
            ).all()
            return note.state, list(updates), note.text

    def stored_text(self) -> str:
        """Return the text of everything the database holds (state plus log)."""
        with self.app.app_context():
            update, _seq = services.full_state(db.session.get(Note, self.note_id))
            return services.text_of_update(update)


@pytest.fixture
def world(app, make, start_server):  # noqa: F811 - the fixture imported above
    world = LiveWorld(app, make, start_server)
    yield world


def test_two_clients_converge_after_concurrent_edits_at_the_same_place(world):
    alice, bob = world.client(Role.PARTICIPANT), world.client(Role.EDITOR)
    alice.insert(0, "Hello")
    wait_for(lambda: bob.value() == "Hello", message="bob sees alice's text")
    alice.insert(5, " from Alice")
    bob.insert(5, " from Bob")
    wait_for(
        lambda: alice.value() == bob.value() and len(alice.value()) == 25, message="convergence"
    )
    assert "from Alice" in alice.value() and "from Bob" in alice.value()
    wait_for(lambda: world.stored_text() == alice.value(), message="the database holds it all")
    alice.close(), bob.close()


def test_an_update_is_logged_before_anyone_receives_it(world):
    alice, bob = world.client(), world.client()
    alice.insert(0, "persisted first")
    wait_for(lambda: bob.value() == "persisted first")
    # Bob has it, so the database must hold it already (no compaction needed to see it).
    assert world.stored_text() == "persisted first"
    alice.close(), bob.close()


def test_a_room_has_no_window_unless_one_is_set_and_a_crowded_room_a_wider_one(app):
    assert broadcast_window(app.config, 100) == 0  # the defaults: each batch as soon as it can

    def window(clients: int, shortest: float, deliveries_per_second: float) -> float:
        config = {
            "LIVE_GROUP_COMMIT_SECONDS": shortest,
            "LIVE_ROOM_DELIVERIES_PER_SECOND": deliveries_per_second,
        }
        return broadcast_window(config, clients)

    assert window(100, 0.005, 0) == 0.005
    assert window(10, 0.005, 10000) == 0.005
    assert window(200, 0.005, 10000) == 0.02
    assert window(200, 0, 10000) == 0.02


def test_the_flushers_database_work_ends_its_session(app, make):
    # The flusher keeps one app context for its life: a session left open would hold a
    # read transaction (on SQLite, the write-ahead log could not be checkpointed past it).
    slug = make.community()
    writer = make.member(slug, Role.PARTICIPANT)
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        note_id = services.create_note(None, community, "Notes").id
        doc = Doc()
        before = doc.get_state()
        doc.get(services.TEXT_NAME, type=Text).insert(0, "logged")
        services.append_update(note_id, doc.get_update(before), {writer})
        db.session.commit()
        room = Room(note_id)
        catch_up_for_waiting(room)
        assert str(room.text) == "logged" and not db.session.registry.has()
        room.needs_compaction = True
        compact(room)
        assert not room.needs_compaction and not db.session.registry.has()
        assert db.session.get(Note, note_id).text == "logged"


def test_what_is_written_during_a_compaction_goes_out_and_asks_for_the_next_one(app, make):
    # A busy note's compaction takes tens of milliseconds: the flusher logs and sends what
    # its clients write meanwhile between the compaction's steps. What it logs after the
    # compaction read the log is not in the text stored, so the room asks for another.
    slug = make.community()
    writer = make.member(slug, Role.PARTICIPANT)
    doc = Doc()
    text = doc.get(services.TEXT_NAME, type=Text)

    def edit(words: str) -> bytes:
        before = doc.get_state()
        text.insert(len(text), words)
        return doc.get_update(before)

    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        note_id = services.create_note(None, community, "Notes").id
        services.append_update(note_id, edit("first"), {writer})
        db.session.commit()
        registry = live()
        room = registry.room(note_id)
        catch_up_for_waiting(room)
        room.pending_updates.append((edit(" second"), writer, "a client's sid"))
        room.needs_compaction = True
        compact(room, pause=partial(send_between_steps, registry, room))
        assert room.pending_updates == []
        note = db.session.get(Note, note_id)
        assert note.text == "first"
        assert services.text_of_update(services.full_state(note)[0]) == "first second"
        assert db.session.scalar(select(func.count()).where(NoteUpdate.note_id == note_id)) == 1
        assert room.needs_compaction
        compact(room)
        assert db.session.get(Note, note_id).text == "first second"
        assert not room.needs_compaction


def test_a_change_in_a_quiet_room_goes_out_at_once_and_the_next_waits_for_the_window(
    app,
    make,
    start_server,  # noqa: F811 - the fixture imported above
):
    world = LiveWorld(app, make, start_server, LIVE_GROUP_COMMIT_SECONDS="3")
    alice, bob = world.client(), world.client()
    alice.insert(0, "a")
    wait_for(lambda: bob.value() == "a", limit=1.5, message="the first change, without waiting")
    alice.insert(1, "b")
    time.sleep(1)
    assert bob.value() == "a"  # the room's window (3 s) has not ended yet
    wait_for(lambda: bob.value() == "ab", message="the second change, when the window ends")
    # Once that broadcast's window has ended, with nothing sent since, the room is quiet again.
    time.sleep(3.5)
    alice.insert(2, "c")
    wait_for(lambda: bob.value() == "abc", limit=1.5, message="a change in the quiet room again")
    alice.close(), bob.close()


def test_edits_the_database_cannot_take_wait_for_it_and_are_then_logged_and_sent(world):
    alice, bob = world.client(), world.client()
    alice.insert(0, "before ")
    wait_for(lambda: bob.value() == "before ")
    # A database that refuses the log's writes (its table is gone for a while).
    rename_log_table(world, "note_update", "note_update_away")
    try:
        alice.insert(7, "during ")
        wait_for(lambda: "could not log" in world.server.log(), message="a refused write")
        time.sleep(0.3)
        assert bob.value() == "before "  # nothing is sent that is not logged
    finally:
        rename_log_table(world, "note_update_away", "note_update")
    alice.insert(14, "after")
    wait_for(lambda: bob.value() == "before during after", message="the edits, once logged")
    assert world.stored_text() == "before during after"
    alice.close(), bob.close()


def test_the_log_takes_a_new_connection_when_the_database_dropped_its_own(
    app,
    make,
    start_server,  # noqa: F811 - the fixture imported above
):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite has no server to drop a connection (CI runs this on PostgreSQL)")
    # libpq names the server's connections after PGAPPNAME: only those are dropped.
    world = LiveWorld(app, make, start_server, PGAPPNAME="cop-dropped-connections")
    alice, bob = world.client(), world.client()
    alice.insert(0, "before ")
    wait_for(lambda: bob.value() == "before ")
    with world.app.app_context():
        dropped = db.session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'cop-dropped-connections'"
            )
        )
        db.session.commit()
    assert dropped >= 1  # the server's connections, its log's among them
    alice.insert(7, "after")
    wait_for(lambda: bob.value() == "before after", message="the edit after the drop")
    assert "could not log" not in world.server.log()
    assert world.stored_text() == "before after"
    alice.close(), bob.close()


def rename_log_table(world: LiveWorld, old: str, new: str) -> None:
    with world.app.app_context():
        db.session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
        db.session.commit()


def test_a_late_joiner_and_a_reconnecting_client_lose_nothing(world):
    alice = world.client()
    alice.insert(0, "one ")
    bob = world.client()
    wait_for(lambda: bob.value() == "one ")
    bob.close()
    alice.insert(4, "two ")
    # Bob edits offline, then comes back with the same document.
    offline_doc = bob.doc
    bob_text = offline_doc.get("markdown", type=Text)
    bob_text.insert(0, "zero ")
    again = world.client()
    with again.lock:
        again.doc.apply_update(offline_doc.get_update())
    again.send(offline_doc.get_update())
    wait_for(lambda: alice.value() == again.value() == "zero one two ", message="merge")
    late = world.client()
    assert late.value() == "zero one two "
    for client in (alice, again, late):
        client.close()


def test_the_text_snapshot_follows_within_seconds(world):
    alice = world.client()
    alice.insert(0, "# Minutes\n\n- a point")
    # The log's rows are deleted just after the state that holds them is stored.
    wait_for(lambda: world.stored()[1:] == ([], "# Minutes\n\n- a point"), message="compaction")
    state, _log, _text = world.stored()
    assert services.text_of_update(state) == "# Minutes\n\n- a point"
    alice.close()


def test_a_server_killed_and_restarted_loses_nothing_acknowledged(world):
    alice = world.client()
    alice.insert(0, "before the crash")
    bob = world.client()
    wait_for(lambda: bob.value() == "before the crash")
    alice.close(), bob.close()
    world.server.process.send_signal(signal.SIGKILL)
    world.server.process.wait(timeout=10)
    world.server = world.start()
    carol = world.client()
    assert carol.value() == "before the crash"
    carol.close()


def connect_refused(world, **options) -> bool:
    import socketio

    try:
        YClient(world.server.url, world.note_id, **options)
    except socketio.exceptions.ConnectionError:
        return True
    return False


def test_refused_connections(world):
    before = world.stored()
    assert connect_refused(world)  # not logged in
    assert connect_refused(world, cookie=world.cookie(world.outsider))  # not a member
    assert connect_refused(
        world, cookie=world.cookie(Role.PARTICIPANT), headers={"Origin": "https://evil.example"}
    )
    assert world.stored() == before


def test_an_api_token_in_auth_opens_a_note(world):
    from cop.auth.models import User
    from cop.auth.services import create_api_token

    with world.app.app_context():
        _token, secret = create_api_token(db.session.get(User, world.users[Role.EDITOR]), "bot")
        db.session.commit()
    bot = YClient(world.server.url, world.note_id, auth={"token": secret})
    bot.insert(0, "from a program")
    wait_for(lambda: world.stored_text() == "from a program")
    bot.close()
    assert connect_refused(world, auth={"token": "cop_not-a-token"})


def foreign_root_update() -> bytes:
    doc = Doc()
    doc.get("other", type=Map)["key"] = "value"
    return doc.get_update()


@pytest.mark.parametrize(
    ("role", "payload", "code"),
    [
        (Role.OBSERVER, "text", "read_only"),
        (Role.PARTICIPANT, os.urandom(64), "malformed_update"),
        (Role.PARTICIPANT, b"\x01\x01", "malformed_update"),
        (Role.PARTICIPANT, "not bytes", "malformed_update"),
        (Role.PARTICIPANT, "foreign", "wrong_type"),
        (Role.PARTICIPANT, "huge", "update_too_large"),
    ],
)
def test_refused_updates_leave_the_note_untouched(world, role, payload, code):
    writer = world.client(Role.PARTICIPANT)
    writer.insert(0, "kept")
    wait_for(lambda: world.stored_text() == "kept")
    before = world.stored()
    watcher = world.client(Role.EDITOR)
    client = world.client(role)
    if payload == "text":
        client.insert(0, "observer was here")
    elif payload == "foreign":
        client.send(foreign_root_update())
    elif payload == "huge":
        doc = Doc()
        doc.get("markdown", type=Text).insert(0, "x" * (300 * 1024))
        client.send(doc.get_update())
    else:
        client.send(payload)
    wait_for(lambda: client.errors, message="an error event")
    assert client.errors[0]["error"] == code and client.errors[0]["message"]
    assert world.stored() == before
    assert watcher.value() == "kept" and not watcher.errors
    # The room still works for everyone else.
    writer.insert(4, "!")
    wait_for(lambda: watcher.value() == "kept!")
    for each in (writer, watcher, client):
        each.close()


def test_a_flood_is_cut_and_nothing_half_written(world):
    flooder = world.client()
    for index in range(300):
        flooder.insert(index, "x")
    wait_for(lambda: flooder.errors, message="a rate limit error")
    assert flooder.errors[0]["error"] == "rate_limited"
    flooder.close()
    # What was accepted is whole: the stored text is a run of x, each logged update intact.
    wait_for(lambda: world.stored_text(), message="the accepted updates to be logged")
    text = world.stored_text()
    assert set(text) <= {"x"} and 0 < len(text) < 300


def test_sigterm_commits_and_compacts_what_is_open(world):
    # A server that would not compact by itself for ten minutes: only SIGTERM can.
    world.server.stop()
    world.server = world.start(
        LIVE_COMPACT_AFTER_IDLE_SECONDS="600", LIVE_COMPACT_AT_LEAST_EVERY_SECONDS="600"
    )
    alice = world.client()
    alice.insert(0, "said just before the end")
    wait_for(lambda: world.stored_text() == "said just before the end")
    world.server.process.send_signal(signal.SIGTERM)
    world.server.process.wait(timeout=20)
    state, log, text = world.stored()
    assert log == [] and text == "said just before the end"  # alice is still connected
    assert services.text_of_update(state) == text


def test_logging_out_or_leaving_closes_the_live_sockets(world):
    import re

    import requests

    browser = requests.Session()
    page = browser.get(f"{world.server.url}/login", timeout=20).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    email = world.make.email_of(world.users[Role.PARTICIPANT])
    browser.post(
        f"{world.server.url}/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
        timeout=20,
    )
    cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    leaver = YClient(world.server.url, world.note_id, cookie)
    removed = world.client(Role.EDITOR)
    stays = world.client(Role.FACILITATOR)
    # Logging out with the same browser session ends its socket...
    page = browser.get(f"{world.server.url}/account", timeout=20).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = browser.post(
        f"{world.server.url}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=20
    )
    assert response.status_code == 302
    # ...and so does losing one's membership.
    with world.app.app_context():
        from cop.communities.models import Membership

        db.session.delete(
            db.session.scalar(select(Membership).filter_by(user_id=world.users[Role.EDITOR]))
        )
        db.session.commit()
    wait_for(lambda: not leaver.sio.connected and not removed.sio.connected, message="closing")
    assert stays.sio.connected
    # The logged-out cookie no longer opens anything, even replayed.
    assert connect_refused(world, cookie=cookie)
    stays.close()


def test_a_member_made_observer_can_no_longer_write(world):
    writer = world.client(Role.PARTICIPANT)
    with world.app.app_context():
        from cop.communities.models import Membership

        membership = db.session.scalar(
            select(Membership).filter_by(user_id=world.users[Role.PARTICIPANT])
        )
        membership.role = Role.OBSERVER
        db.session.commit()

    def refused_now():
        writer.insert(0, "x")
        return any(error["error"] == "read_only" for error in writer.errors)

    wait_for(refused_now, message="the new role to apply")
    writer.close()


def test_cursors_carry_the_names_the_server_knows(world):
    from cop.live.encoding import AwarenessEntry, decode_awareness, encode_awareness

    alice, bob = world.client(Role.PARTICIPANT), world.client(Role.EDITOR)
    claimed = {"user": {"name": "Mallory", "color": "#000"}, "cursor": None}
    alice.send(encode_awareness([AwarenessEntry(111, 1, claimed)]), "awareness-update")

    def seen_by_bob():
        return [e for m in bob.awareness for e in decode_awareness(m) if e.client_id == 111]

    wait_for(seen_by_bob, message="alice's cursor at bob's")
    with world.app.app_context():
        from cop.auth.models import User

        alice_name = db.session.get(User, world.users[Role.PARTICIPANT]).display_name
    assert seen_by_bob()[-1].state["user"]["name"] == alice_name != "Mallory"
    # Bob cannot speak for alice's cursor, nor move it with an old clock.
    bob.send(encode_awareness([AwarenessEntry(222, 1, {"user": {}})]), "awareness-update")
    bob.send(
        encode_awareness([AwarenessEntry(111, 9, {"user": {"name": "Eve"}})]), "awareness-update"
    )
    alice.send(encode_awareness([AwarenessEntry(111, 2, {"user": {}, "x": 1})]), "awareness-update")
    wait_for(lambda: any(e.clock == 2 for e in seen_by_bob()), message="alice's next state")
    assert all(e.state["user"]["name"] == alice_name for e in seen_by_bob())
    alice.close()
    wait_for(lambda: seen_by_bob()[-1].state is None, message="alice's cursor withdrawn")
    bob.close()


def test_revoking_an_api_token_closes_its_sockets(world):
    from cop.auth.models import ApiToken, User
    from cop.auth.services import create_api_token

    with world.app.app_context():
        token, secret = create_api_token(db.session.get(User, world.users[Role.EDITOR]), "bot")
        db.session.commit()
        token_id = token.id
    bot = YClient(world.server.url, world.note_id, auth={"token": secret})
    with world.app.app_context():
        db.session.delete(db.session.get(ApiToken, token_id))
        db.session.commit()
    wait_for(lambda: not bot.sio.connected, message="the bot's socket to close")
