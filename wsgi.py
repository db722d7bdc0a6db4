"""Serve cop: `python wsgi.py` is the server entry point; `wsgi:app` is the WSGI app.

The async library is chosen here and only here (DESIGN.md, "Running at scale"): eventlet
by default, gevent or threading with ASYNC_MODE. Monkey-patching only works when it comes
before anything imports `socket` or `threading`, and importing any module of the `cop`
package imports Flask and most of the dependencies, so the patching lives in this file and
runs before `cop` is imported. For the same reason, importing this module patches nothing
and builds `app` only when it is first asked for (`flask --app wsgi`, `gunicorn wsgi:app`).
"""

import gc
import os
import signal
import warnings

# eventlet 0.41 announces its deprecation on import; cop keeps it as its default async mode
# by choice (DESIGN.md), so the notice would only be noise on every command.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ASYNC_MODES = ("eventlet", "gevent", "threading")


def patch_async_library(mode: str, *, green_database_driver: bool = True) -> None:
    """Make blocking I/O cooperative for `mode`; call this before importing `cop`.

    psycopg2 calls libpq in C, out of reach of monkey-patching: a query would block every
    green thread of the process until it returns. psycogreen installs psycopg2's wait
    callback so that libpq's waits go through the event loop instead (README, "PostgreSQL").
    eventlet would install the same callback by itself; it is left to psycogreen so that
    eventlet and gevent are set up alike, and `green_database_driver=False` (tests only)
    really leaves psycopg2 blocking.
    """
    if mode == "eventlet":
        import eventlet

        eventlet.monkey_patch(psycopg=False)
        if green_database_driver:
            from psycogreen.eventlet import patch_psycopg

            patch_psycopg()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
        if green_database_driver:
            from psycogreen.gevent import patch_psycopg

            patch_psycopg()
    elif mode != "threading":
        raise SystemExit(f"ASYNC_MODE must be one of {', '.join(ASYNC_MODES)}, not {mode!r}")


def serve(app, host: str, port: int) -> None:
    """Serve `app` and its Socket.IO endpoint on host:port until interrupted or terminated."""
    from cop.extensions import socketio
    from cop.live.notes import flush_everything
    from cop.live.workshop import leave_everything

    def shut_down():
        flush_everything(app)
        leave_everything(app)  # nobody stays "present" in a room of a stopped process
        os._exit(0)

    def terminate(_signum, _frame):
        # Live notes log every accepted change before broadcasting it; on SIGTERM, also
        # commit what waits in the group-commit window and compact every open note. The
        # database work runs in a task of its own: the event loop's own greenlet may not block
        # (psycogreen refuses), and a signal handler runs there.
        socketio.start_background_task(shut_down)

    signal.signal(signal.SIGTERM, terminate)

    def keep_the_loop_awake():
        # A task started by the signal handler runs when the event loop next wakes up; an
        # idle server's loop would sleep until the next connection, so SIGTERM waited.
        while True:
            socketio.sleep(0.5)

    socketio.start_background_task(keep_the_loop_awake)
    # python-socketio subscribes to the message queue (Redis) on the first connection only,
    # so a broadcast from another process in the first moments could be missed: subscribe now.
    if not socketio.server.manager_initialized:
        socketio.server.manager_initialized = True
        socketio.server.manager.initialize()
    mode = socketio.server.eio.async_mode
    print(f" * cop serving on http://{host}:{port}/ ({mode})", flush=True)
    if mode == "eventlet":
        serve_with_eventlet(app, host, port)
        return
    if mode == "gevent":
        serve_with_gevent(app, host, port)
        return
    # The threading mode runs Werkzeug's development server: fine for comparing modes and
    # debugging, which is the only reason to choose it.
    socketio.run(
        app, host=host, port=port, log_output=True, allow_unsafe_werkzeug=mode == "threading"
    )


def serve_with_eventlet(app, host: str, port: int) -> None:
    """Run eventlet's WSGI server as Flask-SocketIO does, with TCP_NODELAY on every socket.

    A binary Socket.IO event leaves as two WebSocket frames; with Nagle's algorithm the
    second waits for the first's acknowledgement, about 40 ms on every delivery (DESIGN.md,
    "Measured pitfalls"). Accepted sockets inherit the option from the listening socket.
    `socketio.run()` has no setting for it.
    """
    import socket

    import eventlet
    import eventlet.wsgi

    from cop.live.transport import speed_up_eventlet_websocket, write_broadcasts_directly

    speed_up_eventlet_websocket()
    write_broadcasts_directly()
    address = eventlet.green.socket.getaddrinfo(host, port)[0]
    listener = eventlet.listen(address[4], address[0])
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    eventlet.wsgi.server(listener, app, log_output=True)


def serve_with_gevent(app, host: str, port: int) -> None:
    """Run gevent's WSGI server as Flask-SocketIO does, with TCP_NODELAY (see eventlet above).

    WebSockets come from simple-websocket, as with `socketio.run()`.
    """
    import socket

    from gevent import pywsgi

    server = pywsgi.WSGIServer((host, port), app, log="default")
    server.init_socket()
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.serve_forever()


def main() -> None:
    """Patch the async library, build the app from the environment and serve it."""
    patch_async_library(os.environ.get("ASYNC_MODE", "eventlet"))
    from cop import create_app

    app = create_app()
    # Everything made so far lives as long as the process. Taken out of the garbage
    # collector's reach, it no longer makes each full collection last about 100 ms, during
    # which no live edit moves (docs/performance.md).
    gc.freeze()
    serve(app, os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5000")))


def __getattr__(name: str):
    """Build `app` on first use, so that importing this module leaves patching possible."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global app
    _green_database_driver_under_gevent_worker()
    from cop import create_app

    app = create_app()
    return app


def _green_database_driver_under_gevent_worker() -> None:
    """Green psycopg2 when a WSGI server (gunicorn's gevent worker) patched with gevent."""
    try:
        from gevent import monkey
    except ImportError:
        return
    if monkey.is_module_patched("socket"):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


if __name__ == "__main__":
    main()
