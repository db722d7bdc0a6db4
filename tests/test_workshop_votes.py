"""Dot votes under concurrency: one person's 20 sockets spend the same budget at once.

Real server processes (`python wsgi.py`): on PostgreSQL (TEST_DATABASE_URL) two of them, so
the votes really race in two processes and, within each, in green threads that yield on
every query; on SQLite one. Each socket puts dots on and takes them back in rounds, so
attempts keep racing for the same free places in the budget. However they interleave, the
database holds exactly the dots whose answers were `ok`, never more than the budget nor
more on one card than the session allows, and a dot beyond is refused with `over_budget`.
"""

import threading

import pytest
import socketio
from sqlalchemy import func, select

from cop import ROOT
from cop.communities.models import Role
from cop.extensions import db
from cop.workshops.models import Card, Phase, Vote, WorkshopSession
from tests.conftest import PASSWORD, TEST_DATABASE_URL
from tests.live_client import WAIT_LIMIT, login_cookie
from tests.test_server import free_port, server_environment, start_server  # noqa: F401
from tests.test_workshop_server import plan_session

SOCKETS = 20
ROUNDS = 5  # each round: a dot on one card, a dot on another, the first one taken back
DOTS, MOST_PER_CARD = 3, 2


@pytest.fixture
def ballot(app, make, start_server):  # noqa: F811 - the fixture
    """Return a session in the vote phase with four cards, a voter, and its servers."""
    slug = make.community()
    voter = make.member(slug, Role.PARTICIPANT)
    session_id, _note_id = plan_session(app, slug)
    with app.app_context():
        session = db.session.get(WorkshopSession, session_id)
        session.phase = Phase.VOTE
        session.dots_per_person, session.max_dots_per_card = DOTS, MOST_PER_CARD
        cards = [Card(session=session, author_id=voter, body=f"Idea {n}") for n in range(4)]
        db.session.add_all(cards)
        db.session.commit()
        ids = session.id, [card.id for card in cards]
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    count = 2 if TEST_DATABASE_URL else 1
    servers = [
        start_server([str(ROOT / "wsgi.py")], server_environment(database_url, free_port()))
        for _ in range(count)
    ]
    for server in servers:
        server.wait_until_healthy()
    return ids, make.email_of(voter), servers


def connect(url: str, cookie: str, session_id: int) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(
        url,
        namespaces=["/workshop"],
        transports=["websocket"],
        headers={"Cookie": cookie},
        wait_timeout=WAIT_LIMIT,
    )
    answer = client.call("join", {"session_id": session_id}, namespace="/workshop")
    assert answer["ok"], answer
    return client


def test_twenty_sockets_of_one_person_never_spend_more_than_the_budget(ballot, app):
    (session_id, card_ids), email, servers = ballot
    cookie = login_cookie(servers[0].url, email, PASSWORD)
    clients = [
        connect(servers[number % len(servers)].url, cookie, session_id) for number in range(SOCKETS)
    ]
    start = threading.Barrier(SOCKETS)
    answers, lock = [], threading.Lock()

    def spend(number: int, client: socketio.Client) -> None:
        start.wait()
        for round_ in range(ROUNDS):
            first = card_ids[(number + round_) % len(card_ids)]
            second = card_ids[(number + round_ + 1) % len(card_ids)]
            for event, card_id in (("vote", first), ("vote", second), ("unvote", first)):
                answer = client.call(
                    event,
                    {"session_id": session_id, "card_id": card_id},
                    namespace="/workshop",
                    timeout=WAIT_LIMIT,
                )
                with lock:
                    answers.append((event, answer))

    threads = [
        threading.Thread(target=spend, args=(number, client))
        for number, client in enumerate(clients)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_LIMIT * ROUNDS * 3)
    finally:
        for client in clients:
            client.disconnect()

    assert len(answers) == SOCKETS * ROUNDS * 3
    kept = sum((1 if event == "vote" else -1) for event, answer in answers if answer["ok"])
    refusals = {(event, answer["error"]) for event, answer in answers if not answer["ok"]}
    assert refusals <= {("vote", "over_budget"), ("unvote", "invalid")}, refusals
    assert ("vote", "over_budget") in refusals  # the budget was reached, and held
    with app.app_context():
        per_card = dict(
            db.session.execute(
                select(Vote.card_id, func.count())
                .filter_by(session_id=session_id)
                .group_by(Vote.card_id)
            ).all()
        )
        slots = sorted(db.session.scalars(select(Vote.slot).filter_by(session_id=session_id)))
    assert (
        sum(per_card.values()) == kept <= DOTS
        and max(per_card.values(), default=0) <= MOST_PER_CARD
    )
    assert len(set(slots)) == len(slots) and set(slots) <= set(range(1, DOTS + 1))
    for server in servers:
        assert "Traceback" not in server.log(), server.log()
