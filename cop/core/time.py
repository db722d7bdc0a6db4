"""UTC time helpers: every `*_at` column holds a naive UTC datetime."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)
