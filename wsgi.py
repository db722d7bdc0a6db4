"""Serve cop: `python wsgi.py` runs Flask-SocketIO's server; `wsgi:app` is the WSGI app.

The async library is chosen here and only here (DESIGN.md, "Running at scale"):
eventlet by default, gevent or threading with ASYNC_MODE.
"""

import os

ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet")

if __name__ == "__main__" and ASYNC_MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
elif __name__ == "__main__" and ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from cop import create_app  # noqa: E402
from cop.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    print(f" * cop serving on http://{host}:{port} ({ASYNC_MODE})", flush=True)
    socketio.run(app, host=host, port=port, log_output=True)
