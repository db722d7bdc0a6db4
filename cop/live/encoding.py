"""Read and write the lib0 binary encoding of Yjs updates and awareness messages.

cop reads updates before it applies them, to refuse what a note may not contain (another
root type, nested types, sub-documents) without letting it into the document. The format
is Yjs's update v1 (yjs/src/utils/encoding.js, UpdateDecoderV1); awareness messages follow
y-protocols/awareness.js.
"""

import json
import struct
from dataclasses import dataclass, field
from typing import NamedTuple


class MalformedMessage(ValueError):
    """The bytes are not a well-formed message of the expected kind."""


class Reader:
    """Read lib0-encoded values from bytes."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.position = 0

    def done(self) -> bool:
        """Tell whether every byte was read."""
        return self.position == len(self.data)

    def byte(self) -> int:
        """Read one unsigned byte."""
        position = self.position
        try:
            value = self.data[position]
        except IndexError:
            raise MalformedMessage("unexpected end of message") from None
        self.position = position + 1
        return value

    def var_uint(self) -> int:
        """Read a variable-length unsigned integer (at most 53 bits, as in JavaScript)."""
        # The busiest reader of a live note (every update): written out, not by byte().
        data, position = self.data, self.position
        value = shift = 0
        try:
            while True:
                byte = data[position]
                position += 1
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    self.position = position
                    return value
                shift += 7
                if shift > 53:
                    raise MalformedMessage("integer too long")
        except IndexError:
            raise MalformedMessage("unexpected end of message") from None

    def var_int(self) -> int:
        """Read a variable-length signed integer."""
        byte = self.byte()
        negative = byte & 0x40
        value, shift = byte & 0x3F, 6
        while byte & 0x80:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 60:
                raise MalformedMessage("integer too long")
        return -value if negative else value

    def raw(self, length: int) -> bytes:
        """Read `length` bytes."""
        if self.position + length > len(self.data):
            raise MalformedMessage("unexpected end of message")
        value = self.data[self.position : self.position + length]
        self.position += length
        return value

    def var_bytes(self) -> bytes:
        """Read a length-prefixed byte string."""
        return self.raw(self.var_uint())

    def var_string(self) -> str:
        """Read a length-prefixed UTF-8 string."""
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedMessage("invalid UTF-8") from error

    def any(self, depth: int = 0):
        """Read a value of lib0's `readAny` (JSON-like, plus binary)."""
        if depth > 64:
            raise MalformedMessage("value nested too deeply")
        kind = self.byte()
        if kind in (127, 126):  # undefined, null
            return None
        if kind == 125:
            return self.var_int()
        if kind == 124:
            return struct.unpack(">f", self.raw(4))[0]
        if kind == 123:
            return struct.unpack(">d", self.raw(8))[0]
        if kind == 122:
            return struct.unpack(">q", self.raw(8))[0]
        if kind in (121, 120):
            return kind == 120
        if kind == 119:
            return self.var_string()
        if kind == 118:
            return {self.var_string(): self.any(depth + 1) for _ in range(self.var_uint())}
        if kind == 117:
            return [self.any(depth + 1) for _ in range(self.var_uint())]
        if kind == 116:
            return self.var_bytes()
        raise MalformedMessage(f"unknown value type {kind}")


def var_uint(value: int) -> bytes:
    """Encode a variable-length unsigned integer."""
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def var_string(text: str) -> bytes:
    """Encode a length-prefixed UTF-8 string."""
    data = text.encode("utf-8")
    return var_uint(len(data)) + data


# Content kinds of a Yjs item (the low five bits of its info byte).
DELETED, JSON_CONTENT, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC = range(1, 10)
GC, SKIP = 0, 10
CONTENT_NAMES = {
    DELETED: "deleted",
    JSON_CONTENT: "json",
    BINARY: "binary",
    STRING: "string",
    EMBED: "embed",
    FORMAT: "format",
    TYPE: "type",
    ANY: "any",
    DOC: "doc",
}


class Run(NamedTuple):
    """Consecutive structs of one client in an update: their clocks and their text."""

    client: int
    first: int  # the first clock
    end: int  # the clock after the last
    text_bytes: int  # UTF-8 bytes of the text they insert


@dataclass
class UpdateSummary:
    """What a Yjs update touches (root types, kinds of content) and what it builds on."""

    root_names: set[str] = field(default_factory=set)
    content_kinds: set[str] = field(default_factory=set)
    has_parent_by_id: bool = False
    has_map_entries_on_root: bool = False
    inserted_bytes: int = 0  # UTF-8 bytes of inserted text
    runs: list[Run] = field(default_factory=list)
    # The ids (client, clock) of the items the update's items were inserted after (origins)
    # and before (right origins).
    origins: set[tuple[int, int]] = field(default_factory=set)
    right_origins: set[tuple[int, int]] = field(default_factory=set)
    # The ids (client, clock) whose text is the second half of a character outside the Basic
    # Multilingual Plane (an emoji, say): Yjs counts such a character as two clock ticks.
    second_halves: set[tuple[int, int]] = field(default_factory=set)
    # (client, first clock, end clock) of each range the update deletes.
    deletions: list[tuple[int, int, int]] = field(default_factory=list)

    def splits_a_character(
        self, state_vector: dict[int, int], second_halves: set[tuple[int, int]]
    ) -> bool:
        """Tell whether applying the update would cut a character in two.

        A document with this state vector holds text whose second halves are
        `second_halves`. An honest client never cuts a character, but a crafted update can:
        by inserting next to half a character, by deleting half of one, or by resending
        known clocks with other text (the part already known is skipped). yrs then keeps
        text that it does not encode, or text that Yjs in the browser shows otherwise, so
        clients and the database would differ.
        """
        if not (second_halves or self.second_halves):
            return False

        def is_second_half(id_: tuple[int, int]) -> bool:
            return id_ in second_halves or id_ in self.second_halves

        return (
            any(is_second_half((client, clock + 1)) for client, clock in self.origins)
            or any(is_second_half(id_) for id_ in self.right_origins)
            or any(
                is_second_half((client, first)) or is_second_half((client, end))
                for client, first, end in self.deletions
            )
            or any(
                run.first < state_vector.get(run.client, 0) < run.end
                and is_second_half((run.client, state_vector[run.client]))
                for run in self.runs
            )
        )


def summarise_update(update: bytes) -> UpdateSummary:
    """Read a Yjs v1 update and say what it touches; raise MalformedMessage if it is not one."""
    reader = Reader(update)
    summary = UpdateSummary()
    clients = set()
    for _client in range(reader.var_uint()):
        structs = reader.var_uint()
        client = reader.var_uint()
        if client in clients:  # Yjs writes each client's structs once; yrs misreads a repeat
            raise MalformedMessage("a client's structs come twice")
        clients.add(client)
        first = clock = reader.var_uint()
        bytes_before = summary.inserted_bytes
        for _struct in range(structs):
            info = reader.byte()
            kind = info & 0x1F
            if kind in (GC, SKIP):
                length = reader.var_uint()
                if not length:
                    raise MalformedMessage("an empty struct")
                if kind == SKIP:  # a gap: what follows is a run of its own
                    if clock > first:
                        text_bytes = summary.inserted_bytes - bytes_before
                        summary.runs.append(Run(client, first, clock, text_bytes))
                    first, bytes_before = clock + length, summary.inserted_bytes
                clock += length
                continue
            if info & 0x80:
                summary.origins.add((reader.var_uint(), reader.var_uint()))
            if info & 0x40:
                summary.right_origins.add((reader.var_uint(), reader.var_uint()))
            if not info & 0xC0:
                if reader.var_uint() == 1:
                    summary.root_names.add(reader.var_string())
                    root_level = True
                else:
                    reader.var_uint(), reader.var_uint()  # parent item id
                    summary.has_parent_by_id = True
                    root_level = False
                if info & 0x20:
                    reader.var_string()  # parent sub (a map key)
                    summary.has_map_entries_on_root |= root_level
            length = _read_content(reader, kind, summary, (client, clock))
            if not length:  # Yjs never writes one; yrs keeps it aside for good
                raise MalformedMessage("an empty struct")
            clock += length
        if clock > first:
            summary.runs.append(Run(client, first, clock, summary.inserted_bytes - bytes_before))
    for _client in range(reader.var_uint()):  # the delete set
        client = reader.var_uint()
        for _range in range(reader.var_uint()):
            first = reader.var_uint()
            summary.deletions.append((client, first, first + reader.var_uint()))
    if not reader.done():
        raise MalformedMessage("trailing bytes after the update")
    return summary


def _read_content(reader: Reader, kind: int, summary: UpdateSummary, id_: tuple) -> int:
    """Read the content of the item `id_` (client, clock); return its length in clock ticks."""
    if kind not in CONTENT_NAMES:
        raise MalformedMessage(f"unknown content kind {kind}")
    summary.content_kinds.add(CONTENT_NAMES[kind])
    if kind == DELETED:
        return reader.var_uint()
    if kind == JSON_CONTENT:
        count = reader.var_uint()
        for _ in range(count):
            reader.var_string()
        return count
    if kind == STRING:
        data = reader.var_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedMessage("invalid UTF-8") from error
        summary.inserted_bytes += len(data)
        if text.isascii():
            return len(data)
        client, clock = id_
        ticks = 0  # Yjs counts UTF-16 code units
        for character in text:
            ticks += 1
            if ord(character) > 0xFFFF:
                summary.second_halves.add((client, clock + ticks))
                ticks += 1
        return ticks
    if kind == ANY:
        count = reader.var_uint()
        for _ in range(count):
            reader.any()
        return count
    if kind == BINARY:
        reader.var_bytes()
    elif kind == EMBED:
        reader.var_string()
    elif kind == FORMAT:
        reader.var_string(), reader.var_string()
    elif kind == TYPE:
        if reader.var_uint() in (3, 6):  # XmlElement and XmlHook carry a name
            reader.var_string()
    elif kind == DOC:
        reader.var_string()
        reader.any()
    return 1


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Read an encoded state vector: each client's next clock."""
    reader = Reader(data)
    vector = {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}
    if not reader.done():
        raise MalformedMessage("trailing bytes after the state vector")
    return vector


@dataclass
class AwarenessEntry:
    """One client's awareness state in an awareness message (None: the client left)."""

    client_id: int
    clock: int
    state: dict | None


def decode_awareness(message: bytes) -> list[AwarenessEntry]:
    """Read an awareness update; raise MalformedMessage if it is not one."""
    reader = Reader(message)
    entries = []
    for _ in range(reader.var_uint()):
        client_id, clock = reader.var_uint(), reader.var_uint()
        try:
            state = json.loads(reader.var_string())
        # ValueError covers JSON errors and integers past Python's digit limit.
        except (ValueError, RecursionError) as error:
            raise MalformedMessage("awareness state is not JSON") from error
        if state is not None and not isinstance(state, dict):
            raise MalformedMessage("awareness state is not an object")
        entries.append(AwarenessEntry(client_id, clock, state))
    if not reader.done():
        raise MalformedMessage("trailing bytes after the awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """Write an awareness update."""
    out = bytearray(var_uint(len(entries)))
    for entry in entries:
        out += var_uint(entry.client_id) + var_uint(entry.clock)
        # ASCII JSON: a lone surrogate that a client escaped stays escaped, never invalid UTF-8.
        out += var_string(json.dumps(entry.state, separators=(",", ":")))
    return bytes(out)
