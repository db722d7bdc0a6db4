"""The demo community: `flask demo` loads a public community people can log in to at once."""

import html
from collections import Counter
from zoneinfo import available_timezones

import pytest
from sqlalchemy import func, select

from cop.auth.models import User
from cop.communities.models import (
    Community,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Visibility,
)
from cop.drafts import services as draft_services
from cop.drafts import workflow
from cop.drafts.models import Draft, DraftKind, DraftStatus, MarkVerdict, SectionKind
from cop.extensions import db
from cop.notes.models import NoteUpdate
from cop.workshops import services as workshop_services

SLUG = "reseaux-collectifs-plateformes"
DOCUMENTED_ACCOUNTS = (
    "host@demo.example",
    "facilitator@demo.example",
    "editor@demo.example",
    "participant@demo.example",
    "observer@demo.example",
)
GUIDE_TITLE = "Repères : comment améliorer le travail en réseau"
THEMES = [
    "Échanges et diffusion d'informations",
    "Renforcement de capacités et innovation",
    "Mobilisation des membres et du grand public",
    "Représentation et plaidoyer",
]


def load(runner, *options):
    """Run `flask demo` with options and return the result."""
    return runner.invoke(args=["demo", *options])


def row_counts(app) -> dict[str, int]:
    """Count the rows the demo creates, table by table."""
    with app.app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (User, Organisation, Community, Membership, Draft)
        }


def demo_community() -> Community:
    """Return the demo community (inside an app context)."""
    return db.session.scalar(select(Community).filter_by(slug=SLUG))


def demo_guide() -> Draft:
    """Return the demo community's only guide (inside an app context)."""
    (guide,) = draft_services.drafts_of(demo_community(), DraftKind.GUIDE)
    return guide


def test_demo_creates_the_public_community_with_its_themes(runner, app):
    result = load(runner)
    assert result.exit_code == 0, result.output
    with app.app_context():
        community = demo_community()
        assert community.name == "Réseaux, collectifs et plateformes"
        assert community.visibility is Visibility.PUBLIC
        assert "repères" in community.description
        assert [theme.name for theme in community.themes] == THEMES


def test_demo_members_have_the_expected_roles_and_organisations(runner, app):
    assert load(runner).exit_code == 0
    with app.app_context():
        memberships = demo_community().memberships
        assert len(memberships) == 20
        roles = Counter(membership.role for membership in memberships)
        assert roles == {
            Role.HOST: 1,
            Role.FACILITATOR: 2,
            Role.EDITOR: 2,
            Role.PARTICIPANT: 14,
            Role.OBSERVER: 1,
        }
        assert all(membership.organisation is not None for membership in memberships)
        organisations = {membership.organisation for membership in memberships}
        assert len(organisations) == 18
        assert db.session.scalar(select(func.count()).select_from(Organisation)) == 18
        kinds = Counter(organisation.kind for organisation in organisations)
        assert kinds[OrganisationKind.LOCAL_AUTHORITY] == 2
        assert kinds[OrganisationKind.FOUNDATION] >= 1
        assert kinds[OrganisationKind.NETWORK] >= 1 and kinds[OrganisationKind.NGO] >= 1
        assert set(kinds) <= {
            OrganisationKind.NETWORK,
            OrganisationKind.NGO,
            OrganisationKind.LOCAL_AUTHORITY,
            OrganisationKind.FOUNDATION,
        }
        countries = Counter(organisation.country for organisation in organisations)
        assert countries.most_common(1)[0][0] == "FR" and len(countries) > 1
        users = [membership.user for membership in memberships]
        assert {user.email for user in users} >= set(DOCUMENTED_ACCOUNTS)
        assert "facilitator2@demo.example" in {user.email for user in users}
        assert all(user.locale == "fr" for user in users)
        assert all(user.time_zone in available_timezones() for user in users)
        assert Counter(user.time_zone for user in users).most_common(1)[0][0] == "Europe/Paris"


def test_demo_prints_the_accounts_the_password_and_the_address(runner):
    result = load(runner)
    assert result.exit_code == 0, result.output
    for email in DOCUMENTED_ACCOUNTS:
        assert email in result.output
    assert "cop-demo-2026" in result.output
    assert f"/c/{SLUG}" in result.output
    assert "demonstration only" in result.output


@pytest.mark.parametrize("email", DOCUMENTED_ACCOUNTS)
def test_each_documented_account_logs_in_with_the_demo_password(runner, client, email):
    assert load(runner).exit_code == 0
    response = client.post("/login", data={"email": email, "password": "cop-demo-2026"})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200


def test_password_option_sets_another_password(runner, client):
    assert load(runner, "--password", "other-password-123").exit_code == 0
    refused = client.post(
        "/login", data={"email": "host@demo.example", "password": "cop-demo-2026"}
    )
    assert refused.status_code != 302
    response = client.post(
        "/login", data={"email": "host@demo.example", "password": "other-password-123"}
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200


def test_too_short_a_password_is_refused_before_anything_is_written(runner, app):
    result = load(runner, "--password", "short")
    assert result.exit_code == 2
    assert "--password" in result.output
    assert row_counts(app) == {
        "User": 0,
        "Organisation": 0,
        "Community": 0,
        "Membership": 0,
        "Draft": 0,
    }


def test_a_second_run_fails_cleanly_without_duplicating_anything(runner, app):
    assert load(runner).exit_code == 0
    before = row_counts(app)
    result = load(runner)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert row_counts(app) == before


def test_a_taken_demo_email_stops_the_demo_and_writes_nothing(runner, app, make):
    make.user("Someone real", email="Editor@demo.example")
    result = load(runner)
    assert result.exit_code == 1
    assert "editor@demo.example" in result.output
    assert row_counts(app) == {
        "User": 1,
        "Organisation": 0,
        "Community": 0,
        "Membership": 0,
        "Draft": 0,
    }


def test_a_failure_halfway_writes_nothing(runner, app, monkeypatch):
    from cop.core.errors import ServiceError
    from cop.demo import community_services

    def refuse(*args, **kwargs):
        raise ServiceError("refused for the test")

    # Accounts and organisations are flushed by then; the rollback must take them back.
    monkeypatch.setattr(community_services, "create_community", refuse)
    result = load(runner)
    assert result.exit_code == 1
    assert "refused for the test" in result.output
    assert row_counts(app) == {
        "User": 0,
        "Organisation": 0,
        "Community": 0,
        "Membership": 0,
        "Draft": 0,
    }


def test_if_empty_does_nothing_when_the_database_has_users(runner, app, make):
    make.user()
    result = load(runner, "--if-empty")
    assert result.exit_code == 0
    assert "not loaded" in result.output
    assert row_counts(app) == {
        "User": 1,
        "Organisation": 0,
        "Community": 0,
        "Membership": 0,
        "Draft": 0,
    }


def test_if_empty_after_the_demo_changes_nothing(runner, app):
    assert load(runner).exit_code == 0
    before = row_counts(app)
    result = load(runner, "--if-empty")
    assert result.exit_code == 0
    assert row_counts(app) == before


def test_if_empty_loads_the_demo_into_an_empty_database(runner, app):
    assert load(runner, "--if-empty").exit_code == 0
    with app.app_context():
        assert demo_community() is not None


def test_anonymous_visitors_see_the_home_but_not_the_members(runner, client):
    assert load(runner).exit_code == 0
    home = client.get(f"/c/{SLUG}")
    assert home.status_code == 200
    page = html.unescape(home.get_data(as_text=True))
    assert "Réseaux, collectifs et plateformes" in page
    for theme in THEMES:
        assert theme in page
    members = client.get(f"/c/{SLUG}/members")
    assert members.status_code == 302
    assert "/login" in members.headers["Location"]


def test_demo_plans_five_workshop_days_with_an_agenda_and_parked_items(runner, app, client):
    assert load(runner).exit_code == 0
    with app.app_context():
        community = demo_community()
        days = workshop_services.days_of(community)
        assert len(days) == 5
        assert all(len(day.sessions) == 4 and day.time_zone == "Europe/Paris" for day in days)
        assert [day.sessions[1].theme.name for day in days[:4]] == [
            theme.name for theme in community.active_themes
        ]
        assert workshop_services.items_parked_before(days[1])
        second_day = days[1].id

    client.post("/login", data={"email": "participant@demo.example", "password": "cop-demo-2026"})
    page = html.unescape(client.get(f"/c/{SLUG}/workshops/{second_day}").text)
    assert "Recenser les lettres d'information régionales" in page


def test_demo_closes_the_first_days_session_with_a_record(runner, app, client):
    from datetime import date

    from cop.workshops.models import Attendance, Card, Phase, SessionRecord, Vote

    assert load(runner).exit_code == 0
    with app.app_context():
        days = workshop_services.days_of(demo_community())
        assert days[0].date < date.today() < days[1].date
        assert days[0].status.value == "closed"
        session = days[0].sessions[1]
        assert session.phase is Phase.CLOSED
        record = db.session.scalar(select(SessionRecord).filter_by(session_id=session.id))
        data = record.data
        session_id, first_day_id = session.id, days[0].id
        # Every dot within the session's budget: per person, and per person on one card.
        dots = Counter(db.session.scalars(select(Vote.user_id).filter_by(session_id=session.id)))
        assert max(dots.values()) <= session.dots_per_person
        per_card = Counter(
            db.session.execute(
                select(Vote.user_id, Vote.card_id).filter_by(session_id=session.id)
            ).all()
        )
        assert max(per_card.values()) <= session.max_dots_per_card
        hidden = db.session.scalar(
            select(Card).filter_by(session_id=session.id).where(Card.hidden_reason.is_not(None))
        )
        present = db.session.scalar(
            select(func.count(func.distinct(Attendance.user_id))).filter_by(session_id=session.id)
        )

    cards = [card for cluster in data["clusters"] for card in cluster["cards"]]
    cards += data["unclustered_cards"]
    assert len(cards) == 12 and hidden is not None
    assert hidden.id not in {card["id"] for card in cards}
    assert len(data["clusters"]) == 3 and all(cluster["cards"] for cluster in data["clusters"])
    assert sum(card["anonymous"] for card in cards) == 2
    assert all(card["author"] is None for card in cards if card["anonymous"])
    assert len({card["author"]["organisation"] for card in cards if card["author"]}) >= 5
    assert sum(card["votes"] for card in cards) == sum(dots.values()) - sum(
        count for (_user, card_id), count in per_card.items() if card_id == hidden.id
    )
    assert sorted(takeaway["kind"] for takeaway in data["takeaways"]) == [
        "condition",
        "key_issue",
        "lever",
    ]
    assert all(takeaway["cluster_ids"] for takeaway in data["takeaways"])
    assert data["parked_items"] and "lettre mensuelle" in data["note"]["text"]
    assert data["attendance"]["people"] == present == 14
    assert set(data["attendance"]["by_organisation_kind"]) == {
        "network",
        "ngo",
        "local_authority",
        "foundation",
    }

    client.post("/login", data={"email": "observer@demo.example", "password": "cop-demo-2026"})
    day_page = client.get(f"/c/{SLUG}/workshops/{first_day_id}").text
    assert f"/c/{SLUG}/sessions/{session_id}/record" in day_page
    page = html.unescape(client.get(f"/c/{SLUG}/sessions/{session_id}/record").text)
    assert "Des formats adaptés à chaque public" in page
    assert "06 12 34 56 78" not in page


def test_demo_guide_is_in_review_built_from_the_first_days_record(runner, app):
    from cop.workshops.models import SessionRecord

    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        assert guide.title == GUIDE_TITLE
        assert guide.status is DraftStatus.REVIEW
        assert guide.created_by.email == "editor@demo.example"
        # Titles in French: the services write them in the editor's language.
        titles = {section.kind: section.title for section in guide.sections}
        assert titles[SectionKind.INTRO] == "Introduction"
        assert titles[SectionKind.KEY_ISSUES] == "Enjeux clés"
        assert titles[SectionKind.LEVERS] == "Leviers"
        assert titles[SectionKind.CONDITIONS] == "Conditions favorables"

        closed = {
            record.session_id
            for record in db.session.scalars(select(SessionRecord))
            if record.data["session"]["theme"] is not None
        }
        links = {link.id: link for link in draft_services.links_of(guide)}
        used = {
            section.id: [i for i in draft_services.references_in(section.note.text) if i in links]
            for section in guide.sections
            if section.note is not None
        }
        used_links = [links[i] for ids in used.values() for i in ids]
        assert len(used_links) >= 6
        assert sum(1 for ids in used.values() if ids) >= 2
        assert {link.session_id for link in used_links} <= closed
        assert {link.source_kind.value for link in used_links} == {
            "takeaway",
            "card",
            "cluster",
            "note_excerpt",
        }
        # Every theme section of the closed session has words of the editors around its
        # material, and the introduction is written.
        theme_id = used_links[0].section.theme_id
        for section in guide.sections:
            if section.theme_id == theme_id or section.kind is SectionKind.INTRO:
                paragraphs = section.note.text.split("\n\n")
                assert any("[^s" not in p and not p.startswith(">") for p in paragraphs)

        # The notes are compacted: their text is what pages and the API read.
        note_ids = [section.note_id for section in guide.sections if section.note_id]
        assert note_ids
        pending = select(func.count()).where(NoteUpdate.note_id.in_(note_ids))
        assert db.session.scalar(pending) == 0
        for section in guide.sections:
            if section.note is not None:
                assert section.note.text == draft_services.section_text(section)


def test_demo_guide_places_a_signed_off_experience_sheet(runner, app):
    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        (placed,) = [section for section in guide.sections if section.kind is SectionKind.SHEET]
        sheet = placed.sheet
        assert sheet.status is DraftStatus.SIGNED_OFF
        assert sheet.organisation.name == "Collectif Eau Partagée"
        signer = db.session.scalar(
            select(Membership).filter_by(
                community_id=guide.community_id, user_id=sheet.signed_off_by_id
            )
        )
        assert signer.organisation_id == sheet.organisation_id
        assert [part.title for part in sheet.sections] == [
            "Contexte",
            "Acteurs",
            "Ce qui a été fait",
            "Résultats",
            "Enseignements",
            "Conditions pour la reproduire",
            "Contact",
        ]
        for part in sheet.sections:
            text = part.note.text
            assert text.count(". ") >= 1 and len(text) > 150, part.title
        # In the guide, right after the first theme's sections.
        before = guide.sections[guide.sections.index(placed) - 1]
        assert before.kind is SectionKind.CONDITIONS and before.note.text


def test_demo_guide_has_review_comments_and_validation_marks(runner, app):
    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        comments = workflow.comments_of(guide)
        threads = [comment for comment in comments if comment.parent_id is None]
        replies = [comment for comment in comments if comment.parent_id is not None]
        assert len(comments) >= 3 and replies
        assert sum(thread.resolved_at is not None for thread in threads) == 1
        assert workflow.open_comment_count(guide) == len(threads) - 1
        for thread in threads:
            assert thread.quoted and thread.quoted in thread.section.note.text
        roles = {
            membership.user_id: membership.role.value for membership in guide.community.memberships
        }
        assert {roles[thread.author_id] for thread in threads} >= {"participant", "facilitator"}

        marks = workflow.marks_by_section(guide)
        assert len(marks) >= 3
        verdicts = sum(marks.values(), Counter())
        assert verdicts[MarkVerdict.RECOGNISE.value] >= 3
        assert verdicts[MarkVerdict.NOT_WHAT_WE_SAID.value] >= 1


def test_demo_guide_has_revisions_and_a_published_first_version(runner, app):
    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        revisions = {revision.number: revision for revision in workflow.revisions_of(guide)}
        (publication,) = workflow.publications_of(guide)
        assert publication.version == 1
        assert db.session.get(User, publication.published_by_id).email == "host@demo.example"
        explicit = [
            revision.message
            for number, revision in sorted(revisions.items())
            if number != publication.revision.number
        ]
        assert explicit == ["Premier jet à partir des ateliers", "Reprise après la relecture"]
        # Published between the two, and edited since: the draft differs from v1.
        assert 1 < publication.revision.number < max(revisions)
        published_texts = [s["text"] for s in publication.revision.snapshot["sections"]]
        latest_texts = [s["text"] for s in revisions[max(revisions)].snapshot["sections"]]
        assert published_texts != latest_texts
        assert publication.revision.snapshot["sources"]
        moves = [
            (change.from_status.value, change.to_status.value)
            for change in reversed(workflow.status_changes_of(guide))
        ]
        assert moves == [
            ("draft", "review"),
            ("review", "approved"),
            ("approved", "draft"),
            ("draft", "review"),
        ]


def test_the_published_guide_shows_its_sources_and_the_experience_sheet(runner, app, client):
    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        sheet_title = next(s.sheet.title for s in guide.sections if s.sheet is not None)
        address = f"/p/{SLUG}/{guide.slug}"

    response = client.get(address)  # anonymous: the community is public
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert 'class="footnotes"' in page
    assert GUIDE_TITLE in page and sheet_title in page
    assert "Enjeux clés" in page
    assert "Ce qui marche, ce qui bloque" in page  # the footnotes name the session


def test_the_demo_guide_page_renders_for_the_editor(runner, app, client):
    assert load(runner).exit_code == 0
    with app.app_context():
        guide = demo_guide()
        address = f"/c/{SLUG}/drafts/{guide.id}"
        comment = workflow.comments_of(guide)[-1].body

    client.post("/login", data={"email": "editor@demo.example", "password": "cop-demo-2026"})
    response = client.get(address)
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert GUIDE_TITLE in page
    assert "Premier constat partagé" in page
    assert comment in page


def test_demo_prints_the_guides_addresses(runner, app):
    result = load(runner)
    assert result.exit_code == 0, result.output
    with app.app_context():
        guide = demo_guide()
        assert f"/c/{SLUG}/drafts/{guide.id}" in result.output
        assert f"/p/{SLUG}/{guide.slug}" in result.output
