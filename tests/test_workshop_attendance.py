"""Attendance per workshop day, from the live rooms' presence, for hosts and facilitators."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from cop.communities.models import OrganisationKind, Role
from cop.core.time import utcnow
from cop.extensions import db
from cop.workshops.attendance import attendance_of, time_present
from cop.workshops.models import Attendance, WorkshopDay, WorkshopSession
from tests.test_workshops import Planning

NINE = datetime(2027, 1, 14, 8, 0)  # UTC: 9:00 in Paris


@pytest.fixture
def planning(app, make, auth, client):
    return Planning(app, make, auth, client)


def test_overlapping_stays_count_once():
    stays = [
        (NINE, NINE + timedelta(minutes=30)),
        (NINE + timedelta(minutes=10), NINE + timedelta(minutes=40)),  # a second tab
        (NINE + timedelta(minutes=60), NINE + timedelta(minutes=65)),
    ]

    assert time_present(stays) == timedelta(minutes=45)
    assert time_present([]) == timedelta(0)


def stay(session_id: int, day_id: int, user_id: int, start: int, end: int | None) -> Attendance:
    return Attendance(
        workshop_day_id=day_id,
        session_id=session_id,
        user_id=user_id,
        sid=f"sid-{user_id}-{start}",
        joined_at=NINE + timedelta(minutes=start),
        left_at=NINE + timedelta(minutes=end) if end is not None else None,
    )


def test_facilitators_see_who_came_and_for_how_long(planning: Planning, make):
    day_id = planning.plan_day()
    assert planning.add_session(day_id).status_code == 302
    network = make.organisation("Réseau Sud", kind=OrganisationKind.NETWORK)
    latecomer = make.member(planning.slug, Role.PARTICIPANT, organisation_id=network)
    with planning.app.app_context():
        session_id = db.session.scalar(select(WorkshopSession.id))
        db.session.add_all(
            [
                stay(session_id, day_id, planning.participant, 0, 30),
                stay(session_id, day_id, planning.participant, 20, 50),
                stay(session_id, day_id, latecomer, 40, None),
            ]
        )
        db.session.commit()
        attendance = attendance_of(db.session.get(WorkshopDay, day_id))

    [first, second] = attendance.people
    assert first.present == timedelta(minutes=50) and first.left_at == NINE + timedelta(minutes=50)
    assert second.left_at is None and second.organisation == "Réseau Sud"
    assert attendance.by_kind["network"] == 1

    url = f"/c/{planning.slug}/workshops/{day_id}/attendance"
    page = planning.as_(planning.facilitator).get(url)
    assert page.status_code == 200
    assert "Réseau Sud" in page.text and ">50<" in page.text and "still here" in page.text
    assert planning.as_(planning.participant).get(url).status_code == 403


def test_a_day_nobody_joined_says_so(planning: Planning):
    day_id = planning.plan_day()

    page = planning.as_(planning.host).get(f"/c/{planning.slug}/workshops/{day_id}/attendance")

    assert page.status_code == 200 and "Nobody has joined" in page.text


def test_a_stay_left_open_by_a_dead_process_ends_when_last_seen(planning: Planning):
    day_id = planning.plan_day()
    assert planning.add_session(day_id).status_code == 302
    an_hour_ago = utcnow() - timedelta(hours=1)
    with planning.app.app_context():
        session_id = db.session.scalar(select(WorkshopSession.id))
        abandoned = Attendance(
            workshop_day_id=day_id,
            session_id=session_id,
            user_id=planning.participant,
            sid="a-socket-of-a-dead-process",
            joined_at=an_hour_ago,
            seen_at=an_hour_ago + timedelta(minutes=20),  # then its process died
        )
        db.session.add(abandoned)
        db.session.commit()
        [person] = attendance_of(db.session.get(WorkshopDay, day_id)).people

    assert person.left_at == an_hour_ago + timedelta(minutes=20)
    assert person.present == timedelta(minutes=20)
