"""Who is in a live room, and who came to a workshop day, from `Attendance` stays.

Each process marks its sockets' open stays as seen every HEARTBEAT_SECONDS. An open stay
not seen for STALE_AFTER belongs to a process that died without closing it: its person
counts as gone since it was last seen.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from cop.auth.models import User
from cop.communities.models import Membership, Organisation
from cop.core.time import utcnow
from cop.extensions import db
from cop.workshops.models import Attendance, WorkshopDay, WorkshopSession

HEARTBEAT_SECONDS = 30
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


def present_ids_of(session_id: int, user_ids=None) -> set[int]:
    """Return who is in a session's room now, on every process (of `user_ids`, if given)."""
    query = select(Attendance.user_id).where(
        Attendance.session_id == session_id,
        Attendance.left_at.is_(None),
        Attendance.seen_at >= utcnow() - STALE_AFTER,
    )
    if user_ids is not None:
        query = query.where(Attendance.user_id.in_(user_ids))
    return set(db.session.scalars(query))


def _left_at(stay: Attendance, now: datetime) -> datetime | None:
    """Return when a stay ended: its end, when it was last seen if stale, or None."""
    if stay.left_at is not None:
        return stay.left_at
    return stay.seen_at if stay.seen_at < now - STALE_AFTER else None


@dataclass
class PersonAttendance:
    """One person's presence over a day: first arrival, last departure, time in the rooms."""

    name: str
    organisation: str | None
    organisation_kind: str | None
    arrived_at: datetime  # UTC
    left_at: datetime | None  # UTC; None while still in a room
    present: timedelta
    sessions: list[str] = field(default_factory=list)


@dataclass
class DayAttendance:
    """Everyone who came to a day, and how many people of each organisation kind."""

    people: list[PersonAttendance]
    by_kind: Counter


def time_present(stays: list[tuple[datetime, datetime]]) -> timedelta:
    """Return the length of the union of the stays (two tabs at once count once)."""
    total, reach = timedelta(0), None
    for start, end in sorted(stays):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def attendance_of(day: WorkshopDay) -> DayAttendance:
    """Return the day's attendance, people in order of arrival."""
    rows = db.session.execute(
        select(
            Attendance,
            User.display_name,
            Organisation.name,
            Organisation.kind,
            WorkshopSession.title,
        )
        .join(User, User.id == Attendance.user_id)
        .join(WorkshopSession, WorkshopSession.id == Attendance.session_id)
        .outerjoin(
            Membership,
            (Membership.user_id == Attendance.user_id)
            & (Membership.community_id == day.community_id),
        )
        .outerjoin(Organisation, Organisation.id == Membership.organisation_id)
        .where(Attendance.workshop_day_id == day.id)
        .order_by(Attendance.joined_at)
    ).all()
    now = utcnow()
    people: dict[int, PersonAttendance] = {}
    stays: dict[int, list] = {}
    for stay, name, organisation, kind, session_title in rows:
        person = people.get(stay.user_id)
        if person is None:
            person = people[stay.user_id] = PersonAttendance(
                name=name,
                organisation=organisation,
                organisation_kind=kind.value if kind else None,
                arrived_at=stay.joined_at,
                left_at=_left_at(stay, now),
                present=timedelta(0),
            )
        left_at = _left_at(stay, now)
        if left_at is None or person.left_at is None:
            person.left_at = None
        else:
            person.left_at = max(person.left_at, left_at)
        if session_title not in person.sessions:
            person.sessions.append(session_title)
        stays.setdefault(stay.user_id, []).append((stay.joined_at, left_at or now))
    for user_id, person in people.items():
        person.present = time_present(stays[user_id])
    kinds = Counter(person.organisation_kind for person in people.values())
    return DayAttendance(people=list(people.values()), by_kind=kinds)
