"""Guide drafts: sections, the material panel, source links and their evidence, experience sheets.

Review, publication, revisions and the XSS corpus are in tests/test_draft_review.py, which
builds on the `Drafting` world defined here. Who may reach each route is walked role by role
in tests/test_permissions.py; exports are in tests/test_draft_exports.py.
"""

import html
import re
from datetime import date, time

import pytest
from sqlalchemy import func, select

from cop.auth import services as auth_services
from cop.auth.models import NAME_MAX, User
from cop.communities import services as community_services
from cop.communities.models import (
    Community,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Visibility,
)
from cop.core.permissions import Verdict, note_verdict
from cop.drafts import services as drafts
from cop.drafts import workflow
from cop.drafts.document import snapshot_of
from cop.drafts.models import (
    Draft,
    DraftKind,
    DraftRevision,
    DraftSection,
    DraftStatus,
    MarkVerdict,
    Publication,
    ReviewComment,
    SectionKind,
    SourceKind,
    SourceLink,
    StatusChange,
    ValidationMark,
)
from cop.extensions import db
from cop.notes import services as note_services
from cop.notes.models import Note, NoteOwnerKind, NoteUpdate, NoteVersion
from cop.workshops import record as records
from cop.workshops import services as workshop_services
from cop.workshops.models import Card, Cluster, Phase, Takeaway, TakeawayKind, Vote
from tests.conftest import PASSWORD

# Tables a refused request must leave exactly as they were.
WATCHED = (
    Draft,
    DraftSection,
    SourceLink,
    ReviewComment,
    ValidationMark,
    DraftRevision,
    Publication,
    StatusChange,
    Note,
    NoteUpdate,
    NoteVersion,
)
LOOSE_CARD = "*not bold*\n# not a heading\n<b>x</b>"


class Drafting:
    """A community after two workshop days, and the people who write its guide.

    Themes: « Information sharing », « Advocacy », and « Old theme », archived.
    People: Hélène the host, Eddie the editor, Fanny the facilitator, Nadia and Noé (one
    NGO), Louis (a network), Amélie (a local authority, whose card is anonymous), Paula (a
    participant without an organisation), Oscar the observer (of Nadia's NGO), and Olga,
    who belongs to no community here.

    Day one, session « Sharing » (Information sharing): cluster Channels holds three cards
    (Nadia; Louis twice), cluster « Time and load » two (Amélie, anonymous; Nadia), and one
    card in no cluster with markdown characters; dots put the letter first (3), Amélie's
    card second (2), the chat third (1); a key issue on « Time and load », a lever on
    Channels; a note of two paragraphs under a heading.
    Day two, session « Speaking up » (Advocacy): one card by Louis and a favourable
    condition. Another community has a closed session too, with a card « Foreign idea ».
    """

    def __init__(self, app, make, auth, client):
        self.app, self.make, self.auth, self.client = app, make, auth, client
        # Everything in one transaction: a commit per row would make each test slow.
        with app.app_context():
            self._meet()
            self._hold_workshops()
            db.session.commit()

    # --- Building ------------------------------------------------------------------------

    def _meet(self) -> None:
        """Create the people, their organisations and the two communities."""

        def person(name: str) -> User:
            email = f"{name.split()[0].lower()}@drafting.test"
            return auth_services.register_user(email, name, PASSWORD)

        def organisation(name: str, kind: OrganisationKind) -> int:
            made = Organisation(name=name, kind=kind, country="FR")
            db.session.add(made)
            db.session.flush()
            return made.id

        def community(host: User, slug: str, themes) -> Community:
            return community_services.create_community(
                host, slug.title(), slug, "A community.", Visibility.PRIVATE, list(themes)
            )

        host = person("Hélène Host")
        main = community(host, "reseaux", ["Information sharing", "Advocacy", "Old theme"])
        other = community(person("Other Host"), "ailleurs", ["Elsewhere"])
        self.slug, self.other_slug = main.slug, other.slug
        self.host = host.id
        self.ngo = organisation("Eau Partagée", OrganisationKind.NGO)
        self.network = organisation("Réseau Ouest", OrganisationKind.NETWORK)
        self.town = organisation("Ville de Montfleury", OrganisationKind.LOCAL_AUTHORITY)
        for attribute, name, role, organisation_id in [
            ("editor", "Eddie Editor", Role.EDITOR, None),
            ("facilitator", "Fanny Facil", Role.FACILITATOR, None),
            ("nadia", "Nadia Ngo", Role.PARTICIPANT, self.ngo),
            ("noe", "Noé Ngo", Role.PARTICIPANT, self.ngo),
            ("louis", "Louis Net", Role.PARTICIPANT, self.network),
            ("amelie", "Amélie Secrète", Role.PARTICIPANT, self.town),
            ("paula", "Paula Plain", Role.PARTICIPANT, None),
            ("observer", "Oscar Obs", Role.OBSERVER, self.ngo),
        ]:
            user = person(name)
            db.session.add(
                Membership(user=user, community=main, role=role, organisation_id=organisation_id)
            )
            setattr(self, attribute, user.id)
        self.outsider = person("Olga Outsider").id
        db.session.flush()
        old = next(theme for theme in main.themes if theme.name == "Old theme")
        community_services.set_theme_archived(old, True)
        self.theme_ids = [theme.id for theme in main.active_themes]
        self.old_theme_id = old.id
        self.other_theme_id = other.themes[0].id

    def community(self, slug: str | None = None) -> Community:
        return db.session.scalar(select(Community).filter_by(slug=slug or self.slug))

    def user(self, user_id: int) -> User:
        return db.session.get(User, user_id)

    def _session(self, community, title, day_title, day_date, theme_id):
        host = db.session.scalar(
            select(Membership.user_id).filter_by(community_id=community.id, role=Role.HOST)
        )
        host = self.user(host)
        day = workshop_services.create_day(
            host,
            community,
            workshop_services.DayPlan(
                title=day_title,
                date=day_date,
                starts_at_local=time(9, 0),
                ends_at_local=time(12, 0),
            ),
        )
        return workshop_services.add_session(
            host,
            day,
            workshop_services.SessionPlan(
                title=title,
                starts_at_local=time(9, 30),
                duration_min=60,
                theme_id=theme_id,
                allows_anonymous_cards=True,
            ),
        )

    def _card(self, session, author, body, cluster=None, **extra) -> int:
        card = Card(
            session_id=session.id,
            author_id=author,
            body=body,
            cluster_id=cluster.id if cluster else None,
            **extra,
        )
        db.session.add(card)
        db.session.flush()
        return card.id

    def _close(self, session) -> None:
        session.phase = Phase.CLOSED
        db.session.flush()
        records.freeze(session, self.user(self.host))

    def _hold_workshops(self) -> None:
        community = self.community()
        sharing = self._session(
            community, "Sharing", "Day one", date(2027, 1, 14), self.theme_ids[0]
        )
        channels = Cluster(session_id=sharing.id, label="Channels", position=1)
        load = Cluster(session_id=sharing.id, label="Time and load", position=2)
        db.session.add_all([channels, load])
        db.session.flush()
        card = self._card
        self.cards = {
            "letter": card(sharing, self.nadia, "A short monthly letter", channels),
            "chat": card(sharing, self.louis, "Chat groups for urgent news", channels),
            "lists": card(sharing, self.louis, "Too many mailing lists", channels),
            "small": card(
                sharing, self.amelie, "Small members have nobody to relay", load, is_anonymous=True
            ),
            "relay": card(sharing, self.nadia, "Relaying takes an afternoon", load),
            "loose": card(sharing, self.nadia, LOOSE_CARD),
            "hidden": card(sharing, self.louis, "Call me at home", hidden_reason="Personal"),
        }
        slots: dict[int, int] = {}
        for user_id, name in [
            (self.nadia, "letter"),
            (self.louis, "letter"),
            (self.amelie, "letter"),
            (self.nadia, "small"),
            (self.louis, "small"),
            (self.nadia, "chat"),
        ]:
            slots[user_id] = slots.get(user_id, 0) + 1
            db.session.add(
                Vote(
                    session_id=sharing.id,
                    user_id=user_id,
                    card_id=self.cards[name],
                    slot=slots[user_id],
                    card_slot=1,
                )
            )
        issue = Takeaway(
            session_id=sharing.id,
            kind=TakeawayKind.KEY_ISSUE,
            theme_id=self.theme_ids[0],
            text="Nobody has time to relay",
            position=1,
            clusters=[load],
        )
        lever = Takeaway(
            session_id=sharing.id,
            kind=TakeawayKind.LEVER,
            theme_id=self.theme_ids[0],
            text="Short, regular formats",
            position=2,
            clusters=[channels],
        )
        db.session.add_all([issue, lever])
        note_services.replace_text(
            db.session.get(Note, sharing.note_id),
            "# Notes\n\nWe agreed on **letters**.\n\nRegions want a shared calendar.\n",
            self.user(self.nadia),
        )
        self.clusters = {"channels": channels.id, "load": load.id}
        self._close(sharing)

        speaking = self._session(
            community, "Speaking up", "Day two", date(2027, 2, 11), self.theme_ids[1]
        )
        self.cards["voice"] = card(speaking, self.louis, "Speak with one voice")
        trust = Takeaway(
            session_id=speaking.id,
            kind=TakeawayKind.CONDITION,
            theme_id=self.theme_ids[1],
            text="Trust between members",
            created_by_id=self.facilitator,
        )
        db.session.add(trust)
        db.session.flush()
        self._close(speaking)
        self.takeaways = {"issue": issue.id, "lever": lever.id, "trust": trust.id}

        other = self.community(self.other_slug)
        elsewhere = self._session(
            other, "Elsewhere", "Their day", date(2027, 1, 20), self.other_theme_id
        )
        self.cards["foreign"] = card(elsewhere, None, "Foreign idea")
        self._close(elsewhere)
        self.sessions = {"sharing": sharing.id, "speaking": speaking.id, "other": elsewhere.id}
        self.days = {"one": sharing.workshop_day_id, "two": speaking.workshop_day_id}
        self.session_note = sharing.note_id

    def guide(self, title: str = "Repères", by: int | None = None) -> int:
        """Create a guide draft (as the editor by default) and return its id."""
        with self.app.app_context():
            draft = drafts.create_guide(self.user(by or self.editor), self.community(), title)
            db.session.commit()
            return draft.id

    def sheet(self, title: str = "Our letter", by: int | None = None, sign: bool = False) -> int:
        """Create an experience sheet (as Nadia by default), signed off if asked."""
        with self.app.app_context():
            author = self.user(by or self.nadia)
            membership = db.session.scalar(
                select(Membership).filter_by(user_id=author.id, community_id=self.community().id)
            )
            sheet = drafts.create_sheet(author, membership, title)
            if sign:
                workflow.sign_off(author, sheet)
            db.session.commit()
            return sheet.id

    def section_ids(self, draft_id: int) -> list[int]:
        with self.app.app_context():
            return [section.id for section in db.session.get(Draft, draft_id).sections]

    def insert(
        self,
        section_id: int,
        kind: SourceKind,
        source_id: int,
        session: str = "sharing",
        excerpt: int | None = None,
        quote: bool = True,
        by: int | None = None,
    ) -> int:
        """Put a record item in a section (the service), and return the source link's id."""
        with self.app.app_context():
            link, _change = drafts.insert_material(
                self.user(by or self.editor),
                db.session.get(DraftSection, section_id),
                self.sessions[session],
                kind,
                source_id,
                excerpt,
                quote,
            )
            db.session.commit()
            return link.id

    def text(self, section_id: int) -> str:
        with self.app.app_context():
            return drafts.section_text(db.session.get(DraftSection, section_id))

    def write(self, section_id: int, text: str, by: int | None = None) -> None:
        """Set a section's text as one live change, as an editor typing would."""
        with self.app.app_context():
            note = db.session.get(DraftSection, section_id).note
            note_services.replace_text(note, text, self.user(by or self.editor))
            db.session.commit()

    def move_to(self, draft_id: int, *statuses: DraftStatus, by: int | None = None) -> None:
        with self.app.app_context():
            draft = db.session.get(Draft, draft_id)
            for status in statuses:
                workflow.move(self.user(by or self.editor), draft, status)
            db.session.commit()

    def state(self) -> dict:
        """Return every row of the draft and note tables, to compare before and after."""
        with self.app.app_context():
            db.session.expire_all()
            return {
                model.__tablename__: [
                    tuple(row)
                    for row in db.session.execute(
                        select(model.__table__).order_by(*model.__table__.primary_key.columns)
                    )
                ]
                for model in WATCHED
            }

    def as_(self, user_id):
        """Return the client logged in as this person (None: logged out)."""
        if getattr(self, "logged_in", ...) != user_id:
            # Logins are rate limited: log in again only to change person.
            self.auth.logout()
            if user_id is not None:
                assert self.auth.login(user_id).status_code == 302
            self.logged_in = user_id
        return self.client

    def draft_url(self, draft_id: int, tail: str = "") -> str:
        return f"/c/{self.slug}/drafts/{draft_id}{tail}"

    def section_url(self, draft_id: int, section_id: int, tail: str = "") -> str:
        return self.draft_url(draft_id, f"/sections/{section_id}{tail}")


@pytest.fixture
def world(app, make, auth, client):
    return Drafting(app, make, auth, client)


def page_text(response) -> str:
    """Return a page's HTML with entities decoded, to look for the words a person reads."""
    return html.unescape(response.get_data(as_text=True))


def section_block(page: str, section_id: int) -> str:
    """Return the part of the draft page that shows one section."""
    match = re.search(
        rf'<article class="draft-section" id="section-{section_id}".*?</article>', page, re.S
    )
    assert match, f"section {section_id} is not on the page"
    return match.group(0)


# --- A guide and its sections ------------------------------------------------------------


def test_a_guide_starts_with_an_introduction_and_three_sections_per_active_theme(world, app):
    response = world.as_(world.editor).post(f"/c/{world.slug}/drafts", data={"title": "Repères"})
    assert response.status_code == 303
    with app.app_context():
        draft = db.session.scalar(select(Draft))
        assert response.headers["Location"].endswith(world.draft_url(draft.id))
        assert (draft.kind, draft.status, draft.slug) == (
            DraftKind.GUIDE,
            DraftStatus.DRAFT,
            "reperes",
        )
        shape = [
            (s.position, s.kind, s.theme.name if s.theme else None, s.title) for s in draft.sections
        ]
        notes = [section.note for section in draft.sections]
        assert all(
            (note.owner_kind, note.owner_id, note.community_id)
            == (NoteOwnerKind.DRAFT_SECTION, section.id, draft.community_id)
            for note, section in zip(notes, draft.sections, strict=True)
        )
    assert shape == [
        (1, SectionKind.INTRO, None, "Introduction"),
        (2, SectionKind.KEY_ISSUES, "Information sharing", "Key issues"),
        (3, SectionKind.LEVERS, "Information sharing", "Levers"),
        (4, SectionKind.CONDITIONS, "Information sharing", "Favourable conditions"),
        (5, SectionKind.KEY_ISSUES, "Advocacy", "Key issues"),
        (6, SectionKind.LEVERS, "Advocacy", "Levers"),
        (7, SectionKind.CONDITIONS, "Advocacy", "Favourable conditions"),
    ]
    assert len({note.id for note in notes}) == 7  # one note of its own each


def test_section_titles_are_written_in_the_creators_language(world, app):
    with app.app_context():
        world.user(world.editor).locale = "fr"
        db.session.commit()
    # The page is asked for in English: the titles follow the author, not the request.
    client = world.as_(world.editor)
    client.post(
        f"/c/{world.slug}/drafts", data={"title": "Repères"}, headers={"Accept-Language": "en"}
    )
    world.as_(world.host).post(f"/c/{world.slug}/drafts", data={"title": "Guide"})
    with app.app_context():
        french, english = db.session.scalars(select(Draft).order_by(Draft.id)).all()
        assert [s.title for s in french.sections[:4]] == [
            "Introduction",
            "Enjeux clés",
            "Leviers",
            "Conditions favorables",
        ]
        assert [s.title for s in english.sections[1:4]] == [
            "Key issues",
            "Levers",
            "Favourable conditions",
        ]


def test_two_guides_of_the_same_title_get_distinct_slugs(world, app):
    first, second = world.guide("Repères"), world.guide("Repères")
    with app.app_context():
        assert [db.session.get(Draft, i).slug for i in (first, second)] == ["reperes", "reperes-2"]


def test_a_section_is_added_at_the_end_then_renamed_and_moved(world, app):
    draft_id = world.guide()
    client = world.as_(world.editor)
    response = client.post(
        world.draft_url(draft_id, "/sections"),
        data={"title": "  Voices   from the field ", "theme_id": str(world.theme_ids[1])},
    )
    assert response.status_code == 302
    ids = world.section_ids(draft_id)
    added = ids[-1]
    assert response.headers["Location"].endswith(world.section_url(draft_id, added))
    with app.app_context():
        section = db.session.get(DraftSection, added)
        assert (section.kind, section.title, section.theme_id, section.position) == (
            SectionKind.FREE,
            "Voices from the field",
            world.theme_ids[1],
            8,
        )
        assert section.note.owner_kind is NoteOwnerKind.DRAFT_SECTION

    assert (
        client.post(world.section_url(draft_id, added, "/rename"), data={"title": "Voices"})
    ).status_code == 302
    assert (
        client.post(
            world.section_url(draft_id, added, "/move"), data={"direction": "up"}
        ).status_code
        == 302
    )
    assert world.section_ids(draft_id) == ids[:-2] + [added, ids[-2]]
    client.post(world.section_url(draft_id, ids[0], "/move"), data={"direction": "down"})
    assert world.section_ids(draft_id) == [ids[1], ids[0], *ids[2:-2], added, ids[-2]]
    with app.app_context():
        section = db.session.get(DraftSection, added)
        assert section.title == "Voices" and section.note.title == "Repères — Voices"
        positions = [s.position for s in db.session.get(Draft, draft_id).sections]
        assert positions == list(range(1, 9))
    page = page_text(client.get(world.draft_url(draft_id)))
    assert page.index("Voices") < page.index(f'id="section-{ids[-2]}"')


def test_titles_of_the_longest_allowed_length_fit_their_notes(world, app):
    # A note's title names its draft and its section; both at their longest must still fit
    # (PostgreSQL refuses a longer string where SQLite would store it).
    client = world.as_(world.editor)
    assert client.post(f"/c/{world.slug}/drafts", data={"title": "G" * 200}).status_code == 303
    with app.app_context():
        draft_id = db.session.scalar(select(Draft.id))
    first = world.section_ids(draft_id)[0]
    rename = client.post(world.section_url(draft_id, first, "/rename"), data={"title": "R" * 200})
    added = client.post(world.draft_url(draft_id, "/sections"), data={"title": "A" * 200})
    assert (rename.status_code, added.status_code) == (302, 302)
    with app.app_context():
        titles = [section.note.title for section in db.session.get(Draft, draft_id).sections]
    assert all(len(title) <= NAME_MAX for title in titles)
    assert titles[0].startswith("G" * 100) and titles[-1].startswith("G" * 100)


def test_removing_a_section_takes_its_note_sources_comments_and_marks_with_it(world, app):
    draft_id = world.guide()
    intro, issues, levers, *rest = world.section_ids(draft_id)
    gone = world.insert(levers, SourceKind.CLUSTER, world.clusters["channels"])
    kept = world.insert(issues, SourceKind.CARD, world.cards["letter"])
    world.move_to(draft_id, DraftStatus.REVIEW)
    with app.app_context():
        draft = db.session.get(Draft, draft_id)
        for section_id in (issues, levers):
            section = db.session.get(DraftSection, section_id)
            thread = workflow.add_comment(world.user(world.nadia), draft, section, "Hmm")
            workflow.add_comment(world.user(world.louis), draft, section, "Yes", parent=thread)
            workflow.mark(world.user(world.nadia), draft, section, MarkVerdict.RECOGNISE)
        note_id = db.session.get(DraftSection, levers).note_id
        db.session.commit()

    response = world.as_(world.editor).post(world.section_url(draft_id, levers, "/remove"))
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(DraftSection, levers) is None
        assert db.session.get(Note, note_id) is None
        assert not db.session.scalar(select(func.count()).where(NoteUpdate.note_id == note_id))
        assert db.session.scalar(select(SourceLink.id)) == kept
        assert {c.section_id for c in db.session.scalars(select(ReviewComment))} == {issues}
        assert db.session.scalar(select(func.count()).select_from(ReviewComment)) == 2
        assert [m.section_id for m in db.session.scalars(select(ValidationMark))] == [issues]
        sections = db.session.get(Draft, draft_id).sections
        assert [s.id for s in sections] == [intro, issues, *rest]
        assert [s.position for s in sections] == list(range(1, 7))
    assert gone != kept


def bad_section_requests(world, draft_id, ids):
    """Requests that must be refused: (path, form, reason shown to the person)."""
    sections = world.draft_url(draft_id, "/sections")
    first, last = ids[0], ids[-1]
    return {
        "no title": (sections, {"title": "  "}, "“title” is needed"),
        "long title": (sections, {"title": "x" * 201}, "at most 200 characters"),
        "unknown theme": (
            sections,
            {"title": "T", "theme_id": "999999"},
            "not one of the community's",
        ),
        "archived theme's id as text": (
            sections,
            {"title": "T", "theme_id": "abc"},
            "“theme_id” must be a number",
        ),
        "theme of another community": (
            sections,
            {"title": "T", "theme_id": str(world.other_theme_id)},
            "not one of the community's",
        ),
        "rename to nothing": (
            world.section_url(draft_id, first, "/rename"),
            {"title": ""},
            "“title” is needed",
        ),
        "rename too long": (
            world.section_url(draft_id, first, "/rename"),
            {"title": "é" * 201},
            "at most 200 characters",
        ),
        "sideways": (
            world.section_url(draft_id, first, "/move"),
            {"direction": "sideways"},
            "moves up or down",
        ),
        "first up": (
            world.section_url(draft_id, first, "/move"),
            {"direction": "up"},
            "cannot move further",
        ),
        "last down": (
            world.section_url(draft_id, last, "/move"),
            {"direction": "down"},
            "cannot move further",
        ),
        "guide without title": (f"/c/{world.slug}/drafts", {"title": ""}, "“title” is needed"),
    }


BAD_SECTION_REQUESTS = [
    "no title",
    "long title",
    "unknown theme",
    "archived theme's id as text",
    "theme of another community",
    "rename to nothing",
    "rename too long",
    "sideways",
    "first up",
    "last down",
    "guide without title",
]


@pytest.mark.parametrize("case", BAD_SECTION_REQUESTS)
def test_bad_section_input_is_refused_with_its_reason_and_changes_nothing(world, case):
    draft_id = world.guide()
    path, form, reason = bad_section_requests(world, draft_id, world.section_ids(draft_id))[case]
    client = world.as_(world.editor)
    before = world.state()
    response = client.post(path, data=form)
    assert response.status_code == 400
    assert reason in page_text(response)
    assert world.state() == before


def test_a_refusal_answers_json_to_a_client_that_asks_for_it(world):
    draft_id = world.guide()
    response = world.as_(world.editor).post(
        world.draft_url(draft_id, "/sections"),
        data={"title": ""},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"title": ["Needed."]}


def test_an_archived_theme_is_offered_nowhere_but_a_free_section_may_still_use_none(world):
    draft_id = world.guide()
    page = world.as_(world.editor).get(world.draft_url(draft_id)).get_data(as_text=True)
    assert "Old theme" not in page
    response = world.client.post(world.draft_url(draft_id, "/sections"), data={"title": "Free"})
    assert response.status_code == 302
    assert len(world.section_ids(draft_id)) == 8


# --- The material panel ------------------------------------------------------------------


def panel(response) -> list[str]:
    """Return the texts of the material panel's items, in order."""
    assert response.status_code == 200, response.status_code
    body = response.get_data(as_text=True)
    return [
        html.unescape(text)
        for text in re.findall(r'<p class="draft-material-text">(.*?)</p>', body, re.S)
    ]


SHARING_TAKEAWAYS = ["Nobody has time to relay", "Short, regular formats"]
SHARING_CLUSTERS = ["Channels", "Time and load"]
# Cards by dots, most first; then by age.
SHARING_CARDS = [
    "A short monthly letter",
    "Small members have nobody to relay",
    "Chat groups for urgent news",
    "Too many mailing lists",
    "Relaying takes an afternoon",
    LOOSE_CARD,
]
SHARING_EXCERPTS = ["We agreed on **letters**.", "Regions want a shared calendar."]
SPEAKING = ["Trust between members", "Speak with one voice"]
EVERYTHING = SHARING_TAKEAWAYS + SHARING_CLUSTERS + SHARING_CARDS + SHARING_EXCERPTS + SPEAKING


def test_the_panel_lists_every_record_of_the_community_cards_by_dots(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    items = panel(world.as_(world.editor).get(world.section_url(draft_id, section_id)))
    assert items == EVERYTHING
    page = world.client.get(world.section_url(draft_id, section_id)).get_data(as_text=True)
    assert "Foreign idea" not in page  # another community's record
    assert "Call me at home" not in page  # hidden by moderation, not in the record
    assert "3 dots" in page and "Day one — Sharing" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("theme={theme1}", SHARING_TAKEAWAYS + SHARING_CLUSTERS + SHARING_CARDS + SHARING_EXCERPTS),
        ("theme={theme2}", SPEAKING),
        ("day={day2}", SPEAKING),
        ("session={sharing}", EVERYTHING[: -len(SPEAKING)]),
        ("kind=takeaway", SHARING_TAKEAWAYS + SPEAKING[:1]),
        ("kind=cluster", SHARING_CLUSTERS),
        ("kind=card", SHARING_CARDS + SPEAKING[1:]),
        ("kind=note_excerpt", SHARING_EXCERPTS),
        ("takeaway=lever", ["Short, regular formats"]),
        ("takeaway=condition", ["Trust between members"]),
        (
            "q=RELAY",
            [
                "Nobody has time to relay",
                "Small members have nobody to relay",
                "Relaying takes an afternoon",
            ],
        ),
        ("q=relay+members", ["Small members have nobody to relay"]),
        ("q=calendar", ["Regions want a shared calendar."]),
        ("kind=card&day={day1}&q=letter", ["A short monthly letter"]),
        ("theme={theme2}&kind=cluster", []),
        ("theme=&day=&kind=&takeaway=&q=", EVERYTHING),
    ],
)
def test_each_filter_of_the_panel_narrows_it(world, query, expected):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    query = query.format(
        theme1=world.theme_ids[0],
        theme2=world.theme_ids[1],
        day1=world.days["one"],
        day2=world.days["two"],
        sharing=world.sessions["sharing"],
    )
    response = world.as_(world.editor).get(world.section_url(draft_id, section_id, f"?{query}"))
    assert panel(response) == expected
    if not expected:
        assert "Nothing matches these filters." in page_text(response)


@pytest.mark.parametrize(
    "query",
    [
        "kind=bogus",
        "theme=abc",
        "day=-1",
        "session=1.5",
        "takeaway=opinion",
        "theme=" + "9" * 10,
        "theme=²",  # a digit to str.isdigit, not to int()
        "day=١",
    ],
)
def test_a_bad_filter_value_is_refused(world, query):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    response = world.as_(world.editor).get(world.section_url(draft_id, section_id, f"?{query}"))
    assert response.status_code == 400
    assert "“" in page_text(response)  # the reason names the field


def test_a_community_without_records_says_so(make, app, auth, client):
    host = make.user()
    slug = make.community(host)
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        draft = drafts.create_guide(db.session.get(User, host), community, "Empty")
        db.session.commit()
        draft_id, section_id = draft.id, draft.sections[0].id
    auth.login(host)
    response = client.get(f"/c/{slug}/drafts/{draft_id}/sections/{section_id}")
    assert panel(response) == []
    assert "No session is closed yet" in page_text(response)


# --- Inserting material -----------------------------------------------------------------


def test_inserting_a_cluster_quotes_it_with_its_reference_and_counts_who_stands_behind(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[2]
    world.write(section_id, "Members said:")
    response = world.as_(world.editor).post(
        world.section_url(draft_id, section_id, "/material"),
        data={
            "session_id": world.sessions["sharing"],
            "kind": "cluster",
            "source_id": world.clusters["channels"],
            "mode": "quote",
            "back": "?kind=cluster",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        world.section_url(draft_id, section_id, "?kind=cluster")
    )
    with app.app_context():
        link = db.session.scalar(select(SourceLink))
        assert (link.section_id, link.source_kind, link.source_id, link.quoted_text) == (
            section_id,
            SourceKind.CLUSTER,
            world.clusters["channels"],
            "Channels",
        )
        assert link.created_by_id == world.editor
        assert link.evidence == {
            "day": {"id": world.days["one"], "title": "Day one", "date": "2027-01-14"},
            "session": {"id": world.sessions["sharing"], "title": "Sharing"},
            "sessions": [world.sessions["sharing"]],
            "contributions": 3,
            "organisations": {str(world.ngo): "ngo", str(world.network): "network"},
        }
    assert world.text(section_id) == f"Members said:\n\n> Channels [^s{link.id}]\n"


def test_inserting_to_reword_adds_a_plain_paragraph(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    first = world.insert(section_id, SourceKind.TAKEAWAY, world.takeaways["issue"], quote=False)
    second = world.insert(section_id, SourceKind.CARD, world.cards["chat"], quote=False)
    assert world.text(section_id) == (
        f"Nobody has time to relay [^s{first}]\n\nChat groups for urgent news [^s{second}]\n"
    )


def test_inserting_answers_json_with_the_reference_when_asked(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    response = world.as_(world.editor).post(
        world.section_url(draft_id, section_id, "/material"),
        data={"session_id": world.sessions["speaking"], "kind": "card"}
        | {"source_id": world.cards["voice"], "mode": "reword"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    link_id = response.get_json()["id"]
    assert response.get_json() == {"id": link_id, "reference": f"[^s{link_id}]"}
    assert world.text(section_id) == f"Speak with one voice [^s{link_id}]\n"


@pytest.mark.parametrize(
    ("back", "tail"),
    [
        ("?kind=card&q=é", "?kind=card&q=%C3%A9"),
        ("?x\r\nSet-Cookie: stolen=1", ""),  # would end the Location header
        ("https://elsewhere.example/", ""),  # only the panel's own filters come back
    ],
)
def test_after_inserting_the_panel_comes_back_with_its_filters_only(world, back, tail):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    response = world.as_(world.editor).post(
        world.section_url(draft_id, section_id, "/material"),
        data={"session_id": world.sessions["sharing"], "kind": "card"}
        | {"source_id": world.cards["letter"], "back": back},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == world.section_url(draft_id, section_id, tail)
    assert "Set-Cookie" not in response.headers or "stolen" not in response.headers["Set-Cookie"]


def test_a_note_excerpt_keeps_its_markdown_and_counts_the_notes_writers(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    response = world.as_(world.editor).post(
        world.section_url(draft_id, section_id, "/material"),
        data={
            "session_id": world.sessions["sharing"],
            "kind": "note_excerpt",
            "source_id": world.session_note,
            "excerpt": "0",
            "mode": "quote",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        link = db.session.scalar(select(SourceLink))
        assert link.quoted_text == "We agreed on **letters**."
        assert link.evidence["contributions"] == 1
        assert link.evidence["organisations"] == {str(world.ngo): "ngo"}
    assert world.text(section_id) == f"> We agreed on **letters**. [^s{link.id}]\n"
    page = world.client.get(world.draft_url(draft_id)).get_data(as_text=True)
    assert "<strong>letters</strong>" in page


def test_a_takeaway_counts_the_cards_of_its_clusters(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    issue = world.insert(section_id, SourceKind.TAKEAWAY, world.takeaways["issue"])
    trust = world.insert(section_id, SourceKind.TAKEAWAY, world.takeaways["trust"], "speaking")
    with app.app_context():
        issue, trust = (db.session.get(SourceLink, i).evidence for i in (issue, trust))
    # « Time and load »: Amélie's anonymous card and Nadia's.
    assert issue["contributions"] == 2
    assert sorted(issue["organisations"].values()) == ["local_authority", "ngo"]
    # No cluster: the person who wrote it down (Fanny, without an organisation).
    assert (trust["contributions"], trust["organisations"]) == (1, {})
    assert trust["day"]["title"] == "Day two"


def test_an_anonymous_cards_author_is_named_nowhere(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    link_id = world.insert(section_id, SourceKind.CARD, world.cards["small"])
    with app.app_context():
        link = db.session.get(SourceLink, link_id)
        stored = repr((link.quoted_text, link.evidence))
    world.move_to(draft_id, DraftStatus.REVIEW, DraftStatus.APPROVED)
    world.as_(world.host).post(world.draft_url(draft_id, "/publish"))
    pages = [
        world.client.get(world.draft_url(draft_id)),
        world.client.get(world.section_url(draft_id, section_id)),
        world.client.get(f"/p/{world.slug}/reperes"),
        world.client.get(world.draft_url(draft_id, "/revisions/1")),
    ]
    assert all(page.status_code == 200 for page in pages)
    assert "Small members have nobody to relay" in page_text(pages[2])
    for text in [stored] + [page_text(page) for page in pages]:
        assert "Amélie" not in text and "Secrète" not in text


def bad_inserts(world, draft_id, section_id, sheet_section_id):
    """Insertions that must be refused: (section, form, reason)."""
    sharing = world.sessions["sharing"]
    return {
        "card of another session": (
            section_id,
            {"session_id": sharing, "kind": "card", "source_id": world.cards["voice"]},
            "not in the session's record",
        ),
        "hidden card": (
            section_id,
            {"session_id": sharing, "kind": "card", "source_id": world.cards["hidden"]},
            "not in the session's record",
        ),
        "card called a cluster": (
            section_id,
            {"session_id": sharing, "kind": "cluster", "source_id": world.cards["loose"]},
            "not in the session's record",
        ),
        "excerpt beyond the note": (
            section_id,
            {"session_id": sharing, "kind": "note_excerpt", "source_id": world.session_note}
            | {"excerpt": "7"},
            "not in the session's record",
        ),
        "excerpt without its place": (
            section_id,
            {"session_id": sharing, "kind": "note_excerpt", "source_id": world.session_note},
            "“excerpt” must be a number",
        ),
        "session of another community": (
            section_id,
            {"session_id": world.sessions["other"], "kind": "card"}
            | {"source_id": world.cards["foreign"]},
            "no record in this community",
        ),
        "session without a record": (
            section_id,
            {"session_id": "999999", "kind": "card", "source_id": world.cards["letter"]},
            "no record in this community",
        ),
        "unknown kind": (
            section_id,
            {"session_id": sharing, "kind": "vote", "source_id": world.cards["letter"]},
            "unknown value",
        ),
        "boxed sheet": (
            sheet_section_id,
            {"session_id": sharing, "kind": "card", "source_id": world.cards["letter"]},
            "boxed experience sheet has no text",
        ),
    }


BAD_INSERTS = [
    "card of another session",
    "hidden card",
    "card called a cluster",
    "excerpt beyond the note",
    "excerpt without its place",
    "session of another community",
    "session without a record",
    "unknown kind",
    "boxed sheet",
]


@pytest.mark.parametrize("case", BAD_INSERTS)
def test_inserting_what_is_not_in_the_communitys_records_is_refused(world, app, case):
    draft_id = world.guide()
    sheet_id = world.sheet(sign=True)
    with app.app_context():
        draft = db.session.get(Draft, draft_id)
        boxed = drafts.place_sheet(world.user(world.editor), draft, sheet_id)
        db.session.commit()
        boxed_id = boxed.id
    section_id = world.section_ids(draft_id)[1]
    target, form, reason = bad_inserts(world, draft_id, section_id, boxed_id)[case]
    client = world.as_(world.editor)
    before = world.state()
    response = client.post(world.section_url(draft_id, target, "/material"), data=form)
    assert response.status_code == 400
    assert reason in page_text(response)
    assert world.state() == before


def test_a_plain_text_card_reads_literally_once_rendered(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    world.insert(section_id, SourceKind.CARD, world.cards["loose"], quote=False)
    world.move_to(draft_id, DraftStatus.REVIEW, DraftStatus.APPROVED)
    world.as_(world.host).post(world.draft_url(draft_id, "/publish"))
    for path in (world.draft_url(draft_id), f"/p/{world.slug}/reperes"):
        body = world.client.get(path).get_data(as_text=True)
        assert "*not bold*" in body and "<em>not bold</em>" not in body
        assert "# not a heading" in body and not re.search(r"<h\d>not a heading", body)
        assert "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x</b>" not in body


# --- Evidence ----------------------------------------------------------------------------

THIN = "This section rests on a single organisation or a single kind of organisation."


def test_a_section_resting_on_one_organisation_is_flagged(world):
    draft_id = world.guide()
    single, broad = world.section_ids(draft_id)[1:3]
    world.insert(single, SourceKind.CARD, world.cards["letter"])
    world.insert(broad, SourceKind.CLUSTER, world.clusters["channels"])
    page = page_text(world.as_(world.editor).get(world.draft_url(draft_id)))
    assert THIN in section_block(page, single)
    assert "1 session · 1 contribution · 1 organisation (NGO 1)" in " ".join(
        section_block(page, single).split()
    )
    broad_block = " ".join(section_block(page, broad).split())
    assert THIN not in broad_block
    assert "1 session · 3 contributions · 2 organisations" in broad_block
    assert "NGO 1" in broad_block and "Network or platform of NGOs 1" in broad_block

    editor_page = page_text(world.client.get(world.section_url(draft_id, single)))
    assert THIN in editor_page and "single organisation or kind" in editor_page
    assert THIN not in page_text(world.client.get(world.section_url(draft_id, broad)))


def test_one_organisation_twice_is_still_one_organisation(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    world.insert(section_id, SourceKind.CARD, world.cards["letter"])
    world.insert(section_id, SourceKind.CARD, world.cards["relay"])
    with app.app_context():
        evidence = drafts.evidence_over(
            [link.evidence for link in db.session.scalars(select(SourceLink))]
        )
    assert (evidence.contributions, evidence.organisations, evidence.thin) == (2, 1, True)
    page = page_text(world.as_(world.editor).get(world.draft_url(draft_id)))
    assert THIN in section_block(page, section_id)


def test_two_organisations_of_one_kind_are_still_thin(world, app):
    # A second NGO, distinct from Nadia's: two organisations, one kind.
    other_ngo = world.make.organisation("Terre Solidaire", OrganisationKind.NGO)
    with app.app_context():
        membership = db.session.scalar(select(Membership).filter_by(user_id=world.louis))
        membership.organisation_id = other_ngo
        db.session.commit()
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    world.insert(section_id, SourceKind.CLUSTER, world.clusters["channels"])
    page = page_text(world.as_(world.editor).get(world.draft_url(draft_id)))
    block = " ".join(section_block(page, section_id).split())
    assert "2 organisations (NGO 2)" in block and THIN in block


def test_a_deleted_reference_makes_its_link_unused_and_drops_its_footnote(world, app):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    single = world.insert(section_id, SourceKind.CARD, world.cards["letter"])
    broad = world.insert(section_id, SourceKind.CLUSTER, world.clusters["channels"])
    client = world.as_(world.editor)
    page = page_text(client.get(world.draft_url(draft_id)))
    assert "Unused sources" not in page
    assert page.count("Day one (2027-01-14) · session “Sharing”") == 2  # two footnotes

    # An editor deletes the letter's reference and keeps its words.
    text = world.text(section_id)
    world.write(section_id, text.replace(f" [^s{single}]", ""))
    assert f"[^s{single}]" not in world.text(section_id)

    page = page_text(client.get(world.draft_url(draft_id)))
    unused = page[page.index("Unused sources") :]
    assert f"s{single}</span>" in unused and "A short monthly letter" in unused
    assert f"s{broad}</span>" not in unused
    block = " ".join(section_block(page, section_id).split())
    assert "1 contribution ·" not in block and "3 contributions · 2 organisations" in block
    assert block.count("Day one (2027-01-14) · session “Sharing”") == 1
    assert "1 organisation (NGO)" not in block
    editor = page_text(client.get(world.section_url(draft_id, section_id)))
    assert f"s{single}</span> A short monthly letter" in editor[editor.index("Unused sources") :]
    with app.app_context():
        snapshot = snapshot_of(db.session.get(Draft, draft_id))
        assert list(snapshot["sources"]) == [str(broad)]
        assert db.session.get(SourceLink, single) is not None  # kept, listed as unused


def test_source_lines_put_the_colon_as_the_language_wants(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    world.insert(section_id, SourceKind.CARD, world.cards["letter"])
    client = world.as_(world.editor)
    for language, line in [("en", "Card: A short monthly letter"), ("fr", "Carte\u00a0: A short")]:
        headers = {"Accept-Language": language}
        editor = page_text(client.get(world.section_url(draft_id, section_id), headers=headers))
        assert line in editor, language


def test_a_footnote_typed_by_hand_is_replaced_by_cops_own(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    link_id = world.insert(section_id, SourceKind.CARD, world.cards["letter"])
    world.write(
        section_id,
        world.text(section_id) + f"\n[^s{link_id}]: Written by Amélie Secrète\n\nSee [^s424242].",
    )
    page = page_text(world.as_(world.editor).get(world.draft_url(draft_id)))
    block = section_block(page, section_id)
    assert "Amélie" not in block and "424242" not in block
    assert "1 contribution · 1 organisation (NGO)" in block


# --- Experience sheets -------------------------------------------------------------------

SHEET_TITLES = [
    "Context",
    "Actors",
    "What was done",
    "Results",
    "Lessons learned",
    "Conditions to reproduce it",
    "Contact",
]


def test_a_member_writes_a_sheet_for_their_organisation_from_the_template(world, app):
    response = world.as_(world.nadia).post(
        f"/c/{world.slug}/sheets", data={"title": "Our monthly letter"}
    )
    assert response.status_code == 303
    with app.app_context():
        sheet = db.session.scalar(select(Draft))
        assert (sheet.kind, sheet.status, sheet.organisation_id, sheet.created_by_id) == (
            DraftKind.EXPERIENCE_SHEET,
            DraftStatus.DRAFT,
            world.ngo,
            world.nadia,
        )
        assert [s.title for s in sheet.sections] == SHEET_TITLES
        assert [s.kind for s in sheet.sections] == list(drafts.SHEET_TEMPLATE)
        assert {s.note.owner_kind for s in sheet.sections} == {NoteOwnerKind.EXPERIENCE_SHEET}
        sheet_id = sheet.id
    page = page_text(world.client.get(world.draft_url(sheet_id)))
    assert "Experience sheet of Eau Partagée" in page and "Sign off this sheet" in page


def test_a_member_without_an_organisation_cannot_write_a_sheet(world):
    client = world.as_(world.paula)
    assert "your membership names none" in page_text(client.get(f"/c/{world.slug}/drafts"))
    before = world.state()
    response = client.post(f"/c/{world.slug}/sheets", data={"title": "Mine"})
    assert response.status_code == 400
    assert "An experience sheet speaks for an organisation" in page_text(response)
    assert world.state() == before


@pytest.mark.parametrize(
    ("who", "may_write"),
    [
        ("nadia", True),  # who wrote it
        ("noe", True),  # of the same organisation
        ("louis", False),  # another organisation
        ("host", False),  # a host, without the organisation
        ("editor", False),
        ("observer", False),  # of the same organisation, but an observer writes nothing
    ],
)
def test_only_members_of_the_sheets_organisation_write_it(world, app, who, may_write):
    sheet_id = world.sheet()
    with app.app_context():
        note = db.session.get(Draft, sheet_id).sections[0].note
        user = world.user(getattr(world, who))
        expected = Verdict.ALLOWED if may_write else Verdict.FORBIDDEN
        assert note_verdict(user, note, write=True) is expected
        assert note_verdict(user, note, write=False) is Verdict.ALLOWED
    first = world.section_ids(sheet_id)[0]
    response = world.as_(getattr(world, who)).post(
        world.section_url(sheet_id, first, "/rename"), data={"title": "Where we started"}
    )
    assert response.status_code == (302 if may_write else 403)


def test_signing_off_fixes_the_sheet_for_everyone(world, app):
    sheet_id = world.sheet()
    before = world.state()
    assert world.as_(world.louis).post(world.draft_url(sheet_id, "/sign-off")).status_code == 403
    assert world.as_(world.editor).post(world.draft_url(sheet_id, "/sign-off")).status_code == 403
    assert world.state() == before
    response = world.as_(world.noe).post(world.draft_url(sheet_id, "/sign-off"))
    assert response.status_code == 303
    with app.app_context():
        sheet = db.session.get(Draft, sheet_id)
        assert (sheet.status, sheet.signed_off_by_id) == (DraftStatus.SIGNED_OFF, world.noe)
        change = db.session.scalar(select(StatusChange))
        assert (change.draft_id, change.from_status, change.to_status, change.by_id) == (
            sheet_id,
            DraftStatus.DRAFT,
            DraftStatus.SIGNED_OFF,
            world.noe,
        )
        notes = [section.note for section in sheet.sections]
        for user_id in (world.nadia, world.noe, world.host):
            assert all(
                note_verdict(world.user(user_id), note, write=True) is Verdict.FORBIDDEN
                for note in notes
            )
    first = world.section_ids(sheet_id)[0]
    client = world.as_(world.nadia)
    assert (
        client.post(world.section_url(sheet_id, first, "/rename"), data={"title": "X"}).status_code
        == 403
    )
    assert (
        client.post(world.draft_url(sheet_id, "/revisions"), data={"message": "m"}).status_code
        == 403
    )
    again = client.post(world.draft_url(sheet_id, "/sign-off"))
    assert again.status_code == 400 and "already signed off" in page_text(again)
    assert "Signed off by Noé Ngo" in page_text(client.get(world.draft_url(sheet_id)))


def test_a_sheet_does_not_go_through_review_or_publication(world):
    sheet_id = world.sheet(sign=True)
    client = world.as_(world.host)
    assert (
        client.post(world.draft_url(sheet_id, "/status"), data={"to": "review"}).status_code == 404
    )
    assert client.post(world.draft_url(sheet_id, "/publish")).status_code == 404


def test_a_guide_places_only_a_signed_off_sheet_of_its_community(world, app, make):
    draft_id = world.guide()
    unsigned = world.sheet("Not yet")
    signed = world.sheet("Our letter", sign=True)
    other_slug = world.other_slug
    other_org_member = make.member(other_slug, Role.PARTICIPANT, organisation_id=world.ngo)
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=other_slug))
        membership = db.session.scalar(
            select(Membership).filter_by(user_id=other_org_member, community_id=community.id)
        )
        foreign = drafts.create_sheet(world.user(other_org_member), membership, "Elsewhere")
        workflow.sign_off(world.user(other_org_member), foreign)
        db.session.commit()
        foreign_id = foreign.id
    client = world.as_(world.editor)
    before = world.state()
    for sheet_id, reason in [
        (unsigned, "must sign it off before it goes in a guide"),
        (foreign_id, "not one of the community's"),
        (draft_id, "not one of the community's"),  # a guide is no sheet
    ]:
        response = client.post(world.draft_url(draft_id, "/sheets"), data={"sheet_id": sheet_id})
        assert response.status_code == 400 and reason in page_text(response), sheet_id
    assert world.state() == before

    assert (
        client.post(world.draft_url(draft_id, "/sheets"), data={"sheet_id": signed}).status_code
        == 303
    )
    with app.app_context():
        boxed = db.session.get(Draft, draft_id).sections[-1]
        assert (boxed.kind, boxed.sheet_id, boxed.note_id, boxed.position) == (
            SectionKind.SHEET,
            signed,
            None,
            8,
        )
        boxed_id = boxed.id
    # Its section page is the sheet's own page.
    response = client.get(world.section_url(draft_id, boxed_id))
    assert response.status_code == 302 and response.headers["Location"].endswith(
        world.draft_url(signed)
    )


def test_a_placed_sheet_renders_as_a_boxed_block_quote(world, app):
    sheet_id = world.sheet("Our letter")
    context, actors, *_rest = world.section_ids(sheet_id)
    world.write(context, "We had *twelve* members.", by=world.nadia)
    world.as_(world.nadia).post(world.draft_url(sheet_id, "/sign-off"))
    draft_id = world.guide()
    with app.app_context():
        drafts.place_sheet(world.user(world.editor), db.session.get(Draft, draft_id), sheet_id)
        db.session.commit()
    boxed_id = world.section_ids(draft_id)[-1]
    page = world.as_(world.editor).get(world.draft_url(draft_id)).get_data(as_text=True)
    block = section_block(page, boxed_id)
    quote = re.search(r"<blockquote>(.*?)</blockquote>", block, re.S)
    assert quote, block
    assert "Experience sheet: Our letter" in quote.group(1)
    assert "<em>Eau Partagée</em>" in quote.group(1)
    assert "<h4>Context</h4>" in quote.group(1) and "<em>twelve</em>" in quote.group(1)
    assert "<h4>Actors</h4>" not in quote.group(1)  # empty parts are left out
    assert 'class="draft-text draft-sheet"' in block
