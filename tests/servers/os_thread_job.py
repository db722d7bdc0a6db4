"""Run a job through `cop.live.notes.in_an_os_thread` and say whether the event loop went on.

Started by tests/test_server.py: `python tests/servers/os_thread_job.py MODE`, MODE being
eventlet or gevent, with DATABASE_URL in the environment. It patches as `python wsgi.py`
does, then starts a job that sleeps 0.3 s with the unpatched `time.sleep`, which would
stop the event loop if the job ran in the loop's own thread, while a green thread counts
its turns every 10 ms. It prints the count as JSON.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import wsgi  # noqa: E402 - the repository root must be importable first

MODE = sys.argv[1]
wsgi.patch_async_library(MODE)

from cop import create_app  # noqa: E402 - after patching, like everything else
from cop.extensions import socketio  # noqa: E402
from cop.live.notes import in_an_os_thread  # noqa: E402

if MODE == "eventlet":
    from eventlet.patcher import original

    blocking_sleep = original("time").sleep
else:
    from gevent.monkey import get_original

    blocking_sleep = get_original("time", "sleep")

app = create_app({"ASYNC_MODE": MODE})
state = {"done": False, "turns": 0}


def job():
    blocking_sleep(0.3)
    state["done"] = True


def count_turns():
    while not state["done"]:
        state["turns"] += 1
        socketio.sleep(0.01)


with app.app_context():
    socketio.start_background_task(count_turns)
    in_an_os_thread(job)
    for _ in range(1000):  # 10 s at most
        if state["done"]:
            break
        socketio.sleep(0.01)
print(json.dumps(state))
