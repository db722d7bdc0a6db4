"""From a draft to a published guide: status moves, publication, review, revisions, XSS.

Builds on the `Drafting` world of tests/test_drafts.py. Who may reach each route is walked
role by role in tests/test_permissions.py.
"""

import gzip
import html
import random
import re
from html.parser import HTMLParser

import brotli
import pytest
from sqlalchemy import func, select

from cop.communities import services as community_services
from cop.communities.models import Membership, Visibility
from cop.drafts import services as drafts
from cop.drafts import workflow
from cop.drafts.models import (
    Draft,
    DraftRevision,
    DraftSection,
    DraftStatus,
    MarkVerdict,
    Publication,
    ReviewComment,
    SourceKind,
    SourceLink,
    StatusChange,
    ValidationMark,
)
from cop.extensions import db
from cop.notes import services as note_services
from cop.notes.models import NoteUpdate
from cop.workshops import record as records
from cop.workshops.models import Card, Cluster, Phase, WorkshopSession
from tests.test_drafts import Drafting, page_text, section_block

# The issue: a published guide weighs at most 60 KB compressed, without JavaScript.
PUBLIC_PAGE_BUDGET = 60_000


@pytest.fixture
def world(app, make, auth, client):
    return Drafting(app, make, auth, client)


def status_log(app, draft_id: int) -> list[tuple]:
    with app.app_context():
        return [
            (change.from_status, change.to_status, change.by_id, change.published_version)
            for change in db.session.scalars(
                select(StatusChange).filter_by(draft_id=draft_id).order_by(StatusChange.id)
            )
        ]


def publish(world, draft_id: int) -> int:
    """Take a guide through review and approval, publish it (services); return its version."""
    world.move_to(draft_id, DraftStatus.REVIEW, DraftStatus.APPROVED)
    with world.app.app_context():
        publication = workflow.publish(world.user(world.host), db.session.get(Draft, draft_id))
        db.session.commit()
        return publication.version


def words(response_or_html) -> str:
    """Return what a page says, without its tags, spaces collapsed."""
    page = response_or_html if isinstance(response_or_html, str) else page_text(response_or_html)
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def public_url(world, version: int | None = None, slug: str | None = None) -> str:
    tail = f"/v{version}" if version else ""
    return f"/p/{slug or world.slug}/reperes{tail}"


# --- Status moves and publication ----------------------------------------------------------


def test_a_guide_goes_through_review_and_approval_then_a_host_publishes_it(world, app):
    draft_id = world.guide()
    editor = world.as_(world.editor)
    assert (
        editor.post(world.draft_url(draft_id, "/status"), data={"to": "review"}).status_code == 303
    )
    page = page_text(editor.get(world.draft_url(draft_id)))
    assert "Status: In review." in page and "Approve" in page
    assert (
        editor.post(world.draft_url(draft_id, "/status"), data={"to": "approved"}).status_code
        == 303
    )
    assert "Publish version 1" not in page_text(editor.get(world.draft_url(draft_id)))
    before = world.state()
    assert editor.post(world.draft_url(draft_id, "/publish")).status_code == 403
    assert world.state() == before

    host = world.as_(world.host)
    assert "Publish version 1" in page_text(host.get(world.draft_url(draft_id)))
    response = host.post(world.draft_url(draft_id, "/publish"))
    assert response.status_code == 303
    with app.app_context():
        draft = db.session.get(Draft, draft_id)
        publication = db.session.scalar(select(Publication))
        assert draft.status is DraftStatus.DRAFT  # ready for the next round
        assert (publication.draft_id, publication.version, publication.published_by_id) == (
            draft_id,
            1,
            world.host,
        )
        assert (publication.revision.number, publication.revision.message) == (1, "Published as v1")
        assert publication.revision.author_id == world.host
    assert status_log(app, draft_id) == [
        (DraftStatus.DRAFT, DraftStatus.REVIEW, world.editor, None),
        (DraftStatus.REVIEW, DraftStatus.APPROVED, world.editor, None),
        (DraftStatus.APPROVED, DraftStatus.DRAFT, world.host, 1),
    ]
    page = " ".join(page_text(host.get(world.draft_url(draft_id))).split())
    assert "Hélène Host: Approved → Draft (published v1)" in page
    assert "Eddie Editor: Draft → In review" in page
    assert re.search(r'Published versions: <a href="/p/[^"]+/v1">v1</a>', page)


@pytest.mark.parametrize("statuses", [(), (DraftStatus.REVIEW,)])
def test_a_guide_is_published_only_once_approved(world, statuses):
    draft_id = world.guide()
    world.move_to(draft_id, *statuses)
    client = world.as_(world.host)
    before = world.state()
    response = client.post(world.draft_url(draft_id, "/publish"))
    assert response.status_code == 400
    assert "must be approved before it is published" in page_text(response)
    assert world.state() == before


@pytest.mark.parametrize(
    ("statuses", "to"),
    [
        ((), "approved"),  # review comes first
        ((), "draft"),
        ((DraftStatus.REVIEW,), "review"),
        ((DraftStatus.REVIEW, DraftStatus.APPROVED), "review"),
        ((), "signed_off"),  # a sheet's status
        ((), "published"),
        ((), ""),
    ],
)
def test_a_move_that_does_not_exist_is_refused(world, statuses, to):
    draft_id = world.guide()
    world.move_to(draft_id, *statuses)
    client = world.as_(world.editor)
    before = world.state()
    response = client.post(world.draft_url(draft_id, "/status"), data={"to": to})
    assert response.status_code == 400
    assert world.state() == before


@pytest.mark.parametrize("statuses", [(DraftStatus.REVIEW,), (DraftStatus.REVIEW, "approved")])
def test_an_editor_sends_a_guide_back_to_draft(world, app, statuses):
    draft_id = world.guide()
    world.move_to(draft_id, *[DraftStatus(status) for status in statuses])
    response = world.as_(world.editor).post(
        world.draft_url(draft_id, "/status"), data={"to": "draft"}
    )
    assert response.status_code == 303
    assert status_log(app, draft_id)[-1][1:3] == (DraftStatus.DRAFT, world.editor)


def test_a_published_version_never_changes(world, app):
    draft_id = world.guide()
    intro, issues, levers, *_rest = world.section_ids(draft_id)
    world.write(intro, "First words of the guide.")
    world.write(levers, "A lever that goes away later.")
    assert publish(world, draft_id) == 1
    world.write(intro, "Second words of the guide.")
    # The second round, over HTTP.
    world.move_to(draft_id, DraftStatus.REVIEW, DraftStatus.APPROVED)
    assert world.as_(world.host).post(world.draft_url(draft_id, "/publish")).status_code == 303
    # Later edits: new words, a renamed and a removed section.
    world.write(intro, "Third words, not published.")
    editor = world.as_(world.editor)
    editor.post(world.section_url(draft_id, issues, "/rename"), data={"title": "Renamed later"})
    editor.post(world.section_url(draft_id, levers, "/remove"))

    latest = world.as_(None).get(public_url(world))  # a member page, read logged out below
    assert latest.status_code == 404  # a private community: not for strangers
    client = world.as_(world.observer)
    latest, first = client.get(public_url(world)), client.get(public_url(world, 1))
    assert (latest.status_code, first.status_code) == (200, 200)
    latest, first = page_text(latest), page_text(first)
    assert "Second words of the guide." in latest and "(v2)" in latest
    assert "First words" not in latest and "Third words" not in latest
    assert "First words of the guide." in first and "(v1)" in first
    assert "Second words" not in first and "Third words" not in first
    for page in (latest, first):
        assert "Key issues" in page and "Renamed later" not in page
        assert "A lever that goes away later." in page
    assert f'href="{public_url(world, 1)}">v1</a>' in latest
    assert f'href="{public_url(world, 2)}">v2</a>' in first
    assert client.get(public_url(world, 3)).status_code == 404
    assert client.get(f"/p/{world.slug}/no-such-guide").status_code == 404
    with app.app_context():
        versions = db.session.scalars(select(Publication.version).order_by(Publication.id))
        assert list(versions) == [1, 2]


def test_a_guide_of_a_private_community_is_shown_to_its_members_only(world, app):
    draft_id = world.guide()
    publish(world, draft_id)
    assert world.as_(None).get(public_url(world)).status_code == 404
    assert world.as_(world.outsider).get(public_url(world)).status_code == 404
    assert world.as_(world.observer).get(public_url(world)).status_code == 200
    with app.app_context():
        world.community().visibility = Visibility.PUBLIC
        db.session.commit()
    assert world.as_(None).get(public_url(world)).status_code == 200
    assert world.client.get(public_url(world, 1)).status_code == 200
    # The guide's own draft stays for members.
    assert world.client.get(world.draft_url(draft_id)).status_code in {302, 401}


def test_a_guide_not_yet_published_has_no_public_page(world, app):
    world.guide()
    with app.app_context():
        world.community().visibility = Visibility.PUBLIC
        db.session.commit()
    assert world.as_(None).get(public_url(world)).status_code == 404
    assert world.as_(world.host).get(public_url(world)).status_code == 404


def test_each_linked_passage_is_footnoted_with_where_it_comes_from(world):
    draft_id = world.guide()
    section_id = world.section_ids(draft_id)[1]
    world.insert(section_id, SourceKind.CLUSTER, world.clusters["channels"])
    world.insert(section_id, SourceKind.TAKEAWAY, world.takeaways["trust"], "speaking")
    publish(world, draft_id)
    body = world.as_(world.nadia).get(public_url(world)).get_data(as_text=True)
    text = page_text(world.client.get(public_url(world)))
    assert body.count('<sup class="footnote-ref">') == 2
    notes = re.search(r'<section class="footnotes">(.*?)</section>', text, re.S)
    assert notes, text
    items = [words(item) for item in re.findall(r"<li [^>]*>(.*?)</li>", notes.group(1), re.S)]
    assert len(items) == 2
    assert items[0].startswith(
        "Day one (2027-01-14) · session “Sharing” · 3 contributions · "
        "2 organisations (NGO, Network or platform of NGOs)"
    )
    assert items[1].startswith("Day two (2027-02-11) · session “Speaking up” · 1 contribution")
    assert "organisation" not in items[1]  # Fanny wrote it down, for no organisation


def realistic_guide(world) -> int:
    """A guide of 4 themes × 3 sections, 300 source links and 3 experience sheets; published."""
    rng = random.Random(5)
    words = (
        "membres réseau partage information lettre mensuelle agenda commun temps relais "
        "petites structures plateforme territoire collectivité fondation confiance écoute "
        "plaidoyer porte-parole mobilisation bénévoles formation innovation outils rencontre "
        "visioconférence calendrier régions animation gouvernance moyens financement "
        "coopération échange pratiques retours expérience diagnostic priorités public"
    ).split()

    def sentence(count: int) -> str:
        chosen = [rng.choice(words) for _ in range(count)]
        return " ".join(chosen).capitalize() + "."

    with world.app.app_context():
        community = world.community()
        for name in ("Mobilising members and the public", "Capacity building and innovation"):
            community_services.add_theme(community, name)
        editor = world.user(world.editor)
        draft = drafts.create_guide(editor, community, "Repères")
        record, item = drafts.find_material(
            community,
            world.sessions["sharing"],
            SourceKind.CLUSTER,
            world.clusters["channels"],
            None,
        )
        evidence = drafts.evidence_of(community, record, item)
        sections = [section for section in draft.sections if section.note is not None]
        note_services.replace_text(sections[0].note, sentence(60), editor)
        for section in sections[1:]:
            paragraphs = []
            for _number in range(25):
                link = SourceLink(
                    section=section,
                    session_id=world.sessions["sharing"],
                    source_kind=SourceKind.CLUSTER,
                    source_id=world.clusters["channels"],
                    quoted_text="Channels",
                    evidence=evidence,
                    created_by_id=editor.id,
                )
                db.session.add(link)
                db.session.flush()
                paragraphs.append(f"{sentence(rng.randint(12, 30))} [^s{link.id}]")
            note_services.replace_text(section.note, "\n\n".join(paragraphs), editor)
        assert len(sections) == 13
        db.session.commit()
        draft_id = draft.id
    for number in range(3):
        sheet_id = world.sheet(f"Experience {number}")
        for section_id in world.section_ids(sheet_id)[:4]:
            world.write(section_id, sentence(40), by=world.nadia)
        with world.app.app_context():
            sheet = db.session.get(Draft, sheet_id)
            workflow.sign_off(world.user(world.nadia), sheet)
            drafts.place_sheet(world.user(world.editor), db.session.get(Draft, draft_id), sheet_id)
            db.session.commit()
    publish(world, draft_id)
    return draft_id


def test_the_public_page_is_light_runs_no_script_and_is_printable(world, app):
    realistic_guide(world)
    client = world.as_(world.observer)
    sizes = {}
    for encoding, decompress in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        response = client.get(public_url(world), headers={"Accept-Encoding": encoding})
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == encoding
        body = decompress(response.get_data()).decode()
        stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
        assert stylesheets == ["/static/css/guide.css"]
        css = client.get(stylesheets[0], headers={"Accept-Encoding": encoding})
        sizes[encoding] = len(response.get_data()) + len(css.get_data())
        css.close()
    print(f"public page of a 300-source guide, compressed with its stylesheet: {sizes}")
    assert "<script" not in body.lower()
    assert body.count('<li id="fn') == 300
    assert body.count("<blockquote>") >= 3  # the experience sheets
    assert len(body) > 60_000  # the guide was measured, not an empty page
    assert max(sizes.values()) <= PUBLIC_PAGE_BUDGET
    assert 'rel="stylesheet"' in body and "@media print" in world.client.get(
        "/static/css/guide.css"
    ).get_data(as_text=True)


# --- Review comments -----------------------------------------------------------------------


@pytest.mark.parametrize("statuses", [(), (DraftStatus.REVIEW, DraftStatus.APPROVED)])
def test_comments_are_open_only_during_review(world, statuses):
    draft_id = world.guide()
    world.move_to(draft_id, *statuses)
    section_id = world.section_ids(draft_id)[1]
    client = world.as_(world.nadia)
    before = world.state()
    response = client.post(
        world.section_url(draft_id, section_id, "/comments"), data={"body": "Hm"}
    )
    assert response.status_code == 400
    assert "open while the guide is in review" in page_text(response)
    response = client.post(
        world.section_url(draft_id, section_id, "/validation"), data={"verdict": "recognise"}
    )
    assert response.status_code == 400
    assert world.state() == before


def comment_rows(app) -> list[tuple]:
    with app.app_context():
        return [
            (c.id, c.section_id, c.parent_id, c.author_id, c.quoted, c.body, c.resolved_by_id)
            for c in db.session.scalars(select(ReviewComment).order_by(ReviewComment.id))
        ]


def test_a_thread_gets_replies_is_resolved_and_reopened(world, app):
    draft_id = world.guide()
    world.move_to(draft_id, DraftStatus.REVIEW)
    section_id = world.section_ids(draft_id)[1]
    comments = world.section_url(draft_id, section_id, "/comments")
    nadia = world.as_(world.nadia)
    response = nadia.post(comments, data={"quoted": "  a   shared\ncalendar ", "body": "Ours?"})
    assert response.status_code == 302
    [(thread, *_rest)] = comment_rows(app)
    world.as_(world.louis).post(comments, data={"parent_id": thread, "body": "Yes, ours."})
    reply = comment_rows(app)[-1][0]
    # A reply to a reply joins the thread.
    world.as_(world.noe).post(comments, data={"parent_id": reply, "body": "Agreed."})
    assert comment_rows(app) == [
        (thread, section_id, None, world.nadia, "a shared calendar", "Ours?", None),
        (reply, section_id, thread, world.louis, "", "Yes, ours.", None),
        (reply + 1, section_id, thread, world.noe, "", "Agreed.", None),
    ]
    page = " ".join(page_text(world.client.get(world.draft_url(draft_id))).split())
    assert "1 open comment." in page
    block = section_block(page, section_id)
    assert block.index("Ours?") < block.index("Yes, ours.") < block.index("Agreed.")

    resolve = world.draft_url(draft_id, f"/comments/{thread}/resolve")
    before = world.state()
    assert world.as_(world.louis).post(resolve).status_code == 403  # not theirs
    assert world.state() == before
    # The author resolves the thread, here through one of its replies.
    assert (
        world.as_(world.nadia)
        .post(world.draft_url(draft_id, f"/comments/{reply}/resolve"))
        .status_code
        == 302
    )
    assert comment_rows(app)[0][-1] == world.nadia
    page = " ".join(page_text(world.client.get(world.draft_url(draft_id))).split())
    assert "0 open comments." in page and "draft-thread is-resolved" in page
    assert world.as_(world.louis).post(resolve, data={"reopen": "1"}).status_code == 403
    assert world.as_(world.editor).post(resolve, data={"reopen": "1"}).status_code == 302
    assert comment_rows(app)[0][-1] is None
    assert "1 open comment." in page_text(world.client.get(world.draft_url(draft_id)))
    assert world.as_(world.host).post(resolve).status_code == 302
    with app.app_context():
        assert workflow.open_comment_count(db.session.get(Draft, draft_id)) == 0


def test_bad_comments_are_refused_and_change_nothing(world, app):
    draft_id = world.guide()
    other_id = world.guide("Other guide")
    world.move_to(draft_id, DraftStatus.REVIEW)
    world.move_to(other_id, DraftStatus.REVIEW)
    first, second = world.section_ids(draft_id)[1:3]
    other_section = world.section_ids(other_id)[1]
    with app.app_context():
        draft, other = db.session.get(Draft, draft_id), db.session.get(Draft, other_id)
        thread = workflow.add_comment(
            world.user(world.nadia), draft, db.session.get(DraftSection, first), "Thread"
        ).id
        foreign = workflow.add_comment(
            world.user(world.nadia), other, db.session.get(DraftSection, other_section), "Else"
        ).id
        db.session.commit()
    client = world.as_(world.louis)
    url = world.section_url(draft_id, first, "/comments")
    before = world.state()
    for path, form, status, reason in [
        (url, {"body": "   "}, 400, "A comment needs some text."),
        (url, {"body": "x" * 2001}, 400, "at most 2000 characters"),
        (url, {"body": "ok", "quoted": "q" * 1001}, 400, "at most 1000 characters"),
        (
            world.section_url(draft_id, second, "/comments"),
            {"body": "ok", "parent_id": thread},
            400,
            "not one of this section's",
        ),
        (url, {"body": "ok", "parent_id": foreign}, 404, ""),
        (url, {"body": "ok", "parent_id": "x"}, 400, "must be a number"),
        (world.section_url(draft_id, other_section, "/comments"), {"body": "ok"}, 404, ""),
        (world.draft_url(draft_id, f"/comments/{foreign}/resolve"), {}, 404, ""),
    ]:
        response = client.post(path, data=form)
        assert response.status_code == status, (path, form)
        assert reason in page_text(response)
    assert world.state() == before


@pytest.mark.parametrize(
    ("who", "allowed"), [("facilitator", True), ("paula", True), ("observer", False)]
)
def test_participants_and_facilitators_comment_and_validate_observers_do_not(
    world, app, who, allowed
):
    draft_id = world.guide()
    world.move_to(draft_id, DraftStatus.REVIEW)
    section_id = world.section_ids(draft_id)[1]
    client = world.as_(getattr(world, who))
    page = client.get(world.draft_url(draft_id)).get_data(as_text=True)
    assert ("Do you recognise what your workshops said?" in page) is allowed
    commented = client.post(
        world.section_url(draft_id, section_id, "/comments"), data={"body": "Hi"}
    )
    marked = client.post(
        world.section_url(draft_id, section_id, "/validation"), data={"verdict": "recognise"}
    )
    assert (commented.status_code, marked.status_code) == ((302, 302) if allowed else (403, 403))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReviewComment)) == allowed
        assert db.session.scalar(select(func.count()).select_from(ValidationMark)) == allowed


# --- Validation marks ----------------------------------------------------------------------


def marks(app) -> set[tuple]:
    with app.app_context():
        return {
            (m.section_id, m.user_id, m.verdict, m.comment)
            for m in db.session.scalars(select(ValidationMark))
        }


def test_a_person_has_one_mark_per_section_and_may_change_it(world, app):
    draft_id = world.guide()
    world.move_to(draft_id, DraftStatus.REVIEW)
    first, second = world.section_ids(draft_id)[1:3]
    nadia = world.as_(world.nadia)
    url = world.section_url(draft_id, first, "/validation")
    nadia.post(url, data={"verdict": "recognise", "comment": "Yes"})
    nadia.post(world.section_url(draft_id, second, "/validation"), data={"verdict": "recognise"})
    world.as_(world.louis).post(url, data={"verdict": "not_what_we_said"})
    world.as_(world.nadia).post(url, data={"verdict": "not_what_we_said", "comment": " Not quite "})
    assert marks(app) == {
        (first, world.nadia, MarkVerdict.NOT_WHAT_WE_SAID, "Not quite"),
        (second, world.nadia, MarkVerdict.RECOGNISE, ""),
        (first, world.louis, MarkVerdict.NOT_WHAT_WE_SAID, ""),
    }
    page = " ".join(page_text(world.client.get(world.draft_url(draft_id))).split())
    first_block, second_block = section_block(page, first), section_block(page, second)
    assert "« I recognise this »: 0 · « Not what we said »: 2" in first_block
    assert "« I recognise this »: 1 · « Not what we said »: 0" in second_block
    assert re.search(r'value="not_what_we_said" checked', first_block)
    assert 'value="Not quite"' in first_block

    before = world.state()
    for form, reason in [
        ({"verdict": "maybe"}, "unknown value"),
        ({"verdict": ""}, "unknown value"),
        ({"verdict": "recognise", "comment": "c" * 2001}, "at most 2000 characters"),
    ]:
        response = world.client.post(url, data=form)
        assert response.status_code == 400 and reason in page_text(response), form
    assert world.state() == before
    # After review the counts stay in view.
    world.move_to(draft_id, DraftStatus.APPROVED)
    page = " ".join(page_text(world.as_(world.editor).get(world.draft_url(draft_id))).split())
    assert "« Not what we said »: 2" in section_block(page, first)
    assert "Do you recognise" not in page


# --- Revisions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [("", "what this revision is"), ("  \n ", "what this revision is"), ("m" * 301, "at most 300")],
)
def test_a_revision_needs_a_short_message(world, message, reason):
    draft_id = world.guide()
    client = world.as_(world.editor)
    before = world.state()
    response = client.post(world.draft_url(draft_id, "/revisions"), data={"message": message})
    assert response.status_code == 400 and reason in page_text(response)
    assert world.state() == before


def two_revisions(world) -> tuple[int, list[int]]:
    """A guide saved twice: « monthly letter », then « weekly letter and a calendar »."""
    draft_id = world.guide()
    ids = world.section_ids(draft_id)
    client = world.as_(world.editor)
    world.write(ids[1], "Members share a monthly letter.\n\nThey meet in spring.")
    world.write(ids[2], "Short formats.")
    response = client.post(world.draft_url(draft_id, "/revisions"), data={"message": "First draft"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(world.draft_url(draft_id, "/revisions"))
    world.write(ids[1], "Members share a weekly letter and a calendar.\n\nThey meet in spring.")
    client.post(world.section_url(draft_id, ids[3], "/rename"), data={"title": "Conditions"})
    client.post(world.draft_url(draft_id, "/sections"), data={"title": "Added later"})
    client.post(world.draft_url(draft_id, "/revisions"), data={"message": "Second"})
    return draft_id, world.section_ids(draft_id)


def test_revisions_are_listed_and_each_shows_the_draft_as_it_was(world):
    draft_id, ids = two_revisions(world)
    client = world.client
    listing = words(client.get(world.draft_url(draft_id, "/revisions")))
    assert "Revision 2 : Second Eddie Editor" in listing
    assert "Revision 1 : First draft Eddie Editor" in listing
    assert listing.index("Revision 2 : Second") < listing.index("Revision 1 : First draft")
    first = page_text(client.get(world.draft_url(draft_id, "/revisions/1")))
    assert "Revision 1: First draft" in first
    assert "monthly letter" in first and "weekly" not in first and "Added later" not in first
    second = page_text(client.get(world.draft_url(draft_id, "/revisions/2")))
    assert "weekly letter" in second and "Added later" in second
    assert client.get(world.draft_url(draft_id, "/revisions/3")).status_code == 404


def diff_entries(page: str) -> dict[str, tuple[str, str]]:
    """Return each section's badge and diff on the compare page, by its title."""
    entries = re.findall(
        r'<h2 id="diff-\d+">(.*?)(?:<span class="badge">(.*?)</span>)?</h2>\s*'
        r'(?:<pre class="diff">(.*?)</pre>)?',
        page,
        re.S,
    )
    return {words(title): (badge, diff) for title, badge, diff in entries}


def test_comparing_two_revisions_shows_the_words_removed_and_added(world):
    draft_id, ids = two_revisions(world)
    page = page_text(world.client.get(world.draft_url(draft_id, "/compare?from=1&to=2")))
    assert "From revision 1 to revision 2" in page
    entries = diff_entries(page)
    assert entries["Advocacy — Key issues"] == ("unchanged", "")
    badge, changed = entries["Information sharing — Key issues"]
    assert badge == ""
    assert "<del>monthly</del>" in changed
    assert "<ins>weekly</ins>" in changed and "<ins> and a calendar</ins>" in changed
    assert "They meet in spring." in changed and "<del>They" not in changed
    assert entries["Information sharing — Levers"] == ("unchanged", "")
    assert entries["Added later"] == ("added", "")  # a new section without text yet
    assert entries["Information sharing — Conditions"] == (
        "",
        "",
    )  # renamed: changed, its text the same (none)
    # And the other way round, against the current draft.
    world.write(ids[2], "Short, regular formats.")
    page = page_text(world.client.get(world.draft_url(draft_id, "/compare?from=2&to=current")))
    assert "From revision 2 to current draft" in page
    assert "<ins>, regular</ins>" in diff_entries(page)["Information sharing — Levers"][1]
    # Reversed: what was added reads as removed.
    page = page_text(world.client.get(world.draft_url(draft_id, "/compare?from=2&to=1")))
    assert diff_entries(page)["Added later"] == ("removed", "")
    assert "<del>weekly</del>" in diff_entries(page)["Information sharing — Key issues"][1]


@pytest.mark.parametrize(
    ("query", "status"), [("from=abc", 400), ("from=9", 404), ("to=-1", 400), ("from=²", 400)]
)
def test_comparing_with_a_revision_that_is_not_there_is_refused(world, query, status):
    draft_id, _ids = two_revisions(world)
    response = world.client.get(world.draft_url(draft_id, f"/compare?{query}"))
    assert response.status_code == status


def test_restoring_a_revision_brings_its_texts_back_as_a_new_revision(world, app):
    draft_id, ids = two_revisions(world)
    world.write(ids[-1], "Text of the section added later.")
    with app.app_context():
        snapshots = {r.number: r.snapshot for r in db.session.scalars(select(DraftRevision))}
        note_id = db.session.get(DraftSection, ids[1]).note_id
        log = list(db.session.execute(select(NoteUpdate.__table__).filter_by(note_id=note_id)))
    response = world.as_(world.editor).post(world.draft_url(draft_id, "/revisions/1/restore"))
    assert response.status_code == 303
    assert world.text(ids[1]) == "Members share a monthly letter.\n\nThey meet in spring."
    assert world.text(ids[-1]) == "Text of the section added later."  # not in revision 1
    with app.app_context():
        revisions = {r.number: r for r in db.session.scalars(select(DraftRevision))}
        assert sorted(revisions) == [1, 2, 3]
        assert revisions[3].message == "Restored revision 1"
        assert revisions[3].author_id == world.editor
        assert {n: revisions[n].snapshot for n in (1, 2)} == snapshots
        restored = {s["id"]: s["text"] for s in revisions[3].snapshot["sections"]}
        assert restored[ids[1]] == "Members share a monthly letter.\n\nThey meet in spring."
        # A new change on top of the log: nothing of the history was rewritten.
        after = list(db.session.execute(select(NoteUpdate.__table__).filter_by(note_id=note_id)))
        assert after[: len(log)] == log and len(after) == len(log) + 1
    listing = page_text(world.client.get(world.draft_url(draft_id, "/revisions")))
    assert "Restored revision 1" in listing
    assert world.client.post(world.draft_url(draft_id, "/revisions/9/restore")).status_code == 404


def test_a_section_removed_since_a_revision_stays_removed_when_it_is_restored(world):
    draft_id, ids = two_revisions(world)
    world.as_(world.editor).post(world.section_url(draft_id, ids[2], "/remove"))
    assert world.client.post(world.draft_url(draft_id, "/revisions/1/restore")).status_code == 303
    assert ids[2] not in world.section_ids(draft_id)
    # Revision 1 still holds its text.
    assert "Short formats." in page_text(
        world.client.get(world.draft_url(draft_id, "/revisions/1"))
    )


# --- Hostile input in every page ------------------------------------------------------------

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "<svg onload=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "[x](javascript&colon;alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "![x](javascript:alert(1))",
    "<iframe src=javascript:alert(1)></iframe>",
    "</script><script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "[x]: javascript:alert(1)\n\n[link][x]",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]
BAD_TAGS = {"script", "img", "svg", "math", "iframe", "style", "object", "embed", "mglyph"}
# The section editor's own scripts: its module, and the data it reads (never run).
EDITOR_PAGES = {"section with the text", "section with the cards", "free section"}
JSON = "application/json"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcset", "background"}


def scheme_of(url: str) -> str | None:
    """Return the scheme a browser reads in a URL (None for a relative URL).

    Browsers strip leading and trailing C0 controls and spaces and drop tabs and newlines
    anywhere before parsing.
    """
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(33)))))
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


class Tags(HTMLParser):
    """Collect every start tag of a page with its attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser.tags


def hostile_guide(world, app) -> dict:
    """A guide made of hostile input everywhere a person types, reviewed and published.

    Built with the services in one go: what is tested is how the pages render it.
    """
    joined = "\n\n".join(PAYLOADS)
    with app.app_context():
        editor, nadia = world.user(world.editor), world.user(world.nadia)
        community = world.community()
        theme = community_services.add_theme(community, "<img src=x onerror=alert(1)> theme")
        sharing = db.session.get(WorkshopSession, world.sessions["sharing"])
        sharing.title = "</script><script>alert(1)</script>"
        cluster = Cluster(session_id=sharing.id, label="<svg onload=alert(1)>", position=9)
        db.session.add(cluster)
        db.session.flush()
        cards = [Card(session_id=sharing.id, author_id=world.nadia, body=p) for p in PAYLOADS]
        for card in cards:
            card.cluster_id = cluster.id
        db.session.add_all(cards)
        sharing.phase = Phase.CLOSED
        records.freeze(sharing, world.user(world.host))

        draft = drafts.create_guide(editor, community, "<script>alert(1)</script> Repères")
        sections = list(draft.sections)
        for section, payload in zip(sections, PAYLOADS, strict=False):
            drafts.rename_section(section, payload)
        free = drafts.add_section(editor, draft, "<svg onload=alert(1)>", theme.id)
        note_services.replace_text(sections[1].note, joined, editor)
        for item in [(SourceKind.CARD, card.id) for card in cards] + [
            (SourceKind.CLUSTER, cluster.id)
        ]:
            drafts.insert_material(editor, sections[2], sharing.id, *item, None, True)
        drafts.insert_material(editor, free, sharing.id, SourceKind.CARD, cards[0].id, None, False)

        membership = db.session.scalar(select(Membership).filter_by(user_id=world.nadia))
        sheet = drafts.create_sheet(nadia, membership, "<img src=x onerror=alert(1)> sheet")
        for part in sheet.sections[:2]:
            note_services.replace_text(part.note, joined, nadia)
        workflow.sign_off(nadia, sheet)
        drafts.place_sheet(editor, draft, sheet.id)

        workflow.save_revision(editor, draft, PAYLOADS[0])
        workflow.move(editor, draft, DraftStatus.REVIEW)
        for payload in PAYLOADS:
            workflow.add_comment(nadia, draft, sections[1], payload, quoted=payload)
        for section, payload in zip(sections, PAYLOADS, strict=False):
            workflow.mark(nadia, draft, section, MarkVerdict.RECOGNISE, payload)
        workflow.move(editor, draft, DraftStatus.APPROVED)
        workflow.publish(world.user(world.host), draft)
        # A second round: a change to compare, and the review forms (with her marks) shown.
        note_services.replace_text(sections[1].note, joined + "\n\n" + PAYLOADS[1], editor)
        workflow.move(editor, draft, DraftStatus.REVIEW)
        db.session.commit()
        return {
            "draft_id": draft.id,
            "slug": draft.slug,
            "sections": [section.id for section in sections],
            "sheet_id": sheet.id,
            "free": free.id,
        }


def test_no_hostile_input_becomes_markup_in_any_page(world, app):
    made = hostile_guide(world, app)
    draft_id, ids = made["draft_id"], made["sections"]
    pages = {
        "index": (world.editor, f"/c/{world.slug}/drafts"),
        "draft": (world.editor, world.draft_url(draft_id)),
        # Her marks' comments come back in the form's fields (attributes).
        "draft as the participant": (world.nadia, world.draft_url(draft_id)),
        "section with the text": (world.editor, world.section_url(draft_id, ids[1])),
        "section with the cards": (world.editor, world.section_url(draft_id, ids[2])),
        "free section": (world.editor, world.section_url(draft_id, made["free"])),
        "sheet": (world.nadia, world.draft_url(made["sheet_id"])),
        "revisions": (world.editor, world.draft_url(draft_id, "/revisions")),
        "revision": (world.editor, world.draft_url(draft_id, "/revisions/1")),
        "published revision": (world.editor, world.draft_url(draft_id, "/revisions/2")),
        "compare": (world.editor, world.draft_url(draft_id, "/compare?from=1&to=current")),
        "public": (world.observer, f"/p/{world.slug}/{made['slug']}"),
    }
    bodies = {}
    for name, (who, path) in pages.items():
        response = world.as_(who).get(path)
        assert response.status_code == 200, name
        bodies[name] = page = response.get_data(as_text=True)
        tags = tags_of(page)
        scripts = [attributes for tag, attributes in tags if tag == "script"]
        assert all(
            attributes.get("src") == "/static/dist/note.js"
            or (attributes.get("type"), attributes.get("id")) == (JSON, "source-labels")
            for attributes in scripts
        ), (name, scripts)
        assert len(scripts) == (2 if name in EDITOR_PAGES else 0), name
        for tag, attributes in tags:
            assert tag not in BAD_TAGS or (tag == "script" and attributes in scripts), (name, tag)
            for attribute, value in attributes.items():
                assert not attribute.startswith("on"), (name, tag, attribute)
                if attribute in URL_ATTRIBUTES and value is not None:
                    assert scheme_of(value) in {None, "http", "https", "mailto"}, (name, value)
        # The payloads were shown, as text: the page was not merely empty of them.
        assert "alert(1)" in html.unescape(re.sub(r"<[^>]+>", "", page)), name

    assert "&lt;script&gt;alert(1)&lt;/script&gt; Repères" in bodies["public"]
    assert "onerror=alert(1)&gt; sheet" in bodies["public"]
    assert bodies["draft"].count("&lt;svg onload=alert(1)&gt;") >= 2  # a title and a cluster
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in bodies["draft as the participant"]
    for name in EDITOR_PAGES:
        # The data the editor's script reads cannot close its element.
        data = re.search(
            r'<script type="application/json" id="source-labels"[^>]*>(.*?)</script>',
            bodies[name],
            re.S,
        )
        assert data and "<" not in data.group(1) and "alert(1)" in data.group(1), name
