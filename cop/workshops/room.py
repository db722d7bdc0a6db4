"""What happens in a live session, once the live room has checked who asks and how.

Phases, countdown, cards, clusters, votes, takeaways, hands, spotlight, the note lock and
breakout groups.

The live room (`cop/live/workshop.py`) calls these after checking the payload's shape and
the person's role; they check the phase and the session's state, change the rows and only
flush, raising `RoomError` (with the protocol's code) to refuse. The handler commits once,
then broadcasts.
"""

import random
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from cop.auth.models import User
from cop.communities.models import Membership
from cop.core.errors import ServiceError
from cop.core.time import utcnow
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops.models import (
    CARD_MAX,
    PHASES,
    BreakoutGroup,
    BreakoutMember,
    Card,
    Cluster,
    HandRaise,
    Phase,
    SpotlightKind,
    Takeaway,
    TakeawayKind,
    Vote,
    WorkshopSession,
)
from cop.workshops.record import freeze

LONGEST_TIMER_MINUTES = 180


def set_phase(session: WorkshopSession, phase: Phase, by: User) -> None:
    """Move a session to the next phase, or back one phase while it is not closed.

    Closing ends the countdown, the spotlight, the hands and the groups, and freezes the
    session's record.
    """
    current = PHASES.index(session.phase)
    wanted = PHASES.index(phase)
    if session.phase is Phase.CLOSED:
        raise RoomError("wrong_phase", _("This session is closed."), {"phase": ["closed"]})
    if wanted not in (current + 1, current - 1):
        raise RoomError(
            "wrong_phase", _("A session moves one phase at a time."), {"phase": ["not_adjacent"]}
        )
    session.phase = phase
    if phase is Phase.CLOSED:
        session.timer_ends_at = session.timer_paused_seconds = None
        session.spotlight_kind = session.spotlight_id = None
        session.breakout_open = False
        db.session.execute(delete(HandRaise).filter_by(session_id=session.id))
        db.session.flush()
        freeze(session, by)
    db.session.flush()


def _check_open(session: WorkshopSession) -> None:
    if session.phase is Phase.CLOSED:
        raise RoomError("wrong_phase", _("This session is closed."), {"phase": ["closed"]})


def start_timer(session: WorkshopSession, minutes: int) -> None:
    """Start (or restart) the countdown for this many minutes."""
    _check_open(session)
    session.timer_ends_at = utcnow() + timedelta(minutes=minutes)
    session.timer_paused_seconds = None
    db.session.flush()


def pause_timer(session: WorkshopSession) -> None:
    """Stop the countdown where it is."""
    _check_open(session)
    if session.timer_ends_at is None:
        raise RoomError(
            "wrong_phase", _("The countdown is not running."), {"action": ["not_running"]}
        )
    left = max(0, round((session.timer_ends_at - utcnow()).total_seconds()))
    session.timer_ends_at, session.timer_paused_seconds = None, left
    db.session.flush()


def resume_timer(session: WorkshopSession) -> None:
    """Start the countdown again from where it was paused."""
    _check_open(session)
    if session.timer_paused_seconds is None:
        raise RoomError(
            "wrong_phase", _("The countdown is not paused."), {"action": ["not_paused"]}
        )
    session.timer_ends_at = utcnow() + timedelta(seconds=session.timer_paused_seconds)
    session.timer_paused_seconds = None
    db.session.flush()


def add_time(session: WorkshopSession, minutes: int) -> None:
    """Give the running or paused countdown more minutes."""
    _check_open(session)
    if session.timer_ends_at is not None:
        session.timer_ends_at += timedelta(minutes=minutes)
    elif session.timer_paused_seconds is not None:
        session.timer_paused_seconds += minutes * 60
    else:
        raise RoomError("wrong_phase", _("Start the countdown first."), {"action": ["no_timer"]})
    db.session.flush()


# --- Refusals ------------------------------------------------------------------------------


class RoomError(ServiceError):
    """A room command refused, with the code the protocol names (docs/workshop-room.md)."""

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message, fields)
        self.code = code


def _not_found() -> RoomError:
    return RoomError("not_found", _("This is not part of this session."))


def _require_phase(session: WorkshopSession, *phases: Phase) -> None:
    _check_open(session)
    if session.phase not in phases:
        raise RoomError(
            "wrong_phase", _("This cannot be done in this phase."), {"phase": [session.phase]}
        )


def _in_session(session: WorkshopSession, model, object_id: int):
    found = db.session.get(model, object_id)
    if found is None or found.session_id != session.id:
        raise _not_found()
    return found


def votes_are_shown(session: WorkshopSession) -> bool:
    """Tell whether everyone may see the dots' totals: once the vote phase is over."""
    return PHASES.index(session.phase) > PHASES.index(Phase.VOTE)


# --- Cards ---------------------------------------------------------------------------------


def _card_text(body: str) -> str:
    text = body.strip()
    if not text:
        raise RoomError("invalid", _("A card needs some text."), {"body": ["empty"]})
    if len(text) > CARD_MAX:
        raise RoomError(
            "invalid",
            _("A card holds at most %(max)d characters.", max=CARD_MAX),
            {"body": ["too_long"]},
        )
    return text


def group_of(session: WorkshopSession, user_id: int) -> BreakoutGroup | None:
    """Return the breakout group the person works in now, if groups are open."""
    if not session.breakout_open:
        return None
    member = db.session.scalar(
        select(BreakoutMember).filter_by(session_id=session.id, user_id=user_id)
    )
    return member.group if member else None


def post_card(session: WorkshopSession, author: User, body: str, anonymous: bool) -> Card:
    """Post a card (collect phase), in the author's breakout group if they are in one."""
    _require_phase(session, Phase.COLLECT)
    if anonymous and not session.allows_anonymous_cards:
        raise RoomError(
            "invalid",
            _("This session does not allow anonymous cards."),
            {"anonymous": ["not_allowed"]},
        )
    group = group_of(session, author.id)
    card = Card(
        session_id=session.id,
        group_id=group.id if group else None,
        author_id=author.id,
        body=_card_text(body),
        is_anonymous=anonymous,
    )
    db.session.add(card)
    db.session.flush()
    return card


def _own_card(session: WorkshopSession, user: User, card_id: int) -> Card:
    _require_phase(session, Phase.COLLECT)
    card = _in_session(session, Card, card_id)
    if card.author_id != user.id:
        raise RoomError("forbidden", _("Only its author can change a card."))
    if card.hidden_reason is not None:
        raise RoomError("forbidden", _("A facilitator hid this card; it can no longer change."))
    return card


def edit_card(session: WorkshopSession, user: User, card_id: int, body: str) -> Card:
    """Change the text of one's own card (collect phase)."""
    card = _own_card(session, user, card_id)
    card.body, card.edited_at = _card_text(body), utcnow()
    db.session.flush()
    return card


def withdraw_card(session: WorkshopSession, user: User, card_id: int) -> None:
    """Remove one's own card (collect phase)."""
    card = _own_card(session, user, card_id)
    if session.spotlight_kind is SpotlightKind.CARD and session.spotlight_id == card.id:
        session.spotlight_kind = session.spotlight_id = None
    db.session.delete(card)
    db.session.flush()


def hide_card(
    session: WorkshopSession, by: User, card_id: int, reason: str | None
) -> tuple[Card, set[int]]:
    """Hide a card from participants with a reason (moderation), or show it again (None).

    A hidden card takes no dots: those already on it go back to their owners, whose ids are
    returned, and it leaves the spotlight.
    """
    _check_open(session)
    card = _in_session(session, Card, card_id)
    voters: set[int] = set()
    if reason is not None:
        reason = reason.strip()
        if not reason:
            raise RoomError("invalid", _("Say why the card is hidden."), {"reason": ["empty"]})
        voters = set(db.session.scalars(select(Vote.user_id).filter_by(card_id=card.id)))
        db.session.execute(delete(Vote).where(Vote.card_id == card.id))
        if session.spotlight_kind is SpotlightKind.CARD and session.spotlight_id == card.id:
            session.spotlight_kind = session.spotlight_id = None
    card.hidden_reason = reason
    card.hidden_by_id = by.id if reason else None
    db.session.flush()
    db.session.expire(card, ["votes"])
    return card, voters


# --- Clusters ------------------------------------------------------------------------------


def _label(label: str) -> str:
    text = label.strip()
    if not text:
        raise RoomError("invalid", _("A cluster needs a name."), {"label": ["empty"]})
    return text


def add_cluster(session: WorkshopSession, label: str) -> Cluster:
    """Add a named cluster at the end (cluster phase)."""
    _require_phase(session, Phase.CLUSTER)
    last = db.session.scalar(select(func.max(Cluster.position)).filter_by(session_id=session.id))
    cluster = Cluster(session_id=session.id, label=_label(label), position=(last or 0) + 1)
    db.session.add(cluster)
    db.session.flush()
    return cluster


def rename_cluster(session: WorkshopSession, cluster_id: int, label: str) -> Cluster:
    """Rename a cluster (cluster phase)."""
    _require_phase(session, Phase.CLUSTER)
    cluster = _in_session(session, Cluster, cluster_id)
    cluster.label = _label(label)
    db.session.flush()
    return cluster


def remove_cluster(session: WorkshopSession, cluster_id: int) -> list[Card]:
    """Remove a cluster (cluster phase); return its cards, now in no cluster."""
    _require_phase(session, Phase.CLUSTER)
    cluster = _in_session(session, Cluster, cluster_id)
    cards = list(db.session.scalars(select(Card).filter_by(cluster_id=cluster.id)))
    for card in cards:
        card.cluster_id = None
    if session.spotlight_kind is SpotlightKind.CLUSTER and session.spotlight_id == cluster.id:
        session.spotlight_kind = session.spotlight_id = None
    db.session.delete(cluster)
    db.session.flush()
    return cards


def move_card(session: WorkshopSession, card_id: int, cluster_id: int | None) -> Card:
    """Put a card in a cluster, or in none (cluster phase)."""
    _require_phase(session, Phase.CLUSTER)
    card = _in_session(session, Card, card_id)
    card.cluster_id = _in_session(session, Cluster, cluster_id).id if cluster_id else None
    db.session.flush()
    return card


# --- Votes ---------------------------------------------------------------------------------


def dots_of(session: WorkshopSession, user_id: int) -> dict[int, int]:
    """Return the dots a person put on each card of the session."""
    rows = db.session.execute(
        select(Vote.card_id, func.count())
        .filter_by(session_id=session.id, user_id=user_id)
        .group_by(Vote.card_id)
    )
    return dict(rows.all())


def vote_totals(session: WorkshopSession) -> dict[int, int]:
    """Return every card's dots."""
    rows = db.session.execute(
        select(Vote.card_id, func.count()).filter_by(session_id=session.id).group_by(Vote.card_id)
    )
    return dict(rows.all())


def vote(session: WorkshopSession, user: User, card_id: int) -> None:
    """Put one more dot on a card (vote phase), within the person's budget.

    The dot takes the lowest free place in the person's budget and in the card's
    allowance; if another socket takes the same place at the same moment, the unique
    constraints refuse one of the two, which then looks again.
    """
    _require_phase(session, Phase.VOTE)
    card = _in_session(session, Card, card_id)
    if card.hidden_reason is not None:
        raise _not_found()
    for _attempt in range(session.dots_per_person + 1):
        taken = db.session.execute(
            select(Vote.slot, Vote.card_id, Vote.card_slot).filter_by(
                session_id=session.id, user_id=user.id
            )
        ).all()
        slot = _lowest_free({row.slot for row in taken}, session.dots_per_person)
        card_slot = _lowest_free(
            {row.card_slot for row in taken if row.card_id == card.id}, session.max_dots_per_card
        )
        if slot is None:
            raise RoomError("over_budget", _("You have spent all your dots."))
        if card_slot is None:
            raise RoomError(
                "over_budget",
                _(
                    "A card takes at most %(max)d dots from one person.",
                    max=session.max_dots_per_card,
                ),
            )
        try:
            with db.session.begin_nested():
                db.session.add(
                    Vote(
                        session_id=session.id,
                        user_id=user.id,
                        card_id=card.id,
                        slot=slot,
                        card_slot=card_slot,
                    )
                )
            return
        except IntegrityError:
            continue  # another socket of the same person took this place: look again
    raise RoomError("over_budget", _("You have spent all your dots."))


def _lowest_free(taken: set[int], size: int) -> int | None:
    return next((place for place in range(1, size + 1) if place not in taken), None)


def unvote(session: WorkshopSession, user: User, card_id: int) -> None:
    """Take one of one's dots back from a card (vote phase).

    Another socket of the same person may take the same dot back at the same moment: the
    delete that finds no row left looks for another dot.
    """
    _require_phase(session, Phase.VOTE)
    card = _in_session(session, Card, card_id)
    while True:
        dot_id = db.session.scalar(
            select(Vote.id)
            .filter_by(card_id=card.id, user_id=user.id)
            .order_by(Vote.card_slot.desc())
            .limit(1)
        )
        if dot_id is None:
            raise RoomError("invalid", _("You have no dot on this card."), {"card_id": ["no_dot"]})
        if db.session.execute(delete(Vote).where(Vote.id == dot_id)).rowcount:
            return


# --- Takeaways -----------------------------------------------------------------------------


def _takeaway_fields(session: WorkshopSession, text: str, cluster_ids: list[int]):
    text = text.strip()
    if not text:
        raise RoomError("invalid", _("A takeaway needs some text."), {"text": ["empty"]})
    clusters = [_in_session(session, Cluster, cluster_id) for cluster_id in set(cluster_ids)]
    return text, clusters


def add_takeaway(
    session: WorkshopSession, by: User, kind: TakeawayKind, text: str, cluster_ids: list[int]
) -> Takeaway:
    """Record a typed takeaway, tied to the session's theme (synthesise phase)."""
    _require_phase(session, Phase.SYNTHESISE)
    text, clusters = _takeaway_fields(session, text, cluster_ids)
    last = db.session.scalar(select(func.max(Takeaway.position)).filter_by(session_id=session.id))
    takeaway = Takeaway(
        session_id=session.id,
        kind=kind,
        theme_id=session.theme_id,
        text=text,
        position=(last or 0) + 1,
        created_by_id=by.id,
        clusters=clusters,
    )
    db.session.add(takeaway)
    db.session.flush()
    return takeaway


def edit_takeaway(
    session: WorkshopSession, takeaway_id: int, kind: TakeawayKind, text: str, cluster_ids: list
) -> Takeaway:
    """Change a takeaway (synthesise phase)."""
    _require_phase(session, Phase.SYNTHESISE)
    takeaway = _in_session(session, Takeaway, takeaway_id)
    takeaway.text, takeaway.clusters = _takeaway_fields(session, text, cluster_ids)
    takeaway.kind = kind
    db.session.flush()
    return takeaway


def remove_takeaway(session: WorkshopSession, takeaway_id: int) -> None:
    """Remove a takeaway (synthesise phase)."""
    _require_phase(session, Phase.SYNTHESISE)
    db.session.delete(_in_session(session, Takeaway, takeaway_id))
    db.session.flush()


# --- Hands, spotlight, lock ----------------------------------------------------------------


def hands_of(session: WorkshopSession) -> list[HandRaise]:
    """Return the raised hands, first raised first."""
    return list(
        db.session.scalars(
            select(HandRaise)
            .filter_by(session_id=session.id)
            .order_by(HandRaise.raised_at, HandRaise.id)
        )
    )


def set_hand(session: WorkshopSession, user_id: int, raised: bool) -> None:
    """Raise or lower a person's hand; raising a raised hand keeps its place."""
    _check_open(session)
    hand = db.session.scalar(select(HandRaise).filter_by(session_id=session.id, user_id=user_id))
    if raised and hand is None:
        try:
            with db.session.begin_nested():
                db.session.add(HandRaise(session_id=session.id, user_id=user_id))
        except IntegrityError:
            pass  # raised at the same moment from another socket: it keeps that place
    elif not raised and hand is not None:
        db.session.execute(delete(HandRaise).where(HandRaise.id == hand.id))
    db.session.flush()


def lower_hand(session: WorkshopSession, user_id: int) -> None:
    """Lower someone's raised hand (facilitators)."""
    _check_open(session)
    hand = db.session.scalar(select(HandRaise).filter_by(session_id=session.id, user_id=user_id))
    if hand is None:
        raise _not_found()
    db.session.delete(hand)
    db.session.flush()


def spotlight(session: WorkshopSession, kind: SpotlightKind | None, target_id: int | None) -> None:
    """Put a card or a cluster in front of everyone, or nothing."""
    _check_open(session)
    if kind is None:
        session.spotlight_kind = session.spotlight_id = None
    else:
        model = Card if kind is SpotlightKind.CARD else Cluster
        target = _in_session(session, model, target_id)
        if model is Card and target.hidden_reason is not None:
            raise _not_found()
        session.spotlight_kind, session.spotlight_id = kind, target.id
    db.session.flush()


def lock_note(session: WorkshopSession, locked: bool) -> None:
    """Make the session's note (and its groups' notes) read-only for participants, or not."""
    _check_open(session)
    note_ids = [session.note_id, *(group.note_id for group in session.groups)]
    for note in db.session.scalars(select(Note).where(Note.id.in_([n for n in note_ids if n]))):
        note.is_locked = locked
    db.session.flush()


# --- Breakout groups -----------------------------------------------------------------------


def open_groups(
    session: WorkshopSession, by: User, count: int, people: dict[int, str] | None
) -> None:
    """Send people to breakout groups, creating `count` groups if the session has none.

    `people` maps the people to place at random to their organisation kind (None: keep the
    assignments as they are). Each kind is dealt in turn round the groups, so every group
    gets as even a mix of kinds, and as even a size, as the people allow.
    """
    _check_open(session)
    if not session.groups:
        session_note = db.session.get(Note, session.note_id) if session.note_id else None
        locked = bool(session_note and session_note.is_locked)  # the lock covers every note
        for number in range(1, count + 1):
            group = BreakoutGroup(
                session_id=session.id, name=_("Group %(number)d", number=number), position=number
            )
            session.groups.append(group)
            db.session.flush()
            note = Note(
                community_id=session.workshop_day.community_id,
                owner_kind=NoteOwnerKind.BREAKOUT_GROUP,
                owner_id=group.id,
                title=f"{session.title} · {group.name}",
                created_by=by,
                is_locked=locked,
            )
            db.session.add(note)
            db.session.flush()
            group.note_id = note.id
    if people is not None:
        db.session.execute(delete(BreakoutMember).filter_by(session_id=session.id))
        groups = session.groups
        by_kind: dict[str, list[int]] = {}
        for user_id, kind in people.items():
            by_kind.setdefault(kind, []).append(user_id)
        turn = random.randrange(len(groups))
        for kind in sorted(by_kind):
            members = by_kind[kind]
            random.shuffle(members)
            for user_id in members:
                db.session.add(
                    BreakoutMember(session_id=session.id, group_id=groups[turn].id, user_id=user_id)
                )
                turn = (turn + 1) % len(groups)
    session.breakout_open = True
    db.session.flush()


def assign(session: WorkshopSession, user_id: int, group_id: int | None) -> None:
    """Put a member of the community in a group, or in none."""
    _check_open(session)
    member = db.session.scalar(
        select(Membership).filter_by(
            user_id=user_id, community_id=session.workshop_day.community_id
        )
    )
    if member is None:
        raise _not_found()
    group = _in_session(session, BreakoutGroup, group_id) if group_id else None
    db.session.execute(delete(BreakoutMember).filter_by(session_id=session.id, user_id=user_id))
    if group is not None:
        db.session.add(BreakoutMember(session_id=session.id, group_id=group.id, user_id=user_id))
    db.session.flush()


def everyone_back(session: WorkshopSession) -> None:
    """Bring everyone back to the plenary; groups, their notes and cards are kept."""
    _check_open(session)
    session.breakout_open = False
    db.session.flush()
