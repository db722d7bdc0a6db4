"""The live room of a workshop session: the Socket.IO namespace `/workshop`.

A client connects (session cookie, or a personal API token in the `auth` object), then sends
`join` with a session id: the answer carries the whole current state as this person may see
it, and the socket enters that session's room. Every other command goes through one path:
its marshmallow schema, the person's right (checked again each time), the service in
`cop/workshops/room.py` (which checks the phase), one commit, then the broadcasts. Every
refusal answers `{"ok": false, "error", "message"}` and sends `workshop-error` to the sender
alone; nothing is changed. docs/workshop-room.md describes the events.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, request
from flask import session as flask_session
from flask_babel import gettext as _
from flask_login import current_user
from flask_socketio import join_room, leave_room
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from cop.auth.models import ApiToken, User
from cop.auth.services import api_token_for
from cop.communities.models import Membership, Organisation
from cop.core.permissions import Action, Verdict, can_facilitate, decide, membership_of
from cop.core.time import utc_text, utcnow
from cop.extensions import db, socketio
from cop.live import notes as live_notes
from cop.live.identity import lasting_users, memberships_of
from cop.notes.models import Note
from cop.workshops import attendance, room
from cop.workshops.attendance import present_ids_of
from cop.workshops.models import (
    CARD_MAX,
    CLUSTER_LABEL_MAX,
    HIDDEN_REASON_MAX,
    TAKEAWAY_MAX,
    Attendance,
    BreakoutMember,
    Card,
    Cluster,
    Phase,
    SpotlightKind,
    Takeaway,
    TakeawayKind,
    WorkshopSession,
)
from cop.workshops.room import RoomError

NAMESPACE = "/workshop"
log = logging.getLogger(__name__)
MOST_GROUPS = 20

# Who may send a command besides seeing the session (every member may `join`): those who
# take part (every role but observer), or hosts and facilitators.
TAKING_PART, FACILITATING = "taking_part", "facilitating"


def init_app(app) -> None:
    """Bind the room's events to this app's Socket.IO server (a new one for each app)."""
    handlers = {"connect": on_connect, "disconnect": on_disconnect, "join": on_join}
    for event, handler in (handlers | COMMANDS | {"*": on_unknown}).items():
        socketio.on_event(event, handler, namespace=NAMESPACE)


def room_of(session_id: int) -> str:
    """Return the Socket.IO room of everyone in a session."""
    return f"session-{session_id}"


def view_room(session_id: int, facilitating: bool) -> str:
    """Return the room of those who see the session as facilitators, or as the others."""
    return f"session-{session_id}-{'facilitators' if facilitating else 'participants'}"


def person_room(session_id: int, user_id: int) -> str:
    """Return the room of one person's sockets in a session."""
    return f"session-{session_id}-user-{user_id}"


@dataclass
class Seat:
    """A socket's place in a session's room, and the identity it joined with."""

    session_id: int
    community_id: int
    user_id: int
    facilitating: bool  # which view room it is in
    session_nonce: str | None = None
    login_id: str | None = None
    api_token_id: int | None = None


def _sockets(app=None) -> dict:
    """Return this app's record of the room's sockets: their token, and their seat."""
    app = app or current_app
    return app.extensions.setdefault(
        "cop_workshop_room", {"tokens": {}, "seats": {}, "watching": False}
    )


# --- Payloads ------------------------------------------------------------------------------


class Command(Schema):
    """Every command names the session it is for."""

    class Meta:
        """Refuse fields the command does not have."""

        unknown = RAISE

    session_id = fields.Integer(required=True, strict=True)


class Flag(fields.Boolean):
    """A true JSON boolean: `1` or `"yes"` are refused rather than guessed at."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _id(**options):
    return fields.Integer(strict=True, **options)


def _text(most: int, **options):
    return fields.String(validate=validate.Length(min=1, max=most), **options)


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


class PostCard(Command):
    """Post a card."""

    body = _text(CARD_MAX, required=True)
    anonymous = Flag(load_default=False)


class CardCommand(Command):
    """Act on one card."""

    card_id = _id(required=True)


class EditCard(CardCommand):
    """Change a card's text."""

    body = _text(CARD_MAX, required=True)


class HideCard(CardCommand):
    """Hide a card, saying why."""

    reason = _text(HIDDEN_REASON_MAX, required=True)


class AddCluster(Command):
    """Add a cluster."""

    label = _text(CLUSTER_LABEL_MAX, required=True)


class ClusterCommand(Command):
    """Act on one cluster."""

    cluster_id = _id(required=True)


class RenameCluster(ClusterCommand):
    """Rename a cluster."""

    label = _text(CLUSTER_LABEL_MAX, required=True)


class MoveCard(CardCommand):
    """Put a card in a cluster, or in none."""

    cluster_id = _id(required=True, allow_none=True)


class AddTakeaway(Command):
    """Record a takeaway."""

    kind = fields.Enum(TakeawayKind, by_value=True, required=True)
    text = _text(TAKEAWAY_MAX, required=True)
    cluster_ids = fields.List(_id(), load_default=list, validate=validate.Length(max=50))


class EditTakeaway(AddTakeaway):
    """Change a takeaway: its kind, text and clusters, all given again."""

    takeaway_id = _id(required=True)
    cluster_ids = fields.List(_id(), required=True, validate=validate.Length(max=50))


class TakeawayCommand(Command):
    """Act on one takeaway."""

    takeaway_id = _id(required=True)


class Hand(Command):
    """Raise or lower one's hand."""

    raised = Flag(required=True)


class PersonCommand(Command):
    """Act on one person."""

    user_id = _id(required=True)


class Spotlight(Command):
    """Put a card or a cluster in front of everyone, or nothing."""

    kind = fields.Enum(SpotlightKind, by_value=True, required=True, allow_none=True)
    id = _id(required=True, allow_none=True)


class LockNote(Command):
    """Make the note read-only for participants, or writable again."""

    locked = Flag(required=True)


class OpenGroups(Command):
    """Send people to breakout groups."""

    count = fields.Integer(strict=True, validate=validate.Range(min=2, max=MOST_GROUPS))
    assign = fields.String(required=True, validate=validate.OneOf(["random", "none"]))


class Assign(PersonCommand):
    """Put a person in a group, or in none."""

    group_id = _id(required=True, allow_none=True)


def _load(schema: Schema, payload) -> dict:
    if not isinstance(payload, dict):
        raise RoomError("malformed", _("This command could not be read."))
    try:
        return schema.load(payload)
    except ValidationError as error:
        raise RoomError("invalid", _("This command is not valid."), error.messages) from error


# --- Who asks ------------------------------------------------------------------------------


def refused(error: RoomError) -> dict:
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


def _visible_session(session_id: int, refusal: RoomError):
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


def _may_take_part(user, session: WorkshopSession, membership) -> bool:
    community = session.workshop_day.community
    return decide(user, community, Action.TAKE_PART, membership) is Verdict.ALLOWED


def _joined_session(data: dict, who: str):
    """Return the session, person and membership, if the socket joined it and may act."""
    seat = _sockets()["seats"].get(request.sid)
    if seat is None or seat.session_id != data["session_id"]:
        raise RoomError("not_joined", _("Join this session's room first."))
    forbidden = RoomError("forbidden", _("You do not have permission to do this."))
    session, user, membership = _visible_session(data["session_id"], forbidden)
    if who == FACILITATING and not can_facilitate(membership):
        raise RoomError("forbidden", _("Only the session's facilitators can do this."))
    if who == TAKING_PART and not _may_take_part(user, session, membership):
        raise RoomError("forbidden", _("Observers follow the session without taking part."))
    return session, user, membership


# --- What people see -----------------------------------------------------------------------


def people_of(session: WorkshopSession, user_ids) -> dict[int, dict]:
    """Return how each person appears in the room: name and organisation in the community."""
    rows = db.session.execute(
        select(User.id, User.display_name, Organisation.name, Organisation.kind)
        .outerjoin(
            Membership,
            (Membership.user_id == User.id)
            & (Membership.community_id == session.workshop_day.community_id),
        )
        .outerjoin(Organisation, Organisation.id == Membership.organisation_id)
        .where(User.id.in_(set(user_ids)))
    )
    return {
        user_id: {
            "user_id": user_id,
            "name": name,
            "organisation": organisation,
            "organisation_kind": kind.value if kind else None,
        }
        for user_id, name, organisation, kind in rows
    }


def state_of(session: WorkshopSession) -> dict:
    """Return what everyone in the room sees of the session's course now."""
    spotlight = session.spotlight_kind
    note = db.session.get(Note, session.note_id) if session.note_id else None
    return {
        "session_id": session.id,
        "phase": session.phase.value,
        "timer": {
            "ends_at": utc_text(session.timer_ends_at),
            "paused_seconds": session.timer_paused_seconds,
        },
        "server_now": utc_text(utcnow()),
        "spotlight": {"kind": spotlight.value, "id": session.spotlight_id} if spotlight else None,
        "note": {"id": note.id, "locked": note.is_locked} if note else None,
        "breakout_open": session.breakout_open,
        "votes": (
            {str(card): total for card, total in room.vote_totals(session).items()}
            if room.votes_are_shown(session)
            else None
        ),
    }


def card_view(card: Card, facilitating: bool, people: dict, totals: dict | None) -> dict:
    """Return a card as facilitators, or as the others, see it."""
    hidden = card.hidden_reason is not None
    shown = facilitating or not hidden
    author = people.get(card.author_id) if shown and not card.is_anonymous else None
    return {
        "id": card.id,
        "body": card.body if shown else None,
        "author": (
            {key: author[key] for key in ("user_id", "name", "organisation")} if author else None
        ),
        "anonymous": card.is_anonymous,
        "cluster_id": card.cluster_id,
        "group_id": card.group_id,
        "hidden": hidden,
        "hidden_reason": card.hidden_reason if facilitating else None,
        "votes": totals.get(card.id, 0) if totals is not None else None,
    }


def cluster_view(cluster: Cluster) -> dict:
    """Return a cluster as everyone sees it."""
    return {"id": cluster.id, "label": cluster.label, "position": cluster.position}


def takeaway_view(takeaway: Takeaway) -> dict:
    """Return a takeaway as everyone sees it."""
    return {
        "id": takeaway.id,
        "kind": takeaway.kind.value,
        "text": takeaway.text,
        "theme": takeaway.theme.name if takeaway.theme else None,
        "cluster_ids": [cluster.id for cluster in takeaway.clusters],
    }


def hands_view(session: WorkshopSession) -> list[dict]:
    """Return the queue of raised hands, in order."""
    hands = room.hands_of(session)
    people = people_of(session, [hand.user_id for hand in hands])
    return [
        {
            "user_id": hand.user_id,
            "name": people[hand.user_id]["name"],
            "raised_at": utc_text(hand.raised_at),
        }
        for hand in hands
    ]


def groups_view(session: WorkshopSession) -> list[dict]:
    """Return the breakout groups with who is in each."""
    members = db.session.execute(
        select(BreakoutMember.group_id, BreakoutMember.user_id).filter_by(session_id=session.id)
    ).all()
    return [
        {
            "id": group.id,
            "name": group.name,
            "note_id": group.note_id,
            "user_ids": sorted(user for group_id, user in members if group_id == group.id),
        }
        for group in session.groups
    ]


def present_ids(session: WorkshopSession) -> set[int]:
    """Return who is in the room now, on every process."""
    return present_ids_of(session.id)


def you_view(session: WorkshopSession, user, membership) -> dict:
    """Return what concerns this person alone: rights, cards, dots, hand, group."""
    dots = room.dots_of(session, user.id)
    member = db.session.scalar(
        select(BreakoutMember).filter_by(session_id=session.id, user_id=user.id)
    )
    return {
        "user_id": user.id,
        "can_facilitate": can_facilitate(membership),
        "can_take_part": _may_take_part(user, session, membership),
        "group_id": member.group_id if member else None,
        "card_ids": list(
            db.session.scalars(select(Card.id).filter_by(session_id=session.id, author_id=user.id))
        ),
        "votes": {str(card): count for card, count in dots.items()},
        "dots_left": session.dots_per_person - sum(dots.values()),
        "hand_raised": any(hand.user_id == user.id for hand in room.hands_of(session)),
    }


def whole_state(session: WorkshopSession, user, membership) -> dict:
    """Return everything in the room as this person may see it (the answer to `join`)."""
    facilitating = can_facilitate(membership)
    present = present_ids(session)
    cards = session.cards
    people = people_of(session, present | {card.author_id for card in cards})
    totals = room.vote_totals(session) if room.votes_are_shown(session) else None
    state = state_of(session)
    del state["votes"]  # each card carries its own
    return state | {
        "title": session.title,
        "question": session.question,
        "rules": {
            "dots_per_person": session.dots_per_person,
            "max_dots_per_card": session.max_dots_per_card,
            "allows_anonymous_cards": session.allows_anonymous_cards,
        },
        "clusters": [cluster_view(cluster) for cluster in session.clusters],
        "cards": [card_view(card, facilitating, people, totals) for card in cards],
        "takeaways": [takeaway_view(takeaway) for takeaway in session.takeaways],
        "hands": hands_view(session),
        "present": [people[user_id] for user_id in sorted(present) if user_id in people],
        "groups": groups_view(session),
        "you": you_view(session, user, membership),
    }


# --- Commands ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an accepted command answers, and what it tells whom once committed."""

    answer: dict = field(default_factory=dict)
    broadcasts: list[tuple[str, dict, str]] = field(default_factory=list)  # event, body, room
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def tell(self, event: str, body: dict, to: str) -> "Outcome":
        """Add a broadcast."""
        self.broadcasts.append((event, body, to))
        return self

    def add(self, other: "Outcome") -> "Outcome":
        """Add another outcome's broadcasts after these."""
        self.broadcasts += other.broadcasts
        return self


def _state_changed(session: WorkshopSession, answer: dict | None = None) -> Outcome:
    return Outcome(answer or {}).tell("session-state", state_of(session), room_of(session.id))


def _card_changed(session: WorkshopSession, card: Card, answer: dict | None = None) -> Outcome:
    people = people_of(session, [card.author_id])
    totals = room.vote_totals(session) if room.votes_are_shown(session) else None
    outcome = Outcome(answer or {})
    for facilitating in (True, False):
        body = {"card": card_view(card, facilitating, people, totals)}
        outcome.tell("card", body, view_room(session.id, facilitating))
    return outcome


def _you_changed(session: WorkshopSession, user_id: int) -> Outcome:
    user = db.session.get(User, user_id)
    membership = db.session.scalar(
        select(Membership).filter_by(
            user_id=user_id, community_id=session.workshop_day.community_id
        )
    )
    you = you_view(session, user, membership)
    return Outcome().tell("you", you, person_room(session.id, user_id))


def _spotlight_news(session: WorkshopSession, spotlit_before) -> Outcome:
    """Tell the room when a command took its card or cluster out of the spotlight."""
    if spotlit_before and session.spotlight_kind is None:
        return _state_changed(session)
    return Outcome()


def _hands_changed(session: WorkshopSession) -> Outcome:
    return Outcome().tell("hands", {"hands": hands_view(session)}, room_of(session.id))


def _groups_changed(session: WorkshopSession) -> Outcome:
    body = {"groups": groups_view(session), "breakout_open": session.breakout_open}
    return Outcome().tell("groups", body, room_of(session.id))


COMMANDS: dict[str, Callable] = {}


def command(event: str, schema: type[Schema], who: str):
    """Register a room command: its schema, who may send it, and what it does.

    The function receives the session, the person, their membership and the loaded payload,
    calls the room's services and returns an `Outcome`; a `RoomError` refuses the command
    and rolls everything back.
    """

    def register(run: Callable[..., Outcome]) -> Callable:
        def handle(payload=None):
            try:
                data = _load(schema(), payload)
                session, user, membership = _joined_session(data, who)
                outcome = run(session, user, membership, data)
            except RoomError as error:
                db.session.rollback()
                return refused(error)
            except IntegrityError:  # another socket changed the same rows at the same moment
                db.session.rollback()
                return refused(RoomError("conflict", _("Someone did the same just now.")))
            db.session.commit()
            for task in outcome.after_commit:
                task()
            for name, body, to in outcome.broadcasts:
                socketio.emit(name, body, to=to, namespace=NAMESPACE)
            return {"ok": True} | outcome.answer

        handle.__name__, handle.__doc__ = f"on_{event}", run.__doc__
        COMMANDS[event] = handle
        return run

    return register


@command("set_phase", SetPhase, FACILITATING)
def set_phase(session, user, _membership, data) -> Outcome:
    """Move the session to the next phase, or back one (vote totals travel in the state)."""
    room.set_phase(session, data["phase"], user)
    outcome = _state_changed(session)
    if data["phase"] is Phase.CLOSED:  # closing lowers every hand and ends the groups
        outcome.add(_hands_changed(session)).add(_groups_changed(session))
    return outcome


@command("timer", Timer, FACILITATING)
def timer(session, _user, _membership, data) -> Outcome:
    """Start, pause, resume or lengthen the countdown."""
    minutes = data.get("minutes")
    if data["action"] in ("start", "add") and minutes is None:
        raise RoomError("invalid", _("Say how many minutes."), {"minutes": ["required"]})
    if data["action"] == "start":
        room.start_timer(session, minutes)
    elif data["action"] == "add":
        room.add_time(session, minutes)
    elif data["action"] == "pause":
        room.pause_timer(session)
    else:
        room.resume_timer(session)
    return _state_changed(session)


@command("post_card", PostCard, TAKING_PART)
def post_card(session, user, _membership, data) -> Outcome:
    """Post a card (collect)."""
    card = room.post_card(session, user, data["body"], data["anonymous"])
    return _card_changed(session, card, {"card_id": card.id})


@command("edit_card", EditCard, TAKING_PART)
def edit_card(session, user, _membership, data) -> Outcome:
    """Change one's own card (collect)."""
    return _card_changed(session, room.edit_card(session, user, data["card_id"], data["body"]))


@command("withdraw_card", CardCommand, TAKING_PART)
def withdraw_card(session, user, _membership, data) -> Outcome:
    """Withdraw one's own card (collect)."""
    spotlit = session.spotlight_kind
    room.withdraw_card(session, user, data["card_id"])
    outcome = Outcome().tell("card-removed", {"card_id": data["card_id"]}, room_of(session.id))
    return outcome.add(_spotlight_news(session, spotlit))


@command("hide_card", HideCard, FACILITATING)
def hide_card(session, user, _membership, data) -> Outcome:
    """Hide a card from participants, saying why (moderation); its dots go back."""
    spotlit = session.spotlight_kind
    card, voters = room.hide_card(session, user, data["card_id"], data["reason"])
    outcome = _card_changed(session, card)
    for voter in voters:
        outcome.add(_you_changed(session, voter))
    return outcome.add(_spotlight_news(session, spotlit))


@command("unhide_card", CardCommand, FACILITATING)
def unhide_card(session, user, _membership, data) -> Outcome:
    """Show a hidden card again."""
    card, _voters = room.hide_card(session, user, data["card_id"], None)
    return _card_changed(session, card)


@command("add_cluster", AddCluster, FACILITATING)
def add_cluster(session, _user, _membership, data) -> Outcome:
    """Add a cluster (cluster)."""
    cluster = room.add_cluster(session, data["label"])
    body = {"cluster": cluster_view(cluster)}
    return Outcome({"cluster_id": cluster.id}).tell("cluster", body, room_of(session.id))


@command("rename_cluster", RenameCluster, FACILITATING)
def rename_cluster(session, _user, _membership, data) -> Outcome:
    """Rename a cluster (cluster)."""
    cluster = room.rename_cluster(session, data["cluster_id"], data["label"])
    return Outcome().tell("cluster", {"cluster": cluster_view(cluster)}, room_of(session.id))


@command("remove_cluster", ClusterCommand, FACILITATING)
def remove_cluster(session, _user, _membership, data) -> Outcome:
    """Remove a cluster; its cards go back to none (cluster)."""
    spotlit = session.spotlight_kind
    cards = room.remove_cluster(session, data["cluster_id"])
    outcome = Outcome().tell(
        "cluster-removed", {"cluster_id": data["cluster_id"]}, room_of(session.id)
    )
    for card in cards:
        outcome.add(_card_changed(session, card))
    return outcome.add(_spotlight_news(session, spotlit))


@command("move_card", MoveCard, FACILITATING)
def move_card(session, _user, _membership, data) -> Outcome:
    """Put a card in a cluster, or in none (cluster)."""
    return _card_changed(session, room.move_card(session, data["card_id"], data["cluster_id"]))


@command("vote", CardCommand, TAKING_PART)
def vote(session, user, _membership, data) -> Outcome:
    """Put one more dot on a card (vote)."""
    room.vote(session, user, data["card_id"])
    return _you_changed(session, user.id)


@command("unvote", CardCommand, TAKING_PART)
def unvote(session, user, _membership, data) -> Outcome:
    """Take a dot back from a card (vote)."""
    room.unvote(session, user, data["card_id"])
    return _you_changed(session, user.id)


@command("add_takeaway", AddTakeaway, FACILITATING)
def add_takeaway(session, user, _membership, data) -> Outcome:
    """Record a typed takeaway (synthesise)."""
    takeaway = room.add_takeaway(session, user, data["kind"], data["text"], data["cluster_ids"])
    body = {"takeaway": takeaway_view(takeaway)}
    return Outcome({"takeaway_id": takeaway.id}).tell("takeaway", body, room_of(session.id))


@command("edit_takeaway", EditTakeaway, FACILITATING)
def edit_takeaway(session, _user, _membership, data) -> Outcome:
    """Change a takeaway (synthesise)."""
    takeaway = room.edit_takeaway(
        session, data["takeaway_id"], data["kind"], data["text"], data["cluster_ids"]
    )
    return Outcome().tell("takeaway", {"takeaway": takeaway_view(takeaway)}, room_of(session.id))


@command("remove_takeaway", TakeawayCommand, FACILITATING)
def remove_takeaway(session, _user, _membership, data) -> Outcome:
    """Remove a takeaway (synthesise)."""
    room.remove_takeaway(session, data["takeaway_id"])
    body = {"takeaway_id": data["takeaway_id"]}
    return Outcome().tell("takeaway-removed", body, room_of(session.id))


@command("hand", Hand, TAKING_PART)
def hand(session, user, _membership, data) -> Outcome:
    """Raise or lower one's hand."""
    room.set_hand(session, user.id, data["raised"])
    return _hands_changed(session)


@command("lower_hand", PersonCommand, FACILITATING)
def lower_hand(session, _user, _membership, data) -> Outcome:
    """Lower someone's hand."""
    room.lower_hand(session, data["user_id"])
    return _hands_changed(session)


@command("spotlight", Spotlight, FACILITATING)
def spotlight(session, _user, _membership, data) -> Outcome:
    """Put a card or a cluster in front of everyone, or nothing."""
    if (data["kind"] is None) != (data["id"] is None):
        raise RoomError("invalid", _("Name what to put in the spotlight."), {"id": ["pair"]})
    room.spotlight(session, data["kind"], data["id"])
    return _state_changed(session)


@command("lock_note", LockNote, FACILITATING)
def lock_note(session, _user, _membership, data) -> Outcome:
    """Make the note read-only for participants, or writable again."""
    room.lock_note(session, data["locked"])
    outcome = _state_changed(session)
    # This process's note sockets learn the lock at once; other processes' within
    # LIVE_RIGHTS_CHECK_SECONDS, when their rights check reads it.
    outcome.after_commit.append(lambda: live_notes.check_rights(live_notes.live()))
    return outcome


@command("open_groups", OpenGroups, FACILITATING)
def open_groups(session, user, _membership, data) -> Outcome:
    """Send people to breakout groups, creating them if there are none."""
    if not session.groups and "count" not in data:
        raise RoomError("invalid", _("Say how many groups."), {"count": ["required"]})
    people = None
    if data["assign"] == "random":
        present = people_of(session, present_ids(session))
        memberships = {
            membership.user_id: membership
            for membership in db.session.scalars(
                select(Membership).where(
                    Membership.community_id == session.workshop_day.community_id,
                    Membership.user_id.in_(present),
                )
            )
        }
        people = {
            user_id: person["organisation_kind"] or "none"
            for user_id, person in present.items()
            if user_id in memberships
            and not can_facilitate(memberships[user_id])
            and _may_take_part(memberships[user_id].user, session, memberships[user_id])
        }
    room.open_groups(session, user, data.get("count", 0), people)
    return _groups_changed(session).add(_state_changed(session))


@command("assign", Assign, FACILITATING)
def assign(session, _user, _membership, data) -> Outcome:
    """Put a person in a group, or in none."""
    room.assign(session, data["user_id"], data["group_id"])
    return _groups_changed(session)


@command("everyone_back", Command, FACILITATING)
def everyone_back(session, _user, _membership, _data) -> Outcome:
    """Bring everyone back to the plenary."""
    room.everyone_back(session)
    return _groups_changed(session).add(_state_changed(session))


# --- Connecting, joining, leaving ----------------------------------------------------------


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


def _leave(sid: str) -> tuple[int, int] | None:
    """Close this socket's stay in its session's room; return the session and person."""
    seat = _sockets()["seats"].pop(sid, None)
    if seat is None:
        return None
    db.session.execute(
        update(Attendance)
        .where(Attendance.sid == sid, Attendance.left_at.is_(None))
        .values(left_at=utcnow())
    )
    return seat.session_id, seat.user_id


def _announce_departures(departures) -> None:
    """Tell each room that a person left, once none of their sockets is there any more.

    Called after the commit: two sockets of one person leaving at once each see the other
    gone, so the person is announced gone (twice at worst, which screens take calmly).
    """
    for session_id, user_id in filter(None, departures):
        if user_id not in present_ids_of(session_id, [user_id]):
            body = {"person": {"user_id": user_id}, "here": False}
            socketio.emit("presence", body, to=room_of(session_id), namespace=NAMESPACE)


def leave_everything(app) -> None:
    """Close the stays of every socket of this process, which is stopping (SIGTERM)."""
    with app.app_context():
        departures = [_leave(sid) for sid in list(_sockets()["seats"])]
        db.session.commit()
        _announce_departures(departures)
        db.session.remove()


def on_disconnect(*_reason):
    """Close the socket's attendance and forget it; say so to the room from a task.

    The announcement must not be sent from here: python-engineio runs this handler while
    sending, when it finds a socket dead, and a send from here may find the next dead
    socket. When many screens drop at once, the handlers would nest until Python's
    recursion limit and leave stays open (bench/results/room-dropout-recursion.txt).
    """
    _sockets()["tokens"].pop(request.sid, None)
    departure = _leave(request.sid)
    db.session.commit()
    if departure is not None:
        socketio.start_background_task(
            _announce_later, current_app._get_current_object(), departure
        )


def _announce_later(app, departure: tuple[int, int]) -> None:
    with app.app_context():
        try:
            _announce_departures([departure])
        finally:
            db.session.remove()


def on_join(payload=None):
    """Enter a session's room (anyone who may see it); answer its whole state."""
    try:
        data = _load(Command(), payload)
        unseen = RoomError("not_found", _("This session does not exist, or you cannot see it."))
        session, user, membership = _visible_session(data["session_id"], unseen)
    except RoomError as error:
        return refused(error)
    sid = request.sid
    previous = _sockets()["seats"].get(sid)
    departure = _leave(sid)
    if previous is not None:
        for name in _rooms_of(previous):
            leave_room(name)
    arriving = user.id not in present_ids(session)
    db.session.add(
        Attendance(
            workshop_day_id=session.workshop_day_id, session_id=session.id, user_id=user.id, sid=sid
        )
    )
    by_cookie = current_user.is_authenticated
    seat = Seat(
        session_id=session.id,
        community_id=session.workshop_day.community_id,
        user_id=user.id,
        facilitating=can_facilitate(membership),
        session_nonce=user.session_nonce if by_cookie else None,
        login_id=flask_session.get("login_id") if by_cookie else None,
        api_token_id=None if by_cookie else _sockets()["tokens"].get(sid),
    )
    _sockets()["seats"][sid] = seat
    for name in _rooms_of(seat):
        join_room(name)
    db.session.flush()
    state = whole_state(session, user, membership)
    db.session.commit()
    _announce_departures([departure])
    if arriving:
        person = people_of(session, [user.id])[user.id]
        body = {"person": person, "here": True}
        socketio.emit("presence", body, to=room_of(session.id), namespace=NAMESPACE, skip_sid=sid)
    watch(current_app._get_current_object())
    return {"ok": True, "state": state}


def _rooms_of(seat: Seat) -> tuple[str, ...]:
    return (
        room_of(seat.session_id),
        view_room(seat.session_id, seat.facilitating),
        person_room(seat.session_id, seat.user_id),
    )


# --- Rights and presence while sockets stay ------------------------------------------------


def watch(app) -> None:
    """Start, once per app and process, the task that re-checks the room's sockets."""
    sockets = _sockets(app)
    if not sockets["watching"]:
        sockets["watching"] = True
        socketio.start_background_task(_watch_loop, app)


def _watch_loop(app) -> None:
    last_heartbeat = 0.0
    while True:
        socketio.sleep(app.config["LIVE_RIGHTS_CHECK_SECONDS"])
        with app.app_context():
            try:
                check_seats(app)
                if time.monotonic() - last_heartbeat >= attendance.HEARTBEAT_SECONDS:
                    still_here(app)
                    last_heartbeat = time.monotonic()
            except Exception:
                log.exception("could not re-check the live room's sockets")
            finally:
                db.session.remove()


def check_seats(app) -> None:
    """Disconnect sockets whose person logged out or left; move those whose role changed.

    A facilitator who becomes a participant leaves the facilitators' view (hidden cards'
    text and reasons) at once; commands are re-checked on their own at every event.
    """
    seats = _sockets(app)["seats"]
    if not seats:
        return
    sids = list(seats)
    users = lasting_users([seats[sid] for sid in sids])
    memberships = memberships_of({(seats[sid].user_id, seats[sid].community_id) for sid in sids})
    for sid, user in zip(sids, users, strict=True):
        seat = seats.get(sid)
        if seat is None:
            continue  # it left meanwhile
        membership = memberships.get((seat.user_id, seat.community_id))
        community = membership.community if membership else None
        allowed = (
            user is not None
            and community is not None
            and decide(user, community, Action.VIEW_MEMBERS_AREA, membership) is Verdict.ALLOWED
        )
        if not allowed:
            socketio.server.disconnect(sid, namespace=NAMESPACE)
        elif can_facilitate(membership) != seat.facilitating:
            socketio.server.leave_room(
                sid, view_room(seat.session_id, seat.facilitating), NAMESPACE
            )
            seat.facilitating = not seat.facilitating
            socketio.server.enter_room(
                sid, view_room(seat.session_id, seat.facilitating), NAMESPACE
            )


def still_here(app) -> None:
    """Mark this process's sockets' stays as seen now (see `attendance.STALE_AFTER`)."""
    sids = list(_sockets(app)["seats"])
    if sids:
        db.session.execute(
            update(Attendance)
            .where(Attendance.sid.in_(sids), Attendance.left_at.is_(None))
            .values(seen_at=utcnow())
        )
        db.session.commit()


def on_unknown(event, *_args):
    """Refuse events the room does not know."""
    return refused(RoomError("unknown_event", _("The room does not know this command.")))
