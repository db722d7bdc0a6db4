"""What facilitators do in a live session: move between phases, run the countdown.

The live room (`cop/live/workshop.py`) calls these after checking the payload; each returns
nothing and only flushes, and the handler commits once and broadcasts the new state.
"""

from datetime import timedelta

from flask_babel import gettext as _

from cop.core.errors import ServiceError
from cop.core.time import utcnow
from cop.extensions import db
from cop.workshops.models import PHASES, Phase, WorkshopSession

LONGEST_TIMER_MINUTES = 180


def set_phase(session: WorkshopSession, phase: Phase) -> None:
    """Move a session to the next phase, or back one phase while it is not closed."""
    current = PHASES.index(session.phase)
    wanted = PHASES.index(phase)
    if session.phase is Phase.CLOSED:
        raise ServiceError(_("This session is closed."), {"phase": ["closed"]})
    if wanted not in (current + 1, current - 1):
        raise ServiceError(_("A session moves one phase at a time."), {"phase": ["not_adjacent"]})
    session.phase = phase
    if phase is Phase.CLOSED:
        session.timer_ends_at = session.timer_paused_seconds = None
    db.session.flush()


def _check_open(session: WorkshopSession) -> None:
    if session.phase is Phase.CLOSED:
        raise ServiceError(_("This session is closed."), {"phase": ["closed"]})


def start_timer(session: WorkshopSession, minutes: int) -> None:
    """Start (or restart) the countdown for this many minutes."""
    _check_open(session)
    session.timer_ends_at = utcnow() + timedelta(minutes=minutes)
    session.timer_paused_seconds = None
    db.session.flush()


def pause_timer(session: WorkshopSession) -> None:
    """Stop the countdown where it is."""
    _check_open(session)
    if session.timer_ends_at is None:
        raise ServiceError(_("The countdown is not running."), {"action": ["not_running"]})
    left = max(0, round((session.timer_ends_at - utcnow()).total_seconds()))
    session.timer_ends_at, session.timer_paused_seconds = None, left
    db.session.flush()


def resume_timer(session: WorkshopSession) -> None:
    """Start the countdown again from where it was paused."""
    _check_open(session)
    if session.timer_paused_seconds is None:
        raise ServiceError(_("The countdown is not paused."), {"action": ["not_paused"]})
    session.timer_ends_at = utcnow() + timedelta(seconds=session.timer_paused_seconds)
    session.timer_paused_seconds = None
    db.session.flush()


def add_time(session: WorkshopSession, minutes: int) -> None:
    """Give the running or paused countdown more minutes."""
    _check_open(session)
    if session.timer_ends_at is not None:
        session.timer_ends_at += timedelta(minutes=minutes)
    elif session.timer_paused_seconds is not None:
        session.timer_paused_seconds += minutes * 60
    else:
        raise ServiceError(_("Start the countdown first."), {"action": ["no_timer"]})
    db.session.flush()
