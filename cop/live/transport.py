"""The WebSocket layer under Socket.IO, tuned for many small frames (docs/performance.md)."""

import re
import struct
from typing import NamedTuple

from engineio import packet as eio_packet
from socketio import packet

TEXT, BINARY = 1, 2  # the opcodes of RFC 6455's data frames


def unmask(data: bytes, mask, length: int | None = None, offset: int = 0) -> bytes:
    """XOR the first `length` bytes of `data` with the 4-byte `mask` from `offset` (RFC 6455).

    The same result as eventlet's `RFC6455WebSocket._apply_mask`, which builds the frame
    one byte at a time in Python; this does it with one big-integer XOR.
    """
    if length is None:
        length = len(data)
    if length == 0:
        return b""
    key = bytes(mask[:4]) if offset % 4 == 0 else bytes(mask[(offset + i) % 4] for i in range(4))
    pad = (key * (length // 4 + 1))[:length]
    value = int.from_bytes(data[:length], "big") ^ int.from_bytes(pad, "big")
    return value.to_bytes(length, "big")


def speed_up_eventlet_websocket() -> None:
    """Make eventlet unmask incoming frames with `unmask` (a twentieth of a busy server's CPU)."""
    from eventlet.websocket import RFC6455WebSocket

    RFC6455WebSocket._apply_mask = staticmethod(unmask)


def write_broadcasts_directly() -> None:
    """Let a broadcast write its frames to each idle client's socket itself (eventlet).

    python-socketio encodes a broadcast once, then hands each client's copy to Engine.IO,
    which queues it for that client's writer green thread: one queue, one wake-up, one
    timer and one framing per client and per broadcast, the largest share of a busy
    server's CPU (docs/performance.md). Here the broadcasting green thread writes the
    frames, built once, to each client's socket without waiting. A client whose writer has
    anything to send (its queue is not empty, or it is writing) gets the broadcast through
    its queue as before, so that nothing overtakes what was sent to it earlier; a client
    that reads slowly gets the rest of the frames from a green thread of its own, and
    meanwhile the others are served. What is not an emit (an ack, a ping) or asks for a
    callback goes through Engine.IO unchanged.

    This leans on internals of the pinned python-socketio, python-engineio and eventlet
    (`Manager.emit`, `Socket._websocket_handler`, the WebSocket's `_sendlock`, the deque of
    the Engine.IO socket's queue); every test against a real server goes through it.
    """
    import eventlet
    from engineio.socket import Socket
    from eventlet.greenio import GreenSocket
    from eventlet.websocket import RFC6455WebSocket
    from socketio.manager import Manager

    engineios_handler = Socket._websocket_handler
    socketios_emit = Manager.emit
    Socket.direct_websocket = None  # the WebSocket a broadcast may write to, if any
    first_frames: dict[tuple[str, str], bytes] = {}  # see binary_event_frames

    def websocket_handler(self, ws):
        # Only a plain eventlet WebSocket of the RFC is read ahead and can be written to
        # directly: not the old draft protocol's, not one over TLS; for direct writes, not
        # one with permessage-deflate either (frames differ per client). Of two WebSockets of
        # one session at once (a misbehaving client), only the first is written to directly;
        # once it ends, broadcasts go through the session's queue.
        plain = isinstance(ws, RFC6455WebSocket) and type(ws.socket) is GreenSocket
        if plain:
            read_whole_frames(ws)
            dispatch_binary_events_directly(self, ws)
        ours = plain and not ws.extensions and self.direct_websocket is None
        if ours:
            self.direct_websocket = ws
        try:
            return engineios_handler(self, ws)
        finally:
            if ours:
                self.direct_websocket = None

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kw):
        if callback is not None or namespace not in self.rooms:
            return socketios_emit(self, event, data, namespace, room, skip_sid, callback, to, **kw)
        # The same packets as python-socketio's Manager.emit builds.
        if isinstance(data, tuple):
            data = list(data)
        elif data is not None:
            data = [data]
        else:
            data = []
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        # An edit or cursors: an event with one argument, bytes, encoded as python-socketio's
        # own Packet encodes it.
        one_attachment = (
            len(data) == 1 and type(data[0]) is bytes and self.server.packet_class is packet.Packet
        )
        packets = frames = None  # built when first needed
        sockets = self.server.eio.sockets
        spawn = eventlet.spawn_n
        # This loop runs for every client of a busy room many times a second: it calls no
        # Python function for a client written to directly, and checks only what can change
        # while the WebSocket is open.
        for sid, eio_sid in self.get_participants(namespace, to or room):
            if sid in skipped:
                continue
            socket = sockets.get(eio_sid)
            websocket = None if socket is None else socket.direct_websocket
            if (
                websocket is not None
                and socket.upgraded
                and not (socket.upgrading or socket.closing or socket.closed)
                and not websocket.websocket_closed
                and not socket.queue.queue  # its writer has nothing to send (eventlet's deque)
            ):
                # Nobody holds the WebSocket's send lock or waits for it, and nothing can
                # take it before the non-blocking send below returns (green threads only
                # switch when one waits), so the send needs no lock. What the socket does not
                # take at once is written by a green thread that takes the lock, free as it
                # is, and keeps it until it is done: no other frame can come between these.
                lock = websocket._sendlock
                if lock.counter > 0 and not lock._waiters:
                    if frames is None and one_attachment:
                        frames = binary_event_frames(first_frames, namespace, event, data[0])
                    elif frames is None:
                        packets = packets or engineio_packets(self, namespace, event, data)
                        frames = b"".join(frame_of(p.encode()) for p in packets)
                    try:
                        sent = websocket.socket.fd.send(frames)
                    except BlockingIOError:
                        sent = 0
                    except OSError:
                        continue  # the client is gone: its reader closes the Engine.IO socket
                    if sent < len(frames):
                        lock.acquire()
                        spawn(_write_the_rest, websocket, memoryview(frames)[sent:])
                    continue
            packets = packets or engineio_packets(self, namespace, event, data)
            for each in packets:
                self.server._send_eio_packet(eio_sid, each)
        return None

    def engineio_packets(manager, namespace, event, data) -> list:
        encoded = manager.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *data]
        ).encode()
        return [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]

    Socket._websocket_handler = websocket_handler
    Manager.emit = emit


def binary_event_frames(
    first_frames: dict[tuple[str, str], bytes], namespace: str, event: str, attachment: bytes
) -> bytes:
    """Return the WebSocket frames of a Socket.IO event whose one argument is `attachment`.

    Its first frame depends only on the namespace and the event: it is built once, by
    python-socketio's encoder, and kept in `first_frames` (under a hundred bytes per event
    and open note).
    """
    key = (namespace, event)
    first = first_frames.get(key)
    if first is None:
        if len(first_frames) >= 10_000:
            first_frames.clear()
        text, _attachment = packet.Packet(
            packet.EVENT, namespace=namespace, data=[event, b""]
        ).encode()
        first = first_frames[key] = frame_of(eio_packet.Packet(eio_packet.MESSAGE, text).encode())
    return first + frame_of(attachment)


def frame_of(message: str | bytes) -> bytes:
    """Return a final, unmasked WebSocket frame (RFC 6455) holding `message`, as a server sends it.

    A str goes in a text frame, bytes in a binary frame: what eventlet's
    `RFC6455WebSocket._pack_message` builds for a WebSocket without extensions.
    """
    if isinstance(message, str):
        message, opcode = message.encode(), TEXT
    else:
        opcode = BINARY
    length = len(message)
    if length < 126:
        header = bytes((0x80 | opcode, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + message


def _write_the_rest(websocket, rest) -> None:
    try:
        websocket.socket.sendall(rest)
    except OSError:
        pass  # the client is gone: its reader closes the Engine.IO socket
    finally:
        websocket._sendlock.release()


def read_whole_frames(ws) -> None:
    """Make an eventlet WebSocket read ahead, and take each whole frame it holds at once.

    eventlet parses a frame piece by piece (its header, its mask, its payload, each with a
    `recv` and a few objects); a Socket.IO binary event is two frames. Here a frame that is
    all in the read-ahead buffer, and is the common kind (a final, unfragmented, masked text
    or binary frame with no extension bits), is read in one step; any other frame, or a
    frame not yet all received, goes to eventlet's own reader, which takes its bytes from
    the same buffer.
    """
    from eventlet.websocket import ConnectionClosedError, FailedConnectionError

    eventlets = ws._recv_frame
    ahead = ws.socket.recv = ReadAhead(ws.socket.recv)

    def recv_frame(message=None):
        if message is None:
            if ahead.offset >= len(ahead.buffer) and not ahead.fill():
                raise ConnectionClosedError()
            frame = ahead.whole_frame(ws.max_frame_length)
            if frame is not None:
                opcode, payload = frame
                if opcode == TEXT:
                    try:
                        payload = payload.decode("utf-8")
                    except UnicodeDecodeError as error:
                        raise FailedConnectionError(
                            1007, "Text data must be valid utf-8"
                        ) from error
                return WholeMessage(opcode, payload)
        return eventlets(message)

    ws._recv_frame = recv_frame


# The first frame of a Socket.IO binary event with one attachment and no ack, as Socket.IO
# clients write it: 4 (Engine.IO message), 5 (binary event), 1- (one attachment), the
# namespace, then the event's name and the attachment's placeholder.
BINARY_EVENT_HEADER = re.compile(r'451-(/[^,]*),\["([\w-]+)",\{"_placeholder":true,"num":0\}\]')


def dispatch_binary_events_directly(eio_socket, ws) -> None:
    """Hand a connected client's binary events (its edits) to their handler as they are read.

    Engine.IO and python-socketio decode each of a binary event's two messages into packet
    objects, keep the first until the second comes, rebuild the event and look up its
    handler: some twenty calls, for the most frequent event a busy note receives. Here the
    two messages are read together and the handler is called as python-socketio would
    call it, after the same checks. Anything else (a message of another shape, a client
    not connected to the namespace, an attachment over Engine.IO's size limit) goes
    through Engine.IO and python-socketio unchanged, in order.
    """
    eio_server = eio_socket.server
    socketio_server = getattr(eio_server.handlers.get("message"), "__self__", None)
    if not hasattr(socketio_server, "_binary_packet"):
        return  # not python-socketio's server
    manager = socketio_server.manager
    eventlets_wait = ws.wait
    held = []  # a message read ahead that goes the usual way

    def wait():
        while True:
            if held:
                return held.pop()
            message = eventlets_wait()
            header = BINARY_EVENT_HEADER.fullmatch(message) if type(message) is str else None
            if header is None or eio_socket.sid in socketio_server._binary_packet:
                return message
            namespace, event = header.groups()
            sid = manager.sid_from_eio_sid(eio_socket.sid, namespace)
            if sid is None or not manager.is_connected(sid, namespace):
                return message
            attachment = eventlets_wait()
            if type(attachment) is not bytes or len(attachment) > eio_server.max_http_buffer_size:
                held.append(attachment)
                return message
            try:
                socketio_server._trigger_event(event, namespace, sid, attachment)
            except Exception:  # as Engine.IO does for its message handler: the socket stays
                eio_server.logger.exception("message handler error")

    ws.wait = wait


class WholeMessage(NamedTuple):
    """A message of one frame, read whole: what eventlet's `Message` offers its reader."""

    opcode: int
    payload: str | bytes
    finished: bool = True

    def getvalue(self) -> str | bytes:
        """Return the payload (text decoded), as eventlet's `Message.getvalue` does."""
        return self.payload


class ReadAhead:
    """A socket's `recv` that takes what the socket holds at once and hands it out piece by piece.

    eventlet reads an incoming frame's header, mask and payload with a `recv` each: three
    system calls or more per frame, six or more per Socket.IO binary event (its text frame,
    then its bytes). This reads up to 64 KiB whenever its buffer is empty and serves the
    next reads from the buffer, returning at most `size` bytes each time as `recv` does.
    """

    CHUNK = 65536

    def __init__(self, recv):
        self.socket_recv = recv
        self.buffer = b""
        self.offset = 0

    def fill(self) -> bool:
        """Read what the socket holds into the empty buffer; False if the peer has gone."""
        data = self.socket_recv(self.CHUNK)
        self.buffer, self.offset = data, 0
        return bool(data)

    def whole_frame(self, max_length: int) -> tuple[int, bytes] | None:
        """Take the next frame from the buffer if it is all there and of the common kind.

        The common kind: final, no extension bits, text or binary, masked (as every
        client's frame must be), its length in 7 or 16 bits and at most `max_length`.
        Return its opcode and unmasked payload; otherwise take nothing and return None.
        """
        buffer, start = self.buffer, self.offset
        if len(buffer) - start < 6:
            return None
        first, second = buffer[start], buffer[start + 1]
        opcode, length = first & 0x0F, second & 0x7F
        if first & 0xF0 != 0x80 or opcode not in (TEXT, BINARY) or not second & 0x80:
            return None
        header = 6
        if length == 126:
            header = 8
            length = int.from_bytes(buffer[start + 2 : start + 4], "big")
        elif length == 127:
            return None
        payload_at = start + header  # the 4-byte mask comes just before the payload
        end = payload_at + length
        if end > len(buffer) or length > max_length:
            return None
        self.offset = end
        return opcode, unmask(buffer[payload_at:end], buffer[payload_at - 4 : payload_at])

    def __call__(self, size: int, flags: int = 0) -> bytes:
        """Return at most `size` bytes: from the buffer, or else from the socket."""
        if self.offset >= len(self.buffer):
            data = self.socket_recv(max(size, self.CHUNK), flags)
            if len(data) <= size:
                return data  # all of it fits: nothing to keep (b"" when the peer has gone)
            self.buffer, self.offset = data, 0
        start = self.offset
        self.offset = min(start + size, len(self.buffer))
        return self.buffer[start : self.offset]
