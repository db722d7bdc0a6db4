"""Cursors shared between server processes, so a client joining one sees every process's.

Each process broadcasts the awareness entries of its own sockets through the Socket.IO
message queue, which reaches clients only: another process's room never learns them. A
client joining that other process would see those cursors only when they next moved (y-
protocols renews a state every 15 s). So each process also writes the entries it
broadcasts to a Redis hash per note (field: the awareness client id; value: the time it was
written, then the entry as an awareness message), and a joining client is sent the
hash's entries merged with the process's own, the higher clock winning.

An entry not written again for `LIFETIME` seconds is left out, as y-protocols drops a state
not renewed for 30 s: a process that died takes its cursors with it. Cursors are a comfort,
not data: if Redis cannot be reached, a client joins without the other processes' cursors
and the error is logged.
"""

import logging
import struct
import time

import redis

from cop.live.encoding import AwarenessEntry, MalformedMessage, decode_awareness, encode_awareness

log = logging.getLogger(__name__)

LIFETIME = 30  # seconds, y-protocols' outdatedTimeout
_WRITTEN_AT = struct.Struct("!d")


class SharedCursors:
    """The awareness entries of every process, by note, in Redis."""

    def __init__(self, redis_url: str, channel: str):
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2)
        self.prefix = f"{channel}:cursors:"

    def store(self, note_id: int, entries: list[AwarenessEntry]) -> None:
        """Keep the entries this process broadcast for a note."""
        written_at = _WRITTEN_AT.pack(time.time())
        key = f"{self.prefix}{note_id}"
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        str(entry.client_id): written_at + encode_awareness([entry])
                        for entry in entries
                    },
                )
                pipe.expire(key, LIFETIME)
                pipe.execute()
        except redis.RedisError:
            log.exception("could not share the cursors of note %s", note_id)

    def load(self, note_id: int) -> list[AwarenessEntry]:
        """Return the entries written for a note within the last `LIFETIME` seconds."""
        try:
            values = self.redis.hgetall(f"{self.prefix}{note_id}")
        except redis.RedisError:
            log.exception("could not read the shared cursors of note %s", note_id)
            return []
        now = time.time()
        entries = []
        for value in values.values():
            try:
                (written_at,) = _WRITTEN_AT.unpack_from(value)
                if now - written_at <= LIFETIME:
                    entries.extend(decode_awareness(value[_WRITTEN_AT.size :]))
            except (struct.error, MalformedMessage):
                log.warning("a shared cursor of note %s could not be read", note_id)
        return entries


def latest_entries(*sources: list[AwarenessEntry]) -> list[AwarenessEntry]:
    """Return one entry per client id, the one with the highest clock."""
    latest: dict[int, AwarenessEntry] = {}
    for entries in sources:
        for entry in entries:
            known = latest.get(entry.client_id)
            if known is None or entry.clock > known.clock:
                latest[entry.client_id] = entry
    return list(latest.values())
