"""iCalendar (RFC 5545) files of a community's programme: one event per session."""

from datetime import UTC, datetime

from cop.core.time import utcnow
from cop.workshops.models import WorkshopDay

LINE_LIMIT = 75  # octets per line before folding (RFC 5545, 3.1)


def escape(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and line breaks."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line into pieces of at most 75 octets, never inside a character."""
    encoded = line.encode()
    if len(encoded) <= LINE_LIMIT:
        return line
    pieces, current, size, limit = [], [], 0, LINE_LIMIT
    for character in line:
        width = len(character.encode())
        if size + width > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, LINE_LIMIT - 1  # continuation lines start with a space
        current.append(character)
        size += width
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def utc_stamp(moment: datetime) -> str:
    """Format an aware datetime (or a naive UTC one) as an iCalendar UTC date-time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(name: str, days: list[WorkshopDay], host: str, url_of_session) -> str:
    """Return the iCalendar text of these days: their sessions, or the day when it has none.

    `url_of_session(session)` gives the absolute address of a session's room; `host` makes
    each event's UID unique across servers.
    """
    stamp = utc_stamp(utcnow())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//cop//workshop programme//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for day in days:
        if not day.sessions:
            lines += _event(
                uid=f"workshop-day-{day.id}@{host}",
                stamp=stamp,
                starts=day.starts_at,
                ends=day.ends_at,
                summary=day.title,
                description=day.description,
                location=day.video_call_url,
                url=None,
            )
        for session in day.sessions:
            details = [session.question] if session.question else []
            if session.theme is not None:
                details.append(session.theme.name)
            lines += _event(
                uid=f"workshop-session-{session.id}@{host}",
                stamp=stamp,
                starts=session.starts_at,
                ends=session.ends_at,
                summary=f"{session.title} · {day.title}",
                description="\n\n".join(details),
                location=day.video_call_url,
                url=url_of_session(session),
            )
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _event(*, uid, stamp, starts, ends, summary, description, location, url) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{utc_stamp(starts)}",
        f"DTEND:{utc_stamp(ends)}",
        f"SUMMARY:{escape(summary)}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{escape(description)}")
    if location:
        lines.append(f"LOCATION:{escape(location)}")
    if url:
        lines.append(f"URL:{url}")
    lines.append("END:VEVENT")
    return lines
