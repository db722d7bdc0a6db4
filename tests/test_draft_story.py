"""From a closed session to a published guide, as one story over HTTP and Socket.IO.

A real server serves the community. An editor builds a guide from the session's record
through the material panel while a second editor follows the section live; they edit it
live, a participant reviews it, the editor approves and the host publishes. The public page
and every export hold the text with its source footnotes.
"""

import html
import io
import re
import threading
import zipfile
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from cop import ROOT
from cop.auth.models import User
from cop.communities.models import Community, Role
from cop.drafts import services as draft_services
from cop.drafts.models import Draft, DraftSection, SectionKind, SourceLink
from cop.extensions import db
from cop.notes.models import Note
from cop.notes.services import current_text, replace_text
from tests.conftest import PASSWORD
from tests.live_client import WAIT_LIMIT, YClient, wait_for
from tests.test_draft_exports import pdf_text
from tests.test_server import free_port, server_environment, start_server  # noqa: F401
from tests.test_session_record import Workshop


class Browser:
    """One person's HTTP session with the server, sending the page's CSRF token like a form."""

    def __init__(self, base_url: str, email: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.token = ""
        response = self.post("/login", {"email": email, "password": PASSWORD}, page="/login")
        assert response.status_code == 302, response.text

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.base_url + path, timeout=WAIT_LIMIT)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict, page: str | None = None) -> requests.Response:
        self.get(page or path.rsplit("/", 1)[0] or "/")
        return self.http.post(
            self.base_url + path,
            data=data | {"csrf_token": self.token},
            allow_redirects=False,
            timeout=WAIT_LIMIT,
        )

    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())


@pytest.fixture
def story(app, make, auth, client, start_server):  # noqa: F811 - the fixture imported above
    workshop = Workshop(app, make, auth, client)
    workshop.run()
    editors = [make.member(workshop.slug, Role.EDITOR) for _ in range(2)]
    port = free_port()
    server = start_server(
        [str(ROOT / "wsgi.py")],
        server_environment(app.config["SQLALCHEMY_DATABASE_URI"], port),
    )
    server.wait_until_healthy()
    return workshop, editors, make, server


def test_a_session_becomes_a_published_guide_with_its_sources(story, app):
    workshop, (editor_id, second_editor_id), make, server = story
    slug = workshop.slug
    editor = Browser(server.url, make.email_of(editor_id))

    # The editor creates the guide; it has the theme's sections, each a live note.
    response = editor.post(f"/c/{slug}/drafts", {"title": "Repères du réseau"})
    assert response.status_code == 303
    draft_path = response.headers["Location"]
    with app.app_context():
        draft = db.session.scalar(select(Draft))
        section = db.session.scalar(
            select(DraftSection).filter_by(draft_id=draft.id, kind=SectionKind.KEY_ISSUES)
        )
        section_id, note_id, guide_slug = section.id, section.note_id, draft.slug
    section_path = f"{draft_path}/sections/{section_id}"

    # A second editor has the section open live while the first inserts material.
    follower = Browser(server.url, make.email_of(second_editor_id))
    live = YClient(server.url, note_id, follower.cookie())
    panel = editor.get(section_path + "?kind=takeaway").text
    takeaway = re.search(
        r'name="session_id" value="(\d+)">\s*<input type="hidden" name="kind" '
        r'value="takeaway">\s*<input type="hidden" name="source_id" value="(\d+)">',
        panel,
    )
    assert takeaway is not None, "the material panel lists the session's takeaways"
    response = editor.post(
        section_path + "/material",
        {"session_id": takeaway.group(1), "kind": "takeaway", "source_id": takeaway.group(2)},
        page=section_path,
    )
    assert response.status_code == 303
    with app.app_context():
        link = db.session.scalar(select(SourceLink))
        reference, quoted = f"[^s{link.id}]", link.quoted_text
    wait_for(lambda: reference in live.value(), message="the insertion reaching the live editor")
    assert quoted in live.value()

    # They edit the section live, over Socket.IO, around the inserted words.
    words = "Ce que les ateliers ont montré.\n\n"
    live.insert(0, words)
    wait_for(lambda: words in stored_text(app, note_id), message="the live edit being stored")

    # Review: a participant comments and recognises the section; approved; published.
    assert editor.post(f"{draft_path}/status", {"to": "review"}).status_code == 303
    participant = Browser(server.url, make.email_of(workshop.nadia))
    response = participant.post(
        f"{section_path}/comments",
        {"quoted": quoted[:40], "body": "Oui, c'est bien ce que nous avons dit."},
        page=draft_path,
    )
    assert response.status_code == 302
    response = participant.post(
        f"{section_path}/validation", {"verdict": "recognise"}, page=draft_path
    )
    assert response.status_code == 302
    page = editor.get(draft_path).text
    assert "Oui, c&#39;est bien ce que nous avons dit." in page
    assert "1 open comment" in page
    assert editor.post(f"{draft_path}/status", {"to": "approved"}).status_code == 303
    assert editor.post(f"{draft_path}/publish", {}).status_code == 403
    host = Browser(server.url, make.email_of(workshop.host))
    assert host.post(f"{draft_path}/publish", {}).status_code == 303

    # Anyone who may see the community reads v1; each source is a real footnote.
    public = participant.get(f"/p/{slug}/{guide_slug}")
    assert public.status_code == 200
    assert "Ce que les ateliers ont montré." in public.text
    assert 'class="footnotes"' in public.text and "Day 1" in public.text
    assert 'session “What works, what "blocks" / why”' in html.unescape(public.text)
    assert "<script" not in public.text

    # Each export of the published version carries the words and their source.
    exports = {
        fmt: participant.get(f"/p/{slug}/{guide_slug}/v1.{fmt}")
        for fmt in ("md", "html", "docx", "odt", "pdf")
    }
    assert all(response.status_code == 200 for response in exports.values())
    assert reference in exports["md"].text and f"{reference}: Day 1" in exports["md"].text
    assert "Ce que les ateliers ont montré." in exports["html"].text
    assert 'class="footnotes"' in exports["html"].text
    document_xml, footnotes_xml = unzipped(
        exports["docx"], "word/document.xml", "word/footnotes.xml"
    )
    assert "Ce que les ateliers ont montré." in document_xml and "Day 1" in footnotes_xml
    (content_xml,) = unzipped(exports["odt"], "content.xml")
    assert "Ce que les ateliers ont montré." in content_xml
    assert re.search(r"<text:note [^>]*>.*Day 1", content_xml, re.S)
    printed = " ".join(pdf_text(exports["pdf"].content).split())
    assert "Ce que les ateliers ont montré." in printed and "Day 1" in printed

    # The draft went back to draft for the next round; v1 no longer changes.
    live.insert(0, "Deuxième tour. ")
    wait_for(lambda: "Deuxième tour." in stored_text(app, note_id), message="a later edit")
    assert "Deuxième tour." not in participant.get(f"/p/{slug}/{guide_slug}/v1").text
    live.close()


def test_the_server_answers_while_it_makes_a_long_pdf(app, make, start_server):  # noqa: F811
    # The PDF is laid out in a child process: the server's event loop keeps serving meanwhile.
    slug = make.community()
    editor_id = make.member(slug, Role.EDITOR)
    with app.app_context():
        editor = db.session.get(User, editor_id)
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        draft = draft_services.create_guide(editor, community, "Un long guide")
        db.session.flush()
        paragraphs = (f"Paragraphe {n} : ce que les ateliers ont montré, " * 3 for n in range(1500))
        replace_text(draft.sections[0].note, "\n\n".join(paragraphs), editor)
        db.session.commit()
        export_path = f"/c/{slug}/drafts/{draft.id}/export.pdf"
    server = start_server(
        [str(ROOT / "wsgi.py")],
        server_environment(app.config["SQLALCHEMY_DATABASE_URI"], free_port()),
    )
    server.wait_until_healthy()
    editor = Browser(server.url, make.email_of(editor_id))
    answers = {}
    export = threading.Thread(
        target=lambda: answers.update(pdf=editor.http.get(server.url + export_path, timeout=120))
    )
    export.start()
    wait_for(
        lambda: pdf_children(server.process.pid),
        message="the server starting a child process to make the PDF",
    )
    assert requests.get(f"{server.url}/healthz", timeout=WAIT_LIMIT).status_code == 200
    assert export.is_alive(), "the PDF was ready before /healthz answered: make it longer"
    export.join(timeout=120)
    assert answers["pdf"].status_code == 200
    assert answers["pdf"].content.startswith(b"%PDF-")
    assert "Paragraphe 1499" in " ".join(pdf_text(answers["pdf"].content).split())


def pdf_children(pid: int) -> list[int]:
    """Return the ids of a process's children that run the PDF renderer (cop/drafts/pdf.py)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:  # a thread or a child may end while we look
            for child in (task / "children").read_text().split():
                if b"cop/drafts/pdf.py" in Path(f"/proc/{child}/cmdline").read_bytes():
                    children.append(int(child))
        except FileNotFoundError:
            continue
    return children


def stored_text(app, note_id: int) -> str:
    """Return the note's text as the database holds it (state plus log)."""
    with app.app_context():
        return current_text(db.session.get(Note, note_id))


def unzipped(response: requests.Response, *names: str) -> list[str]:
    """Return the text of files inside a zipped export (DOCX, ODT)."""
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return [archive.read(name).decode() for name in names]
