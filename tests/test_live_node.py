"""Live notes with the npm `y-socket.io` provider itself, run by Node against a real server.

The scripts in tests/node/ create the unmodified provider exactly as a browser does
(`disableBc: true`, the Y.Text "markdown"), with the session cookie in `extraHeaders` or a
personal API token in `auth`. They print JSON lines; these tests assert on them and on the
database. Every run is bounded by timeouts and talks only to 127.0.0.1; no assertion is
about a duration.
"""

import json
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select

from cop import ROOT
from cop.auth.models import User
from cop.auth.services import create_api_token
from cop.communities.models import Role
from cop.extensions import db
from cop.notes import services
from cop.notes.models import Note
from tests.live_client import wait_for
from tests.test_live_notes import LiveWorld
from tests.test_server import ServerProcess, free_port, server_environment, start_server  # noqa: F401

NODE = shutil.which("node")
SCRIPTS = ROOT / "tests" / "node"
SCRIPT_LIMIT = 120  # seconds a Node script may run before the test gives up on it
CONVERGENCE_LIMIT = 30  # seconds the database may take to hold what the clients converged on

pytestmark = pytest.mark.skipif(
    NODE is None or not (ROOT / "node_modules" / "y-socket.io").is_dir(),
    reason="needs node and node_modules/y-socket.io (run `npm ci` at the repository root)",
)


class NodeWorld(LiveWorld):
    """LiveWorld whose server can be killed and restarted on the same port."""

    def start(self, port: int | None = None, **extra) -> ServerProcess:
        """Start a server on the test database (on `port`, or a free one) once it answers."""
        environment = server_environment(
            self.database_url, port or free_port(), **(self.extra | extra)
        )
        server = self.start_server([str(ROOT / "wsgi.py")], environment)
        server.wait_until_healthy()
        return server

    def kill(self) -> None:
        """Kill the server with SIGKILL, by its PID, as a crash would."""
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=10)

    def restart(self) -> None:
        """Start a new server on the same port and database as the one killed."""
        self.server = self.start(port=self.server.port)

    def stored_text(self) -> str:
        """Return the text of everything the database holds (state plus log), read consistently.

        The note's state and its log are read by two statements; a compaction committed
        between them (the server compacts on its own schedule) would make the pair lack
        the updates it moved into the state. Read again until the state did not move.
        """
        with self.app.app_context():
            for _attempt in range(100):
                note = db.session.get(Note, self.note_id)
                db.session.refresh(note)
                read_from = note.state_seq
                update, _seq = services.full_state(note)
                now = db.session.scalar(select(Note.state_seq).filter_by(id=self.note_id))
                db.session.rollback()  # (expires `note`: compare the values read above)
                if now == read_from:
                    return services.text_of_update(update)
        raise AssertionError("the note's state kept moving while it was read")

    def token(self, role: Role) -> str:
        """Return a new personal API token of the member with that role."""
        with self.app.app_context():
            _token, secret = create_api_token(db.session.get(User, self.users[role]), "node")
            db.session.commit()
            return secret

    def config(self, **fields) -> dict:
        """Return a script configuration for this world's note."""
        return {"url": self.server.url, "noteId": self.note_id, **fields}

    def logs(self) -> str:
        """Return the logs of the servers of this test, for failure messages."""
        return "\n".join(path.read_text(errors="replace") for path in self.log_paths())

    def log_paths(self):
        return sorted(self.server.log_path.parent.glob("server-*.log"))


@pytest.fixture
def world(app, make, start_server):  # noqa: F811 - the fixture imported above
    return NodeWorld(app, make, start_server)


def run_script(name: str, config: dict) -> dict:
    """Run a script to its end; return its events by kind (the last of each) and all of them."""
    result = subprocess.run(
        [NODE, str(SCRIPTS / name), json.dumps(config)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_LIMIT,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return {"all": events} | {event["event"]: event for event in events}


def tokens_of(text: str) -> Counter:
    """Return how many times each <token> occurs in a text."""
    return Counter(re.findall(r"<[^<>]+>", text))


def test_clients_converge_after_concurrent_edits_at_the_same_position(world):
    clients = [
        {"name": "A", "cookie": world.cookie(Role.PARTICIPANT)},
        {"name": "B", "cookie": world.cookie(Role.EDITOR)},
        {"name": "C", "token": world.token(Role.FACILITATOR)},
    ]
    rounds = 12

    events = run_script("concurrent.mjs", world.config(clients=clients, rounds=rounds))

    final = events["final"]
    texts = set(final["texts"].values())
    assert final["converged"] and len(texts) == 1, final
    (text,) = texts
    assert final["errors"] == {"A": [], "B": [], "C": []}
    expected = Counter(final["expected"]) - Counter([final["doomed"]])
    assert tokens_of(text) == Counter(t for t in expected if t.startswith("<"))
    assert ("Hello|" in text) == (final["doomed"] != "Hello|")
    assert len(tokens_of(text)) == 3 * rounds - (final["doomed"] != "Hello|")
    wait_for(
        lambda: world.stored_text() == text, CONVERGENCE_LIMIT, "the database to hold the text"
    )


def test_late_joiners_and_clients_back_from_offline_lose_nothing(world):
    clients = {
        "A": {"cookie": world.cookie(Role.PARTICIPANT)},
        "B": {"cookie": world.cookie(Role.EDITOR)},
        "C": {"cookie": world.cookie(Role.HOST)},
        "D": {"token": world.token(Role.FACILITATOR)},
    }

    events = run_script("late_and_offline.mjs", world.config(clients=clients))

    # While B was offline, its edits stayed with it and A's did not reach it.
    offline = events["offline"]
    assert not offline["bConnected"]
    assert "<B-offline1>" not in offline["aText"] and "<A-meanwhile5>" not in offline["bText"]
    assert not events["away"]["dConnected"]
    final = events["final"]
    texts = set(final["texts"].values())
    assert len(texts) == 1, final
    (text,) = texts
    assert final["errors"] == {name: [] for name in "ABDC"}
    typed = Counter(final["typed"])
    assert len(typed) == 5 + 2 * 5 + 5 - 1 and set(typed.values()) == {1}
    assert tokens_of(text) == typed  # "<A1>", deleted on both sides, is gone once
    wait_for(
        lambda: world.stored_text() == text, CONVERGENCE_LIMIT, "the database to hold the text"
    )


class ScriptProcess:
    """A Node script that runs beside the test, whose JSON lines are read as they come."""

    def __init__(self, name: str, config: dict, log_path):
        self.name = name
        self.log_path = log_path
        self.events: list[dict] = []
        self.lines: queue.Queue = queue.Queue()
        self.stderr = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [NODE, str(SCRIPTS / name), json.dumps(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(None)  # end of output

    def wait_for(self, condition, message: str, limit: float = SCRIPT_LIMIT) -> None:
        """Read events until condition(events) holds; fail after `limit` seconds or at the end."""
        deadline = time.monotonic() + limit
        while not condition(self.events):
            try:
                event = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{self.name}: timed out waiting for {message}\n{self.output()}")
            if event is None:
                pytest.fail(f"{self.name} ended before {message}\n{self.output()}")
            self.events.append(event)

    def send(self, line: str) -> None:
        """Write a command line to the script's stdin."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self) -> tuple[dict, int]:
        """Wait for the script's final event and its exit; return that event and the status."""
        self.wait_for(lambda events: events and events[-1]["event"] == "final", "its end")
        return self.events[-1], self.process.wait(timeout=SCRIPT_LIMIT)

    def output(self) -> str:
        """Return the events read so far and what the script wrote on stderr."""
        events = "\n".join(map(json.dumps, self.events))
        return f"{events}\n{self.log_path.read_text(errors='replace')}"

    def stop(self) -> None:
        """Kill the script if it still runs (by its PID) and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            stream.close()


def typed_by_each(events: list[dict], clients: int, count: int) -> bool:
    """Tell whether each of the clients has typed at least `count` tokens."""
    typed = Counter(event["client"] for event in events if event["event"] == "typed")
    return len(typed) == clients and min(typed.values()) >= count


def test_clients_typing_through_a_server_crash_lose_nothing_and_duplicate_nothing(world, tmp_path):
    clients = [
        {"name": "A", "cookie": world.cookie(Role.PARTICIPANT)},
        {"name": "B", "cookie": world.cookie(Role.EDITOR)},
        {"name": "C", "token": world.token(Role.HOST)},
    ]
    tokens, kill_after = 60, 10
    config = world.config(
        clients=clients,
        tokens=tokens,
        intervalMs=50,
        pauseAfter=35,
        offlineAtLeast=5,
        afterResume=8,
        seed=int(time.time()),
    )
    port = world.server.port
    script = ScriptProcess("typists.mjs", config, tmp_path / "typists.stderr")
    try:
        script.wait_for(
            lambda events: typed_by_each(events, len(clients), kill_after), "the typing to start"
        )
        world.kill()  # while they type
        world.restart()
        assert world.server.port == port
        script.send("resume")
        final, status = script.finish()
    finally:
        script.stop()

    report = f"{script.output()}\n{world.logs()}"
    assert status == 0 and final["converged"], report
    texts = set(final["texts"].values())
    assert len(texts) == 1, report
    (text,) = texts
    expected = Counter(f"<{c['name']}{i}>" for c in clients for i in range(1, tokens + 1))
    assert Counter(final["typed"]) == expected
    assert tokens_of(text) == expected, report  # every edit, exactly once, on every client
    assert text == "".join(re.findall(r"<[^<>]+>", text))  # and nothing else
    assert final["errors"] == {"A": [], "B": [], "C": []}, report
    # The crash really happened under their fingers: each typed while cut off, and came
    # back by itself.
    assert all(final["offline"][name] > 0 for name in "ABC"), final["offline"]
    assert all(final["reconnections"][name] >= 1 for name in "ABC"), final["reconnections"]
    wait_for(
        lambda: tokens_of(world.stored_text()) == expected,
        CONVERGENCE_LIMIT,
        "the database to hold every token",
    )
    assert world.stored_text() == text
    wait_for(lambda: world.stored()[2] == text, CONVERGENCE_LIMIT, "the compacted text")
