"""The live room of a workshop session: the Socket.IO namespace `/workshop`.

A client connects (session cookie, or a personal API token in the `auth` object), then sends
`join` with a session id: the answer carries the whole current state, and the socket enters
that session's room. Facilitators send commands (`set_phase`, `timer`); the server checks the
payload, the person and the phase, applies and commits, then broadcasts `session-state` to the
room. Every refusal answers `{"ok": false, "error", "message"}` and sends `workshop-error` to
the sender alone; nothing is changed. docs/workshop-room.md describes the events.
"""

from flask import current_app, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_socketio import join_room, leave_room
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from cop.auth.models import ApiToken
from cop.auth.services import api_token_for
from cop.core.errors import ServiceError
from cop.core.permissions import Action, Verdict, can_facilitate, decide, membership_of
from cop.core.time import utcnow
from cop.extensions import db, socketio
from cop.workshops import room
from cop.workshops.models import Phase, WorkshopSession

NAMESPACE = "/workshop"


def init_app(app) -> None:
    """Bind the room's events to this app's Socket.IO server (a new one for each app)."""
    for event, handler in (
        ("connect", on_connect),
        ("disconnect", on_disconnect),
        ("join", on_join),
        ("set_phase", on_set_phase),
        ("timer", on_timer),
        ("*", on_unknown),
    ):
        socketio.on_event(event, handler, namespace=NAMESPACE)


def room_of(session_id: int) -> str:
    """Return the Socket.IO room of a session."""
    return f"session-{session_id}"


def _sockets() -> dict:
    """Return this app's record of the room's sockets: their token and their session."""
    return current_app.extensions.setdefault("cop_workshop_room", {"tokens": {}, "joined": {}})


class Command(Schema):
    """Every command names the session it is for."""

    class Meta:
        """Refuse fields the command does not have."""

        unknown = RAISE

    session_id = fields.Integer(required=True, strict=True)


class SetPhase(Command):
    """Move the session to a phase."""

    phase = fields.Enum(Phase, by_value=True, required=True)


class Timer(Command):
    """Start, pause, resume or lengthen the countdown."""

    action = fields.String(
        required=True, validate=validate.OneOf(["start", "pause", "resume", "add"])
    )
    minutes = fields.Integer(
        strict=True, validate=validate.Range(min=1, max=room.LONGEST_TIMER_MINUTES)
    )


class Refusal(Exception):
    """A command refused: its code and the sentence shown to the person."""

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}


def refused(error: Refusal) -> dict:
    """Tell the sender why, by event and in the answer."""
    body = {"error": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    socketio.emit("workshop-error", body, to=request.sid, namespace=NAMESPACE)
    return {"ok": False} | body


def actor():
    """Return the person behind this socket, checked again for this event, or None."""
    if current_user.is_authenticated:  # the cookie: its login and nonce are checked each time
        return current_user._get_current_object()
    token = db.session.get(ApiToken, _sockets()["tokens"].get(request.sid, 0))
    return token.user if token is not None and not token.user.is_deleted else None


def state_of(session: WorkshopSession) -> dict:
    """Return what everyone in the room sees of the session now."""

    def utc(moment):
        return moment.isoformat(timespec="seconds") + "Z" if moment else None

    return {
        "session_id": session.id,
        "phase": session.phase.value,
        "timer": {
            "ends_at": utc(session.timer_ends_at),
            "paused_seconds": session.timer_paused_seconds,
        },
        "server_now": utc(utcnow()),
    }


def _load(schema: Schema, payload) -> dict:
    if not isinstance(payload, dict):
        raise Refusal("malformed", _("This command could not be read."))
    try:
        return schema.load(payload)
    except ValidationError as error:
        raise Refusal("invalid", _("This command is not valid."), error.messages) from error


def _visible_session(session_id: int, refusal: Refusal):
    """Return the session with the person and membership, if they may see it; else refuse."""
    session = db.session.get(WorkshopSession, session_id)
    user = actor()
    if session is None or user is None:
        raise refusal
    community = session.workshop_day.community
    membership = membership_of(user, community)
    if decide(user, community, Action.VIEW_MEMBERS_AREA, membership) is not Verdict.ALLOWED:
        raise refusal
    return session, user, membership


def _joined_session(data: dict, facilitator: bool = False) -> WorkshopSession:
    """Return the session the command is for, if the socket joined it and may act there."""
    if _sockets()["joined"].get(request.sid) != data["session_id"]:
        raise Refusal("not_joined", _("Join this session's room first."))
    forbidden = Refusal("forbidden", _("You do not have permission to do this."))
    session, _user, membership = _visible_session(data["session_id"], forbidden)
    if facilitator and not can_facilitate(membership):
        raise Refusal("forbidden", _("Only the session's facilitators can do this."))
    return session


def _apply(action) -> dict:
    """Run a service, commit, and broadcast the new state; or refuse, changing nothing."""
    try:
        session = action()
    except Refusal as error:
        db.session.rollback()
        return refused(error)
    except ServiceError as error:
        db.session.rollback()
        return refused(Refusal("wrong_phase", error.message, error.fields))
    db.session.commit()
    socketio.emit("session-state", state_of(session), to=room_of(session.id), namespace=NAMESPACE)
    return {"ok": True}


def on_connect(auth=None):
    """Admit a logged-in person (cookie) or a personal API token in `auth`."""
    if current_user.is_authenticated:
        return True
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        token = api_token_for(auth["token"])
        if token is not None:
            _sockets()["tokens"][request.sid] = token.id
            db.session.commit()
            return True
    return False


def on_disconnect(*_reason):
    """Forget the socket."""
    _sockets()["tokens"].pop(request.sid, None)
    _sockets()["joined"].pop(request.sid, None)


def on_join(payload=None):
    """Enter a session's room (sent by anyone who may see it); answer its whole state."""
    try:
        data = _load(Command(), payload)
        unseen = Refusal("not_found", _("This session does not exist, or you cannot see it."))
        session, user, membership = _visible_session(data["session_id"], unseen)
    except Refusal as error:
        return refused(error)
    community = session.workshop_day.community
    joined = _sockets()["joined"]
    if request.sid in joined:
        leave_room(room_of(joined[request.sid]))
    joined[request.sid] = session.id
    join_room(room_of(session.id))
    return {
        "ok": True,
        "state": state_of(session),
        "can_facilitate": can_facilitate(membership),
        "can_take_part": decide(user, community, Action.TAKE_PART, membership) is Verdict.ALLOWED,
    }


def on_set_phase(payload=None):
    """Move the session to the next phase, or back one (facilitators)."""

    def action():
        data = _load(SetPhase(), payload)
        session = _joined_session(data, facilitator=True)
        room.set_phase(session, data["phase"])
        return session

    return _apply(action)


def on_timer(payload=None):
    """Start, pause, resume or lengthen the countdown (facilitators)."""

    def action():
        data = _load(Timer(), payload)
        session = _joined_session(data, facilitator=True)
        minutes = data.get("minutes")
        if data["action"] in ("start", "add") and minutes is None:
            raise Refusal("invalid", _("Say how many minutes."), {"minutes": ["required"]})
        if data["action"] == "start":
            room.start_timer(session, minutes)
        elif data["action"] == "add":
            room.add_time(session, minutes)
        elif data["action"] == "pause":
            room.pause_timer(session)
        else:
            room.resume_timer(session)
        return session

    return _apply(action)


def on_unknown(event, *_args):
    """Refuse events the room does not know."""
    return refused(Refusal("unknown_event", _("The room does not know this command.")))
