"""Draft exports: every format carries the text and its source footnotes, and nothing active.

Documents are built as plain dicts in the shape of `snapshot_of` (cop/drafts/document.py),
as a revision stores them. pandoc and WeasyPrint run for real.
"""

import io
import re
import subprocess
import threading
import zipfile
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import pypandoc
import pytest
from flask_babel import force_locale
from pypdf import PdfReader

from cop import create_app
from cop.drafts import exports
from cop.drafts.document import markdown_of
from cop.drafts.document import source_label as document_source_label
from tests.conftest import config_for_tests

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
XLINK = "{http://www.w3.org/1999/xlink}"
SAFE_URL = re.compile(r"^(https?://|mailto:|#)", re.IGNORECASE)
SAFE_SCHEMES = {"http", "https", "mailto"}


def scheme_of(url: str) -> str | None:
    """Return the scheme a browser reads in a URL (None for a relative URL).

    Browsers strip leading and trailing C0 controls and spaces and drop tabs and newlines
    anywhere before parsing; a percent sign cannot be part of a scheme.
    """
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("".join(map(chr, range(33)))))
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Return one app for the module: exports read no database, only the document."""
    return create_app(config_for_tests(tmp_path_factory.mktemp("exports")))


@pytest.fixture(autouse=True)
def request_context(app):
    """Export inside a request, as the views do, read by someone whose interface is in English.

    The documents here are in French (`"locale": "fr"`): their footnotes' words are French
    whoever reads them, so expected labels are computed in French too (`source_label`).
    """
    with app.test_request_context(), force_locale("en"):
        yield


def source_label(source: dict) -> str:
    """Return a source's footnote label as a French document writes it."""
    with force_locale("fr"):
        return document_source_label(source)


# --- Documents, in the shape of snapshot_of ------------------------------------------------


def make_source(number: int, kinds=None) -> dict:
    kinds = kinds if kinds is not None else {"ngo": 2, "network": 1}
    return {
        "day": {"title": f"Workshop day {number}", "date": "2027-01-14"},
        "session": {"id": number, "title": f"What works {number}"},
        "contributions": 3 + number % 5,
        "organisations": sum(kinds.values()),
        "kinds": kinds,
    }


def make_section(section_id: int, title: str, text: str, theme=None, kind="free") -> dict:
    return {
        "id": section_id,
        "kind": kind,
        "title": title,
        "theme": theme,
        "text": text,
        "sheet": None,
    }


def make_sheet_section(section_id: int, title: str, parts: list[tuple[str, str]]) -> dict:
    return {
        "id": section_id,
        "kind": "sheet",
        "title": title,
        "theme": None,
        "text": "",
        "sheet": {
            "id": 1000 + section_id,
            "title": title,
            "organisation": {"name": "Maison des réseaux", "kind": "network"},
            "sections": [
                {"id": 2000 + section_id * 10 + index, "title": part_title, "text": text}
                for index, (part_title, text) in enumerate(parts)
            ],
        },
    }


def make_document(sections: list[dict], sources: dict, title: str = "Repères") -> dict:
    return {
        "format": "cop.draft",
        "version": 1,
        "title": title,
        "kind": "guide",
        "locale": "fr",
        "community": {"slug": "reseaux", "name": "Réseaux, collectifs et plateformes"},
        "organisation": None,
        "sections": sections,
        "sources": sources,
    }


def story_document() -> dict:
    """A small guide: an introduction, a theme with two sections, and an experience sheet."""
    theme = {"id": 1, "name": "Partage d'information"}
    return make_document(
        [
            make_section(1, "Introduction", "Ce guide rassemble nos ateliers.", kind="intro"),
            make_section(
                2,
                "Enjeux clés",
                "Les petites structures manquent de temps[^s11] et d'outils[^s12].",
                theme=theme,
                kind="key_issues",
            ),
            make_section(3, "Leviers", "> Un agenda partagé change tout.[^s11]", theme=theme),
            make_sheet_section(
                4,
                "Le café des réseaux",
                [("Contexte", "Une rencontre mensuelle[^s13]."), ("Résultats", "Douze membres.")],
            ),
        ],
        {
            "11": make_source(11),
            "12": make_source(12, {"local_authority": 1}),
            "13": make_source(13),
        },
        title="Repères : comment améliorer le travail en réseau",
    )


def big_document(sections: int = 12, references: int = 300, sheets: int = 3) -> dict:
    """A guide of 4 themes × 3 sections, `references` source links and some sheets."""
    themes = [{"id": number, "name": f"Thème {number}"} for number in range(1, 5)]
    texts = [[] for _ in range(sections)]
    for link_id in range(1, references + 1):
        texts[link_id % sections].append(
            f"Passage {link_id}: les membres disent que cela marche quand on s'écoute.[^s{link_id}]"
        )
    body = [
        make_section(
            number + 1,
            f"Section {number + 1}",
            "\n\n".join(texts[number]),
            theme=themes[number * len(themes) // sections],
        )
        for number in range(sections)
    ]
    body += [
        make_sheet_section(
            100 + number,
            f"Fiche {number}",
            [("Contexte", f"Le contexte de la fiche {number}."), ("Leçons", "On apprend.")],
        )
        for number in range(sheets)
    ]
    return make_document(
        body, {str(link_id): make_source(link_id) for link_id in range(1, references + 1)}
    )


# --- Reading what came out -----------------------------------------------------------------


def zip_text(content: bytes, member: str) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return archive.read(member).decode("utf-8")


def docx_notes(content: bytes) -> list[str]:
    """Return the text of each real footnote of a DOCX (separators left out)."""
    root = ElementTree.fromstring(zip_text(content, "word/footnotes.xml"))
    return [
        "".join(text.text or "" for text in note.iter(f"{W}t")).strip()
        for note in root.iter(f"{W}footnote")
        if note.get(f"{W}type") is None
    ]


def docx_text(content: bytes) -> str:
    root = ElementTree.fromstring(zip_text(content, "word/document.xml"))
    return "\n".join(
        "".join(text.text or "" for text in paragraph.iter(f"{W}t"))
        for paragraph in root.iter(f"{W}p")
    )


def docx_paragraphs_of_style(content: bytes, style: str) -> list[str]:
    root = ElementTree.fromstring(zip_text(content, "word/document.xml"))
    found = []
    for paragraph in root.iter(f"{W}p"):
        style_element = paragraph.find(f"{W}pPr/{W}pStyle")
        if style_element is not None and style_element.get(f"{W}val") == style:
            found.append("".join(text.text or "" for text in paragraph.iter(f"{W}t")))
    return found


def odt_notes(content: bytes) -> list[str]:
    root = ElementTree.fromstring(zip_text(content, "content.xml"))
    return [
        "".join(note.find(f"{TEXT}note-body").itertext()).strip()
        for note in root.iter(f"{TEXT}note")
    ]


def odt_text(content: bytes) -> str:
    root = ElementTree.fromstring(zip_text(content, "content.xml"))
    body = root.find(".//{urn:oasis:names:tc:opendocument:xmlns:office:1.0}text")
    return "\n".join(
        "".join(part for part in element.itertext())
        for element in body
        if element.tag in {f"{TEXT}p", f"{TEXT}h"}
    )


def odt_quoted_paragraphs(content: bytes) -> list[str]:
    """Return the text of the paragraphs whose style derives from "Quotations"."""
    root = ElementTree.fromstring(zip_text(content, "content.xml"))
    quoted = {"Quotations"} | {
        style.get(f"{STYLE}name")
        for style in root.iter(f"{STYLE}style")
        if style.get(f"{STYLE}parent-style-name") == "Quotations"
    }
    return [
        "".join(paragraph.itertext())
        for paragraph in root.iter(f"{TEXT}p")
        if paragraph.get(f"{TEXT}style-name") in quoted
    ]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def pdf_link_targets(content: bytes) -> list[str]:
    """Return the URI of every link annotation in a PDF."""
    targets = []
    for page in PdfReader(io.BytesIO(content)).pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A")
            if action is not None and "/URI" in action:
                targets.append(str(action["/URI"]))
    return targets


def squeezed(text: str) -> str:
    """Join lines and spaces, as a PDF's text extraction breaks lines anywhere."""
    return re.sub(r"\s+", "", text)


class ActiveMarkup(HTMLParser):
    """Collect what could run or load in an HTML page: tags, handlers, URLs."""

    def __init__(self):
        super().__init__()
        self.tags = []
        self.handlers = []
        self.urls = []
        self.styles_in_body = 0
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "body":
            self.in_body = True
        if tag == "style" and self.in_body:
            self.styles_in_body += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if name in {"href", "src", "action", "formaction", "xlink:href", "srcset", "data"}:
                self.urls.append(value or "")
            if name == "style":
                self.handlers.append(f"{tag} style")


def active_markup(html: str) -> ActiveMarkup:
    parser = ActiveMarkup()
    parser.feed(html)
    parser.close()
    return parser


# --- Formats -------------------------------------------------------------------------------


def test_every_format_comes_with_its_mime_type_and_signature():
    document = story_document()
    signatures = {
        "md": lambda content: content.startswith(b"# Rep"),
        "html": lambda content: content.startswith(b"<!doctype html>"),
        "docx": lambda content: (
            "word/document.xml" in zipfile.ZipFile(io.BytesIO(content)).namelist()
        ),
        "odt": lambda content: (
            zip_text(content, "mimetype") == "application/vnd.oasis.opendocument.text"
        ),
        "pdf": lambda content: content.startswith(b"%PDF-"),
    }
    assert set(exports.FORMATS) == set(signatures)
    for fmt, looks_right in signatures.items():
        content, mimetype = exports.export(document, fmt)
        assert isinstance(content, bytes)
        assert mimetype == exports.FORMATS[fmt]
        assert looks_right(content), fmt


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError):
        exports.export(story_document(), "exe")
    with pytest.raises(ValueError):
        exports.filename(story_document(), "../pdf")


def test_markdown_export_is_the_document_markdown_with_real_footnotes():
    document = story_document()
    content, _mimetype = exports.export(document, "md")
    text = content.decode("utf-8")
    assert text == markdown_of(document)
    assert "[^s11]" in text and "[^s13]" in text
    assert f"[^s12]: {source_label(document['sources']['12'])}".split(" (")[0] in text
    assert "> ### Fiche d'expérience : Le café des réseaux" in text


def test_html_export_is_a_standalone_printable_page():
    document = story_document()
    # The document's language, whoever downloads it.
    with force_locale("en"):
        html = exports.export(document, "html")[0].decode("utf-8")
    assert html.startswith("<!doctype html>")
    assert '<html lang="fr">' in html
    assert '<html lang="en">' in exports.export(document | {"locale": "en"}, "html")[0].decode()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<title>Repères : comment améliorer le travail en réseau</title>" in html
    assert "<style>" in html and "@media print" in html
    assert re.search(r"blockquote \{[^}]*border:", html), "sheets (block quotes) are boxed"
    markup = active_markup(html)
    assert "script" not in markup.tags and "link" not in markup.tags
    assert markup.urls == [url for url in markup.urls if url.startswith("#")], markup.urls
    # The sheet is a block quote; each source reference is a footnote with its label.
    quote = html[html.rindex("<blockquote>") : html.rindex("</blockquote>")]
    assert "Le café des réseaux" in quote and "Une rencontre mensuelle" in quote
    footnotes = html[html.index('<section class="footnotes">') :]
    for source in document["sources"].values():
        assert source["day"]["title"] in footnotes
    assert html.count('class="footnote-ref"') == 4


def test_docx_export_has_text_boxed_sheets_and_a_real_footnote_per_reference():
    document = story_document()
    content = exports.export(document, "docx")[0]
    text = docx_text(content)
    assert "Repères : comment améliorer le travail en réseau" in text
    assert "Les petites structures manquent de temps et d'outils." in text
    notes = docx_notes(content)
    assert len(notes) == 4
    assert notes[0] == source_label(document["sources"]["11"])
    assert notes[1] == source_label(document["sources"]["12"])
    assert "Workshop day 13" in notes[3]
    # The sheet's paragraphs, its headings included, are "Block Text", which the reference
    # document boxes.
    boxed = docx_paragraphs_of_style(content, "BlockText")
    assert "Fiche d'expérience : Le café des réseaux" in boxed
    assert "Une rencontre mensuelle." in boxed
    styles = ElementTree.fromstring(zip_text(content, "word/styles.xml"))
    (block_text,) = [
        style for style in styles.iter(f"{W}style") if style.get(f"{W}styleId") == "BlockText"
    ]
    assert block_text.find(f"{W}pPr/{W}pBdr/{W}left") is not None
    assert block_text.find(f"{W}pPr/{W}shd").get(f"{W}fill") == "F2F2F2"


def test_odt_export_has_text_boxed_sheets_and_a_real_footnote_per_reference():
    document = story_document()
    content = exports.export(document, "odt")[0]
    text = odt_text(content)
    assert "Repères : comment améliorer le travail en réseau" in text
    assert "Ce guide rassemble nos ateliers." in text
    notes = odt_notes(content)
    assert len(notes) == 4
    assert notes[0] == source_label(document["sources"]["11"])
    assert "Workshop day 13" in notes[3]
    quoted = odt_quoted_paragraphs(content)
    assert "Fiche d'expérience : Le café des réseaux" in quoted
    styles = zip_text(content, "styles.xml")
    quotations = re.search(r'style:name="Quotations".*?</style:style>', styles, re.S).group(0)
    assert "fo:border=" in quotations and "fo:background-color=" in quotations


def test_pdf_export_has_the_text_and_the_source_notes():
    document = story_document()
    content = exports.export(document, "pdf")[0]
    text = squeezed(pdf_text(content))
    assert squeezed("Repères : comment améliorer le travail en réseau") in text
    assert squeezed("Les petites structures manquent de temps") in text
    assert squeezed("Fiche d'expérience : Le café des réseaux") in text
    for source in document["sources"].values():
        assert squeezed(source_label(source)) in text


def test_the_pdf_numbers_its_notes_and_links_each_call_to_its_note():
    document = big_document()
    content = exports.export(document, "pdf")[0]
    text = squeezed(pdf_text(content))
    for number in (1, 150, 300):  # notes are numbered in the order of their first call
        assert squeezed(f"{number}. Workshop day") in text
    assert squeezed("s'écoute.¹²") in text  # the call to note 12, in superscript digits
    reader = PdfReader(io.BytesIO(content))
    internal_links = [
        annotation
        for page in reader.pages
        for annotation in page.get("/Annots") or []
        if annotation.get_object().get("/Subtype") == "/Link"
        and "/URI" not in (annotation.get_object().get("/A") or {})
    ]
    assert len(internal_links) == 300


@pytest.fixture
def pdf_child(monkeypatch):
    """Let a test choose the PDF child's program; no child is left waiting before or after."""
    from cop.drafts import pdf

    def stop_waiting_child():
        pdf._stop_waiting_child()
        pdf._waiting = None

    stop_waiting_child()

    def use(program: str, timeout: int = pdf.PDF_TIMEOUT):
        monkeypatch.setattr(pdf, "_COMMAND", [pdf.sys.executable, "-c", program])
        monkeypatch.setattr(pdf, "PDF_TIMEOUT", timeout)

    yield use
    stop_waiting_child()


def test_a_failing_pdf_child_gives_an_export_error_with_its_message(pdf_child):
    pdf_child("import sys; sys.stdin.read(); sys.exit('weasyprint: out of order')")
    with pytest.raises(exports.ExportError) as raised:
        exports.export(story_document(), "pdf")
    assert str(raised.value) == "WeasyPrint failed (1): weasyprint: out of order"


def test_a_pdf_child_that_takes_too_long_is_killed(pdf_child, monkeypatch):
    from cop.drafts import pdf

    started = []
    start = pdf._start
    monkeypatch.setattr(pdf, "_start", lambda: started.append(start()) or started[-1])
    pdf_child("import sys, time; sys.stdin.read(); time.sleep(60)", timeout=1)
    with pytest.raises(exports.ExportError, match="WeasyPrint took more than 1 s"):
        exports.export(story_document(), "pdf")
    assert started[0].returncode is not None  # killed and reaped, not left running


def test_each_pdf_is_made_by_the_child_started_and_waiting_before_it(pdf_child):
    from cop.drafts import pdf

    exports.export(story_document(), "pdf")
    waiting = pdf._waiting
    assert waiting is not None and waiting.poll() is None
    content = exports.export(story_document(), "pdf")[0]
    assert content.startswith(b"%PDF-")
    assert waiting.returncode == 0  # it made this PDF and exited
    assert pdf._waiting is not waiting and pdf._waiting.poll() is None


@pytest.mark.parametrize("fmt", ["docx", "odt", "pdf"])
def test_a_big_guide_keeps_every_source_footnote(fmt):
    document = big_document()
    content = exports.export(document, fmt)[0]
    if fmt == "docx":
        notes = docx_notes(content)
        assert len(notes) == 300
        assert notes == [source_label(document["sources"][str(n)]) for n in _reference_order()]
        assert len(docx_paragraphs_of_style(content, "BlockText")) >= 3 * 5
    elif fmt == "odt":
        notes = odt_notes(content)
        assert len(notes) == 300
        assert "Workshop day 300" in "\n".join(notes)
    else:
        text = squeezed(pdf_text(content))
        assert squeezed("Passage 300: les membres disent") in text
        assert squeezed(source_label(document["sources"]["300"])) in text
        assert squeezed("Fiche d'expérience : Fiche 2") in text


def _reference_order() -> list[int]:
    """Return the link ids of big_document in the order its text cites them."""
    return [n for section in range(12) for n in range(1, 301) if n % 12 == section]


# --- Nothing a writer types becomes active ---------------------------------------------------

BASE64_PAGE = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
# (payload, a text that DOCX and ODT must show literally, or None)
XSS_CORPUS = [
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("<svg onload=alert(1)>", "<svg onload=alert(1)>"),
    ("<body onload=alert(1)>", "<body onload=alert(1)>"),
    ('<a href="javascript:alert(1)">click</a>', '<a href="javascript:alert(1)">'),
    ("[click](javascript:alert(1))", "click"),
    ("[click](JaVaScRiPt:alert(1))", "click"),
    ("[click](&#106;avascript:alert(1))", "click"),
    ("[click](jav&#x09;ascript:alert(1))", "click"),
    (f"[click](data:text/html;base64,{BASE64_PAGE})", "click"),
    ("![pixel](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)", "pixel"),
    ("<javascript:alert(1)>", "javascript:alert(1)"),
    ("```{=openxml}\n<w:p><w:r><w:t>INJECTED-OPENXML</w:t></w:r></w:p>\n```", "INJECTED-OPENXML"),
    ("```{=html}\n<script>alert(1)</script>\n```", "<script>alert(1)</script>"),
    ("`<text:p>INJECTED-ODT</text:p>`{=opendocument}", "INJECTED-ODT"),
    ("```{=latex}\n\\input{/etc/passwd}\n```", "\\input{/etc/passwd}"),
    ("$\\input{/etc/passwd}$", "\\input{/etc/passwd}"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
    ("&#60;script&#62;alert(1)&#60;/script&#62;", "<script>alert(1)</script>"),
    (
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<img src=x onerror=alert(1)>",
    ),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', "onerror=alert(1)"),
    ("<iframe src=javascript:alert(1)></iframe>", "<iframe src=javascript:alert(1)>"),
    ("<style>@import 'http://127.0.0.1:9/x.css';</style>", "@import"),
    ("---\nheader-includes: '<script>alert(1)</script>'\n---", "header-includes: '<script>"),
    ("[x](file:///etc/passwd)", "x"),
    ("![x](/etc/passwd)", "x"),
]


def xss_document(payload: str) -> dict:
    """Put the payload in the title, a section's title and text, and an experience sheet."""
    return make_document(
        [
            make_section(1, f"Section {payload}", f"Before.\n\n{payload}\n\nAfter.[^s1]"),
            make_sheet_section(2, f"Sheet {payload}", [("Contexte", f"{payload}\n\nEnd.")]),
        ],
        {"1": make_source(1)},
        title=f"Guide {payload}",
    )


def assert_inert_html(html: str):
    markup = active_markup(html)
    assert "<script" not in html.lower()
    assert not {"script", "iframe", "svg", "math", "object", "embed", "link"} & set(markup.tags)
    assert markup.tags.count("body") == 1
    assert markup.handlers == []
    assert markup.styles_in_body == 0
    assert [url for url in markup.urls if scheme_of(url) not in SAFE_SCHEMES | {None}] == []


def assert_only_safe_docx_links(content: bytes):
    relations = ElementTree.fromstring(zip_text(content, "word/_rels/document.xml.rels"))
    for relation in relations:
        if relation.get("TargetMode") == "External":
            assert SAFE_URL.match(relation.get("Target")), relation.get("Target")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert not [name for name in archive.namelist() if name.startswith("word/media/")]


def assert_only_safe_odt_links(content: bytes):
    root = ElementTree.fromstring(zip_text(content, "content.xml"))
    for element in root.iter():
        target = element.get(f"{XLINK}href")
        if target is not None:
            assert SAFE_URL.match(target), target
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert not [name for name in archive.namelist() if name.startswith("Pictures/")]


@pytest.mark.parametrize(("payload", "literal"), XSS_CORPUS)
def test_nothing_typed_survives_as_markup_in_any_export(payload, literal):
    document = xss_document(payload)

    html = exports.export(document, "html")[0].decode("utf-8")
    assert_inert_html(html)
    assert "Before." in html and "After." in html
    # The PDF is made from this page with its footnotes written for paper: as inert.
    assert_inert_html(exports.standalone_html(document, for_print=True))
    pdf = exports.export(document, "pdf")[0]
    assert b"/JavaScript" not in pdf and b"/JS " not in pdf and b"/Launch" not in pdf
    links = pdf_link_targets(pdf)
    assert [url for url in links if scheme_of(url) not in SAFE_SCHEMES | {None}] == []
    assert squeezed("After.") in squeezed(pdf_text(pdf))

    title = "Guide " + " ".join(payload.split())
    docx = exports.export(document, "docx")[0]
    docx_xml = zip_text(docx, "word/document.xml")
    assert_only_safe_docx_links(docx)
    text = docx_text(docx)
    assert title in text, "a title is always literal text"
    assert "Before." in text and "After." in text and "End." in text
    assert "<w:t>INJECTED-OPENXML" not in docx_xml, "raw OpenXML never reaches the document"
    assert len(docx_notes(docx)) == 1

    odt = exports.export(document, "odt")[0]
    odt_xml = zip_text(odt, "content.xml")
    assert_only_safe_odt_links(odt)
    odt_body = odt_text(odt)
    assert title in odt_body
    assert "Before." in odt_body and "After." in odt_body
    assert "<text:p>INJECTED-ODT" not in odt_xml, "raw OpenDocument never reaches the document"
    assert len(odt_notes(odt)) == 1

    if literal is not None:
        # In the section's body, between its first and last paragraphs (titles always carry
        # the payload as text, escaped by cop, whatever pandoc does with the body).
        assert literal in between(text, "Before.", "After."), "DOCX carries the literal text"
        assert literal in between(odt_body, "Before.", "After."), "ODT carries the literal text"
    if "<" in (literal or ""):
        # Up to the first quote, which XML writers may or may not escape.
        unquoted = re.split("[\"']", literal)[0]
        escaped = unquoted.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert escaped in between(docx_xml, "Before.", "After.")
        assert escaped in between(odt_xml, "Before.", "After.")


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


# --- Nothing is fetched ---------------------------------------------------------------------


class RecordingHandler(BaseHTTPRequestHandler):
    """Record every request and answer 404."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.server.requests.append(self.path)
        self.send_error(404)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass


@pytest.fixture
def recording_server():
    """Serve on a free port of 127.0.0.1 and record the requests it gets."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def fetching_document(base: str) -> dict:
    text = "\n\n".join(
        [
            f"![x]({base}/pixel.png)",
            f'<img src="{base}/raw.png">',
            f"[a link]({base}/link) and <{base}/autolink>",
            f"```{{=html}}\n<link rel=stylesheet href='{base}/style.css'>\n```",
            f"[^s1] ![y]({base}/other.png 'title')",
        ]
    )
    return make_document(
        [
            make_section(1, "Images", text),
            make_sheet_section(2, "Fiche", [("A", f"![z]({base}/z.png)")]),
        ],
        {"1": make_source(1)},
    )


def test_the_recording_server_does_record_a_fetch_by_weasyprint(recording_server):
    # Without cop's URL fetcher, WeasyPrint would fetch the image: the tests below can fail.
    from weasyprint import HTML

    base = f"http://127.0.0.1:{recording_server.server_port}"
    HTML(string=exports.standalone_html(fetching_document(base))).write_pdf()
    assert "/pixel.png" in recording_server.requests


def test_the_recording_server_does_record_a_fetch_by_pandoc(recording_server):
    # Without --sandbox and cop's filter, pandoc would fetch the images to embed them.
    base = f"http://127.0.0.1:{recording_server.server_port}"
    subprocess.run(
        [pypandoc.get_pandoc_path(), "--from=commonmark", "--to=docx", "--output=-"],
        input=markdown_of(fetching_document(base)).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert "/pixel.png" in recording_server.requests


@pytest.mark.parametrize("fmt", ["pdf", "docx", "odt"])
def test_no_export_fetches_a_url_found_in_content(recording_server, fmt):
    base = f"http://127.0.0.1:{recording_server.server_port}"
    document = fetching_document(base)
    content = exports.export(document, fmt)[0]
    assert recording_server.requests == []
    if fmt == "docx":
        assert len(docx_notes(content)) == 1
        assert_only_safe_docx_links(content)
        # The image became a link to its address, which nothing opens unless a reader clicks.
        assert f"{base}/pixel.png" in zip_text(content, "word/_rels/document.xml.rels")
    elif fmt == "odt":
        assert len(odt_notes(content)) == 1
        assert_only_safe_odt_links(content)
    elif fmt == "pdf":
        assert squeezed("a link and") in squeezed(pdf_text(content))


# --- File names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "kind", "fmt", "expected"),
    [
        (
            "Repères : comment améliorer le travail en réseau",
            "guide",
            "pdf",
            "reperes-comment-ameliorer-le-travail-en-reseau.pdf",
        ),
        ("../../etc/passwd", "guide", "docx", "etc-passwd.docx"),
        ("..\\..\\windows\\system32", "guide", "odt", "windows-system32.odt"),
        ("/etc/passwd\x00.html", "guide", "md", "etc-passwd-html.md"),
        ("", "guide", "html", "guide.html"),
        ("!!! ??? /// ...", "guide", "pdf", "guide.pdf"),
        ("日本語のガイド", "experience_sheet", "odt", "experience-sheet.odt"),
        ('"; filename="evil.exe', "guide", "pdf", "filename-evil-exe.pdf"),
    ],
)
def test_file_names_are_safe_ascii_slugs(title, kind, fmt, expected):
    document = story_document() | {"title": title, "kind": kind}
    name = exports.filename(document, fmt)
    assert name == expected
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.(md|html|docx|odt|pdf)", name)


def test_a_long_title_gives_a_bounded_file_name():
    name = exports.filename(story_document() | {"title": "Très " * 200}, "docx")
    assert name.endswith(".docx") and len(name) <= 80 + len(".docx")
    assert re.fullmatch(r"(tres-)+tres\.docx", name)
