"""Clients of cop's live parts in Python (python-socketio), for tests.

`YClient` is a Yjs client of live notes (pycrdt); it speaks the y-socket.io protocol exactly
as the npm provider does: `sync-step-1` both ways with acks, `sync-update`,
`awareness-update`. `RoomScreen` is a person's socket in a workshop session's live room
(`/workshop`).
"""

import re
import threading
import time

import requests
import socketio
from pycrdt import Doc, Text

WAIT_LIMIT = 20  # seconds a condition may take before a test gives up


def login_cookie(base_url: str, email: str, password: str) -> str:
    """Log in over HTTP like a browser and return the Cookie header to reuse."""
    session = requests.Session()
    page = session.get(f"{base_url}/login", timeout=WAIT_LIMIT).text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    response = session.post(
        f"{base_url}/login",
        data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
        timeout=WAIT_LIMIT,
    )
    assert response.status_code == 302, response.text
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


class YClient:
    """One client following one note: its own pycrdt document kept in sync with the server."""

    def __init__(self, base_url: str, note_id: int, cookie: str | None = None, **options):
        self.namespace = f"/yjs|note-{note_id}"
        self.doc = Doc()
        self.text = self.doc.get("markdown", type=Text)
        self.lock = threading.Lock()
        self.errors: list[dict] = []
        self.awareness: list[bytes] = []
        self.received_updates = 0
        self.server_synced = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("sync-step-1", self._answer_server_sync, namespace=self.namespace)
        self.sio.on("sync-update", self._apply_remote, namespace=self.namespace)
        self.sio.on("note-error", self.errors.append, namespace=self.namespace)
        self.sio.on("awareness-update", self.awareness.append, namespace=self.namespace)
        headers = {"Cookie": cookie} if cookie else {}
        headers.update(options.pop("headers", {}))
        self.sio.connect(
            base_url,
            namespaces=[self.namespace],
            transports=["websocket"],
            headers=headers,
            wait_timeout=WAIT_LIMIT,
            **options,
        )
        self.sync()

    def _answer_server_sync(self, state_vector):
        with self.lock:
            answer = self.doc.get_update(bytes(state_vector))
        self.server_synced.set()
        return answer

    def _apply_remote(self, update):
        with self.lock:
            self.doc.apply_update(bytes(update))
            self.received_updates += 1

    def sync(self) -> None:
        """Ask the server for what this client lacks (the client's sync-step-1)."""
        with self.lock:
            state_vector = self.doc.get_state()
        update = self.sio.call(
            "sync-step-1", state_vector, namespace=self.namespace, timeout=WAIT_LIMIT
        )
        with self.lock:
            self.doc.apply_update(bytes(update))

    def edit(self, change) -> bytes:
        """Change the text with `change(text)` and send the resulting update."""
        with self.lock:
            before = self.doc.get_state()
            change(self.text)
            update = self.doc.get_update(before)
        self.send(update)
        return update

    def insert(self, index: int, words: str) -> bytes:
        """Insert words at a position and send the change."""
        return self.edit(lambda text: text.insert(index, words))

    def send(self, payload, event: str = "sync-update") -> None:
        """Send raw bytes (or anything) as an event of the protocol."""
        self.sio.emit(event, payload, namespace=self.namespace)

    def value(self) -> str:
        """Return the text as this client sees it."""
        with self.lock:
            return str(self.text)

    def close(self) -> None:
        """Disconnect."""
        self.sio.disconnect()


class RoomScreen:
    """A person's socket in a workshop session's live room, keeping every event it receives."""

    def __init__(self, url: str, cookie: str):
        self.events: list[tuple[str, dict]] = []
        self.arrived = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self._keep, namespace="/workshop")
        self.client.connect(
            url,
            namespaces=["/workshop"],
            transports=["websocket"],
            headers={"Cookie": cookie},
            wait_timeout=WAIT_LIMIT,
        )

    def _keep(self, event, body):
        with self.arrived:
            self.events.append((event, body))
            self.arrived.notify_all()

    def call(self, event: str, body: dict) -> dict:
        return self.client.call(event, body, namespace="/workshop", timeout=WAIT_LIMIT)

    def wait_for(self, event: str, check=lambda body: True) -> dict:
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: next((b for e, b in self.events if e == event and check(b)), None),
                timeout=WAIT_LIMIT,
            )
        assert found, f"no {event} in {self.events}"
        return found


def wait_for(condition, limit: float = WAIT_LIMIT, message: str = "condition") -> None:
    """Wait until condition() is true, failing after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")
