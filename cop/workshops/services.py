"""Workshop rules: days, their agenda, duplication, parked items, calendar tokens."""

import secrets
from dataclasses import dataclass
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_babel import gettext as _
from sqlalchemy import select

from cop.auth.models import User
from cop.communities.models import Community, Membership, Theme
from cop.core.errors import ServiceError
from cop.core.permissions import can_facilitate
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops.models import (
    DEFAULT_TIME_ZONE,
    PARKED_ITEM_MAX,
    ParkedItem,
    Phase,
    WorkshopDay,
    WorkshopSession,
)

MIN_DURATION, LONGEST = 5, 8 * 60  # minutes
MAX_DOTS = 20


@dataclass
class DayPlan:
    """What a facilitator fills in for a workshop day."""

    title: str
    date: date
    starts_at_local: time
    ends_at_local: time
    time_zone: str = DEFAULT_TIME_ZONE
    description: str = ""
    video_call_url: str | None = None


@dataclass
class SessionPlan:
    """What a facilitator fills in for a session of the agenda."""

    title: str
    starts_at_local: time
    duration_min: int
    theme_id: int | None = None
    facilitator_id: int | None = None
    question: str = ""
    dots_per_person: int = 3
    max_dots_per_card: int = 2
    allows_anonymous_cards: bool = False


def time_zone_names() -> list[str]:
    """Return the IANA time zone names a day may be planned in, sorted."""
    return sorted(name for name in available_timezones() if "/" in name)


def is_time_zone(name: str) -> bool:
    """Tell whether `name` is a time zone the server knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- Reading ---------------------------------------------------------------------------


def days_of(community: Community) -> list[WorkshopDay]:
    """Return a community's workshop days in date order."""
    return list(
        db.session.scalars(
            select(WorkshopDay)
            .filter_by(community_id=community.id)
            .order_by(WorkshopDay.date, WorkshopDay.starts_at_local, WorkshopDay.id)
        )
    )


def day_in(community: Community, day_id: int) -> WorkshopDay | None:
    """Return the community's workshop day with this id, or None."""
    day = db.session.get(WorkshopDay, day_id)
    return day if day is not None and day.community_id == community.id else None


def session_in(community: Community, session_id: int) -> WorkshopSession | None:
    """Return the community's session with this id, or None."""
    session = db.session.get(WorkshopSession, session_id)
    if session is None or session.workshop_day.community_id != community.id:
        return None
    return session


def previous_day(day: WorkshopDay) -> WorkshopDay | None:
    """Return the community's last workshop day before this one, or None."""
    return db.session.scalar(
        select(WorkshopDay)
        .filter(
            WorkshopDay.community_id == day.community_id,
            WorkshopDay.id != day.id,
            (WorkshopDay.date < day.date)
            | (
                (WorkshopDay.date == day.date) & (WorkshopDay.starts_at_local < day.starts_at_local)
            ),
        )
        .order_by(WorkshopDay.date.desc(), WorkshopDay.starts_at_local.desc())
        .limit(1)
    )


def items_parked_before(day: WorkshopDay) -> list[ParkedItem]:
    """Return what was parked in the sessions of the previous day, to take up on this one."""
    earlier = previous_day(day)
    if earlier is None:
        return []
    return [item for session in earlier.sessions for item in session.parked_items]


# --- Planning --------------------------------------------------------------------------


def _check_day(plan: DayPlan) -> None:
    fields = {}
    if not plan.title.strip():
        fields["title"] = [_("Give the day a title.")]
    if not is_time_zone(plan.time_zone):
        fields["time_zone"] = [_("Choose a time zone from the list.")]
    if plan.ends_at_local <= plan.starts_at_local:
        fields["ends_at_local"] = [_("The day must end after it starts.")]
    if plan.video_call_url and not plan.video_call_url.startswith(("https://", "http://")):
        fields["video_call_url"] = [_("Give a web address starting with https://.")]
    if fields:
        raise ServiceError(_("The day could not be saved."), fields)


def create_day(actor: User, community: Community, plan: DayPlan) -> WorkshopDay:
    """Plan a new workshop day."""
    _check_day(plan)
    day = WorkshopDay(community=community)
    _apply_day_plan(day, plan)
    db.session.add(day)
    db.session.flush()
    return day


def update_day(actor: User, day: WorkshopDay, plan: DayPlan) -> WorkshopDay:
    """Change a workshop day's details."""
    _check_day(plan)
    _apply_day_plan(day, plan)
    db.session.flush()
    return day


def _apply_day_plan(day: WorkshopDay, plan: DayPlan) -> None:
    day.title = plan.title.strip()
    day.date = plan.date
    day.starts_at_local = plan.starts_at_local
    day.ends_at_local = plan.ends_at_local
    day.time_zone = plan.time_zone
    day.description = plan.description.strip()
    day.video_call_url = plan.video_call_url.strip() if plan.video_call_url else None


def _check_session(day: WorkshopDay, plan: SessionPlan) -> None:
    fields = {}
    if not plan.title.strip():
        fields["title"] = [_("Give the session a title.")]
    if not MIN_DURATION <= plan.duration_min <= LONGEST:
        fields["duration_min"] = [
            _(
                "A session lasts %(least)d to %(most)d minutes.",
                least=MIN_DURATION,
                most=LONGEST,
            )
        ]
    else:
        starts = day.moment(plan.starts_at_local)
        if starts < day.starts_at or starts + timedelta(minutes=plan.duration_min) > day.ends_at:
            fields["starts_at_local"] = [_("The session must fit within the day's hours.")]
    if not 1 <= plan.dots_per_person <= MAX_DOTS:
        fields["dots_per_person"] = [_("Give each person 1 to %(most)d dots.", most=MAX_DOTS)]
    elif not 1 <= plan.max_dots_per_card <= plan.dots_per_person:
        fields["max_dots_per_card"] = [
            _("At most per card: between 1 and the dots each person has.")
        ]
    if plan.theme_id is not None:
        theme = db.session.get(Theme, plan.theme_id)
        if theme is None or theme.community_id != day.community_id or theme.archived_at:
            fields["theme_id"] = [_("Choose one of the community's themes.")]
    if plan.facilitator_id is not None and not _can_facilitate(day.community, plan.facilitator_id):
        fields["facilitator_id"] = [_("Choose a host or facilitator of the community.")]
    if fields:
        raise ServiceError(_("The session could not be saved."), fields)


def _can_facilitate(community: Community, user_id: int) -> bool:
    return can_facilitate(
        db.session.scalar(select(Membership).filter_by(community_id=community.id, user_id=user_id))
    )


def facilitators_of(community: Community) -> list[Membership]:
    """Return the members who may facilitate sessions, by name."""
    memberships = db.session.scalars(select(Membership).filter_by(community_id=community.id))
    return sorted(
        (membership for membership in memberships if can_facilitate(membership)),
        key=lambda membership: membership.user.display_name.casefold(),
    )


def add_session(actor: User, day: WorkshopDay, plan: SessionPlan) -> WorkshopSession:
    """Add a session at the end of a day's agenda, with its shared note."""
    _check_session(day, plan)
    session = WorkshopSession(workshop_day=day, position=len(day.sessions))
    _apply_session_plan(session, plan)
    db.session.add(session)
    db.session.flush()
    _give_note(actor, session)
    return session


def _give_note(actor: User | None, session: WorkshopSession) -> None:
    note = Note(
        community_id=session.workshop_day.community_id,
        owner_kind=NoteOwnerKind.SESSION,
        owner_id=session.id,
        title=session.title,
        created_by=actor,
    )
    db.session.add(note)
    db.session.flush()
    session.note_id = note.id


def update_session(actor: User, session: WorkshopSession, plan: SessionPlan) -> WorkshopSession:
    """Change a session's details (its note keeps its text)."""
    _check_session(session.workshop_day, plan)
    _apply_session_plan(session, plan)
    if session.note_id is not None:
        db.session.get(Note, session.note_id).title = session.title
    db.session.flush()
    return session


def _apply_session_plan(session: WorkshopSession, plan: SessionPlan) -> None:
    session.title = plan.title.strip()
    session.starts_at_local = plan.starts_at_local
    session.duration_min = plan.duration_min
    session.theme_id = plan.theme_id
    session.facilitator_id = plan.facilitator_id
    session.question = plan.question.strip()
    session.dots_per_person = plan.dots_per_person
    session.max_dots_per_card = plan.max_dots_per_card
    session.allows_anonymous_cards = plan.allows_anonymous_cards


def move_session(actor: User, session: WorkshopSession, position: int) -> None:
    """Move a session to another place in its day's agenda (0 is first)."""
    sessions = [other for other in session.workshop_day.sessions if other.id != session.id]
    if not 0 <= position <= len(sessions):
        raise ServiceError(
            _("There is no such place in the agenda."), {"position": [_("Out of range.")]}
        )
    sessions.insert(position, session)
    for index, other in enumerate(sessions):
        other.position = index
    db.session.flush()


def remove_session(actor: User, session: WorkshopSession) -> None:
    """Take a session that has not started off the agenda (its shared note is kept)."""
    day = session.workshop_day
    if session.phase is not Phase.PREPARE:
        raise ServiceError(_("A session that has started cannot be removed."))
    day.sessions.remove(session)
    for index, other in enumerate(day.sessions):
        other.position = index
    db.session.flush()


def duplicate_day(actor: User, day: WorkshopDay, new_date: date) -> WorkshopDay:
    """Start the next day as a copy of this one and its agenda, on `new_date`."""
    copy = WorkshopDay(
        community_id=day.community_id,
        title=day.title,
        date=new_date,
        starts_at_local=day.starts_at_local,
        ends_at_local=day.ends_at_local,
        time_zone=day.time_zone,
        description=day.description,
        video_call_url=day.video_call_url,
    )
    db.session.add(copy)
    for session in day.sessions:
        new_session = WorkshopSession(workshop_day=copy, position=session.position)
        _apply_session_plan(
            new_session,
            SessionPlan(
                title=session.title,
                starts_at_local=session.starts_at_local,
                duration_min=session.duration_min,
                theme_id=session.theme_id,
                facilitator_id=session.facilitator_id,
                question=session.question,
                dots_per_person=session.dots_per_person,
                max_dots_per_card=session.max_dots_per_card,
                allows_anonymous_cards=session.allows_anonymous_cards,
            ),
        )
        db.session.add(new_session)
        db.session.flush()
        _give_note(actor, new_session)
    db.session.flush()
    return copy


def park_item(actor: User, session: WorkshopSession, text: str) -> ParkedItem:
    """Set something aside in a session, to take up on the next day."""
    text = text.strip()
    if not text or len(text) > PARKED_ITEM_MAX:
        raise ServiceError(
            _("Write what to park, in at most %(most)d characters.", most=PARKED_ITEM_MAX),
            {"text": [_("Between 1 and %(most)d characters.", most=PARKED_ITEM_MAX)]},
        )
    item = ParkedItem(session=session, text=text, created_by=actor)
    db.session.add(item)
    db.session.flush()
    return item


# --- Calendar feeds ------------------------------------------------------------------


def calendar_token_of(membership: Membership, renew: bool = False) -> str:
    """Return the member's calendar feed secret, making one if needed (or a new one)."""
    if membership.calendar_token is None or renew:
        membership.calendar_token = secrets.token_urlsafe(32)
        db.session.flush()
    return membership.calendar_token


def membership_by_calendar_token(token: str) -> Membership | None:
    """Return the membership whose calendar feed this secret opens, or None."""
    if not token:
        return None
    return db.session.scalar(select(Membership).filter_by(calendar_token=token))
