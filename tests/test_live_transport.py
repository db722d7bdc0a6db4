"""The WebSocket layer under Socket.IO (cop/live/transport.py).

The faster unmasking gives exactly what eventlet's own gives; reading ahead gives the bytes a
socket carries, in order, as its own `recv` would, and reading whole frames gives the messages
eventlet's own reader gives. Broadcasts written straight to
each client's socket reach a client that stopped reading whole (each event with its bytes,
nothing between them) once it reads again, and meanwhile that client holds up nobody else.
"""

import json
import socket
import threading
from types import SimpleNamespace

import socketio
import websocket
from eventlet.greenio import GreenSocket
from eventlet.websocket import RFC6455WebSocket
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from cop.communities.models import Role
from cop.live.transport import (
    ReadAhead,
    binary_event_frames,
    dispatch_binary_events_directly,
    frame_of,
    read_whole_frames,
    unmask,
)
from tests.live_client import WAIT_LIMIT, wait_for
from tests.test_live_notes import LiveWorld
from tests.test_server import start_server  # noqa: F401 - the fixture

# Taken before anything replaces it (wsgi.py does, in the server process only).
eventlets_own = RFC6455WebSocket.__dict__["_apply_mask"].__func__


@given(
    data=st.binary(max_size=300),
    mask=st.binary(min_size=4, max_size=4),
    as_list=st.booleans(),
    offset=st.integers(min_value=0, max_value=7),
    cut=st.integers(min_value=0, max_value=300),
)
def test_unmask_gives_what_eventlet_gives(data, mask, as_list, offset, cut):
    key = list(mask) if as_list else mask  # eventlet passes bytes in, a list when sending
    length = min(cut, len(data))

    assert unmask(data, key, length, offset) == eventlets_own(data, key, length, offset)
    assert unmask(data, key, offset=offset) == eventlets_own(data, key, offset=offset)


def test_unmasking_twice_gives_the_frame_back():
    frame = "café [c1e2]".encode() * 40

    assert unmask(unmask(frame, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04") == frame
    assert unmask(frame, b"\x00\x00\x00\x00") == frame


def eventlets_frames(message: str | bytes) -> bytes:
    """Frame `message` as eventlet does for a WebSocket without extensions."""
    websocket = RFC6455WebSocket.__new__(RFC6455WebSocket)
    websocket.extensions = {}
    return websocket._pack_message(message)


@given(
    message=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        # Around the lengths where the frame's header grows: 7, 16 and 64 bits.
        st.sampled_from([125, 126, 127, 65535, 65536, 70000]).map(lambda n: b"x" * n),
        st.sampled_from([125, 126, 65535, 65536]).map(lambda n: "é" * (n // 2)),
    )
)
def test_framing_gives_what_eventlet_gives(message):
    assert frame_of(message) == eventlets_frames(message)


def test_the_frames_of_a_binary_event_are_those_of_python_socketio_and_eventlet():
    first_frames = {}
    for attachment in (b"", b"\x00\x01", bytes(range(256)) * 300):
        for namespace, event in (
            ("/yjs|note-7", "sync-update"),
            ("/yjs|note-7", "awareness-update"),
            ("/", "sync-update"),
        ):
            parts = socketio.packet.Packet(
                socketio.packet.EVENT, namespace=namespace, data=[event, attachment]
            ).encode()
            expected = b"".join(eventlets_frames(p) for p in ["4" + parts[0], parts[1]])

            assert binary_event_frames(first_frames, namespace, event, attachment) == expected
    assert len(first_frames) == 3


def write_in_pieces(writer: socket.socket, data: bytes, cuts: list[int]) -> threading.Thread:
    """Write `data` from a thread in pieces of these sizes, then shut the writing side.

    So a client's frames arrive, and so the client goes; unless the reader closes first.
    """

    def write():
        position = 0
        try:
            for cut in [*cuts, len(data)]:
                writer.sendall(data[position : position + cut])
                position += cut
            writer.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader closed at a bad frame before the rest of it came

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@settings(deadline=None)
@given(
    data=st.binary(max_size=3 * ReadAhead.CHUNK),
    cuts=st.lists(st.integers(min_value=1, max_value=ReadAhead.CHUNK), max_size=8),
    sizes=st.lists(st.integers(min_value=1, max_value=ReadAhead.CHUNK + 10), min_size=1),
)
def test_reading_ahead_gives_the_bytes_in_order_within_each_size(data, cuts, sizes):
    reader, writer = socket.socketpair()
    thread = write_in_pieces(writer, data, cuts)
    recv = ReadAhead(reader.recv)
    received = b""
    for turn in range(len(data) + 1):
        size = sizes[turn % len(sizes)]
        piece = recv(size)
        if len(received) == len(data):
            assert piece == b""  # the peer has gone, and the buffer is empty
            break
        assert 1 <= len(piece) <= size
        received += piece
    thread.join()
    reader.close(), writer.close()
    assert received == data


def client_frame(opcode: int, payload: bytes, mask: bytes, final=True, wide=False) -> bytes:
    """A frame as a client sends it (RFC 6455, section 5.2): masked with `mask`.

    `wide` writes a short length in the 16-bit form, as the RFC allows a sender to.
    """
    length = len(payload)
    header = bytes([(0x80 if final else 0) | opcode])
    if length < 126 and not wide:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
    return header + mask + unmask(payload, mask)


@st.composite
def client_frames(draw) -> bytes:
    """A client's frames: text and binary messages, some in fragments, with pings between."""
    frames = b""
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if draw(st.booleans()):
            opcode, payload = 1, draw(st.text(max_size=200)).encode()
        else:
            size = draw(st.sampled_from([0, 1, 125, 126, 200, 65535, 65536, 70000]))
            opcode, payload = 2, bytes(range(256)) * (size // 256) + bytes(size % 256)
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=2)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for index, piece in enumerate(pieces):
            if index and draw(st.booleans()):
                frames += client_frame(9, b"ping", draw(st.binary(min_size=4, max_size=4)))
            final = index == len(pieces) - 1
            frames += client_frame(
                opcode if index == 0 else 0,
                piece,
                draw(st.binary(min_size=4, max_size=4)),
                final=final,
                wide=draw(st.booleans()),
            )
    return frames


def messages_read(data: bytes, cuts: list[int], whole_frames: bool) -> list:
    """The messages an eventlet WebSocket reads from `data`, which arrives in pieces."""
    reader, writer = socket.socketpair()
    thread = write_in_pieces(writer, data, cuts)
    ws = RFC6455WebSocket(GreenSocket(reader), {})
    if whole_frames:
        read_whole_frames(ws)
    messages = []
    while (message := ws.wait()) is not None:
        messages.append(message)
    thread.join()
    reader.close(), writer.close()
    return messages


@settings(deadline=None, max_examples=60)
@given(
    frames=client_frames(),
    cuts=st.lists(st.integers(min_value=1, max_value=ReadAhead.CHUNK), max_size=6),
    bad_ending=st.sampled_from([b"", b"\xc2\x80\x00", b"\x81\x80", b"\x83\x80abcd"]),
)
def test_reading_whole_frames_gives_the_messages_eventlet_gives(frames, cuts, bad_ending):
    # The endings: none, an unmasked frame, a frame cut short, an unknown opcode.
    data = frames + bad_ending
    expected = messages_read(data, cuts, whole_frames=False)

    assert messages_read(data, cuts, whole_frames=True) == expected
    assert expected  # the frames hold at least one message


def test_a_text_frame_that_is_not_utf8_closes_the_websocket():
    reader, writer = socket.socketpair()
    writer.sendall(client_frame(1, b"caf\xe9", b"\x01\x02\x03\x04"))
    ws = RFC6455WebSocket(GreenSocket(reader), {})
    read_whole_frames(ws)

    assert ws.wait() is None
    closing = writer.recv(64)
    assert closing[0] == 0x88 and int.from_bytes(closing[2:4], "big") == 1007  # invalid data
    reader.close(), writer.close()


class BinaryEvents:
    """A python-socketio server with one connected client, whose WebSocket reads `messages`."""

    NAMESPACE = "/yjs|note-7"
    HEADER = '451-/yjs|note-7,["sync-update",{"_placeholder":true,"num":0}]'

    def __init__(self, messages: list):
        self.server = socketio.Server(async_mode="threading")
        self.received = []
        self.server.on("sync-update", self.handle, namespace="*")
        self.sid = self.server.manager.connect("engine-sid", self.NAMESPACE)
        unread = iter(messages)
        self.ws = SimpleNamespace(wait=lambda: next(unread))
        eio_socket = SimpleNamespace(sid="engine-sid", server=self.server.eio)
        dispatch_binary_events_directly(eio_socket, self.ws)

    def handle(self, namespace, sid, data):
        self.received.append((namespace, sid, data))


def test_a_binary_event_goes_straight_to_its_handler():
    events = BinaryEvents([BinaryEvents.HEADER, b"\x01\x02", BinaryEvents.HEADER, b"\x03", "2"])

    assert events.ws.wait() == "2"  # both events went to the handler; a ping comes through
    assert events.received == [
        (BinaryEvents.NAMESPACE, events.sid, b"\x01\x02"),
        (BinaryEvents.NAMESPACE, events.sid, b"\x03"),
    ]


def test_what_the_direct_path_does_not_take_goes_the_usual_way_in_order():
    header, other = BinaryEvents.HEADER, BinaryEvents.HEADER.replace("note-7", "note-8")
    too_large = bytes(1_000_001)  # over Engine.IO's max_http_buffer_size
    events = BinaryEvents([header, "not bytes", other, b"\x01", header, too_large, header, None])

    for expected in (header, "not bytes", other, b"\x01", header, too_large, header, None):
        assert events.ws.wait() == expected
    assert events.received == []


class StalledReader:
    """A client of a note that speaks Socket.IO over a raw WebSocket and reads only when told.

    Its receive buffer is small, so that what the server writes while it does not read soon
    fills the connection and the server's writes to it wait.
    """

    def __init__(self, url: str, note_id: int, cookie: str):
        self.namespace = f"/yjs|note-{note_id}"
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            header={"Cookie": cookie},
            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
            timeout=WAIT_LIMIT,
        )
        assert self.ws.recv().startswith("0{")  # Engine.IO's open packet
        self.ws.send(f"40{self.namespace},")
        self.doc = Doc()
        self.text = self.doc.get("markdown", type=Text)
        self.updates = 0
        # Once the server has answered the join, this client is in the note's room: every
        # broadcast from then on is meant for it too.
        self.joined = False
        self.read_until(lambda: self.joined)

    def read_until(self, condition) -> None:
        """Read frames, applying each `sync-update`, until `condition()` holds."""
        while not condition():
            frame = self.ws.recv()
            if frame == "2":
                self.ws.send("3")  # Engine.IO's ping and pong
            elif frame.startswith("451-" + self.namespace + ","):
                # 4 (message) 5 (binary event) 1- (one attachment) namespace, [ack id] [...]
                event = json.loads(frame.split(",", 1)[1].lstrip("0123456789"))[0]
                attachment = self.ws.recv()  # a binary event's bytes follow it, whole
                assert isinstance(attachment, bytes), f"{event}: {attachment!r}"
                if event == "sync-update":
                    self.doc.apply_update(attachment)
                    self.updates += 1
            elif frame.startswith("40" + self.namespace + ","):
                self.joined = True
            else:
                assert isinstance(frame, str), f"bytes without their event: {frame[:40]!r}"

    def close(self) -> None:
        self.ws.close()


def test_a_client_that_stops_reading_holds_up_nobody_and_gets_everything(app, make, start_server):  # noqa: F811
    world = LiveWorld(app, make, start_server, LIVE_MAX_UPDATES_PER_SECOND="1000")
    stalled = StalledReader(world.server.url, world.note_id, world.cookie(Role.OBSERVER))
    reader = world.client(Role.EDITOR)
    writer = world.client(Role.PARTICIPANT)
    # About 6 MB for each client: far more than the stalled client's connection holds. The
    # reader gets each block before the next is written, so the blocks are broadcast one by
    # one (the server would otherwise merge what it receives at once into one broadcast).
    for round_ in range(30):
        block = f"{round_:02}" * 100_000
        writer.insert(0, block)
        wait_for(lambda b=block: reader.value() == b, message="the reader, while one client stalls")
        writer.edit(lambda text: text.__delitem__(slice(0, 200_000)))
    writer.insert(0, "the end")
    wait_for(lambda: reader.value() == "the end", message="the reader, while one client stalls")
    stalled.read_until(lambda: str(stalled.text) == "the end")
    assert stalled.updates > 1  # it got broadcasts, not one update built from the database
    stalled.close()
    reader.close()
    writer.close()


def open_legacy_websocket(url: str, note_id: int, cookie: str) -> socket.socket:
    """Join a note over a WebSocket of the old draft protocol (hixie-75), as eventlet allows.

    Such a request has no Sec-WebSocket-Version; its frames are text between 0x00 and 0xFF.
    """
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=WAIT_LIMIT)
    connection.sendall(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
            f"Origin: {url}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    received = b""
    while b"\xff" not in received:  # the handshake's answer, then Engine.IO's open packet
        received += connection.recv(4096)
    assert received.startswith(b"HTTP/1.1 101"), received[:80]
    connection.sendall(b"\x00" + f"40/yjs|note-{note_id},".encode() + b"\xff")
    return connection


def test_a_client_of_the_old_websocket_protocol_breaks_no_broadcast(app, make, start_server):  # noqa: F811
    # Its frames are not RFC 6455 frames: it is served through Engine.IO's queue, and the
    # clients after it in the room still get every broadcast.
    world = LiveWorld(app, make, start_server)
    legacy = open_legacy_websocket(world.server.url, world.note_id, world.cookie(Role.OBSERVER))
    reader = world.client(Role.EDITOR)
    writer = world.client(Role.PARTICIPANT)
    writer.insert(0, "first")
    wait_for(lambda: reader.value() == "first", message="the reader, after the old client")
    writer.insert(5, ", second")
    wait_for(lambda: reader.value() == "first, second", message="a second broadcast")
    legacy.close()
    reader.close()
    writer.close()
