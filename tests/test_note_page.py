"""The note page as the server sends it: text without JavaScript, settings, policy and weight."""

from html.parser import HTMLParser

import brotli
import pytest
from sqlalchemy import select

from cop.communities.models import Community, Role
from cop.extensions import db
from cop.notes import services
from cop.notes.models import Note

# DESIGN.md, "Front end": a live room weighs at most 200 KB compressed on a first visit.
LIVE_PAGE_BUDGET = 200_000


class Page(HTMLParser):
    """Collect a page's scripts, stylesheets and the note's data attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []
        self.script_bodies: list[str] = []
        self.stylesheets: list[str] = []
        self.note: dict[str, str] = {}
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
            self.script_bodies.append("")
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes["href"])
        elif attributes.get("id") == "note":
            self.note = attributes

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_bodies[-1] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture
def note_page(app, make, auth):
    """A community note with some text, and a function that logs a role in to open it."""
    slug = make.community()
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        note = services.create_note(None, community, "Ideas <b>bold</b>")
        note.text = "# Ideas\n\n<script>alert(1)</script> and *more*"
        db.session.commit()
        note_id = note.id
    path = f"/c/{slug}/notes/{note_id}"

    def open_as(role: Role, **headers):
        auth.login(make.member(slug, role))
        return auth.client.get(path, headers=headers)

    return open_as


def test_without_javascript_the_page_shows_the_saved_text(note_page):
    response = note_page(Role.PARTICIPANT)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h1 id="note-title">Ideas &lt;b&gt;bold&lt;/b&gt;</h1>' in page
    assert (
        '<pre class="note-text" id="note-saved-text"># Ideas\n\n'
        "&lt;script&gt;alert(1)&lt;/script&gt; and *more*</pre>"
    ) in page


def test_the_page_loads_one_module_and_no_inline_script(note_page):
    page = parse(note_page(Role.PARTICIPANT).get_data(as_text=True))
    assert page.scripts == [{"type": "module", "src": "/static/dist/note.js"}]
    assert page.script_bodies == [""]


@pytest.mark.parametrize(
    ("role", "can_write"), [(Role.PARTICIPANT, "true"), (Role.OBSERVER, "false")]
)
def test_the_editor_is_told_who_may_write(note_page, role, can_write):
    response = note_page(role)
    note = parse(response.get_data(as_text=True)).note
    assert note["data-can-write"] == can_write
    assert note["data-note-id"].isdigit()
    assert (
        note["data-preview-url"]
        == f"/c/{note['data-preview-url'].split('/')[2]}/notes/{note['data-note-id']}/preview"
    )
    read_only_notice = "You can follow this note as it changes, but not change it."
    assert (read_only_notice in response.get_data(as_text=True)) == (can_write == "false")


def test_the_scripts_sentences_come_translated_from_the_page(note_page):
    note = parse(
        note_page(Role.PARTICIPANT, **{"Accept-Language": "fr"}).get_data(as_text=True)
    ).note
    assert note["data-label-connected"] == "Connecté"
    assert note["data-label-reconnecting"] == "Reconnexion…"
    assert note["data-label-offline"] == "Hors ligne"
    labels = {name: value for name, value in note.items() if name.startswith("data-label-")}
    assert len(labels) >= 8 and all(labels.values())


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


def test_the_note_page_lets_in_its_editors_styles_and_no_script(note_page, client):
    first = note_page(Role.PARTICIPANT)
    policy = directives(first.headers["Content-Security-Policy"])
    nonce = parse(first.get_data(as_text=True)).note["data-csp-nonce"]
    assert len(nonce) >= 22
    # CodeMirror's <style> element gets in with this response's nonce, and nothing else inline.
    assert policy["style-src"] == f"'self' 'nonce-{nonce}'"
    # y-codemirror.next colours remote cursors with style attributes.
    assert policy["style-src-attr"] == "'unsafe-inline'"
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["connect-src"] == "'self'"
    second = client.get(first.request.path)
    assert parse(second.get_data(as_text=True)).note["data-csp-nonce"] != nonce
    assert f"'nonce-{nonce}'" not in second.headers["Content-Security-Policy"]


def test_other_pages_keep_the_strict_policy(note_page, client):
    note_page(Role.PARTICIPANT)
    for path in ("/", "/account", "/static/dist/note.js"):
        response = client.get(path)
        response.close()
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["style-src"] == "'self'" and "style-src-attr" not in policy, path


def test_a_first_visit_to_a_note_stays_within_the_live_room_budget(note_page, client, app):
    headers = {"Accept-Encoding": "br"}
    response = note_page(Role.PARTICIPANT, **headers)
    assert response.headers["Content-Encoding"] == "br"
    page = parse(brotli.decompress(response.get_data()).decode())
    sizes = {"html": len(response.get_data())}
    for kind, paths in (("css", page.stylesheets), ("js", [s["src"] for s in page.scripts])):
        sizes[kind] = 0
        for path in paths:
            asset = client.get(path, headers=headers)
            assert asset.status_code == 200 and asset.headers["Content-Encoding"] == "br", path
            sizes[kind] += len(asset.get_data())
            asset.close()
    total = sum(sizes.values())
    print(f"note page, first visit, brotli as served: {sizes} = {total} bytes")
    assert sizes["js"] > 50_000  # the bundle was measured, not a missing file
    assert total <= LIVE_PAGE_BUDGET


def test_the_bundle_is_served_as_javascript(client):
    response = client.get("/static/dist/note.js")
    response.close()
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"


def test_a_note_of_another_community_is_not_found(note_page, app, make, client):
    note_page(Role.PARTICIPANT)
    other = make.community()
    with app.app_context():
        note_id = db.session.scalar(select(Note.id))
    assert client.get(f"/c/{other}/notes/{note_id}").status_code in {403, 404}
