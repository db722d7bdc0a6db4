"""UTC time helpers: every `*_at` column holds a naive UTC datetime."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_text(moment: datetime | None) -> str | None:
    """Write a stored naive UTC datetime as ISO 8601 to the second with its "Z" (None stays)."""
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None
