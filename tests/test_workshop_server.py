"""The live room on a real server process (`python wsgi.py`): the lock and the shutdown.

The lock test runs a server whose periodic rights check is ten minutes away: only the
room's own check after `lock_note` can stop the participant's next edit, and it must.
"""

import signal
from datetime import date, time

from sqlalchemy import select

from cop.communities.models import Community, Role
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops.models import Attendance, WorkshopDay, WorkshopSession
from tests.conftest import PASSWORD
from tests.live_client import RoomScreen, YClient, login_cookie, wait_for
from tests.test_server import ROOT, free_port, server_environment, start_server  # noqa: F401


def plan_session(app, slug: str) -> tuple[int, int]:
    """Plan a day with one session and its note; return their ids."""
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        day = WorkshopDay(
            community=community,
            title="Day",
            date=date(2027, 1, 14),
            starts_at_local=time(9),
            ends_at_local=time(17),
        )
        session = WorkshopSession(
            workshop_day=day, title="Ideas", starts_at_local=time(10), duration_min=60
        )
        db.session.add_all([day, session])
        db.session.flush()
        note = Note(
            community=community,
            owner_kind=NoteOwnerKind.SESSION,
            owner_id=session.id,
            title="Ideas",
        )
        db.session.add(note)
        db.session.flush()
        session.note_id = note.id
        db.session.commit()
        return session.id, note.id


def test_locking_stops_participants_typing_at_once(app, make, start_server):  # noqa: F811
    slug = make.community()
    facilitator = make.member(slug, Role.FACILITATOR)
    participant = make.member(slug, Role.PARTICIPANT)
    session_id, note_id = plan_session(app, slug)
    environment = server_environment(
        app.config["SQLALCHEMY_DATABASE_URI"],
        free_port(),
        LIVE_RIGHTS_CHECK_SECONDS="600",
        LOGIN_RATE_LIMIT="100 per minute",
    )
    server = start_server([str(ROOT / "wsgi.py")], environment)
    server.wait_until_healthy()
    writer = YClient(
        server.url, note_id, login_cookie(server.url, make.email_of(participant), PASSWORD)
    )
    screen = RoomScreen(server.url, login_cookie(server.url, make.email_of(facilitator), PASSWORD))
    try:
        writer.insert(0, "Before the lock. ")
        wait_for(lambda: "Before" in reread(app, note_id), message="the first edit stored")
        assert screen.call("join", {"session_id": session_id})["ok"]

        assert screen.call("lock_note", {"session_id": session_id, "locked": True})["ok"]
        writer.insert(0, "After the lock. ")

        wait_for(
            lambda: any(error["error"] == "read_only" for error in writer.errors),
            message="the edit refused as read-only",
        )
        assert "After" not in reread(app, note_id)
    finally:
        writer.close()
        screen.client.disconnect()


def reread(app, note_id: int) -> str:
    """Return the note's whole text as the database holds it (state and log)."""
    from cop.notes import services

    with app.app_context():
        update, _seq = services.full_state(db.session.get(Note, note_id))
        return services.text_of_update(update)


def test_a_stopped_server_leaves_nobody_present(app, make, start_server):  # noqa: F811
    slug = make.community()
    participant = make.member(slug, Role.PARTICIPANT)
    session_id, _note_id = plan_session(app, slug)
    environment = server_environment(app.config["SQLALCHEMY_DATABASE_URI"], free_port())
    server = start_server([str(ROOT / "wsgi.py")], environment)
    server.wait_until_healthy()
    screen = RoomScreen(server.url, login_cookie(server.url, make.email_of(participant), PASSWORD))
    assert screen.call("join", {"session_id": session_id})["ok"]

    server.process.send_signal(signal.SIGTERM)

    assert server.process.wait(timeout=20) == 0
    with app.app_context():
        stays = db.session.scalars(select(Attendance).filter_by(session_id=session_id)).all()
        assert len(stays) == 1 and stays[0].left_at is not None
