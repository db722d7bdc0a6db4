"""Real server processes: `python wsgi.py` under eventlet, and PostgreSQL that cooperates with it.

Every server listens on 127.0.0.1 only, logs to a file of the test's tmp_path, and is
stopped by its PID when the test ends. Waits are bounded; nothing asserts a duration.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
import websocket
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cop import ROOT
from tests.conftest import TEST_DATABASE_URL

SLOW_QUERY_SERVER = ROOT / "tests" / "servers" / "slow_query_server.py"
OS_THREAD_JOB = ROOT / "tests" / "servers" / "os_thread_job.py"
STARTUP_LIMIT = 60  # seconds a server may take to answer /healthz before the test gives up
REQUEST_LIMIT = 60  # seconds any single request may take before the test gives up

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set (PostgreSQL under eventlet)"
)


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """Return the environment of a server process: its own database and port, eventlet."""
    environment = dict(os.environ)
    for name in ("ASYNC_MODE", "REDIS_URL", "SERVER_NAME"):  # the defaults are under test
        environment.pop(name, None)
    environment.update(
        DATABASE_URL=database_url,
        SECRET_KEY="server-test-secret",
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return environment


class ServerProcess:
    """A server started as a subprocess, logging to a file."""

    def __init__(self, arguments: list[str], environment: dict[str, str], log_path):
        self.port = int(environment["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *arguments],
                cwd=ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        """Return what the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_until_healthy(self) -> requests.Response:
        """Return the first answer of /healthz, once the server listens."""
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=REQUEST_LIMIT)
            except requests.ConnectionError:
                time.sleep(0.1)
        pytest.fail(f"the server did not answer within {STARTUP_LIMIT} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_server(tmp_path):
    """Return a function that starts a server; every server started is stopped afterwards."""
    servers = []

    def start(arguments: list[str], environment: dict[str, str]) -> ServerProcess:
        server = ServerProcess(arguments, environment, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("mode", [None, "gevent"], ids=["eventlet-by-default", "gevent"])
def test_wsgi_serves_http_and_socketio(start_server, tmp_path, mode):
    port = free_port()
    extra = {"ASYNC_MODE": mode} if mode else {}
    environment = server_environment(f"sqlite:///{tmp_path / 'cop.sqlite'}", port, **extra)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=REQUEST_LIMIT,
    )

    server = start_server(["wsgi.py"], environment)
    health = server.wait_until_healthy()

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert f"cop serving on http://127.0.0.1:{port}/ ({mode or 'eventlet'})" in server.log()
    assert_socketio_handshake_by_polling(server.url)
    assert_socketio_handshake_by_websocket(server.port)


def test_an_idle_server_stops_on_sigterm(start_server, tmp_path):
    # SIGTERM's handler starts the shutdown as a green task; on a server nobody had used,
    # the event loop slept and the task never ran, so the process did not stop.
    port = free_port()
    environment = server_environment(f"sqlite:///{tmp_path / 'cop.sqlite'}", port)
    server = start_server(["wsgi.py"], environment)
    server.wait_until_healthy()
    time.sleep(3)  # let the last request's connection close: nothing left to wake the loop

    server.process.send_signal(signal.SIGTERM)

    # A liveness bound, far above the ~3 s it takes: without the fix, eventlet's idle loop
    # slept its full 60 s before the shutdown task could run.
    try:
        code = server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server still ran 20 s after SIGTERM:\n{server.log()}")
    assert code == 0


def assert_socketio_handshake_by_polling(url: str) -> None:
    """Open an Engine.IO v4 session by long-polling, then connect to the "/" namespace."""
    endpoint = f"{url}/socket.io/?EIO=4&transport=polling"
    opening = requests.get(endpoint, timeout=REQUEST_LIMIT)
    assert opening.status_code == 200
    assert opening.text.startswith("0"), opening.text  # Engine.IO "open" packet
    session = json.loads(opening.text[1:])
    assert session["sid"] and "websocket" in session["upgrades"]

    session_endpoint = f"{endpoint}&sid={session['sid']}"
    sent = requests.post(session_endpoint, data="40", timeout=REQUEST_LIMIT)  # connect to "/"
    assert sent.status_code == 200
    answer = requests.get(session_endpoint, timeout=REQUEST_LIMIT)
    assert answer.text.startswith("40"), answer.text  # Socket.IO CONNECT acknowledged
    assert json.loads(answer.text[2:])["sid"]


def assert_socketio_handshake_by_websocket(port: int) -> None:
    """Open an Engine.IO v4 session straight over WebSocket and connect to "/".

    The client offers permessage-deflate, as browsers and Node do; the server declines it
    (live frames are too small to gain from it, docs/performance.md).
    """
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
        timeout=REQUEST_LIMIT,
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
    )
    try:
        assert connection.getstatus() == 101
        assert "sec-websocket-extensions" not in connection.getheaders(), connection.getheaders()
        opening = connection.recv()
        assert opening.startswith("0") and json.loads(opening[1:])["sid"], opening
        connection.send("40")
        answer = connection.recv()
        assert answer.startswith("40") and json.loads(answer[2:])["sid"], answer
    finally:
        connection.close()


def race_healthz_against_slow_query(start_server, *, green_psycopg: bool) -> bool:
    """Ask /healthz while /slow's pg_sleep runs; tell whether pg_sleep still ran once it answered.

    PostgreSQL is the referee: pg_stat_activity shows the server's slow query as active
    from the moment it starts until libpq has its result, whatever the clocks say.
    """
    application_name = f"cop-test-{uuid.uuid4().hex[:12]}"
    database_url = (
        make_url(TEST_DATABASE_URL)
        .update_query_dict({"application_name": application_name})
        .render_as_string(hide_password=False)
    )
    environment = server_environment(
        database_url, free_port(), COP_TEST_GREEN_PSYCOPG="1" if green_psycopg else "0"
    )
    referee = create_engine(TEST_DATABASE_URL, poolclass=NullPool)

    def slow_query_is_running() -> bool:
        with referee.connect() as connection:  # a new transaction: a fresh activity snapshot
            return bool(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                        " AND state = 'active' AND query = 'SELECT pg_sleep(2)'"
                    ),
                    {"name": application_name},
                ).scalar_one()
            )

    server = start_server([str(SLOW_QUERY_SERVER)], environment)
    assert server.wait_until_healthy().status_code == 200
    slow_answers = []
    slow_request = threading.Thread(
        target=lambda: slow_answers.append(
            requests.get(f"{server.url}/slow", timeout=REQUEST_LIMIT)
        )
    )
    slow_request.start()
    try:
        deadline = time.monotonic() + REQUEST_LIMIT
        while not slow_query_is_running():
            assert slow_request.is_alive(), "/slow answered before its query was seen running"
            assert time.monotonic() < deadline, f"pg_sleep never started:\n{server.log()}"
            time.sleep(0.05)

        health = requests.get(f"{server.url}/healthz", timeout=REQUEST_LIMIT)
        still_running = slow_query_is_running()

        assert health.status_code == 200
        assert health.json()["status"] == "ok"
    finally:
        slow_request.join(timeout=REQUEST_LIMIT)
        referee.dispose()
    assert [answer.status_code for answer in slow_answers] == [200]
    return still_running


@needs_postgresql
def test_a_slow_postgresql_query_does_not_stall_a_concurrent_request(start_server):
    assert race_healthz_against_slow_query(start_server, green_psycopg=True), (
        "/healthz waited for the slow query: psycopg2 blocks the eventlet hub"
    )


@needs_postgresql
def test_without_psycogreen_a_slow_query_stalls_every_request(start_server):
    # The control: the same server without psycogreen shows what the race above detects.
    assert not race_healthz_against_slow_query(start_server, green_psycopg=False)


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_a_job_in_an_os_thread_leaves_the_event_loop_running(tmp_path, mode):
    # A SQLite checkpoint waits for the disk there (LiveLog): here a blocking sleep of 0.3 s,
    # during which the loop's counter, ticking every 10 ms, must go on.
    environment = server_environment(f"sqlite:///{tmp_path / 'cop.sqlite'}", free_port())
    finished = subprocess.run(
        [sys.executable, str(OS_THREAD_JOB), mode],
        env=environment,
        capture_output=True,
        text=True,
        timeout=STARTUP_LIMIT,
        check=True,
    )
    state = json.loads(finished.stdout.strip().splitlines()[-1])
    assert state["done"]
    assert state["turns"] >= 10, state
