"""A closed session's record: what `freeze` keeps, its page and exports, and who sees them."""

import csv
import html
import io
import json
import re
from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text
from sqlalchemy import select

from cop.auth.models import User
from cop.communities.models import Community, OrganisationKind, Role, Visibility
from cop.core.markdown import render_markdown
from cop.extensions import db
from cop.notes import services as note_services
from cop.notes.models import Note, NoteOwnerKind
from cop.workshops import record as records
from cop.workshops import services
from cop.workshops.models import (
    Attendance,
    BreakoutGroup,
    Card,
    Cluster,
    ParkedItem,
    Phase,
    SessionRecord,
    Takeaway,
    TakeawayKind,
    Vote,
    WorkshopSession,
)

SCRIPT = "<script>alert(1)</script>"
FORMULA = "=cmd()"
BOLD = "**x**"


def typed(doc: Doc, position: int, words: str) -> bytes:
    """Insert words into a note's document and return the update it made."""
    before = doc.get_state()
    doc.get(note_services.TEXT_NAME, type=Text).insert(position, words)
    return doc.get_update(before)


class Workshop:
    """A session run to its end: cards, clusters, dots, takeaways, presence and notes.

    People: Nadia (an NGO), Louis (a network), Amélie (a local authority, who posts only
    anonymously), and Oscar the observer, without an organisation.
    """

    def __init__(self, app, make, auth, client, visibility=Visibility.PRIVATE):
        self.app, self.auth, self.client = app, auth, client
        self.host = make.user("Claire Host")
        self.slug = make.community(self.host, visibility=visibility)
        self.facilitator = make.member(self.slug, Role.FACILITATOR)
        ngo = make.organisation("Eau Partagée", OrganisationKind.NGO)
        network = make.organisation("Réseau Ouest", OrganisationKind.NETWORK)
        town = make.organisation("Ville de Montfleury", OrganisationKind.LOCAL_AUTHORITY)
        self.nadia = make.member(self.slug, Role.PARTICIPANT, make.user("Nadia Ngo"), ngo)
        self.louis = make.member(self.slug, Role.PARTICIPANT, make.user("Louis Net"), network)
        self.amelie = make.member(self.slug, Role.PARTICIPANT, make.user("Amélie Secrète"), town)
        self.observer = make.member(self.slug, Role.OBSERVER, make.user("Oscar Observer"))
        self.outsider = make.user("Olga Outsider")
        with app.app_context():
            community = db.session.scalar(select(Community).filter_by(slug=self.slug))
            host = db.session.get(User, self.host)
            day = services.create_day(
                host,
                community,
                services.DayPlan(
                    title="Day 1",
                    date=date(2027, 1, 14),
                    starts_at_local=time(9, 0),
                    ends_at_local=time(12, 0),
                ),
            )
            session = services.add_session(
                host,
                day,
                services.SessionPlan(
                    title='What works, what "blocks" / why',
                    starts_at_local=time(9, 30),
                    duration_min=60,
                    theme_id=community.active_themes[0].id,
                    facilitator_id=self.facilitator,
                    question="What helps information flow?",
                    allows_anonymous_cards=True,
                ),
            )
            self.day_id, self.session_id, self.note_id = day.id, session.id, session.note_id
            db.session.commit()

    def as_(self, user_id):
        self.auth.logout()
        if user_id is not None:
            assert self.auth.login(user_id).status_code == 302
        return self.client

    def session(self) -> WorkshopSession:
        return db.session.get(WorkshopSession, self.session_id)

    def run(self) -> None:
        """Fill the session as a live room would have, then close it."""
        with self.app.app_context():
            session = self.session()
            channels = Cluster(session_id=session.id, label="Channels", position=1)
            time_ = Cluster(session_id=session.id, label="Time *and* load", position=2)
            empty = Cluster(session_id=session.id, label="Nothing here", position=3)
            group = BreakoutGroup(session_id=session.id, name="Group A", position=1)
            db.session.add_all([channels, time_, empty, group])
            db.session.flush()

            def card(author, body, cluster=None, **extra):
                made = Card(
                    session_id=session.id,
                    author_id=author,
                    body=body,
                    cluster_id=cluster.id if cluster else None,
                    **extra,
                )
                db.session.add(made)
                db.session.flush()
                return made

            self.letter = card(self.nadia, "A short monthly letter", channels)
            self.chat = card(self.louis, "Chat groups for urgent news", channels)
            self.small = card(
                self.amelie, "Small NGOs have nobody to relay", time_, is_anonymous=True
            )
            self.lists = card(self.louis, "Too many mailing lists", time_, group_id=group.id)
            self.loose = card(self.nadia, f"{SCRIPT}\n{FORMULA}\n{BOLD} # not a heading")
            self.rude = card(self.louis, "Call me on 06 12 34 56 78", channels)
            self.rude.hidden_reason, self.rude.hidden_by_id = "Personal number", self.facilitator
            dots = {
                self.nadia: [self.small, self.small, self.lists],
                self.louis: [self.letter, self.small, self.loose],
                self.amelie: [self.letter, self.letter, self.rude],
                self.facilitator: [self.rude, self.rude],  # only on the hidden card
            }
            for user_id, cards in dots.items():
                seen: dict[int, int] = {}
                for slot, voted in enumerate(cards, start=1):
                    seen[voted.id] = seen.get(voted.id, 0) + 1
                    db.session.add(
                        Vote(
                            session_id=session.id,
                            user_id=user_id,
                            card_id=voted.id,
                            slot=slot,
                            card_slot=seen[voted.id],
                        )
                    )
            theme_id = session.theme_id
            self.issue = Takeaway(
                session_id=session.id,
                kind=TakeawayKind.KEY_ISSUE,
                theme_id=theme_id,
                text="Nobody has time to relay",
                position=2,
                clusters=[time_],
            )
            self.lever = Takeaway(
                session_id=session.id,
                kind=TakeawayKind.LEVER,
                theme_id=theme_id,
                text="Short, regular formats",
                position=1,
                clusters=[time_, channels],
            )
            db.session.add_all([self.issue, self.lever])
            db.session.add(ParkedItem(session_id=session.id, text="List the regional letters"))
            for user_id, sid in [
                (self.nadia, "a"),
                (self.nadia, "b"),  # reconnected: still one person
                (self.louis, "c"),
                (self.amelie, "d"),
                (self.observer, "e"),
            ]:
                db.session.add(
                    Attendance(
                        workshop_day_id=self.day_id,
                        session_id=session.id,
                        user_id=user_id,
                        sid=sid,
                    )
                )
            # The note: part compacted into its state, part still in the log.
            doc = Doc()
            first = typed(doc, 0, "# Notes\n\nWe **agreed** on letters.\n")
            note_services.append_update(self.note_id, first, {self.nadia})
            note_services.compact_note(self.note_id)
            second = typed(doc, len(str(doc.get(note_services.TEXT_NAME, type=Text))), "Late line")
            note_services.append_update(self.note_id, second, {self.louis})
            group_note = Note(
                community_id=session.workshop_day.community_id,
                owner_kind=NoteOwnerKind.BREAKOUT_GROUP,
                owner_id=group.id,
                title="Group A",
            )
            db.session.add(group_note)
            db.session.flush()
            group.note_id = group_note.id
            group_doc = Doc()
            note_services.append_update(
                group_note.id, typed(group_doc, 0, "Group A *thinks* so"), {self.louis}
            )
            self.ids = {
                name: getattr(self, name).id
                for name in ("letter", "chat", "small", "lists", "loose", "rude", "issue", "lever")
            }
            self.cluster_ids = {"channels": channels.id, "time": time_.id, "empty": empty.id}
            session.phase = Phase.CLOSED
            db.session.flush()
            records.freeze(session, db.session.get(User, self.facilitator))
            db.session.commit()

    def data(self) -> dict:
        with self.app.app_context():
            return db.session.scalar(
                select(SessionRecord.data).filter_by(session_id=self.session_id)
            )

    def url(self, tail: str = "") -> str:
        return f"/c/{self.slug}/sessions/{self.session_id}/record{tail}"


@pytest.fixture
def workshop(app, make, auth, client):
    return Workshop(app, make, auth, client)


@pytest.fixture
def closed(workshop):
    workshop.run()
    return workshop


def cards_by_id(data: dict) -> dict[int, dict]:
    return {card["id"]: card for card in records.all_cards(data)}


# --- What freezing keeps -----------------------------------------------------------------


def test_the_record_has_its_format_version_and_session(closed):
    data = closed.data()
    assert (data["format"], data["version"]) == ("cop.session-record", 1)
    assert data["session"]["id"] == closed.session_id
    assert data["session"]["title"] == 'What works, what "blocks" / why'
    assert data["session"]["day"] == {"id": closed.day_id, "title": "Day 1", "date": "2027-01-14"}
    assert data["session"]["theme"]["name"] == "Information sharing"
    assert data["session"]["starts_at"] == "2027-01-14T09:30:00+01:00"
    with closed.app.app_context():
        assert data["closed_by"] == db.session.get(User, closed.facilitator).display_name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["closed_at"])


def test_votes_are_counted_per_card_and_per_cluster_best_first(closed):
    data = closed.data()
    ids = closed.ids
    channels, time_, empty = data["clusters"]
    assert [c["label"] for c in data["clusters"]] == ["Channels", "Time *and* load", "Nothing here"]
    assert [(card["id"], card["votes"]) for card in channels["cards"]] == [
        (ids["letter"], 3),
        (ids["chat"], 0),
    ]
    assert [(card["id"], card["votes"]) for card in time_["cards"]] == [
        (ids["small"], 3),
        (ids["lists"], 1),
    ]
    assert (channels["votes"], time_["votes"], empty["votes"], empty["cards"]) == (3, 4, 0, [])
    assert [(card["id"], card["votes"]) for card in data["unclustered_cards"]] == [
        (ids["loose"], 1)
    ]
    assert cards_by_id(data)[ids["lists"]]["group"]["name"] == "Group A"
    # Dots on the hidden card are not counted, nor are the people who only voted for it.
    assert data["statistics"]["votes"] == 8
    assert data["statistics"]["voters"] == 3


def test_hidden_cards_are_left_out(closed):
    data = closed.data()
    assert closed.ids["rude"] not in cards_by_id(data)
    assert "06 12 34 56 78" not in json.dumps(data)
    assert "Personal number" not in json.dumps(data)
    assert data["statistics"]["cards"] == 5


def test_an_anonymous_card_shows_no_author_but_its_kind_counts(closed):
    data = closed.data()
    small = cards_by_id(data)[closed.ids["small"]]
    assert small["anonymous"] is True
    assert small["author"] is None and small["organisation_kind"] is None
    assert "Amélie" not in json.dumps(data, ensure_ascii=False)
    letter = cards_by_id(data)[closed.ids["letter"]]
    assert letter["author"] == {"name": "Nadia Ngo", "organisation": "Eau Partagée"}
    assert letter["organisation_kind"] == "ngo"
    assert data["statistics"]["anonymous_cards"] == 1
    assert data["statistics"]["cards_by_organisation_kind"] == {
        "network": 2,
        "ngo": 2,
        "local_authority": 1,
    }


def test_attendance_counts_distinct_people_by_organisation_kind(closed):
    attendance = closed.data()["attendance"]
    assert attendance["people"] == 4
    assert attendance["by_organisation_kind"] == {
        "local_authority": 1,
        "network": 1,
        "ngo": 1,
        "none": 1,
    }


def test_the_note_is_frozen_with_what_the_log_holds_beyond_the_compacted_text(closed):
    data = closed.data()
    assert data["note"] == {
        "id": closed.note_id,
        "text": "# Notes\n\nWe **agreed** on letters.\nLate line",
    }
    with closed.app.app_context():
        assert "Late line" not in db.session.get(Note, closed.note_id).text  # not compacted
    [group] = data["groups"]
    assert group["name"] == "Group A" and group["note"]["text"] == "Group A *thinks* so"


def test_takeaways_keep_their_kind_theme_order_and_clusters(closed):
    data = closed.data()
    lever, issue = data["takeaways"]
    assert (lever["id"], lever["kind"], lever["text"]) == (
        closed.ids["lever"],
        "lever",
        "Short, regular formats",
    )
    # Clusters in their board order, whatever order they were tied in.
    assert lever["cluster_ids"] == [closed.cluster_ids["channels"], closed.cluster_ids["time"]]
    assert (issue["kind"], issue["cluster_ids"]) == ("key_issue", [closed.cluster_ids["time"]])
    assert issue["theme"]["name"] == "Information sharing"
    assert data["parked_items"][0]["text"] == "List the regional letters"


def test_freezing_again_replaces_the_record(closed):
    with closed.app.app_context():
        session = db.session.get(WorkshopSession, closed.session_id)
        db.session.add(ParkedItem(session_id=session.id, text="One more thing"))
        first_id = db.session.scalar(select(SessionRecord.id))
        record = records.freeze(session, None)
        db.session.commit()
        assert record.id == first_id
        assert db.session.scalar(select(db.func.count()).select_from(SessionRecord)) == 1
    data = closed.data()
    assert [item["text"] for item in data["parked_items"]][-1] == "One more thing"
    assert data["closed_by"] is None


def test_an_empty_session_freezes_too(workshop):
    with workshop.app.app_context():
        records.freeze(workshop.session(), None)
        db.session.commit()
    data = workshop.data()
    assert data["clusters"] == [] and data["unclustered_cards"] == [] and data["takeaways"] == []
    assert data["attendance"] == {"people": 0, "by_organisation_kind": {}}
    assert data["note"] == {"id": workshop.note_id, "text": ""}
    page = workshop.as_(workshop.observer).get(workshop.url())
    assert page.status_code == 200 and "No card was posted." in page.text


# --- The page and the exports ------------------------------------------------------------


def test_the_record_page_shows_takeaways_cards_by_cluster_and_attendance(closed):
    page = closed.as_(closed.observer).get(closed.url())
    assert page.status_code == 200
    text = html.unescape(page.text)
    # Key issues come before levers, as in the guide, whatever order they were added in.
    assert text.index("Key issues") < text.index("Nobody has time to relay")
    assert text.index("Nobody has time to relay") < text.index("Levers")
    assert text.index("Levers") < text.index("Short, regular formats")
    assert text.index("A short monthly letter") < text.index("Chat groups for urgent news")
    assert "3 dots" in text and "Nadia Ngo, Eau Partagée" in text and "Anonymous" in text
    assert "Call me on" not in text
    assert "<strong>agreed</strong>" in page.text and "Late line" in text
    assert "List the regional letters" in text
    assert re.search(r"Local authority</th><td>1</td>", page.text)
    assert re.search(r"No organisation</th><td>1</td>", page.text)
    for kind in ("md", "html", "csv", "json"):
        assert closed.url(f".{kind}") in page.text


EXPORTS = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@pytest.mark.parametrize("kind", EXPORTS)
def test_each_export_downloads_with_its_type_and_a_safe_name(closed, kind):
    response = closed.as_(closed.nadia).get(closed.url(f".{kind}"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == EXPORTS[kind]
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="what-works-what-blocks-why-{closed.session_id}-record.{kind}"'
    )


def test_the_json_export_is_the_record_data(closed):
    response = closed.as_(closed.observer).get(closed.url(".json"))
    assert json.loads(response.text) == closed.data()


def test_the_csv_export_has_one_row_per_card_and_neutralises_formulas(closed):
    response = closed.as_(closed.observer).get(closed.url(".csv"))
    assert response.data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["card_id"] for row in rows] == [
        str(closed.ids[name]) for name in ("letter", "chat", "small", "lists", "loose")
    ]
    small = rows[2]
    assert (small["cluster"], small["votes"], small["anonymous"]) == ("Time *and* load", "3", "yes")
    assert (small["author"], small["organisation"], small["organisation_kind"]) == ("", "", "")
    letter = rows[0]
    assert (letter["author"], letter["organisation_kind"], letter["anonymous"]) == (
        "Nadia Ngo",
        "ngo",
        "no",
    )
    assert rows[3]["group"] == "Group A"
    assert rows[4]["body"] == f"{SCRIPT}\n{FORMULA}\n{BOLD} # not a heading"  # starts with "<"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=cmd()", "'=cmd()"),
        ("+1+1", "'+1+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("fine = ok", "fine = ok"),
        (None, ""),
        (3, 3),
        (True, "yes"),
    ],
)
def test_a_csv_cell_never_starts_a_formula(value, cell):
    assert records.csv_cell(value) == cell


def test_a_card_starting_like_a_formula_is_quoted_in_the_csv(workshop):
    workshop.run()
    with workshop.app.app_context():
        card = db.session.get(Card, workshop.ids["chat"])
        card.body = FORMULA
        records.freeze(workshop.session(), None)
        db.session.commit()
    rows = list(
        csv.reader(io.StringIO(workshop.as_(workshop.nadia).get(workshop.url(".csv")).text))
    )
    assert [row for row in rows if row[0] == str(workshop.ids["chat"])][0][3] == "'" + FORMULA


@pytest.mark.parametrize("kind", ["page", "html"])
def test_html_shows_what_people_wrote_escaped_and_the_note_sanitised(workshop, kind):
    workshop.run()
    with workshop.app.app_context():
        note = db.session.get(Note, workshop.note_id)
        doc = Doc()
        doc.apply_update(note_services.full_state(note)[0])
        change = typed(doc, 0, f"{SCRIPT}\n\n[click](javascript:alert(1))\n\n")
        note_services.append_update(note.id, change, {workshop.nadia})
        db.session.get(Cluster, workshop.cluster_ids["empty"]).label = SCRIPT
        records.freeze(workshop.session(), None)
        db.session.commit()
    url = workshop.url() if kind == "page" else workshop.url(".html")
    body = workshop.as_(workshop.observer).get(url).text
    assert "<script" not in body.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>=cmd()<br>**x** # not a heading" in body
    assert "<strong>x</strong>" not in body
    assert 'href="javascript' not in body
    assert "<strong>agreed</strong>" in body  # the note's markdown is rendered
    if kind == "html":
        assert body.startswith("<!doctype html>")
        assert "<h1>What works, what &#34;blocks&#34; / why</h1>" in body


def rendered_text(markdown: str) -> str:
    """Return the text a markdown renders to, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(render_markdown(markdown))))


def test_the_markdown_export_renders_what_people_wrote_literally(closed):
    response = closed.as_(closed.observer).get(closed.url(".md"))
    markdown = response.text
    assert markdown.startswith('# What works, what "blocks" / why\n')
    assert (
        "- \\<script\\>alert(1)\\</script\\>\\\n  \\=cmd()\\\n  \\*\\*x\\*\\* \\# not" in markdown
    )
    assert "### Time \\*and\\* load (4 dots)" in markdown
    assert "*Nadia Ngo, Eau Partagée · 3 dots · card" in markdown
    assert "*Anonymous · 3 dots · card" in markdown
    assert "We **agreed** on letters.\nLate line" in markdown  # the note, as written
    assert "- Network or platform of NGOs: 1" in markdown
    rendered = str(render_markdown(markdown))
    assert "<script" not in rendered and "<strong>x</strong>" not in rendered
    text = rendered_text(markdown)
    assert f"{SCRIPT}\n=cmd()\n**x** # not a heading" in text
    assert "Time *and* load (4 dots)" in text


# Plain text a person might type: letters, digits, punctuation, accents, spaces.
PLAIN = st.lists(
    st.sampled_from(list("aZé9 .,;:!?'\"()[]{}<>*_`~#+-=|\\/&^$%@") + ["1.", "\n", "&amp;"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(PLAIN)
def test_escaped_plain_text_renders_to_itself(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rendered = rendered_text("- " + records.markdown_text(text, indent="  "))
    assert rendered.strip() == "\n".join(lines)


@pytest.mark.parametrize("text", ["1. one", "- dash", "+ plus", "=== ", "> quote", "---"])
def test_line_starts_that_would_make_blocks_stay_text(text):
    assert rendered_text(records.markdown_inline(text)).strip() == text.strip()


# --- Who sees records --------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["", ".md", ".html", ".csv", ".json"])
def test_every_member_sees_the_record_and_others_do_not(closed, tail):
    assert closed.as_(closed.observer).get(closed.url(tail)).status_code == 200
    assert closed.as_(closed.nadia).get(closed.url(tail)).status_code == 200
    assert closed.as_(closed.outsider).get(closed.url(tail)).status_code == 404
    assert closed.as_(None).get(closed.url(tail)).status_code == 404


def test_anonymous_visitors_of_a_public_community_must_log_in(app, make, auth, client):
    workshop = Workshop(app, make, auth, client, visibility=Visibility.PUBLIC)
    workshop.run()
    response = workshop.as_(None).get(workshop.url())
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert workshop.as_(workshop.outsider).get(workshop.url(".json")).status_code == 403
    assert workshop.as_(workshop.observer).get(workshop.url(".json")).status_code == 200


@pytest.mark.parametrize("tail", ["", ".md", ".html", ".csv", ".json"])
def test_a_session_without_a_record_has_no_record_page(workshop, tail):
    assert workshop.as_(workshop.facilitator).get(workshop.url(tail)).status_code == 404


def test_an_unknown_format_or_another_communitys_session_is_not_found(closed, make):
    client = closed.as_(closed.facilitator)
    assert client.get(closed.url(".pdf")).status_code == 404
    other = make.community(closed.facilitator)
    path = f"/c/{other}/sessions/{closed.session_id}/record"
    assert client.get(path).status_code == 404


def test_the_day_links_to_a_record_once_it_exists(workshop):
    day_url = f"/c/{workshop.slug}/workshops/{workshop.day_id}"
    assert workshop.url() not in workshop.as_(workshop.nadia).get(day_url).text
    workshop.run()
    assert workshop.url() in workshop.as_(workshop.nadia).get(day_url).text


def test_the_api_gives_the_record_address_once_it_exists(workshop):
    api = f"/api/v1/communities/{workshop.slug}/workshops"

    def record_url():
        [day] = workshop.as_(workshop.observer).get(api).get_json()["workshops"]
        return day["sessions"][0]["record_url"]

    assert record_url() is None
    workshop.run()
    assert record_url() == f"http://cop.test{workshop.url()}"
