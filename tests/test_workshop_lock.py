"""The room's lock makes the session's note read-only for participants, at once.

A real server whose periodic rights check is ten minutes away: only the room's own check
after `lock_note` can stop the participant's next edit, and it must.
"""

from datetime import date, time

from sqlalchemy import select

from cop.communities.models import Community, Role
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops.models import WorkshopDay, WorkshopSession
from tests.conftest import PASSWORD
from tests.live_client import RoomScreen, YClient, login_cookie, wait_for
from tests.test_server import ROOT, free_port, server_environment, start_server  # noqa: F401


def test_locking_stops_participants_typing_at_once(app, make, start_server):  # noqa: F811
    slug = make.community()
    facilitator = make.member(slug, Role.FACILITATOR)
    participant = make.member(slug, Role.PARTICIPANT)
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
        session_id, note_id = session.id, note.id
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
