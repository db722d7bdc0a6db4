"""The live room's first commands: joining, phases and the countdown, with every refusal.

Flask-SocketIO's test client drives the real handlers in process (plain events need no
callback from the server, unlike the notes' sync-step-1), with each person's login cookie.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from cop.auth import services as auth_services
from cop.auth.models import User
from cop.communities.models import Role
from cop.core.time import utcnow
from cop.extensions import db, socketio
from cop.workshops.models import Phase, WorkshopSession
from tests.test_workshops import Planning

ROOM = "/workshop"


class Room(Planning):
    """A planned session, and a way to put each person in its room."""

    def __init__(self, app, make, auth, client):
        super().__init__(app, make, auth, client)
        self.day_id = self.plan_day()
        assert self.add_session(self.day_id).status_code == 302
        with app.app_context():
            self.session_id = db.session.scalar(select(WorkshopSession.id))
        self.sockets = []

    def socket(self, user_id=None, token=None):
        """Connect a person to the room namespace (by their cookie, or by an API token)."""
        http = self.app.test_client()
        if user_id is not None:
            http.post("/login", data={"email": self.make.email_of(user_id), "password": "pw"})
            self.auth.client = http
            assert self.auth.login(user_id).status_code == 302
        socket = socketio.test_client(
            self.app,
            namespace=ROOM,
            flask_test_client=http,
            auth={"token": token} if token else None,
        )
        self.sockets.append(socket)
        return socket

    def joined(self, user_id):
        socket = self.socket(user_id)
        answer = socket.emit("join", {"session_id": self.session_id}, namespace=ROOM, callback=True)
        assert answer["ok"], answer
        socket.get_received(ROOM)  # forget what came before
        return socket

    def stored(self) -> tuple:
        with self.app.app_context():
            session = db.session.get(WorkshopSession, self.session_id)
            return session.phase, session.timer_ends_at, session.timer_paused_seconds


def open_room(app, make, auth, client):
    """Yield a planned session's room, disconnecting its sockets afterwards."""
    world = Room(app, make, auth, client)
    yield world
    for socket in world.sockets:
        if socket.is_connected(ROOM):
            socket.disconnect(ROOM)


@pytest.fixture
def room(app, make, auth, client):
    yield from open_room(app, make, auth, client)


def events(socket, name):
    return [message["args"][0] for message in socket.get_received(ROOM) if message["name"] == name]


def command(socket, event, payload):
    return socket.emit(event, payload, namespace=ROOM, callback=True)


def run(room, socket, event, **fields):
    """Send a command for the room's session; return the answer."""
    return command(socket, event, {"session_id": room.session_id} | fields)


def test_joining_gives_the_whole_state_and_what_one_may_do(room):
    facilitator = room.socket(room.facilitator)
    observer = room.socket(room.observer)

    answer = command(facilitator, "join", {"session_id": room.session_id})
    watching = command(observer, "join", {"session_id": room.session_id})

    assert (
        answer["ok"]
        and answer["state"]["you"]["can_facilitate"]
        and answer["state"]["you"]["can_take_part"]
    )
    assert answer["state"]["phase"] == "prepare"
    assert answer["state"]["timer"] == {"ends_at": None, "paused_seconds": None}
    assert answer["state"]["server_now"].endswith("Z")
    assert watching["ok"] and not watching["state"]["you"]["can_facilitate"]
    assert not watching["state"]["you"]["can_take_part"]


def test_a_facilitator_moves_phases_and_everyone_sees_it(room):
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)

    assert run(room, facilitator, "set_phase", phase="collect")["ok"]
    assert run(room, facilitator, "set_phase", phase="prepare")["ok"]  # back one phase

    seen = events(participant, "session-state")
    assert [state["phase"] for state in seen] == ["collect", "prepare"]
    assert room.stored()[0] is Phase.PREPARE


@pytest.mark.parametrize(
    ("who", "payload", "code"),
    [
        ("participant", {"phase": "collect"}, "forbidden"),
        ("observer", {"phase": "collect"}, "forbidden"),
        ("facilitator", {"phase": "vote"}, "wrong_phase"),  # two phases ahead
        ("facilitator", {"phase": "bogus"}, "invalid"),
        ("facilitator", {"phase": "collect", "extra": 1}, "invalid"),
        ("facilitator", {"phase": "collect", "session_id": "1"}, "invalid"),
        ("facilitator", {"phase": "collect", "session_id": 999}, "not_joined"),
        ("facilitator", None, "malformed"),
        ("facilitator", "collect", "malformed"),
    ],
)
def test_refused_phase_changes_say_why_and_change_nothing(room, who, payload, code):
    socket = room.joined(getattr(room, who))
    if isinstance(payload, dict):
        payload = {"session_id": room.session_id} | payload

    answer = command(socket, "set_phase", payload)

    assert answer["ok"] is False and answer["error"] == code, answer
    assert [error["error"] for error in events(socket, "workshop-error")] == [code]
    assert room.stored() == (Phase.PREPARE, None, None)


def test_a_closed_session_stays_closed(room, app):
    facilitator = room.joined(room.facilitator)
    with app.app_context():
        db.session.get(WorkshopSession, room.session_id).phase = Phase.SYNTHESISE
        db.session.commit()

    assert command(facilitator, "set_phase", {"session_id": room.session_id, "phase": "closed"})[
        "ok"
    ]
    again = command(
        facilitator, "set_phase", {"session_id": room.session_id, "phase": "synthesise"}
    )
    timer = command(
        facilitator, "timer", {"session_id": room.session_id, "action": "start", "minutes": 5}
    )

    assert again["error"] == "wrong_phase" and timer["error"] == "wrong_phase"
    assert room.stored() == (Phase.CLOSED, None, None)


def test_the_countdown_runs_on_the_servers_clock(room):
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)
    session = {"session_id": room.session_id}

    assert command(facilitator, "timer", session | {"action": "start", "minutes": 10})["ok"]
    _phase, ends_at, _paused = room.stored()
    assert timedelta(minutes=9) < ends_at - utcnow() <= timedelta(minutes=10)
    assert command(facilitator, "timer", session | {"action": "add", "minutes": 2})["ok"]
    assert room.stored()[1] - ends_at == timedelta(minutes=2)
    assert command(facilitator, "timer", session | {"action": "pause"})["ok"]
    _phase, ends_at, paused = room.stored()
    assert ends_at is None and 11 * 60 < paused <= 12 * 60
    assert command(facilitator, "timer", session | {"action": "resume"})["ok"]
    assert room.stored()[2] is None

    states = events(participant, "session-state")
    assert len(states) == 4
    assert states[-1]["timer"]["ends_at"].endswith("Z") and states[2]["timer"]["paused_seconds"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"action": "start"}, "invalid"),  # how many minutes?
        ({"action": "start", "minutes": 0}, "invalid"),
        ({"action": "start", "minutes": 181}, "invalid"),
        ({"action": "start", "minutes": 2.5}, "invalid"),
        ({"action": "explode"}, "invalid"),
        ({"action": "pause"}, "wrong_phase"),  # nothing runs
        ({"action": "resume"}, "wrong_phase"),  # nothing paused
        ({"action": "add", "minutes": 1}, "wrong_phase"),  # no countdown yet
    ],
)
def test_refused_timer_commands_change_nothing(room, payload, code):
    facilitator = room.joined(room.facilitator)

    answer = command(facilitator, "timer", {"session_id": room.session_id} | payload)

    assert answer["error"] == code, answer
    assert room.stored() == (Phase.PREPARE, None, None)


def test_participants_cannot_run_the_countdown(room):
    participant = room.joined(room.participant)

    answer = command(
        participant, "timer", {"session_id": room.session_id, "action": "start", "minutes": 3}
    )

    assert answer["error"] == "forbidden" and room.stored() == (Phase.PREPARE, None, None)


def test_commands_for_a_session_not_joined_are_refused(room, app):
    first = room.joined(room.facilitator)
    second_id = None
    response = room.add_session(room.day_id, title="Second", starts_at_local="10:45")
    assert response.status_code == 302
    with app.app_context():
        second_id = db.session.scalar(
            select(WorkshopSession.id).order_by(WorkshopSession.id.desc())
        )

    answer = command(first, "set_phase", {"session_id": second_id, "phase": "collect"})

    assert answer["error"] == "not_joined"
    with app.app_context():
        assert db.session.get(WorkshopSession, second_id).phase is Phase.PREPARE


def test_outsiders_and_anonymous_people_stay_out(room, make):
    outsider = room.socket(make.user("Outsider"))
    answer = command(outsider, "join", {"session_id": room.session_id})
    anonymous = socketio.test_client(room.app, namespace=ROOM)

    assert answer["error"] == "not_found"
    assert not anonymous.is_connected(ROOM)


def test_a_personal_api_token_opens_the_room(room, app):
    with app.app_context():
        user = db.session.get(User, room.facilitator)
        _token, secret = auth_services.create_api_token(user, "room")
        db.session.commit()
    socket = room.socket(token=secret)

    joined = command(socket, "join", {"session_id": room.session_id})
    assert joined["state"]["you"]["can_facilitate"]
    assert room.socket(token="cop_wrong").is_connected(ROOM) is False


def test_unknown_events_get_an_error(room):
    socket = room.joined(room.participant)

    answer = command(socket, "launch_rockets", {"session_id": room.session_id})

    assert answer["error"] == "unknown_event"
    assert room.stored() == (Phase.PREPARE, None, None)


def test_a_member_who_leaves_can_no_longer_command(room, app):
    facilitator = room.joined(room.facilitator)
    with app.app_context():
        from cop.communities.models import Membership

        membership = db.session.scalar(select(Membership).filter_by(user_id=room.facilitator))
        membership.role = Role.PARTICIPANT
        db.session.commit()

    answer = command(facilitator, "set_phase", {"session_id": room.session_id, "phase": "collect"})

    assert answer["error"] == "forbidden" and room.stored()[0] is Phase.PREPARE


def test_refusals_speak_the_persons_language(room, app):
    with app.app_context():
        db.session.get(User, room.participant).locale = "fr"
        db.session.commit()
    participant = room.joined(room.participant)

    answer = run(room, participant, "set_phase", phase="collect")

    assert answer["message"] == "Seules les personnes qui animent la séance peuvent faire cela."
