"""Planning workshop days: the agenda, duplicating a day, parked items, calendars, the API."""

import html
import re
from datetime import date, time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from cop.auth.models import User
from cop.communities.models import Community, Membership, Role
from cop.core.permissions import Verdict, note_verdict
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops import calendar as ics
from cop.workshops import services
from cop.workshops.models import ParkedItem, Phase, WorkshopDay, WorkshopSession

DAY_FORM = {
    "title": "Day 1: sharing information",
    "date": "2027-01-14",
    "starts_at_local": "09:00",
    "ends_at_local": "12:30",
    "time_zone": "Europe/Paris",
    "description": "The first of five days.",
    "video_call_url": "https://visio.example/cop",
}
SESSION_FORM = {
    "title": "What works, what blocks",
    "starts_at_local": "09:30",
    "duration_min": "60",
    "question": "What helps information flow between members, and what blocks it?",
    "dots_per_person": "3",
    "max_dots_per_card": "2",
}


class Planning:
    """A community with a host, a facilitator, a participant and an observer."""

    def __init__(self, app, make, auth, client):
        self.app, self.make, self.auth, self.client = app, make, auth, client
        self.host = make.user("Claire Host")
        self.slug = make.community(self.host)
        self.facilitator = make.member(self.slug, Role.FACILITATOR)
        self.participant = make.member(self.slug, Role.PARTICIPANT)
        self.observer = make.member(self.slug, Role.OBSERVER)

    def as_(self, user_id):
        self.auth.logout()
        self.auth.login(user_id)
        return self.client

    def plan_day(self, **changes) -> int:
        response = self.as_(self.facilitator).post(
            f"/c/{self.slug}/workshops/new", data=DAY_FORM | changes
        )
        assert response.status_code == 302, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def add_session(self, day_id: int, **changes):
        return self.as_(self.facilitator).post(
            f"/c/{self.slug}/workshops/{day_id}/sessions/new", data=SESSION_FORM | changes
        )

    def count(self, model) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(model))

    def set_time_zone(self, user_id: int, zone: str) -> None:
        with self.app.app_context():
            db.session.get(User, user_id).time_zone = zone
            db.session.commit()


@pytest.fixture
def planning(app, make, auth, client):
    return Planning(app, make, auth, client)


def test_a_facilitator_plans_a_day_and_its_agenda(planning, app):
    day_id = planning.plan_day()
    assert planning.add_session(day_id).status_code == 302
    assert (
        planning.add_session(day_id, title="Clusters", starts_at_local="10:45").status_code == 302
    )

    page = planning.as_(planning.participant).get(f"/c/{planning.slug}/workshops/{day_id}").text
    assert page.index("What works, what blocks") < page.index("Clusters")
    assert "https://visio.example/cop" in page
    programme = planning.client.get(f"/c/{planning.slug}/workshops").text
    assert "Day 1: sharing information" in programme and "Clusters" in programme
    assert "Day 1: sharing information" in planning.client.get(f"/c/{planning.slug}").text

    with app.app_context():
        day = db.session.get(WorkshopDay, day_id)
        first = day.sessions[0]
        assert (first.dots_per_person, first.max_dots_per_card, first.phase) == (
            3,
            2,
            Phase.PREPARE,
        )
        note = db.session.get(Note, first.note_id)
        assert (note.owner_kind, note.owner_id, note.title) == (
            NoteOwnerKind.SESSION,
            first.id,
            "What works, what blocks",
        )
        # The session's note: written by those who take part, read by observers.
        participant = db.session.get(User, planning.participant)
        observer = db.session.get(User, planning.observer)
        assert note_verdict(participant, note, write=True) is Verdict.ALLOWED
        assert note_verdict(observer, note, write=True) is Verdict.FORBIDDEN
        assert note_verdict(observer, note, write=False) is Verdict.ALLOWED
    assert planning.client.get(f"/c/{planning.slug}/notes/{first.note_id}").status_code == 200


def readable(html: str) -> str:
    """Return a page with CLDR's narrow no-break spaces ("3:00\u202fAM") made plain."""
    return html.replace("\u202f", " ")


def test_times_show_in_each_viewers_time_zone(planning):
    day_id = planning.plan_day()
    planning.add_session(day_id)

    programme = f"/c/{planning.slug}/workshops"
    planning.set_time_zone(planning.participant, "America/Montreal")
    montreal = readable(planning.as_(planning.participant).get(programme).text)
    assert ">3:00 AM<" in montreal and ">3:30 AM<" in montreal  # 09:00, 09:30 in Paris (January)
    assert "09:00–12:30 in Europe/Paris" in montreal

    planning.set_time_zone(planning.participant, "Europe/Paris")
    paris = readable(planning.as_(planning.participant).get(programme).text)
    assert ">9:30 AM<" in paris and "in Europe/Paris)" not in paris


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"title": "  "}, "This field is required."),
        ({"ends_at_local": "08:00"}, "The day must end after it starts."),
        ({"time_zone": "Mars/Olympus"}, "Not a valid choice."),
        ({"video_call_url": "javascript:alert(1)"}, "Invalid URL."),
        ({"date": "14/01/2027"}, "Not a valid date value."),
    ],
)
def test_a_bad_day_is_refused_with_the_reason_and_nothing_saved(planning, changes, field_message):
    client = planning.as_(planning.facilitator)
    response = client.post(f"/c/{planning.slug}/workshops/new", data=DAY_FORM | changes)

    assert response.status_code == 400
    assert field_message in response.text
    assert planning.count(WorkshopDay) == 0


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"title": ""}, "This field is required."),
        ({"duration_min": "0"}, "Number must be between 5 and 480."),
        ({"starts_at_local": "12:00"}, "The session must fit within the day"),
        ({"starts_at_local": "08:00"}, "The session must fit within the day"),
        ({"dots_per_person": "2", "max_dots_per_card": "3"}, "At most per card"),
        ({"theme_id": "999"}, "Not a valid choice."),
    ],
)
def test_a_bad_session_is_refused_with_the_reason_and_nothing_saved(
    planning, changes, field_message
):
    day_id = planning.plan_day()

    response = planning.add_session(day_id, **changes)

    assert response.status_code == 400
    assert field_message in response.text
    assert planning.count(WorkshopSession) == 0
    assert planning.count(Note) == 0


def test_only_hosts_and_facilitators_can_be_given_a_session(planning, app):
    day_id = planning.plan_day()

    refused = planning.add_session(day_id, facilitator_id=str(planning.participant))
    accepted = planning.add_session(day_id, facilitator_id=str(planning.facilitator))

    assert refused.status_code == 400 and "Not a valid choice." in refused.text
    assert accepted.status_code == 302
    with app.test_request_context():
        session = db.session.scalar(select(WorkshopSession))
        assert session.facilitator_id == planning.facilitator
        with pytest.raises(services.ServiceError) as refusal:
            services.update_session(
                None,
                session,
                services.SessionPlan(
                    title="x",
                    starts_at_local=time(9, 30),
                    duration_min=30,
                    facilitator_id=planning.participant,
                ),
            )
        assert "facilitator_id" in refusal.value.fields


def test_sessions_move_and_leave_the_agenda(planning, app):
    day_id = planning.plan_day()
    planning.add_session(day_id, title="First")
    planning.add_session(day_id, title="Second", starts_at_local="10:45")
    with app.app_context():
        first, second = db.session.get(WorkshopDay, day_id).sessions

    client = planning.as_(planning.facilitator)
    assert (
        client.post(
            f"/c/{planning.slug}/sessions/{second.id}/move", data={"position": "0"}
        ).status_code
        == 302
    )
    bad_move = client.post(f"/c/{planning.slug}/sessions/{second.id}/move", data={"position": "9"})
    assert bad_move.status_code == 400
    with app.app_context():
        assert [s.title for s in db.session.get(WorkshopDay, day_id).sessions] == [
            "Second",
            "First",
        ]
        db.session.get(WorkshopSession, first.id).phase = Phase.COLLECT
        db.session.commit()

    started = client.post(f"/c/{planning.slug}/sessions/{first.id}/remove")
    removed = client.post(f"/c/{planning.slug}/sessions/{second.id}/remove")

    assert started.status_code == 400 and "has started" in started.text
    assert removed.status_code == 302
    with app.app_context():
        day = db.session.get(WorkshopDay, day_id)
        assert [(s.title, s.position) for s in day.sessions] == [("First", 0)]


def test_duplicating_a_day_copies_its_agenda_with_new_notes(planning, app):
    day_id = planning.plan_day()
    planning.add_session(day_id, title="Opening", allows_anonymous_cards="y")
    planning.add_session(day_id, title="Vote", starts_at_local="10:45", dots_per_person="5")

    client = planning.as_(planning.facilitator)
    response = client.post(
        f"/c/{planning.slug}/workshops/{day_id}/duplicate", data={"date": "2027-02-11"}
    )
    bad = client.post(f"/c/{planning.slug}/workshops/{day_id}/duplicate", data={"date": ""})

    assert response.status_code == 302 and bad.status_code == 400
    copy_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        original, copy = db.session.get(WorkshopDay, day_id), db.session.get(WorkshopDay, copy_id)
        assert copy.date == date(2027, 2, 11) and copy.title == original.title
        assert [(s.title, s.allows_anonymous_cards, s.dots_per_person) for s in copy.sessions] == [
            ("Opening", True, 3),
            ("Vote", False, 5),
        ]
        assert {s.note_id for s in copy.sessions}.isdisjoint({s.note_id for s in original.sessions})
        assert planning.count(WorkshopDay) == 2


def test_parked_items_are_listed_on_the_next_days_agenda(planning, app):
    first = planning.plan_day()
    planning.add_session(first)
    second = planning.plan_day(title="Day 2", date="2027-02-11")
    third = planning.plan_day(title="Day 3", date="2027-03-11")
    with app.app_context():
        session_id = db.session.get(WorkshopDay, first).sessions[0].id

    client = planning.as_(planning.facilitator)
    parked = client.post(
        f"/c/{planning.slug}/sessions/{session_id}/parked",
        data={"text": "Ask the <b>regions</b> about their newsletters"},
    )
    empty = client.post(f"/c/{planning.slug}/sessions/{session_id}/parked", data={"text": " "})
    participant = planning.as_(planning.participant)
    refused = participant.post(
        f"/c/{planning.slug}/sessions/{session_id}/parked", data={"text": "Mine"}
    )

    assert parked.status_code == 302 and empty.status_code == 400 and refused.status_code == 403
    assert planning.count(ParkedItem) == 1
    next_day = participant.get(f"/c/{planning.slug}/workshops/{second}").text
    assert "Ask the &lt;b&gt;regions&lt;/b&gt; about their newsletters" in next_day
    assert "regions" not in participant.get(f"/c/{planning.slug}/workshops/{third}").text
    assert "regions" not in participant.get(f"/c/{planning.slug}/workshops/{first}").text


def unfolded(text: str) -> str:
    """Undo iCalendar line folding."""
    return text.replace("\r\n ", "")


def test_the_programme_and_a_day_download_as_calendars(planning):
    day_id = planning.plan_day()
    planning.add_session(day_id, title="Information, flows; and blocks")
    planning.plan_day(title="Day 2, without sessions yet", date="2027-02-11")
    client = planning.as_(planning.participant)

    whole = client.get(f"/c/{planning.slug}/workshops.ics")
    one_day = client.get(f"/c/{planning.slug}/workshops/{day_id}.ics")

    assert whole.mimetype == "text/calendar"
    assert "attachment" in whole.headers["Content-Disposition"]
    text = whole.get_data(as_text=True)
    assert all(line.endswith("\r") or not line for line in text.split("\n"))
    assert max(len(line.encode()) for line in text.split("\r\n")) <= 75
    events = unfolded(text).split("BEGIN:VEVENT")[1:]
    assert len(events) == 2  # the session, and the day that has none
    assert "DTSTART:20270114T083000Z" in events[0] and "DTEND:20270114T093000Z" in events[0]
    assert "SUMMARY:Information\\, flows\\; and blocks · Day 1: sharing information" in events[0]
    assert "LOCATION:https://visio.example/cop" in events[0]
    assert "SUMMARY:Day 2\\, without sessions yet" in events[1]
    assert unfolded(one_day.get_data(as_text=True)).count("BEGIN:VEVENT") == 1


def test_each_member_gets_a_private_feed_that_can_be_replaced(planning, app, make, client):
    planning.plan_day()
    member = planning.as_(planning.participant)
    member.post(f"/c/{planning.slug}/calendar-link")
    page = member.get(f"/c/{planning.slug}/workshops").text
    feed = re.search(r'id="feed-url" class="wide" value="([^"]+)"', page).group(1)
    path = urlsplit(feed).path
    assert path.startswith("/calendar/")

    planning.auth.logout()
    assert "BEGIN:VCALENDAR" in client.get(path).get_data(as_text=True)

    planning.as_(planning.participant).post(f"/c/{planning.slug}/calendar-link")
    planning.auth.logout()
    assert client.get(path).status_code == 404
    assert client.get("/calendar/not-a-token.ics").status_code == 404

    with app.app_context():
        membership = db.session.scalar(select(Membership).filter_by(user_id=planning.participant))
        new_path = f"/calendar/{membership.calendar_token}.ics"
        db.session.delete(membership)
        db.session.commit()
    assert client.get(new_path).status_code == 404


def test_calendar_lines_fold_between_characters_and_text_is_escaped():
    line = "SUMMARY:" + "é" * 100
    folded = ics.fold(line)

    assert all(len(piece.encode()) <= 75 for piece in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
    assert ics.escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_the_api_lists_workshops_with_their_sessions(planning, app):
    day_id = planning.plan_day()
    planning.add_session(day_id)

    answer = planning.as_(planning.observer).get(f"/api/v1/communities/{planning.slug}/workshops")

    assert answer.status_code == 200
    [day] = answer.get_json()["workshops"]
    assert (day["id"], day["date"], day["time_zone"], day["status"]) == (
        day_id,
        "2027-01-14",
        "Europe/Paris",
        "planned",
    )
    assert day["starts_at"] == "2027-01-14T09:00:00+01:00"
    [session] = day["sessions"]
    with app.app_context():
        stored = db.session.get(WorkshopDay, day_id).sessions[0]
        assert (session["id"], session["note_id"]) == (stored.id, stored.note_id)
    assert session["phase"] == "prepare" and session["record_url"] is None
    assert session["url"].endswith(f"/c/{planning.slug}/sessions/{session['id']}")


def test_a_day_of_another_community_is_not_found(planning, make, app):
    day_id = planning.plan_day()
    other = make.community(planning.facilitator)

    client = planning.as_(planning.facilitator)
    assert client.get(f"/c/{other}/workshops/{day_id}").status_code == 404
    assert client.get(f"/c/{other}/workshops/{day_id}/edit").status_code == 404
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=other))
        assert services.day_in(community, day_id) is None


def test_the_programme_speaks_french_to_a_french_member(planning, app):
    planning.plan_day()
    with app.app_context():
        db.session.get(User, planning.facilitator).locale = "fr"
        db.session.commit()

    page = readable(planning.as_(planning.facilitator).get(f"/c/{planning.slug}/workshops").text)

    assert "Planifier une journée d'ateliers" in html.unescape(page)
    assert "jeudi 14 janvier 2027" in page
    assert "Suivre le programme dans votre agenda" in page
