"""Serve cop as `python wsgi.py` does (eventlet), timing the CPU of each kind of green thread.

`bench/run.py --cpu-by-task` starts its first cop server with this file instead of
wsgi.py. At every switch between green threads, the CPU time the process's main thread
used since the last switch goes to the green thread that was running, by kind:

- `flusher`: a note's flusher (logging each batch, broadcasting it, compacting);
- `reader`: a client's WebSocket, from its frames to the event handlers (accepting edits);
- `rights`: the periodic re-check of open sockets' rights;
- `hub`: eventlet's event loop itself (waiting for sockets, timers, switching);
- `other`: everything else (connections being set up, Engine.IO's writers, pings).

`process` is the whole process's CPU time, OS threads included (SQLite's background
checkpoints). Each SIGUSR1 appends the running totals, as one JSON line, to the file named
by COP_CPU_BY_TASK; run.py sends one when the driver is ready and one when it has drained,
so their difference covers the same span as the benchmark's server CPU seconds.

The probe runs at every switch and adds its own cost to the CPU it times: compare probed
runs with each other, not with unprobed ones.
"""

import json
import os
import signal
import sys
import time
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wsgi  # noqa: E402 - patches nothing on import

# The function a green thread of each kind runs, somewhere down its stack.
KINDS = {
    "flush_loop": "flusher",
    "websocket_handler": "reader",
    "_watch_rights_loop": "rights",
}


def install_probe(path: str) -> None:
    """Time each kind of green thread from now on; append the totals to `path` on SIGUSR1."""
    import greenlet
    from eventlet import hubs

    hub = hubs.get_hub().greenlet
    known = weakref.WeakKeyDictionary()  # green thread → kind, once recognised
    totals = dict.fromkeys([*KINDS.values(), "hub", "other"], 0.0)
    last = [time.thread_time()]

    def kind_of(green) -> str:
        if green is hub:
            return "hub"
        kind = known.get(green)
        if kind is None:
            frame = green.gr_frame
            while frame is not None and frame.f_code.co_name not in KINDS:
                frame = frame.f_back
            if frame is None:
                return "other"  # not yet recognised: a reader before its WebSocket opens
            kind = known[green] = KINDS[frame.f_code.co_name]
        return kind

    def on_switch(event, args):
        if event in ("switch", "throw"):
            now = time.thread_time()
            totals[kind_of(args[0])] += now - last[0]
            last[0] = time.thread_time()  # the probe's own time goes to nobody

    def snapshot(_signum, _frame):
        with open(path, "a") as out:
            out.write(json.dumps({**totals, "process": time.process_time()}) + "\n")

    greenlet.settrace(on_switch)
    signal.signal(signal.SIGUSR1, snapshot)


def main() -> None:
    """Patch for eventlet, install the probe, then serve cop as `python wsgi.py` does.

    wsgi.main() patches again: eventlet and psycogreen skip what is patched already.
    """
    if os.environ.get("ASYNC_MODE", "eventlet") != "eventlet":
        raise SystemExit("the CPU-by-task probe knows eventlet's event loop only")
    wsgi.patch_async_library("eventlet")
    install_probe(os.environ["COP_CPU_BY_TASK"])
    wsgi.main()


if __name__ == "__main__":
    main()
