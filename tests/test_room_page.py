"""The live room's page as the server sends it: without JavaScript, settings, sentences, weight.

The room itself (static/dist/room.js against the /workshop namespace) runs in a real browser
in tests/test_room_browser.py.
"""

import json
import re

import brotli
import pytest
from sqlalchemy import select

from cop.extensions import db
from cop.workshops.models import Phase, WorkshopSession
from tests.test_note_page import LIVE_PAGE_BUDGET, parse
from tests.test_workshops import Planning


class SessionPage(Planning):
    """A planned session with a parked item, and its page as each person gets it."""

    def __init__(self, app, make, auth, client):
        super().__init__(app, make, auth, client)
        day_id = self.plan_day()
        assert self.add_session(day_id, allows_anonymous_cards="y").status_code == 302
        with app.app_context():
            self.session_id = db.session.scalar(select(WorkshopSession.id))
        self.path = f"/c/{self.slug}/sessions/{self.session_id}"
        parked = self.as_(self.facilitator).post(
            f"{self.path}/parked", data={"text": "Ask the <b>regions</b>"}
        )
        assert parked.status_code == 302

    def open_as(self, user_id, **headers):
        return self.as_(user_id).get(self.path, headers=headers)

    def set_phase(self, phase: Phase) -> None:
        with self.app.app_context():
            db.session.get(WorkshopSession, self.session_id).phase = phase
            db.session.commit()


@pytest.fixture
def session_page(app, make, auth, client):
    return SessionPage(app, make, auth, client)


def room_text(html: str) -> dict:
    """Return the sentences the page hands to its script."""
    match = re.search(r'<script type="application/json" id="room-text">(.*?)</script>', html, re.S)
    assert match, "no sentences for the room's script"
    return json.loads(match.group(1))


def test_without_javascript_the_page_shows_the_plan_note_and_parked_items(session_page):
    response = session_page.open_as(session_page.participant)
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "What helps information flow between members, and what blocks it?" in html
    assert "Open the session's shared notes" in html
    assert "Ask the &lt;b&gt;regions&lt;/b&gt;" in html
    assert re.search(r'<li data-phase="prepare"\s+aria-current="step">Prepare</li>', html)
    assert "Session 1 of 1 of the day." in html
    # The live room waits for its script; the page says what it needs.
    assert re.search(r'<div class="room" id="room" hidden', html)
    assert "<noscript>" in html


def test_the_page_loads_the_rooms_module_and_no_inline_script(session_page):
    html = session_page.open_as(session_page.participant).get_data(as_text=True)
    page = parse(html)
    assert [script.get("src") for script in page.scripts] == ["/static/dist/room.js", None]
    # The other one is data for the script, which browsers never run.
    assert page.scripts[1] == {"type": "application/json", "id": "room-text"}


@pytest.mark.parametrize(
    ("who", "facilitates", "takes_part"),
    [
        ("facilitator", True, True),
        ("host", True, True),
        ("participant", False, True),
        ("observer", False, False),
    ],
)
def test_each_person_gets_the_controls_of_their_role(session_page, who, facilitates, takes_part):
    html = session_page.open_as(getattr(session_page, who)).get_data(as_text=True)
    assert f'data-can-facilitate="{"true" if facilitates else "false"}"' in html
    assert f'data-can-take-part="{"true" if takes_part else "false"}"' in html
    assert ('id="room-phase-controls"' in html) == facilitates
    assert ('id="room-add-cluster"' in html) == facilitates
    assert ('id="room-post"' in html) == takes_part
    assert ('id="room-hand"' in html) == takes_part
    assert ('id="room-post-anonymous"' in html) == takes_part


def test_the_scripts_sentences_come_translated_from_the_page(session_page):
    english = room_text(session_page.open_as(session_page.participant).get_data(as_text=True))
    french = room_text(
        session_page.open_as(session_page.participant, **{"Accept-Language": "fr"}).get_data(
            as_text=True
        )
    )

    assert french["connected"] == "Connecté" and french["offline"] == "Hors ligne"
    assert english["phases"]["vote"] == "Vote" and len(english["phaseHelp"]) == 7
    assert english["dotsLeft"] == ["{n} dots left", "{n} dot left", "{n} dots left"]
    for key in ("dotsLeft", "dotsTotal", "charactersLeft", "cardCount", "peopleHere"):
        assert len(french[key]) == 3 and all("{n}" in form for form in french[key]), key
    assert all(isinstance(value, (str, list, dict)) and value for value in english.values())


def test_a_closed_session_links_to_its_record(session_page):
    page = session_page.open_as(session_page.participant).get_data(as_text=True)
    assert re.search(r'<p class="room-record" id="room-record"\s+hidden>', page)
    session_page.set_phase(Phase.CLOSED)
    page = session_page.open_as(session_page.participant).get_data(as_text=True)
    assert re.search(r'<p class="room-record" id="room-record"\s+>', page)
    assert f'href="{session_page.path}/record"' in page


def test_a_first_visit_to_the_room_stays_within_the_live_room_budget(session_page):
    headers = {"Accept-Encoding": "br"}
    response = session_page.open_as(session_page.facilitator, **headers)
    assert response.headers["Content-Encoding"] == "br"
    page = parse(brotli.decompress(response.get_data()).decode())
    sizes = {"html": len(response.get_data())}
    scripts = [script["src"] for script in page.scripts if "src" in script]
    for kind, paths in (("css", page.stylesheets), ("js", scripts)):
        sizes[kind] = 0
        for path in paths:
            asset = session_page.client.get(path, headers=headers)
            assert asset.status_code == 200 and asset.headers["Content-Encoding"] == "br", path
            sizes[kind] += len(asset.get_data())
            asset.close()
    total = sum(sizes.values())
    print(f"room page, first visit, brotli as served: {sizes} = {total} bytes")
    assert sizes["js"] > 10_000  # the bundle was measured, not a missing file
    assert total <= LIVE_PAGE_BUDGET
