"""The live room's commands: every command × role × phase, then each command's own rules.

Flask-SocketIO's test client drives the real handlers in process, with each person's login
cookie (tests/test_workshop_room.py has the room's first commands and the helpers). A
refused command must leave every row of the room as it was: `snapshot` reads them all.
"""

import time

import pytest
from sqlalchemy import delete, select

from cop.communities.models import Membership, OrganisationKind, Role
from cop.extensions import db, socketio
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops.models import (
    PHASES,
    Attendance,
    BreakoutGroup,
    BreakoutMember,
    Card,
    Cluster,
    HandRaise,
    Phase,
    SessionRecord,
    Takeaway,
    TakeawayKind,
    Vote,
    WorkshopSession,
    takeaway_cluster,
)
from tests.test_workshop_room import ROOM, command, events, open_room, run

OPEN_PHASES = frozenset(PHASES) - {Phase.CLOSED}
FACILITATING, TAKING_PART, AUTHOR = "facilitating", "taking_part", "author"
ROLES = ("host", "facilitator", "participant", "observer")


class Targets:
    """Rows for a command to act on, made afresh before each attempt."""

    def __init__(self, room, actor_id):
        with room.app.app_context():
            session = db.session.get(WorkshopSession, room.session_id)
            card = Card(session_id=session.id, author_id=room.participant, body="An idea")
            hidden = Card(
                session_id=session.id,
                author_id=room.participant,
                body="Rude",
                hidden_reason="Off topic",
            )
            cluster = Cluster(session_id=session.id, label="Funding", position=1)
            takeaway = Takeaway(
                session_id=session.id, kind=TakeawayKind.LEVER, text="Share budgets"
            )
            group = BreakoutGroup(session_id=session.id, name="Group A")
            db.session.add_all([card, hidden, cluster, takeaway, group])
            db.session.flush()
            db.session.execute(delete(Vote).filter_by(user_id=actor_id))  # a dot to take back
            db.session.add(
                Vote(session_id=session.id, user_id=actor_id, card_id=card.id, slot=3, card_slot=2)
            )
            if db.session.scalar(select(HandRaise).filter_by(user_id=room.participant)) is None:
                db.session.add(HandRaise(session_id=session.id, user_id=room.participant))
            db.session.commit()
            self.card, self.hidden, self.cluster = card.id, hidden.id, cluster.id
            self.takeaway, self.group = takeaway.id, group.id


@pytest.fixture
def room(app, make, auth, client):
    yield from open_room(app, make, auth, client)


def next_phase(phase: Phase) -> str:
    index = PHASES.index(phase)
    return PHASES[index + 1 if index + 1 < len(PHASES) else index - 1].value


# event: (who may send it, the phases it fits, the payload for the targets)
MATRIX = {
    "set_phase": (FACILITATING, OPEN_PHASES, lambda t, room, phase: {"phase": next_phase(phase)}),
    "timer": (FACILITATING, OPEN_PHASES, lambda t, *_: {"action": "start", "minutes": 5}),
    "post_card": (TAKING_PART, {Phase.COLLECT}, lambda t, *_: {"body": "Another idea"}),
    "edit_card": (AUTHOR, {Phase.COLLECT}, lambda t, *_: {"card_id": t.card, "body": "Better"}),
    "withdraw_card": (AUTHOR, {Phase.COLLECT}, lambda t, *_: {"card_id": t.card}),
    "hide_card": (
        FACILITATING,
        OPEN_PHASES,
        lambda t, *_: {"card_id": t.card, "reason": "Names a person"},
    ),
    "unhide_card": (FACILITATING, OPEN_PHASES, lambda t, *_: {"card_id": t.hidden}),
    "add_cluster": (FACILITATING, {Phase.CLUSTER}, lambda t, *_: {"label": "Trust"}),
    "rename_cluster": (
        FACILITATING,
        {Phase.CLUSTER},
        lambda t, *_: {"cluster_id": t.cluster, "label": "Money"},
    ),
    "remove_cluster": (FACILITATING, {Phase.CLUSTER}, lambda t, *_: {"cluster_id": t.cluster}),
    "move_card": (
        FACILITATING,
        {Phase.CLUSTER},
        lambda t, *_: {"card_id": t.card, "cluster_id": t.cluster},
    ),
    "vote": (TAKING_PART, {Phase.VOTE}, lambda t, *_: {"card_id": t.card}),
    "unvote": (TAKING_PART, {Phase.VOTE}, lambda t, *_: {"card_id": t.card}),
    "add_takeaway": (
        FACILITATING,
        {Phase.SYNTHESISE},
        lambda t, *_: {"kind": "key_issue", "text": "Trust first", "cluster_ids": [t.cluster]},
    ),
    "edit_takeaway": (
        FACILITATING,
        {Phase.SYNTHESISE},
        lambda t, *_: {
            "takeaway_id": t.takeaway,
            "kind": "condition",
            "text": "Time",
            "cluster_ids": [t.cluster],
        },
    ),
    "remove_takeaway": (
        FACILITATING,
        {Phase.SYNTHESISE},
        lambda t, *_: {"takeaway_id": t.takeaway},
    ),
    "hand": (TAKING_PART, OPEN_PHASES, lambda t, *_: {"raised": True}),
    "lower_hand": (FACILITATING, OPEN_PHASES, lambda t, room, _p: {"user_id": room.participant}),
    "spotlight": (FACILITATING, OPEN_PHASES, lambda t, *_: {"kind": "cluster", "id": t.cluster}),
    "lock_note": (FACILITATING, OPEN_PHASES, lambda t, *_: {"locked": True}),
    "open_groups": (FACILITATING, OPEN_PHASES, lambda t, *_: {"count": 2, "assign": "random"}),
    "assign": (
        FACILITATING,
        OPEN_PHASES,
        lambda t, room, _p: {"user_id": room.participant, "group_id": t.group},
    ),
    "everyone_back": (FACILITATING, OPEN_PHASES, lambda t, *_: {}),
}


def snapshot(app, session_id: int) -> dict:
    """Return every row of the session's room, to compare before and after a command."""
    with app.app_context():
        session = db.session.get(WorkshopSession, session_id)
        note = db.session.get(Note, session.note_id)

        def rows(model, *columns):
            query = select(*columns).where(model.session_id == session_id).order_by(model.id)
            return db.session.execute(query).all()

        return {
            "session": (
                session.phase,
                session.timer_ends_at,
                session.timer_paused_seconds,
                session.spotlight_kind,
                session.spotlight_id,
                session.breakout_open,
                note.is_locked,
            ),
            "cards": rows(
                Card,
                Card.id,
                Card.author_id,
                Card.body,
                Card.is_anonymous,
                Card.group_id,
                Card.cluster_id,
                Card.hidden_reason,
            ),
            "takeaway_clusters": db.session.execute(
                select(takeaway_cluster).order_by(*takeaway_cluster.c)
            ).all(),
            "notes_locked": db.session.execute(
                select(Note.id, Note.is_locked).order_by(Note.id)
            ).all(),
            "attendance": rows(Attendance, Attendance.id, Attendance.left_at),
            "clusters": rows(Cluster, Cluster.id, Cluster.label),
            "votes": rows(Vote, Vote.id, Vote.user_id, Vote.card_id),
            "takeaways": rows(Takeaway, Takeaway.id, Takeaway.kind, Takeaway.text),
            "hands": rows(HandRaise, HandRaise.id, HandRaise.user_id),
            "groups": rows(BreakoutGroup, BreakoutGroup.id, BreakoutGroup.name),
            "members": rows(BreakoutMember, BreakoutMember.id, BreakoutMember.group_id),
            "records": rows(SessionRecord, SessionRecord.id),
        }


def expected(who: str, phases, role: str, phase: Phase) -> str:
    """Return the answer's code for this role in this phase: "ok" or the refusal."""
    allowed_roles = {
        FACILITATING: {"host", "facilitator"},
        TAKING_PART: {"host", "facilitator", "participant"},
        AUTHOR: {"host", "facilitator", "participant"},
    }[who]
    if role not in allowed_roles:
        return "forbidden"
    if phase not in phases:
        return "wrong_phase"
    if who == AUTHOR and role != "participant":
        return "forbidden"  # only the card's author (the participant) may change it
    return "ok"


def set_phase(app, session_id: int, phase: Phase) -> None:
    with app.app_context():
        db.session.get(WorkshopSession, session_id).phase = phase
        db.session.commit()


@pytest.mark.parametrize("event", MATRIX)
def test_every_command_for_every_role_in_every_phase(room, event):
    who, phases, payload_of = MATRIX[event]
    with room.app.app_context():
        db.session.get(WorkshopSession, room.session_id).allows_anonymous_cards = True
        db.session.commit()
    sockets = {role: room.joined(getattr(room, role)) for role in ROLES}
    for phase in PHASES:
        for role in ROLES:
            set_phase(room.app, room.session_id, phase)
            targets = Targets(room, getattr(room, role))
            before = snapshot(room.app, room.session_id)

            answer = run(room, sockets[role], event, **payload_of(targets, room, phase))

            want, case = expected(who, phases, role, phase), (phase.value, role, answer)
            if want == "ok":
                assert answer["ok"], case
            else:
                assert answer["ok"] is False and answer["error"] == want, case
                assert snapshot(room.app, room.session_id) == before, case
                errors = events(sockets[role], "workshop-error")
                assert [error["error"] for error in errors] == [want], case


# --- Cards -----------------------------------------------------------------------------------


@pytest.fixture
def collecting(room):
    """The room in the collect phase, anonymous cards allowed."""
    with room.app.app_context():
        session = db.session.get(WorkshopSession, room.session_id)
        session.phase, session.allows_anonymous_cards = Phase.COLLECT, True
        db.session.commit()
    return room


def cards_of(room) -> list[tuple]:
    with room.app.app_context():
        return db.session.execute(
            select(Card.author_id, Card.body, Card.is_anonymous).order_by(Card.id)
        ).all()


def test_a_card_reaches_everyone_with_its_author_and_organisation(collecting):
    room = collecting
    participant, observer = room.joined(room.participant), room.joined(room.observer)

    answer = run(room, participant, "post_card", body="  Share the <b>agenda</b> early  ")

    assert answer["ok"] and isinstance(answer["card_id"], int)
    [card] = [event["card"] for event in events(observer, "card")]
    assert card["body"] == "Share the <b>agenda</b> early"  # kept as typed, shown escaped
    assert card["author"]["user_id"] == room.participant and not card["anonymous"]
    assert cards_of(room) == [(room.participant, "Share the <b>agenda</b> early", False)]


def test_an_anonymous_card_shows_its_author_to_nobody_but_keeps_it(collecting):
    room = collecting
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)

    answer = run(room, participant, "post_card", body="Secret worry", anonymous=True)

    [seen] = [event["card"] for event in events(facilitator, "card")]
    assert seen["author"] is None and seen["anonymous"]
    assert cards_of(room) == [(room.participant, "Secret worry", True)]
    rejoined = command(participant, "join", {"session_id": room.session_id})["state"]
    assert rejoined["you"]["card_ids"] == [answer["card_id"]]
    assert [card["author"] for card in rejoined["cards"]] == [None]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"body": ""}, "invalid"),
        ({"body": "   \n "}, "invalid"),
        ({"body": "x" * 501}, "invalid"),
        ({"body": 42}, "invalid"),
        ({"body": "fine", "anonymous": "yes"}, "invalid"),
        ({"body": "fine", "colour": "red"}, "invalid"),
    ],
)
def test_bad_cards_are_refused(collecting, payload, code):
    participant = collecting.joined(collecting.participant)

    answer = run(collecting, participant, "post_card", **payload)

    assert answer["error"] == code and cards_of(collecting) == []


def test_a_card_of_500_characters_is_the_longest(collecting):
    participant = collecting.joined(collecting.participant)

    assert run(collecting, participant, "post_card", body="é" * 500)["ok"]


def test_anonymous_cards_need_the_sessions_consent(collecting):
    with collecting.app.app_context():
        db.session.get(WorkshopSession, collecting.session_id).allows_anonymous_cards = False
        db.session.commit()
    participant = collecting.joined(collecting.participant)

    answer = run(collecting, participant, "post_card", body="Hidden me", anonymous=True)

    assert answer["error"] == "invalid" and cards_of(collecting) == []


def test_authors_edit_and_withdraw_their_own_cards_only(collecting):
    room = collecting
    author, other = room.joined(room.participant), room.joined(room.facilitator)
    card_id = run(room, author, "post_card", body="First draft")["card_id"]

    assert run(room, other, "edit_card", card_id=card_id, body="Hijack")["error"] == "forbidden"
    assert run(room, author, "edit_card", card_id=card_id, body="Second draft")["ok"]
    assert cards_of(room) == [(room.participant, "Second draft", False)]
    assert run(room, other, "withdraw_card", card_id=card_id)["error"] == "forbidden"
    assert run(room, author, "withdraw_card", card_id=card_id)["ok"]
    assert cards_of(room) == []
    assert events(other, "card-removed") == [{"card_id": card_id}]


def test_a_hidden_card_keeps_its_text_for_facilitators_only(collecting):
    room = collecting
    author, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    card_id = run(room, author, "post_card", body="Mr X is useless")["card_id"]
    events(author, "card"), events(facilitator, "card")

    assert run(room, facilitator, "hide_card", card_id=card_id, reason="Names a person")["ok"]

    [for_participants] = [event["card"] for event in events(author, "card")]
    [for_facilitators] = [event["card"] for event in events(facilitator, "card")]
    assert for_participants["hidden"] and for_participants["body"] is None
    assert for_participants["hidden_reason"] is None and for_participants["author"] is None
    assert for_facilitators["body"] == "Mr X is useless"
    assert for_facilitators["hidden_reason"] == "Names a person"
    assert run(room, facilitator, "unhide_card", card_id=card_id)["ok"]
    [shown] = [event["card"] for event in events(author, "card")]
    assert shown["body"] == "Mr X is useless" and not shown["hidden"]


def test_cards_of_another_session_are_not_found(collecting, app):
    room = collecting
    assert room.add_session(room.day_id, title="Other", starts_at_local="11:00").status_code == 302
    with app.app_context():
        other_id = db.session.scalar(select(WorkshopSession.id).order_by(WorkshopSession.id.desc()))
        card = Card(session_id=other_id, author_id=room.participant, body="Elsewhere")
        db.session.add(card)
        db.session.commit()
        card_id = card.id
    author = room.joined(room.participant)

    answer = run(room, author, "edit_card", card_id=card_id, body="Changed from afar")

    assert answer["error"] == "not_found"
    assert cards_of(room) == [(room.participant, "Elsewhere", False)]


# --- Clusters --------------------------------------------------------------------------------


def test_facilitators_cluster_cards_and_everyone_watches(collecting):
    room = collecting
    author, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    card_id = run(room, author, "post_card", body="Shared calendar")["card_id"]
    set_phase(room.app, room.session_id, Phase.CLUSTER)

    cluster_id = run(room, facilitator, "add_cluster", label="Tools")["cluster_id"]
    assert run(room, facilitator, "move_card", card_id=card_id, cluster_id=cluster_id)["ok"]
    assert run(room, facilitator, "rename_cluster", cluster_id=cluster_id, label="Shared tools")[
        "ok"
    ]

    seen = author.get_received(ROOM)
    clusters = [message["args"][0]["cluster"] for message in seen if message["name"] == "cluster"]
    cards = [message["args"][0]["card"] for message in seen if message["name"] == "card"]
    assert [cluster["label"] for cluster in clusters] == ["Tools", "Shared tools"]
    assert cards[-1]["cluster_id"] == cluster_id
    assert run(room, facilitator, "remove_cluster", cluster_id=cluster_id)["ok"]
    seen = author.get_received(ROOM)
    assert [message["name"] for message in seen] == ["cluster-removed", "card"]
    assert seen[1]["args"][0]["card"]["cluster_id"] is None  # back to no cluster
    with room.app.app_context():
        assert db.session.get(Card, card_id).cluster_id is None


# --- Votes -----------------------------------------------------------------------------------


@pytest.fixture
def voting(room):
    """The room in the vote phase with three cards; 3 dots each, at most 2 per card."""
    with room.app.app_context():
        session = db.session.get(WorkshopSession, room.session_id)
        cards = [Card(session_id=session.id, author_id=room.host, body=f"Idea {n}") for n in "ABC"]
        db.session.add_all(cards)
        session.phase = Phase.VOTE
        db.session.commit()
        room.cards = [card.id for card in cards]
    return room


def dots(room, user_id) -> dict:
    with room.app.app_context():
        rows = db.session.scalars(select(Vote.card_id).filter_by(user_id=user_id)).all()
        return {card: rows.count(card) for card in set(rows)}


def test_dots_are_spent_within_the_budget_and_the_per_card_limit(voting):
    room = voting
    participant = room.joined(room.participant)
    first, second, third = room.cards

    assert run(room, participant, "vote", card_id=first)["ok"]
    assert run(room, participant, "vote", card_id=first)["ok"]
    assert run(room, participant, "vote", card_id=first)["error"] == "over_budget"  # max 2
    assert run(room, participant, "vote", card_id=second)["ok"]
    assert run(room, participant, "vote", card_id=third)["error"] == "over_budget"  # 3 spent
    assert dots(room, room.participant) == {first: 2, second: 1}
    assert events(participant, "you")[-1]["dots_left"] == 0

    assert run(room, participant, "unvote", card_id=first)["ok"]
    assert run(room, participant, "vote", card_id=third)["ok"]
    assert dots(room, room.participant) == {first: 1, second: 1, third: 1}
    assert run(room, participant, "unvote", card_id=third)["ok"]
    assert run(room, participant, "unvote", card_id=third)["error"] == "invalid"


def test_votes_stay_hidden_until_the_vote_is_over(voting):
    room = voting
    participant, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    assert run(room, participant, "vote", card_id=room.cards[0])["ok"]

    during = command(facilitator, "join", {"session_id": room.session_id})["state"]
    assert {card["votes"] for card in during["cards"]} == {None}
    assert events(facilitator, "you") == []  # another person's dots are theirs alone

    assert run(room, facilitator, "set_phase", phase="discuss")["ok"]
    [state] = events(participant, "session-state")
    assert state["votes"] == {str(room.cards[0]): 1}
    after = command(participant, "join", {"session_id": room.session_id})["state"]
    assert {card["id"]: card["votes"] for card in after["cards"]} == {
        room.cards[0]: 1,
        room.cards[1]: 0,
        room.cards[2]: 0,
    }


def test_a_hidden_card_takes_no_dots(voting):
    with voting.app.app_context():
        db.session.get(Card, voting.cards[0]).hidden_reason = "Off topic"
        db.session.commit()
    participant = voting.joined(voting.participant)

    assert run(voting, participant, "vote", card_id=voting.cards[0])["error"] == "not_found"
    assert dots(voting, voting.participant) == {}


# --- Takeaways, hands, spotlight, lock --------------------------------------------------------


def test_takeaways_are_typed_and_tied_to_the_theme_and_clusters(room):
    with room.app.app_context():
        session = db.session.get(WorkshopSession, room.session_id)
        cluster = Cluster(session_id=session.id, label="Trust")
        db.session.add(cluster)
        session.phase = Phase.SYNTHESISE
        db.session.commit()
        cluster_id, theme_id = cluster.id, session.theme_id
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)

    answer = run(
        room, facilitator, "add_takeaway", kind="lever", text="Meet twice", cluster_ids=[cluster_id]
    )
    refused = run(room, facilitator, "add_takeaway", kind="lever", text="x", cluster_ids=[99999])
    wrong_kind = run(room, facilitator, "add_takeaway", kind="wish", text="x")

    assert answer["ok"] and refused["error"] == "not_found" and wrong_kind["error"] == "invalid"
    [seen] = events(participant, "takeaway")
    assert seen["takeaway"]["kind"] == "lever" and seen["takeaway"]["cluster_ids"] == [cluster_id]
    with room.app.app_context():
        [takeaway] = db.session.scalars(select(Takeaway)).all()
        assert (takeaway.text, takeaway.theme_id) == ("Meet twice", theme_id)


def test_hands_queue_in_the_order_raised_and_facilitators_lower_them(room):
    facilitator = room.joined(room.facilitator)
    participant, host = room.joined(room.participant), room.joined(room.host)

    assert run(room, participant, "hand", raised=True)["ok"]
    assert run(room, host, "hand", raised=True)["ok"]
    assert run(room, participant, "hand", raised=True)["ok"]  # keeps its place

    queue = events(facilitator, "hands")[-1]["hands"]
    assert [hand["user_id"] for hand in queue] == [room.participant, room.host]
    assert run(room, participant, "lower_hand", user_id=room.host)["error"] == "forbidden"
    assert run(room, facilitator, "lower_hand", user_id=room.participant)["ok"]
    assert [hand["user_id"] for hand in events(host, "hands")[-1]["hands"]] == [room.host]
    assert run(room, host, "hand", raised=False)["ok"]
    assert events(facilitator, "hands")[-1]["hands"] == []


def test_the_spotlight_shows_one_card_or_cluster_to_everyone(collecting):
    room = collecting
    author, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    card_id = run(room, author, "post_card", body="Look at me")["card_id"]

    assert run(room, facilitator, "spotlight", kind="card", id=card_id)["ok"]
    assert events(author, "session-state")[-1]["spotlight"] == {"kind": "card", "id": card_id}
    half = run(room, facilitator, "spotlight", kind="card", id=None)
    assert half["error"] == "invalid"
    assert run(room, facilitator, "spotlight", kind=None, id=None)["ok"]
    assert events(author, "session-state")[-1]["spotlight"] is None


def test_the_lock_makes_the_note_read_only_for_participants(room):
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)

    assert run(room, participant, "lock_note", locked=True)["error"] == "forbidden"
    assert run(room, facilitator, "lock_note", locked=True)["ok"]

    assert events(participant, "session-state")[-1]["note"]["locked"] is True
    with room.app.app_context():
        from cop.auth.models import User
        from cop.core.permissions import can_write_note

        session = db.session.get(WorkshopSession, room.session_id)
        note = db.session.get(Note, session.note_id)
        assert note.is_locked
        assert not can_write_note(db.session.get(User, room.participant), note)
        assert can_write_note(db.session.get(User, room.facilitator), note)


# --- Breakout groups, presence, attendance ----------------------------------------------------


def test_random_groups_are_balanced_across_organisation_kinds(room, make):
    room.app.config["LOGIN_RATE_LIMIT"] = "100 per minute"  # eleven people log in
    kinds = [OrganisationKind.NGO] * 4 + [OrganisationKind.LOCAL_AUTHORITY] * 4
    kinds += [OrganisationKind.NETWORK] * 2
    people = []
    for kind in kinds:
        organisation = make.organisation(kind=kind)
        people.append(make.member(room.slug, Role.PARTICIPANT, organisation_id=organisation))
    facilitator = room.joined(room.facilitator)
    for person in people:
        room.joined(person)

    assert run(room, facilitator, "open_groups", count=2, assign="random")["ok"]

    groups = events(facilitator, "groups")[-1]
    assert groups["breakout_open"] and len(groups["groups"]) == 2
    kind_of = dict(zip(people, kinds, strict=True))
    for group in groups["groups"]:
        assert room.facilitator not in group["user_ids"]
        mix = sorted(kind_of[user].value for user in group["user_ids"])
        assert mix == ["local_authority"] * 2 + ["network"] + ["ngo"] * 2
    with room.app.app_context():
        notes = [db.session.get(Note, group["note_id"]) for group in groups["groups"]]
        assert {note.owner_kind for note in notes} == {NoteOwnerKind.BREAKOUT_GROUP}


def test_cards_go_to_ones_group_until_everyone_is_back(collecting):
    room = collecting
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)
    assert run(room, facilitator, "open_groups", count=2, assign="random")["ok"]
    group_id = next(
        group["id"]
        for group in events(facilitator, "groups")[-1]["groups"]
        if room.participant in group["user_ids"]
    )

    in_group = run(room, participant, "post_card", body="From my group")["card_id"]
    assert run(room, facilitator, "everyone_back")["ok"]
    in_plenary = run(room, participant, "post_card", body="Back in plenary")["card_id"]
    assert run(room, facilitator, "assign", user_id=room.participant, group_id=None)["ok"]
    missing = run(room, facilitator, "assign", user_id=room.participant, group_id=99999)

    with room.app.app_context():
        assert db.session.get(Card, in_group).group_id == group_id
        assert db.session.get(Card, in_plenary).group_id is None
    assert missing["error"] == "not_found"
    assert events(participant, "session-state")[-1]["breakout_open"] is False


def test_presence_and_attendance_follow_joins_and_leaves(room):
    facilitator = room.joined(room.facilitator)
    participant = room.socket(room.participant)
    joined = command(participant, "join", {"session_id": room.session_id})["state"]
    assert {person["user_id"] for person in joined["present"]} == {
        room.facilitator,
        room.participant,
    }
    [arrival] = events(facilitator, "presence")
    assert arrival["here"] and arrival["person"]["user_id"] == room.participant

    participant.disconnect(ROOM)

    [departure] = departures(facilitator)
    assert departure == {"person": {"user_id": room.participant}, "here": False}
    with room.app.app_context():
        stays = db.session.scalars(select(Attendance).filter_by(user_id=room.participant)).all()
        assert len(stays) == 1 and stays[0].left_at >= stays[0].joined_at


def departures(socket, limit: float = 5.0) -> list[dict]:
    """Wait for the presence events a socket gets (departures are sent from a task)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = events(socket, "presence")
        if seen:
            return seen
        socketio.sleep(0.05)
    return []


def test_a_person_leaves_when_their_last_tab_does(room):
    facilitator = room.joined(room.facilitator)
    first, second = room.joined(room.participant), room.socket(room.participant)
    events(facilitator, "presence")
    assert command(second, "join", {"session_id": room.session_id})["ok"]
    first.disconnect(ROOM)

    assert departures(facilitator, limit=0.5) == []  # still here in the second tab
    second.disconnect(ROOM)
    assert departures(facilitator) == [{"person": {"user_id": room.participant}, "here": False}]


# --- Closing ----------------------------------------------------------------------------------


def test_closing_freezes_the_record_and_ends_hands_and_groups(room):
    set_phase(room.app, room.session_id, Phase.SYNTHESISE)
    facilitator, participant = room.joined(room.facilitator), room.joined(room.participant)
    assert run(room, participant, "hand", raised=True)["ok"]
    assert run(room, facilitator, "open_groups", count=2, assign="none")["ok"]

    assert run(room, facilitator, "set_phase", phase="closed")["ok"]

    seen = {message["name"]: message["args"][0] for message in participant.get_received(ROOM)}
    assert seen["hands"] == {"hands": []} and seen["groups"]["breakout_open"] is False
    assert seen["session-state"]["phase"] == "closed"
    with room.app.app_context():
        session = db.session.get(WorkshopSession, room.session_id)
        assert session.record is not None and not session.breakout_open
        assert db.session.scalar(select(HandRaise)) is None
        assert db.session.scalar(select(Membership).filter_by(user_id=room.participant))


# --- Rights and presence while sockets stay ---------------------------------------------------


def test_the_rights_check_moves_a_demoted_facilitator_and_drops_a_member_who_left(collecting):
    from cop.live.workshop import check_seats

    room = collecting
    demoted, leaving = room.joined(room.facilitator), room.joined(room.participant)
    host = room.joined(room.host)
    card_id = run(room, leaving, "post_card", body="Mr X again")["card_id"]
    with room.app.app_context():
        db.session.scalar(
            select(Membership).filter_by(user_id=room.facilitator)
        ).role = Role.PARTICIPANT
        db.session.delete(db.session.scalar(select(Membership).filter_by(user_id=room.participant)))
        db.session.commit()
        check_seats(room.app)
    demoted.get_received(ROOM)

    assert run(room, host, "hide_card", card_id=card_id, reason="Names a person")["ok"]

    [seen] = [event["card"] for event in events(demoted, "card")]
    assert seen["body"] is None and seen["hidden_reason"] is None  # the participants' view
    assert not leaving.is_connected(ROOM)


def test_a_stay_no_process_renews_stops_counting_as_present(room):
    from datetime import timedelta

    from cop.core.time import utcnow
    from cop.workshops.attendance import STALE_AFTER, present_ids_of

    facilitator = room.joined(room.facilitator)
    with room.app.app_context():
        db.session.add(
            Attendance(
                workshop_day_id=room.day_id,
                session_id=room.session_id,
                user_id=room.participant,
                sid="a-socket-of-a-dead-process",
                joined_at=utcnow() - 2 * STALE_AFTER,
                seen_at=utcnow() - STALE_AFTER - timedelta(seconds=1),
            )
        )
        db.session.commit()
        assert present_ids_of(room.session_id) == {room.facilitator}

    state = command(facilitator, "join", {"session_id": room.session_id})["state"]
    assert [person["user_id"] for person in state["present"]] == [room.facilitator]


def test_hiding_a_card_gives_its_dots_back_and_ends_its_spotlight(voting):
    room = voting
    participant, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    assert run(room, participant, "vote", card_id=room.cards[0])["ok"]
    assert run(room, facilitator, "spotlight", kind="card", id=room.cards[0])["ok"]
    participant.get_received(ROOM)

    assert run(room, facilitator, "hide_card", card_id=room.cards[0], reason="Off topic")["ok"]

    seen = {message["name"]: message["args"][0] for message in participant.get_received(ROOM)}
    assert seen["you"]["dots_left"] == 3 and seen["session-state"]["spotlight"] is None
    assert dots(room, room.participant) == {}


def test_the_author_of_a_hidden_card_cannot_rewrite_it(collecting):
    room = collecting
    author, facilitator = room.joined(room.participant), room.joined(room.facilitator)
    card_id = run(room, author, "post_card", body="Mr X is useless")["card_id"]
    assert run(room, facilitator, "hide_card", card_id=card_id, reason="Names a person")["ok"]

    answer = run(room, author, "edit_card", card_id=card_id, body="Mr X is lovely")

    assert answer["error"] == "forbidden"
    assert cards_of(room) == [(room.participant, "Mr X is useless", False)]


def test_groups_opened_under_a_lock_get_locked_notes(room):
    facilitator = room.joined(room.facilitator)
    assert run(room, facilitator, "lock_note", locked=True)["ok"]

    assert run(room, facilitator, "open_groups", count=2, assign="none")["ok"]

    with room.app.app_context():
        groups = db.session.scalars(select(BreakoutGroup)).all()
        assert [db.session.get(Note, group.note_id).is_locked for group in groups] == [True] * 2


def test_editing_a_takeaway_names_its_clusters_again(room):
    with room.app.app_context():
        session = db.session.get(WorkshopSession, room.session_id)
        takeaway = Takeaway(session_id=session.id, kind=TakeawayKind.LEVER, text="Share budgets")
        db.session.add(takeaway)
        session.phase = Phase.SYNTHESISE
        db.session.commit()
        takeaway_id = takeaway.id
    facilitator = room.joined(room.facilitator)

    answer = run(
        room, facilitator, "edit_takeaway", takeaway_id=takeaway_id, kind="lever", text="x"
    )

    assert answer["error"] == "invalid" and "cluster_ids" in answer["fields"]
