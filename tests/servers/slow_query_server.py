"""cop's own server with one more route, /slow, that holds a PostgreSQL query for 2 seconds.

Started by tests/test_server.py: `python tests/servers/slow_query_server.py`, with
DATABASE_URL (PostgreSQL) and PORT in the environment. It patches and serves exactly as
`python wsgi.py` does under eventlet, except that COP_TEST_GREEN_PSYCOPG=0 leaves psycopg2
blocking: the control run, which shows what the patching prevents.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import wsgi  # noqa: E402 - the repository root must be importable first

wsgi.patch_async_library(
    "eventlet", green_database_driver=os.environ.get("COP_TEST_GREEN_PSYCOPG", "1") != "0"
)

from sqlalchemy import text  # noqa: E402 - after patching, like everything else

from cop import create_app  # noqa: E402
from cop.extensions import db  # noqa: E402

SLOW_QUERY = "SELECT pg_sleep(2)"

app = create_app({"ASYNC_MODE": "eventlet"})


@app.get("/slow")
def slow():
    """Hold a database connection in a two-second query, then answer."""
    db.session.execute(text(SLOW_QUERY))
    return {"slept": True}


if __name__ == "__main__":
    wsgi.serve(app, "127.0.0.1", int(os.environ["PORT"]))
