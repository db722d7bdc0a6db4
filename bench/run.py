"""Live-notes load benchmark (docs/performance.md): cop vs Hocuspocus, N clients in one note.

    .venv/bin/python bench/run.py --server cop --mode eventlet --n 10 50 100
    .venv/bin/python bench/run.py --server cop --mode gevent --n 100
    .venv/bin/python bench/run.py --server cop --processes 2 --n 100     # Redis between them
    .venv/bin/python bench/run.py --server hocuspocus --n 50 100
    .venv/bin/python bench/run.py --server cop --n 50 --cpu-by-task      # CPU by green thread

Each run: a fresh note (cop: on a fresh SQLite database migrated with `flask db upgrade`,
members logged in through personal API tokens), the server pinned to core 0 with taskset,
the Node driver (bench/driver.mjs) pinned to core 1; the server's CPU seconds are read from
/proc/<pid>/stat between the driver's "ready" and "drained" events (the edits and their
delivery), its peak RSS from VmHWM. Servers are stopped by their PID. Results are printed
and appended as JSON lines to bench/results/results.jsonl.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CORE = "0"
DRIVER_CORE = "1"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads were runnable but waited for a CPU (other load on the core)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    """Return a process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- cop's database: one community, its members with API tokens ----------------------------


def migrated_database(path: Path) -> str:
    """Create a SQLite database at `path` with cop's migrations; return its URL."""
    database_url = f"sqlite:///{path}"
    environment = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="bench")
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    return database_url


class CopWorld:
    """A fresh SQLite database with one community of `members` people and their API tokens."""

    def __init__(self, members: int, workdir: Path):
        self.database_url = migrated_database(workdir / "bench.sqlite")
        from cop import create_app
        from cop.auth import services as auth_services
        from cop.communities import services as community_services
        from cop.communities.models import Membership, Role
        from cop.extensions import db

        self.app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": self.database_url,
                "SECRET_KEY": "bench",
                "ARGON2_TIME_COST": 1,
                "ARGON2_MEMORY_COST": 64,
                "ARGON2_PARALLELISM": 1,
            }
        )
        self.tokens = []
        with self.app.app_context():
            host = auth_services.register_user("host@bench.test", "Host", "bench password 1")
            community = community_services.create_community(
                host, "Bench", "bench", "Load benchmark.", theme_names=["Bench"]
            )
            for i in range(members):
                user = auth_services.register_user(f"p{i}@bench.test", f"P{i}", "bench password 1")
                db.session.add(Membership(user=user, community=community, role=Role.PARTICIPANT))
                db.session.flush()
                self.tokens.append(auth_services.create_api_token(user, "bench")[1])
            db.session.commit()
            self.community_id = community.id

    def new_note(self, title: str) -> int:
        """Create a note in the community and return its id."""
        from cop.communities.models import Community
        from cop.extensions import db
        from cop.notes import services

        with self.app.app_context():
            note = services.create_note(None, db.session.get(Community, self.community_id), title)
            db.session.commit()
            return note.id


# --- servers --------------------------------------------------------------------------------


class Server:
    """A server process pinned to core 0, up once its health URL answers."""

    def __init__(self, command, environment, log_path: Path, health_path: str):
        self.port = int(environment["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: see {log_path}")
            try:
                urllib.request.urlopen(f"{self.url}{health_path}", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"server did not start: see {log_path}")

    def stop(self):
        """Stop the server by its PID: SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_cop(world, args, index, workdir):
    """Start one cop server on the benchmark's database."""
    port = free_port()
    environment = dict(os.environ)
    environment.pop("REDIS_URL", None)
    environment.update(
        DATABASE_URL=world.database_url,
        SECRET_KEY="bench",
        HOST="127.0.0.1",
        PORT=str(port),
        ASYNC_MODE=args.mode,
        PYTHONUNBUFFERED="1",
        LIVE_MAX_UPDATES_PER_SECOND="100000",
    )
    if args.processes > 1:
        environment["REDIS_URL"] = args.redis_url
        # Redis pub/sub ignores the database number: a channel of its own per run keeps other
        # servers on this machine (tests running meanwhile) out of the benchmark's broadcasts.
        environment["SOCKETIO_CHANNEL"] = f"cop-bench-{os.getpid()}-{workdir.name}"
    environment.update(item.split("=", 1) for item in args.env)
    command = [PYTHON, str(ROOT / "wsgi.py")]
    if args.cpu_by_task and index == 0:
        command = [PYTHON, str(BENCH / "cpu_by_task.py")]
        environment["COP_CPU_BY_TASK"] = str(cpu_by_task_file(workdir))
    return Server(command, environment, workdir / f"cop-{index}.log", "/healthz")


def cpu_by_task_file(workdir: Path) -> Path:
    """Where the first cop server's CPU-by-task snapshots go (bench/cpu_by_task.py)."""
    return workdir / "cpu-by-task.jsonl"


def cpu_by_task(workdir: Path) -> dict | None:
    """Return each kind of green thread's CPU seconds between the two snapshots, if taken."""
    path = cpu_by_task_file(workdir)
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < 2:
        return None
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    return {kind: round(last[kind] - first[kind], 3) for kind in last}


def start_hocuspocus(workdir):
    """Start Hocuspocus with its default settings."""
    port = free_port()
    environment = dict(os.environ, PORT=str(port))
    return Server(
        ["node", str(BENCH / "hocuspocus_server.mjs"), str(port)],
        environment,
        workdir / "hocuspocus.log",
        "/",
    )


def server_pids(server):
    """Return the PIDs whose CPU counts (taskset execs the server: same PID)."""
    return [server.process.pid]


def code_version() -> str:
    """Return the commit under test, with "+dirty" when cop/ or wsgi.py differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "cop", "wsgi.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def run_once(args, n, world, workdir, repeat):
    """Run the driver once against fresh servers; return the result, or None."""
    version = code_version()
    if args.server == "cop":
        servers = [start_cop(world, args, i, workdir) for i in range(args.processes)]
        note_id = world.new_note(f"bench n={n}")
        config = {
            "server": "cop",
            "urls": [s.url for s in servers],
            "noteId": note_id,
            "tokens": world.tokens[:n],
            "apiUrl": servers[0].url,
        }
    else:
        servers = [start_hocuspocus(workdir)]
        config = {
            "server": "hocuspocus",
            "urls": [f"ws://127.0.0.1:{servers[0].port}"],
            "docName": f"bench-{n}-{repeat}",
        }
    config.update(
        n=n,
        full=args.full,
        seconds=args.seconds,
        intervalMs=args.interval,
        drainSeconds=args.drain,
        deflate=args.deflate,
        seed=1000 + n + repeat,
    )
    pids = [pid for s in servers for pid in server_pids(s)]
    probed = args.cpu_by_task and args.server == "cop"
    if probed:
        cpu_by_task_file(workdir).unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    driver = subprocess.Popen(
        ["taskset", "-c", DRIVER_CORE, "node", str(BENCH / "driver.mjs"), json.dumps(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cpu_at_ready = cpu_at_drained = None
    profiler = None
    result = None
    try:
        for line in driver.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event["event"] == "ready":
                cpu_at_ready = sum(cpu_seconds(p) for p in pids)
                wait_at_ready = sum(runqueue_wait_seconds(p) for p in pids)
                wall_at_ready = time.monotonic()
                if probed:
                    os.kill(pids[0], signal.SIGUSR1)  # bench/cpu_by_task.py's first snapshot
                if args.py_spy and args.server == "cop":
                    profiler = subprocess.Popen(
                        [
                            "taskset",
                            "-c",
                            DRIVER_CORE,
                            str(ROOT / ".venv" / "bin" / "py-spy"),
                            "record",
                            "--pid",
                            str(pids[0]),
                            "--duration",
                            str(int(args.seconds)),
                            "--rate",
                            "100",
                            "--nonblocking",
                            "--format",
                            "raw",
                            "-o",
                            str(BENCH / "results" / f"profile-{args.mode}-n{n}.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            elif event["event"] == "drained":
                cpu_at_drained = sum(cpu_seconds(p) for p in pids)
                wait_at_drained = sum(runqueue_wait_seconds(p) for p in pids)
                wall_at_drained = time.monotonic()
                if probed:
                    os.kill(pids[0], signal.SIGUSR1)
            elif event["event"] == "result":
                result = event
            elif event["event"] == "error":
                print("driver error:", event, file=sys.stderr)
        driver.wait(timeout=120)
        if profiler is not None:  # py-spy stops by itself after --duration and writes its file
            profiler.wait(timeout=60)
        rss = sum(peak_rss_mib(p) for p in pids)
    finally:
        if driver.poll() is None:
            driver.kill()
        for server in servers:
            server.stop()
    if result is None:
        print(driver.stderr.read()[-3000:], file=sys.stderr)
        return None
    result.pop("event", None)
    result.pop("ms", None)
    label = "hocuspocus" if args.server == "hocuspocus" else f"cop-{args.mode}-{args.processes}p"
    if args.env and args.server == "cop":
        label += "-" + ",".join(args.env)
    if probed:  # the probes cost CPU: their runs are kept apart from the others
        label += "-cpu-by-task"
        result["cpuByTask"] = cpu_by_task(workdir)
    if args.py_spy and args.server == "cop":
        label += "-py-spy"
    result.update(
        config=label + ("-deflate" if args.deflate else ""),
        serverCpuSeconds=round(cpu_at_drained - cpu_at_ready, 2)
        if cpu_at_ready is not None
        else None,
        serverPeakRssMiB=round(rss, 1),
        measuredWallSeconds=round(wall_at_drained - wall_at_ready, 1),
        serverCpuShare=round(
            (cpu_at_drained - cpu_at_ready) / (wall_at_drained - wall_at_ready), 2
        ),
        serverRunqueueWaitSeconds=round(wait_at_drained - wait_at_ready, 2),
        loadAverageBefore=round(load_before, 2),
        repeat=repeat,
        seconds=args.seconds,
        code=version,
        at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    return result


def main():
    """Parse the options and run every N (and repeat)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=["cop", "hocuspocus"], default="cop")
    parser.add_argument("--mode", choices=["eventlet", "gevent"], default="eventlet")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=200, help="ms between a client's edits")
    parser.add_argument("--drain", type=float, default=10, help="s to wait for late deliveries")
    parser.add_argument("--full", type=int, default=4, help="full provider clients (convergence)")
    parser.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the cop servers (e.g. LIVE_GROUP_COMMIT_SECONDS=0.01)",
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the (first) cop server")
    parser.add_argument(
        "--cpu-by-task",
        action="store_true",
        help="time each kind of green thread of the first cop server (bench/cpu_by_task.py)",
    )
    args = parser.parse_args()
    if args.cpu_by_task and args.mode != "eventlet":
        parser.error("--cpu-by-task knows eventlet's event loop only")
    (BENCH / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cop-bench-") as tmp:
        workdir = Path(tmp)
        world = CopWorld(max(args.n), workdir) if args.server == "cop" else None
        for n in args.n:
            for repeat in range(args.repeat):
                result = run_once(args, n, world, workdir, repeat)
                if result is None:
                    print(f"n={n}: no result; server logs in {workdir}", file=sys.stderr)
                    for log in workdir.glob("*.log"):
                        print(log.name, log.read_text()[-2000:], file=sys.stderr)
                    continue
                print(json.dumps(result), flush=True)
                if not result.get("converged"):  # keep the servers' logs of a failed run
                    kept = BENCH / "results" / f"logs-{result['config']}-n{n}-{result['at']}"
                    kept.mkdir(parents=True, exist_ok=True)
                    for log in workdir.glob("*.log"):
                        (kept / log.name).write_bytes(log.read_bytes())
                with open(BENCH / "results" / "results.jsonl", "a") as out:
                    out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
