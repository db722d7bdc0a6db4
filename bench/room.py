"""Live-room load benchmark (docs/performance.md, "Live room"): 200 participants in one session.

    .venv/bin/python bench/room.py                          # eventlet, one process, 200 people
    .venv/bin/python bench/room.py --repeat 3
    .venv/bin/python bench/room.py --mode gevent
    .venv/bin/python bench/room.py --processes 2            # Redis between them
    .venv/bin/python bench/room.py --rates 40 --py-spy cards-40 votes   # needs py-spy
    .venv/bin/python bench/room.py --parts dropout          # everyone's network drops at once
    .venv/bin/python bench/room.py --report --since 2026-11-23T06:10   # medians of the runs

Each run: a fresh SQLite database migrated with `flask db upgrade`, one community with the
participants (each in one of 20 organisations) and a facilitator, a workshop day with two
sessions, everyone holding a personal API token that goes in the Socket.IO `auth` object (no
login, no rate limit). A fresh `python wsgi.py` is pinned to core 0; the driver (this file
with `--drive`: 201 python-socketio asyncio clients in one process) is pinned to core 1.
Three parts, each with the server's CPU seconds (from /proc), its peak RSS (VmHWM, reset before
each part through /proc/<pid>/clear_refs) and the driver's own CPU:

1. phase changes: the facilitator moves the session between prepare and collect `--changes`
   times, `--phase-spacing` s apart; latency from the emit of `set_phase` to the arrival of
   `session-state` at each participant's socket, and the "last screen" of each change;
2. cards: participants (in turns) post cards at each total `--rates`, for `--seconds` each;
   latency from the poster's emit to the arrival of the `card` event at every other socket
   (the other participants and the facilitator);
3. votes: in a second session with `--vote-cards` cards, the facilitator opens the vote and
   every participant sends its `--dots` dots at once (cards drawn at random); the time until
   every answer is in, the refusals, then the database is read: every accepted dot is there,
   nobody over budget.

`--parts dropout` checks something else: once everyone has joined, the driver is frozen
(SIGSTOP: no FIN, no pong, as when a venue's network goes) until the servers' ping timeouts
close every socket; it reports the stays in the room the database still shows open.

Stops its servers by PID; talks only to 127.0.0.1. Results are printed and appended as JSON
lines (`"kind": "room"`) to bench/results/results.jsonl.
"""

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from datetime import time as clock_time
from pathlib import Path
from types import SimpleNamespace

from run import (
    DRIVER_CORE,
    PYTHON,
    ROOT,
    code_version,
    cpu_seconds,
    migrated_database,
    peak_rss_mib,
    runqueue_wait_seconds,
    start_cop,
)

BENCH = ROOT / "bench"
RESULTS = BENCH / "results" / "results.jsonl"
NAMESPACE = "/workshop"
ORGANISATIONS = 20
SUSTAINED_P99_MS = 200
CARD_TEXTS = [
    "Small NGOs cannot plan beyond one year without shared data on local funding.",
    "Ask the regional agencies to publish their calls three months ahead, in one place.",
    "Pair a research team with each pilot town so that results are measured the same way.",
    "Volunteers burn out: rotate the coordination role every quarter and document it.",
    "A common glossary would stop us from arguing about words instead of practices.",
]


# --- The database: community, people, organisations, day, sessions --------------------------


class RoomWorld:
    """A fresh SQLite database: participants in organisations, a facilitator, two sessions."""

    def __init__(self, participants: int, vote_cards: int, dots: int, workdir: Path):
        self.path = workdir / "room.sqlite"
        self.database_url = migrated_database(self.path)
        from cop import create_app
        from cop.auth import services as auth_services
        from cop.communities import services as community_services
        from cop.communities.models import Membership, Organisation, OrganisationKind, Role
        from cop.extensions import db
        from cop.workshops import services as workshop_services
        from cop.workshops.models import Card, Phase

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": self.database_url,
                "SECRET_KEY": "bench",
                "ARGON2_TIME_COST": 1,
                "ARGON2_MEMORY_COST": 64,
                "ARGON2_PARALLELISM": 1,
            }
        )
        password = "bench password 1"
        kinds = list(OrganisationKind)
        with app.app_context():
            host = auth_services.register_user("host@bench.test", "Host", password)
            community = community_services.create_community(
                host, "Bench", "bench", "Load benchmark.", theme_names=["Bench"]
            )
            organisations = [
                Organisation(name=f"Bench organisation {i}", kind=kinds[i % len(kinds)])
                for i in range(ORGANISATIONS)
            ]
            db.session.add_all(organisations)

            def member(email: str, name: str, role: Role, organisation) -> tuple:
                user = auth_services.register_user(email, name, password)
                db.session.add(
                    Membership(user=user, community=community, role=role, organisation=organisation)
                )
                db.session.flush()
                return user, auth_services.create_api_token(user, "bench")[1]

            facilitator, self.facilitator_token = member(
                "facilitator@bench.test", "Facilitator", Role.FACILITATOR, organisations[0]
            )
            people = [
                member(
                    f"p{i}@bench.test",
                    f"Participant {i}",
                    Role.PARTICIPANT,
                    organisations[i % ORGANISATIONS],
                )
                for i in range(participants)
            ]
            self.tokens = [token for _, token in people]
            day = workshop_services.create_day(
                host,
                community,
                workshop_services.DayPlan(
                    title="Bench day",
                    date=date.today(),
                    starts_at_local=clock_time(9),
                    ends_at_local=clock_time(17),
                ),
            )

            def session(title: str):
                return workshop_services.add_session(
                    host,
                    day,
                    workshop_services.SessionPlan(
                        title=title,
                        starts_at_local=clock_time(10),
                        duration_min=60,
                        facilitator_id=facilitator.id,
                        question="What would help our members most next year?",
                        dots_per_person=dots,
                        max_dots_per_card=2,
                    ),
                )

            room = session("Room")  # phases and cards
            ballot = session("Ballot")  # votes: its cards already posted, clustering under way
            ballot.phase = Phase.CLUSTER
            db.session.add_all(
                Card(session=ballot, author_id=people[i % participants][0].id, body=text)
                for i, text in (
                    (i, f"{CARD_TEXTS[i % len(CARD_TEXTS)]} ({i})") for i in range(vote_cards)
                )
            )
            db.session.commit()
            self.room_id, self.ballot_id = room.id, ballot.id
            self.dots_per_person, self.max_dots_per_card = dots, ballot.max_dots_per_card
            db.engine.dispose()

    def open_attendances(self) -> int:
        """Count the stays in a room still open (the person shown present) in the database."""
        with sqlite3.connect(self.path) as connection:
            return connection.execute(
                "SELECT count(*) FROM attendance WHERE left_at IS NULL"
            ).fetchone()[0]

    def count_votes(self, accepted: dict[str, int]) -> dict:
        """Read the ballot's dots from the database; compare with the accepted answers."""
        with sqlite3.connect(self.path) as connection:
            per_person = dict(
                connection.execute(
                    "SELECT user_id, count(*) FROM vote WHERE session_id = ? GROUP BY user_id",
                    (self.ballot_id,),
                ).fetchall()
            )
            most_on_a_card = connection.execute(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM vote"
                " WHERE session_id = ? GROUP BY user_id, card_id)",
                (self.ballot_id,),
            ).fetchone()[0]
            over_card = connection.execute(
                "SELECT count(DISTINCT user_id) FROM (SELECT user_id FROM vote"
                " WHERE session_id = ? GROUP BY user_id, card_id HAVING count(*) > ?)",
                (self.ballot_id, self.max_dots_per_card),
            ).fetchone()[0]
            token_users = dict(
                connection.execute(
                    "SELECT email, id FROM user WHERE email LIKE 'p%@bench.test'"
                ).fetchall()
            )
        accepted_by_user = {
            token_users[f"p{index}@bench.test"]: count for index, count in accepted.items()
        }
        mismatched = sum(
            1
            for user in set(per_person) | set(accepted_by_user)
            if per_person.get(user, 0) != accepted_by_user.get(user, 0)
        )
        return {
            "dbDots": sum(per_person.values()),
            "dbVoters": len(per_person),
            "dbMatchesAccepted": mismatched == 0,
            "dbMismatchedPeople": mismatched,
            "overBudgetPeople": sum(1 for n in per_person.values() if n > self.dots_per_person),
            "overCardPeople": over_card,
            "mostDotsOnOneCardByOnePerson": most_on_a_card,
        }


# --- Measures ------------------------------------------------------------------------------


def percentile(values, p: float):
    """Return the nearest-rank percentile of the values (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds):
    """Round seconds to milliseconds with one decimal."""
    return None if seconds is None else round(seconds * 1000, 1)


def spread(values: list[float]) -> dict:
    """p50, p95, p99 and max of latencies in seconds, as milliseconds."""
    return {
        "p50": ms(percentile(values, 50)),
        "p95": ms(percentile(values, 95)),
        "p99": ms(percentile(values, 99)),
        "max": ms(max(values) if values else None),
    }


class Meter:
    """The server's CPU, runqueue wait and peak RSS, and the driver's CPU, over one part."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def start(self):
        """Reset the servers' peak RSS and take the starting readings."""
        for pid in self.pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := current RSS
        self.wall = time.monotonic()
        self.cpu = sum(cpu_seconds(pid) for pid in self.pids)
        self.wait = sum(runqueue_wait_seconds(pid) for pid in self.pids)
        self.driver = time.process_time()

    def stop(self) -> dict:
        """Return the readings since `start`."""
        wall = time.monotonic() - self.wall
        cpu = sum(cpu_seconds(pid) for pid in self.pids) - self.cpu
        return {
            "wallSeconds": round(wall, 1),
            "serverCpuSeconds": round(cpu, 2),
            "serverCpuShare": round(cpu / wall, 2),
            "serverRunqueueWaitSeconds": round(
                sum(runqueue_wait_seconds(pid) for pid in self.pids) - self.wait, 2
            ),
            "serverPeakRssMiB": round(sum(peak_rss_mib(pid) for pid in self.pids), 1),
            "driverCpuShare": round((time.process_time() - self.driver) / wall, 2),
        }


# --- The driver: python-socketio's asyncio clients in one process (core 1) ------------------


def dispatch_messages_inline():
    """Handle each received message in its connection's reader task.

    python-engineio's client starts a new task for every message it receives. Our handlers
    only note the time and the payload, so they can run where the message is read; this
    spares the driver's core a task per delivery (about a fifth of its cost per message).
    """
    import engineio

    trigger = engineio.AsyncClient._trigger_event

    async def trigger_inline(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return await trigger(self, event, *args, **kwargs)

    engineio.AsyncClient._trigger_event = trigger_inline


class Person:
    """One socket in the room, noting when each broadcast arrives."""

    def __init__(self, index: int, token: str, url: str):
        self.index, self.token, self.url = index, token, url
        self.states: list[tuple[float, str]] = []  # (arrival, phase)
        self.cards: list[tuple[float, str]] = []  # (arrival, card tag)
        self.errors: list[dict] = []
        self.client = self._new_client()

    def _new_client(self):
        import socketio

        client = socketio.AsyncClient(reconnection=False)
        client.on("session-state", self.on_state, namespace=NAMESPACE)
        client.on("card", self.on_card, namespace=NAMESPACE)
        client.on("workshop-error", self.errors.append, namespace=NAMESPACE)
        return client

    def on_state(self, body):
        """Note a `session-state` (a phase change)."""
        self.states.append((time.perf_counter(), body["phase"]))

    def on_card(self, body):
        """Note a `card` by the tag its body starts with."""
        arrived = time.perf_counter()
        self.cards.append((arrived, (body["card"]["body"] or "").split(" ", 1)[0]))

    def is_connected(self) -> bool:
        """Tell whether the socket is still in the namespace."""
        return self.client.connected and NAMESPACE in self.client.namespaces

    async def connect(self):
        """Connect with the personal API token in the `auth` object."""
        await self.client.connect(
            self.url,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth={"token": self.token},
            wait_timeout=30,
        )

    async def reconnect(self):
        """Replace a dropped client with a new connection, keeping the notes taken."""
        self.client = self._new_client()
        await self.connect()

    async def join(self, session_id: int) -> dict:
        """Join a session's room; return its whole state."""
        answer = await self.client.call(
            "join", {"session_id": session_id}, namespace=NAMESPACE, timeout=60
        )
        if not answer.get("ok"):
            raise SystemExit(f"participant {self.index} could not join: {answer}")
        return answer["state"]

    async def emit(self, event: str, payload: dict, callback=None):
        """Send a command; the callback gets the answer."""
        await self.client.emit(event, payload, namespace=NAMESPACE, callback=callback)


async def wait_for(condition, limit: float, step: float = 0.01) -> bool:
    """Poll until the condition holds or the limit (seconds) passes."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def announce(event: str, **fields):
    """Tell the orchestrator (stdout, one JSON line)."""
    print(json.dumps({"event": event} | fields), flush=True)


def say(text: str):
    """Tell the person watching (stderr)."""
    print(f"[driver {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def phase_part(config, facilitator, people, meter) -> dict:
    """Move the room between prepare and collect; time each change to every participant."""
    room_id, changes, spacing = config["roomId"], config["changes"], config["phaseSpacing"]
    for person in people:
        person.states.clear()
    sent, answers = [], []
    announce("part", part="phase")
    meter.start()
    for change in range(changes):
        phase = "collect" if change % 2 == 0 else "prepare"
        started = time.perf_counter()
        sent.append((started, phase))
        await facilitator.emit("set_phase", {"session_id": room_id, "phase": phase}, answers.append)
        await wait_for(lambda: all(len(p.states) > change for p in people), 10)  # noqa: B023
        await asyncio.sleep(max(0.0, started + spacing - time.perf_counter()))
    await wait_for(lambda: len(answers) == changes, 10)
    usage = meter.stop()
    latencies, last_screens, missing, wrong = [], [], 0, 0
    for change, (started, phase) in enumerate(sent):
        arrivals = []
        for person in people:
            if len(person.states) <= change:
                missing += 1
                continue
            arrived, seen = person.states[change]
            wrong += seen != phase
            arrivals.append(arrived - started)
        latencies += arrivals
        if len(arrivals) == len(people):
            last_screens.append(max(arrivals))
    if sent[-1][1] != "collect":  # the cards need collect (not measured)
        done = len(people[0].states) + 1
        await facilitator.emit("set_phase", {"session_id": room_id, "phase": "collect"})
        await wait_for(lambda: all(len(p.states) >= done for p in people), 10)
    last = spread(last_screens)
    return {
        "changes": changes,
        "receivers": len(people),
        **spread(latencies),
        "lastScreenP50": last["p50"],
        "lastScreenP99": last["p99"],
        "lastScreenMax": last["max"],
        "missing": missing,
        "wrongPhase": wrong,
        "refused": sum(1 for answer in answers if not answer.get("ok")),
        "unanswered": changes - len(answers),
        **usage,
    }


async def cards_part(config, facilitator, people, meter, rate: float, first_tag: int) -> dict:
    """Post cards at a total rate for a while; time each to every other socket."""
    room_id, seconds = config["roomId"], config["seconds"]
    everyone = [facilitator, *people]
    for person in everyone:
        person.cards.clear()
    count = int(rate * seconds)
    order = list(range(len(people)))
    random.Random(config["seed"] + first_tag).shuffle(order)
    sent: dict[str, tuple[float, int]] = {}
    answers: dict[str, tuple[float, dict]] = {}

    def answered(tag):
        return lambda answer: answers.__setitem__(tag, (time.perf_counter(), answer))

    announce("part", part=f"cards-{rate:g}")
    meter.start()
    start = time.perf_counter() + 0.1
    late = 0.0
    for k in range(count):  # open loop: each card at its time, whatever the answers
        due = start + k / rate
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            late = max(late, now - due)
        poster = people[order[k % len(order)]]
        tag = f"#{first_tag + k}"
        body = f"{tag} {CARD_TEXTS[k % len(CARD_TEXTS)]}"
        sent[tag] = (time.perf_counter(), poster.index)
        await poster.emit("post_card", {"session_id": room_id, "body": body}, answered(tag))
    last_emit = time.perf_counter()
    await wait_for(lambda: len(answers) == count, config["drain"], 0.05)
    accepted = {tag for tag, (_, answer) in answers.items() if answer.get("ok")}
    expected = len(accepted) * (len(everyone) - 1)
    await wait_for(
        lambda: sum(len(p.cards) for p in everyone) >= expected + len(accepted),
        config["drain"],
        0.05,
    )
    usage = meter.stop()
    latencies = [
        arrived - sent[tag][0]
        for person in everyone
        for arrived, tag in person.cards
        if tag in accepted and sent[tag][1] != person.index
    ]
    first_emit = min(at for at, _ in sent.values())
    last_answer = max((at for at, _ in answers.values()), default=last_emit)
    refusals = Counter(a.get("error") for _, a in answers.values() if not a.get("ok"))
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": count,
        "sentRate": round(count / (last_emit - first_emit), 1) if count > 1 else None,
        "accepted": len(accepted),
        "acceptedRate": round(len(accepted) / (last_answer - first_emit), 1),
        "refused": dict(refusals),
        "unanswered": count - len(answers),
        "deliveries": len(latencies),
        "lost": expected - len(latencies),
        **spread(latencies),
        "answerP99": ms(percentile([at - sent[tag][0] for tag, (at, _) in answers.items()], 99)),
        "driverLateMaxMs": ms(late),
        **usage,
    }


async def votes_part(config, facilitator, people, meter) -> dict:
    """Everyone joins the ballot; the vote opens; everyone spends their dots at once."""
    ballot_id, dots = config["ballotId"], config["dots"]
    say("joining the ballot")
    card_ids = [card["id"] for card in (await facilitator.join(ballot_id))["cards"]]
    for person in people:
        await person.join(ballot_id)
        person.states.clear()
    await facilitator.emit("set_phase", {"session_id": ballot_id, "phase": "vote"})
    if not await wait_for(lambda: all(p.states and p.states[-1][1] == "vote" for p in people), 20):
        raise RuntimeError("the vote did not open for everyone")
    rng = random.Random(config["seed"])
    plan = [(person, rng.choice(card_ids)) for _ in range(dots) for person in people]
    answers: list[tuple[int, float, dict]] = []

    def answered(index):
        return lambda answer: answers.append((index, time.perf_counter(), answer))

    await wait_until_quiet(meter.pids)
    announce("part", part="votes")
    meter.start()
    started = time.perf_counter()
    for person, card_id in plan:  # everyone's first dot, then everyone's second, ...
        await person.emit(
            "vote", {"session_id": ballot_id, "card_id": card_id}, answered(person.index)
        )
    emitted = time.perf_counter() - started
    await wait_for(lambda: len(answers) == len(plan), config["voteLimit"], 0.005)
    usage = meter.stop()
    accepted = Counter(index for index, _, answer in answers if answer.get("ok"))
    refusals = Counter(answer.get("error") for _, _, answer in answers if not answer.get("ok"))
    latencies = [at - started for _, at, _ in answers]
    return {
        "voters": len(people),
        "cards": len(card_ids),
        "dotsSent": len(plan),
        "emitSeconds": round(emitted, 3),
        "answered": len(answers),
        "accepted": sum(accepted.values()),
        "refusals": dict(refusals),
        "allAnsweredSeconds": round(max(latencies), 2) if len(answers) == len(plan) else None,
        "answerP50": ms(percentile(latencies, 50)),
        "answerP99": ms(percentile(latencies, 99)),
        "acceptedByPerson": {str(index): n for index, n in accepted.items()},
        **usage,
    }


def saturated(cards: dict) -> bool:
    """Tell whether a rate left the server far behind: no use offering more."""
    return (
        cards["p99"] is None
        or cards["p99"] > 5 * SUSTAINED_P99_MS
        or cards["lost"] > 0
        or cards["unanswered"] > 0
    )


async def wait_until_quiet(pids: list[int], limit: float = 90) -> float:
    """Wait until the servers use under a tenth of a core; return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(1)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.1:
            break
    return round(time.monotonic() - started, 1)


async def reconnect_dropped(people: list, session_id: int) -> int:
    """Connect again (and rejoin) the sockets the server or the client dropped."""
    dropped = [p for p in people if not p.is_connected()]
    for person in dropped:
        await person.reconnect()
        await person.join(session_id)
    return len(dropped)


async def drive_room(config: dict) -> dict:
    """Connect everyone, run the three parts; return what was measured, even on failure."""
    urls, pids = config["urls"], config["serverPids"]
    meter = Meter(pids)
    facilitator = Person(-1, config["facilitatorToken"], urls[0])
    people = [Person(i, token, urls[i % len(urls)]) for i, token in enumerate(config["tokens"])]
    everyone = [facilitator, *people]
    say(f"connecting {len(everyone)} sockets")
    connect_started = time.monotonic()
    for batch in range(0, len(everyone), 10):
        await asyncio.gather(*(person.connect() for person in everyone[batch : batch + 10]))
    connect_seconds = time.monotonic() - connect_started
    joins = []  # one at a time: each person joins a room where all before them are present
    announce("part", part="join")
    for person in everyone:
        started = time.perf_counter()
        await person.join(config["roomId"])
        joins.append(time.perf_counter() - started)
    result = {
        "connectSeconds": round(connect_seconds, 1),
        "joinSeconds": round(sum(joins), 1),
        "joinP50Ms": ms(percentile(joins, 50)),
        "lastJoinMs": ms(joins[-1]),
    }
    say(f"connected in {connect_seconds:.1f} s, joined one by one in {sum(joins):.1f} s")
    await wait_until_quiet(pids)
    if "dropout" in config["parts"]:  # the orchestrator freezes this process: a network drop
        announce("dropout", result=result)
        await asyncio.sleep(3600)
    try:
        if "phase" in config["parts"]:
            say("phase changes")
            result["phase"] = await phase_part(config, facilitator, people, meter)
            announce("partial", part="phase", value=result["phase"])
        if "cards" in config["parts"]:
            result["cards"] = []
            first_tag = 0
            for rate in config["rates"]:
                say(f"cards at {rate:g}/s")
                await wait_until_quiet(pids)
                cards = await cards_part(config, facilitator, people, meter, rate, first_tag)
                cards["droppedSockets"] = sum(not p.is_connected() for p in everyone)
                result["cards"].append(cards)
                announce("partial", part=f"cards-{rate:g}", value=cards)
                first_tag += int(rate * config["seconds"])
                if saturated(cards):
                    say(f"saturated at {rate:g}/s: no higher rate")
                    break
        if "votes" in config["parts"]:
            result["quietBeforeVotesSeconds"] = await wait_until_quiet(pids)
            result["reconnectedBeforeVotes"] = await reconnect_dropped(everyone, config["roomId"])
            result["votes"] = await votes_part(config, facilitator, people, meter)
    except Exception as error:  # keep what was measured so far
        import traceback

        traceback.print_exc()
        result["failure"] = repr(error)
    result["errorEvents"] = sum(len(p.errors) for p in everyone)
    return result


def drive(config_path: str):
    """Run the driver process: the room, then the result on stdout; leave at once."""
    config = json.loads(Path(config_path).read_text())
    dispatch_messages_inline()
    result = asyncio.run(drive_room(config))
    announce("result", result=result)
    os._exit(0)  # 201 polite disconnects would only make the server broadcast departures


# --- The orchestrator ----------------------------------------------------------------------


def dropout(driver, world, args, workdir) -> dict:
    """Freeze the driver (no FIN, no pong: a venue's network gone) until the servers time out.

    Every socket then misses its pings; the servers close them all within a few seconds of
    each other. Return how many stays the database still shows open, and the tracebacks.
    """
    os.kill(driver.pid, signal.SIGSTOP)
    print(f"driver frozen: {args.dropout_wait:g} s for the ping timeouts", file=sys.stderr)
    time.sleep(args.dropout_wait)
    open_stays = world.open_attendances()
    logs = [log.read_text() for log in workdir.glob("cop-*.log")]
    driver.kill()
    return {
        "dropout": {
            "waitSeconds": args.dropout_wait,
            "openAttendances": open_stays,
            "disconnectHandlerErrors": sum(text.count("disconnect handler error") for text in logs),
            "recursionErrors": sum(text.count("RecursionError") for text in logs),
        }
    }


def sustained(cards: list[dict]) -> float | None:
    """Return the highest rate met in full: p99 ≤ 200 ms, 95 % of it accepted, none lost."""
    met = [
        c["rate"]
        for c in cards
        if c["p99"] is not None
        and c["p99"] <= SUSTAINED_P99_MS
        and c["acceptedRate"] >= 0.95 * c["rate"]
        and c["lost"] == 0
        and not c["refused"]
        and c["unanswered"] == 0
    ]
    return max(met) if met else None


def run_once(args, repeat: int) -> dict | None:
    """One run: fresh database, fresh servers, the driver; return the result."""
    with tempfile.TemporaryDirectory(prefix="cop-room-") as tmp:
        workdir = Path(tmp)
        world = RoomWorld(args.participants, args.vote_cards, args.dots, workdir)
        servers = [start_cop(world, args, i, workdir) for i in range(args.processes)]
        pids = [server.process.pid for server in servers]
        config = {
            "urls": [server.url for server in servers],
            "serverPids": pids,
            "facilitatorToken": world.facilitator_token,
            "tokens": world.tokens,
            "roomId": world.room_id,
            "ballotId": world.ballot_id,
            "parts": args.parts,
            "changes": args.changes,
            "phaseSpacing": args.phase_spacing,
            "rates": args.rates,
            "seconds": args.seconds,
            "drain": args.drain,
            "dots": args.dots,
            "voteLimit": args.vote_limit,
            "seed": 4000 + repeat,
        }
        config_path = workdir / "driver.json"
        config_path.write_text(json.dumps(config))
        load_before = os.getloadavg()
        result = None
        profilers = []
        driver = subprocess.Popen(
            ["taskset", "-c", DRIVER_CORE, PYTHON, __file__, "--drive", str(config_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            for line in driver.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event["event"] == "part":
                    print(f"  part {event['part']}", file=sys.stderr, flush=True)
                    if event["part"] in args.py_spy:
                        profilers.append(start_profiler(pids[0], args, event["part"]))
                elif event["event"] == "partial":
                    value = event["value"]
                    print(
                        f"  {event['part']}: p50 {value['p50']} ms, p99 {value['p99']} ms,"
                        f" server CPU {value['serverCpuShare']}, driver CPU"
                        f" {value['driverCpuShare']}",
                        file=sys.stderr,
                        flush=True,
                    )
                elif event["event"] == "result":
                    result = event["result"]
                elif event["event"] == "dropout":
                    result = event["result"] | dropout(driver, world, args, workdir)
                    break
            driver.wait(timeout=120)
            for profiler in profilers:  # each stops by itself after its duration
                profiler.wait(timeout=120)
            # The driver left without a goodbye (as when a venue's network drops): let the
            # servers close every stay in the room before stopping them.
            departure_seconds = time.monotonic()
            while time.monotonic() - departure_seconds < 60:
                before = sum(cpu_seconds(pid) for pid in pids)
                time.sleep(1)
                if sum(cpu_seconds(pid) for pid in pids) - before < 0.05:
                    break
            departure_seconds = round(time.monotonic() - departure_seconds, 1)
        finally:
            if driver.poll() is None:
                driver.kill()
            for server in servers:
                server.stop()
        logs = {log.name: log.read_text() for log in workdir.glob("cop-*.log")}
        tracebacks = sum(text.count("Traceback") for text in logs.values())
        if result is None or tracebacks:
            for name, text in logs.items():
                print(name, text[-3000:], file=sys.stderr)
        if result is None:
            return None
        if "votes" in result:
            result["votes"] |= world.count_votes(result["votes"].pop("acceptedByPerson"))
        result["departureSeconds"] = departure_seconds
        result["openAttendancesAfterDeparture"] = world.open_attendances()
        if tracebacks:
            kept = BENCH / "results" / f"logs-room-{time.strftime('%Y-%m-%dT%H:%M:%S')}"
            kept.mkdir(parents=True, exist_ok=True)
            for name, text in logs.items():
                (kept / name).write_text(text)
    label = f"cop-{args.mode}-{args.processes}p" + ("-" + ",".join(args.env) if args.env else "")
    label += "-py-spy" if args.py_spy else ""  # profiled runs are slower: kept apart
    return {
        "kind": "room",
        "config": label,
        "participants": args.participants,
        **result,
        "sustainedCardsPerSecond": sustained(result.get("cards", [])),
        "serverTracebacks": tracebacks,
        "loadAverageBefore": [round(x, 2) for x in load_before],
        "repeat": repeat,
        "code": code_version(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def start_profiler(pid: int, args, part: str):
    """Sample the first server with py-spy for the part's length (core 1, with the driver)."""
    seconds = {"phase": args.changes * args.phase_spacing, "votes": 10, "join": 10}.get(
        part, args.seconds
    )
    return subprocess.Popen(
        [
            "taskset", "-c", DRIVER_CORE, str(ROOT / ".venv" / "bin" / "py-spy"), "record",
            "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
            "--nonblocking", "--format", "raw",
            "-o", str(BENCH / "results" / f"profile-room-{args.mode}-{part}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


# --- Tables --------------------------------------------------------------------------------

PHASE_COLUMNS = [
    "p50",
    "p99",
    "max",
    "lastScreenP50",
    "lastScreenP99",
    "missing",
    "serverCpuSeconds",
    "serverCpuShare",
    "serverRunqueueWaitSeconds",
    "serverPeakRssMiB",
    "driverCpuShare",
]
CARD_COLUMNS = [
    "sentRate",
    "acceptedRate",
    "p50",
    "p99",
    "max",
    "lost",
    "errors",
    "serverCpuSeconds",
    "serverCpuShare",
    "serverRunqueueWaitSeconds",
    "serverPeakRssMiB",
    "driverCpuShare",
]
VOTE_COLUMNS = [
    "dotsSent",
    "accepted",
    "refused",
    "allAnsweredSeconds",
    "answerP99",
    "dbDots",
    "dbMatchesAccepted",
    "overBudgetPeople",
    "overCardPeople",
    "serverCpuSeconds",
    "serverRunqueueWaitSeconds",
    "serverPeakRssMiB",
    "driverCpuShare",
]


def flatten(run: dict) -> dict[str, dict]:
    """One row per part of a run: phase, cards at each rate, votes."""
    rows = {}
    if "phase" in run:
        rows["phase changes"] = run["phase"]
    for cards in run.get("cards", []):
        errors = sum(cards["refused"].values()) + cards["unanswered"]
        rows[f"cards {cards['rate']:g}/s"] = cards | {"errors": errors}
    if "votes" in run:
        votes = run["votes"]
        rows["votes"] = votes | {"refused": sum(votes["refusals"].values())}
    return rows


def columns_of(part: str) -> list[str]:
    """Return the columns of a part's table."""
    return (
        PHASE_COLUMNS
        if part.startswith("phase")
        else VOTE_COLUMNS
        if part == "votes"
        else CARD_COLUMNS
    )


def cell(values: list) -> str:
    """One value, or the median of several with their range."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if all(isinstance(v, bool) for v in values):
        return "yes" if all(values) else f"no ({values.count(False)}/{len(values)})"
    median = statistics.median(values)
    median = round(median, 2) if isinstance(median, float) else median
    if len(values) == 1 or min(values) == max(values):
        return f"{median:g}" if isinstance(median, (int, float)) else str(median)
    return f"{median:g} ({min(values):g}–{max(values):g})"


def print_tables(runs: list[dict]):
    """Print a Markdown table per part kind: medians over the runs (range in brackets)."""
    by_config: dict[str, list[dict]] = {}
    for run in runs:
        if "dropout" in run:
            print(f"dropout ({run['config']}, {run['at']}): {run['dropout']}")
            continue
        by_config.setdefault(run["config"], []).append(run)
    for config, group in by_config.items():
        codes = ", ".join(sorted({run["code"] for run in group}))
        print(f"\n{config}, {len(group)} run(s), code {codes}")
        parts: dict[str, list[dict]] = {}
        for run in group:
            for part, row in flatten(run).items():
                parts.setdefault(part, []).append(row)
        for kind in ("phase", "cards", "votes"):
            names = [p for p in parts if p.startswith(kind)]
            if not names:
                continue
            columns = columns_of(names[0])
            extra = ["runs", f"p99 ≤ {SUSTAINED_P99_MS} ms in"] if kind == "cards" else ["runs"]
            print("\n| part | " + " | ".join(extra + columns) + " |")
            print("|---" * (len(extra + columns) + 1) + "|")
            for name in names:
                rows = parts[name]
                cells = [str(len(rows))]
                if kind == "cards":  # a rate past a run's saturation was not offered: not met
                    met = sum(1 for row in rows if sustained([row]) is not None)
                    cells.append(f"{met} of {len(group)}")
                cells += [cell([row.get(c) for row in rows]) for c in columns]
                print(f"| {name} | " + " | ".join(cells) + " |")
        sustained_rates = [r["sustainedCardsPerSecond"] for r in group]
        print(f"\nsustained cards/s (p99 ≤ {SUSTAINED_P99_MS} ms), each run: {sustained_rates}")


def report(args):
    """Print the tables of the room runs in results.jsonl since a moment."""
    runs = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    runs = [
        r
        for r in runs
        if r.get("kind") == "room" and args.since <= r.get("at", "") <= (args.until or "~")
    ]
    if args.config:
        runs = [r for r in runs if r["config"] == args.config]
    print_tables(runs)


def main():
    """Parse the options; run, drive, or report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drive", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["eventlet", "gevent"], default="eventlet")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--parts", nargs="+", default=["phase", "cards", "votes"])
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--phase-spacing", type=float, default=1.0, help="s between changes")
    parser.add_argument("--rates", type=float, nargs="+", default=[5, 10, 20, 30, 40, 60, 80])
    parser.add_argument("--seconds", type=float, default=20, help="s of cards at each rate")
    parser.add_argument("--drain", type=float, default=15, help="s to wait for late ones")
    parser.add_argument("--vote-cards", type=int, default=40)
    parser.add_argument("--dots", type=int, default=3, help="dots per person (the budget)")
    parser.add_argument("--vote-limit", type=float, default=60, help="s to wait for answers")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--dropout-wait", type=float, default=75, help="with --parts dropout: s frozen"
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--py-spy",
        nargs="+",
        default=[],
        metavar="PART",
        help="profile parts: phase cards-20 votes",
    )
    parser.add_argument("--report", action="store_true", help="print tables of earlier runs")
    parser.add_argument("--since", default="", help="with --report: runs from this time on")
    parser.add_argument("--until", help="with --report: runs up to this time")
    parser.add_argument("--config", help="with --report: only this configuration")
    args = parser.parse_args()
    if args.drive:
        drive(args.drive)
        return
    if args.report:
        report(args)
        return
    RESULTS.parent.mkdir(exist_ok=True)
    runs = []
    for repeat in range(args.repeat):
        print(
            f"run {repeat + 1}/{args.repeat} ({args.mode}, {args.processes} process(es))",
            file=sys.stderr,
        )
        result = run_once(SimpleNamespace(**vars(args)), repeat)
        if result is None:
            print("no result", file=sys.stderr)
            continue
        with open(RESULTS, "a") as out:
            out.write(json.dumps(result) + "\n")
        runs.append(result)
        print_tables([result])
    if len(runs) > 1:
        print("\nAll runs:")
        print_tables(runs)


if __name__ == "__main__":
    main()
