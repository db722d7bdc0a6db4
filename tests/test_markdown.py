"""Markdown rendering: the one sanitiser keeps markdown's features and nothing that can run."""

import html
import re
from html.parser import HTMLParser

import pytest
from markupsafe import Markup
from sqlalchemy import select

from cop.communities.models import Community, Role
from cop.core.markdown import render_markdown
from cop.extensions import db
from cop.notes import services
from tests.conftest import csrf_token_from

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster"}
# What a browser ignores in a URL's scheme: ASCII whitespace and control characters.
IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")


class Elements(HTMLParser):
    """Collect every element and its attributes, as a browser's parser would see them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    handle_startendtag = handle_starttag


def elements_of(fragment: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(fragment)
    parser.close()
    return parser.elements


def assert_harmless(fragment: str) -> None:
    """No script element, no event handler, no style, no URL with a scheme that runs code."""
    for tag, attributes in elements_of(fragment):
        assert tag not in {"script", "iframe", "object", "embed", "svg", "math", "style", "form"}
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in URL_ATTRIBUTES:
                scheme = IGNORED_IN_SCHEME.sub("", html.unescape(value)).lower()
                assert not scheme.startswith(("javascript:", "vbscript:", "data:")), (tag, value)


# The classics of OWASP's XSS filter evasion cheat sheet, in raw HTML and in markdown.
PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74>",
    '<IMG SRC="jav&#x09;ascript:alert(1);">',
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<<SCRIPT>alert(1);//<</SCRIPT>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](%6Aavascript:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](<javascript:alert(1)>)",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    '![x" onerror="alert(1)](https://example.org/a.png)',
    '[x](https://example.org/" onmouseover="alert(1))',
    "<javascript:alert(1)>",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "Text[^1]\n\n[^1]: <script>alert(1)</script> [y](javascript:alert(1))",
    "```\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
]


@pytest.mark.parametrize("for_print", [False, True], ids=["screen", "paper"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_nothing_that_can_run_survives(payload, for_print):
    rendered = render_markdown(payload + "[^1]\n\n[^1]: " + payload, for_print=for_print)
    assert isinstance(rendered, Markup)
    assert_harmless(str(rendered))
    assert "<script" not in rendered.lower()


def test_raw_html_is_shown_as_text_not_markup():
    rendered = render_markdown('<b onclick="x()">bold?</b>')
    assert elements_of(rendered) == [("p", {})]
    assert "&lt;b onclick=" in rendered


def test_the_features_of_markdown_are_kept():
    rendered = render_markdown(
        "# Title\n\n## Part\n\n"
        "Some *emphasis*, **strong**, ~~struck~~, `code`"
        ' and a [link](https://example.org/a?b=1 "t")'
        " and [mail](mailto:team@example.org) and [here](/c/x#y).\n\n"
        "- one\n- two\n\n3. three\n4. four\n\n> quoted\n\n"
        "```python\nprint('hi')\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "A claim[^1].\n\n[^1]: Its *source*.\n"
    )
    tags = [tag for tag, _attributes in elements_of(rendered)]
    for tag in ("h1", "h2", "em", "strong", "s", "code", "a", "ul", "ol", "li", "blockquote"):
        assert tag in tags, tag
    for tag in ("pre", "table", "th", "td", "sup", "section"):
        assert tag in tags, tag
    links = [attributes for tag, attributes in elements_of(rendered) if tag == "a"]
    assert {"href": "https://example.org/a?b=1", "title": "t"} in links
    assert {"href": "mailto:team@example.org"} in links
    assert {"href": "/c/x#y"} in links
    assert {"start": "3"} in [
        attributes for tag, attributes in elements_of(rendered) if tag == "ol"
    ]
    assert '<code class="language-python">' in rendered


def test_footnotes_link_both_ways():
    rendered = render_markdown("A claim[^1] and another[^1].\n\n[^1]: The source.\n")
    anchors = [attributes for tag, attributes in elements_of(rendered) if tag == "a"]
    assert {"href": "#fn1", "id": "fnref1"} in anchors
    assert {"href": "#fn1", "id": "fnref1:1"} in anchors
    assert {"href": "#fnref1", "class": "footnote-backref"} in anchors
    assert ("li", {"id": "fn1", "class": "footnote-item"}) in elements_of(rendered)
    assert "The source." in rendered


def test_footnotes_for_paper_are_numbers_in_the_text_without_links_back():
    rendered = render_markdown(
        "A claim[^a] and another[^a], then a third[^b].\n\n[^a]: The source.\n\n"
        "[^b]: Another source.\n",
        for_print=True,
    )
    calls = [attributes for tag, attributes in elements_of(rendered) if tag == "a"]
    assert calls == [
        {"class": "footnote-ref", "href": "#fn1"},
        {"class": "footnote-ref", "href": "#fn1"},
        {"class": "footnote-ref", "href": "#fn2"},
    ]
    assert 'claim<a class="footnote-ref" href="#fn1">¹</a>' in rendered
    assert 'third<a class="footnote-ref" href="#fn2">²</a>' in rendered
    assert '<li id="fn1" class="footnote-item"><p>1. The source.</p>' in rendered
    assert '<li id="fn2" class="footnote-item"><p>2. Another source.</p>' in rendered
    assert "<sup" not in rendered and "fnref" not in rendered
    # Pages keep the usual form.
    assert "footnote-backref" in render_markdown("A claim[^a].\n\n[^a]: The source.\n")


def test_https_images_stay_and_other_image_sources_go():
    rendered = render_markdown(
        "![a map](https://example.org/map.png) ![inline](data:image/png;base64,iVBO)"
    )
    images = [attributes for tag, attributes in elements_of(rendered) if tag == "img"]
    assert images == [{"src": "https://example.org/map.png", "alt": "a map"}, {"alt": "inline"}]


# --- The preview endpoint --------------------------------------------------------------


@pytest.fixture
def note_world(app, make):
    """A community with a participant, an observer, a non-member and one note."""
    slug = make.community()
    world = {
        "slug": slug,
        "participant": make.member(slug, Role.PARTICIPANT),
        "observer": make.member(slug, Role.OBSERVER),
        "outsider": make.user(),
    }
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        world["note_id"] = services.create_note(None, community, "Ideas").id
        db.session.commit()
    world["url"] = f"/c/{slug}/notes/{world['note_id']}/preview"
    return world


@pytest.mark.parametrize("role", ["participant", "observer"])
def test_readers_get_the_sanitised_preview(client, auth, note_world, role):
    auth.login(note_world[role])
    response = client.post(
        note_world["url"], data={"text": "# Hello\n\n<script>alert(1)</script>[x](javascript:y)"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    fragment = response.get_data(as_text=True)
    assert fragment.startswith("<h1>Hello</h1>")
    assert_harmless(fragment)


def test_people_outside_the_community_get_no_preview(client, auth, note_world):
    auth.login(note_world["outsider"])
    refused = client.post(note_world["url"], data={"text": "# Hello"})
    assert refused.status_code == 404  # a private community does not show it exists
    client.post("/logout")
    anonymous = client.post(note_world["url"], data={"text": "# Hello"})
    assert anonymous.status_code in {302, 404}
    assert "<h1>Hello</h1>" not in refused.get_data(as_text=True) + anonymous.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({}, 400),
        ({"text": ""}, 200),
        ({"text": "a" * (1024 * 1024)}, 200),
        ({"text": "a" * (1024 * 1024 + 1)}, 400),
        ({"text": "é" * (512 * 1024 + 1)}, 400),  # 1 MiB of UTF-8 and two bytes more
    ],
)
def test_the_preview_takes_at_most_one_mebibyte(client, auth, note_world, data, status):
    auth.login(note_world["participant"])
    assert client.post(note_world["url"], data=data).status_code == status


def test_the_preview_needs_the_csrf_token_of_the_page_in_a_header(csrf_app, make):
    client = csrf_app.test_client()
    slug = make.community()
    user_id = make.member(slug, Role.PARTICIPANT)
    with csrf_app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        note_id = services.create_note(None, community, "Ideas").id
        db.session.commit()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post(
        "/login",
        data={
            "email": make.email_of(user_id),
            "password": "correct horse battery",
            "csrf_token": token,
        },
    )
    page = client.get(f"/c/{slug}/notes/{note_id}").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    url = f"/c/{slug}/notes/{note_id}/preview"

    assert client.post(url, data={"text": "*hi*"}).status_code == 400
    answer = client.post(url, data={"text": "*hi*"}, headers={"X-CSRFToken": token})
    assert answer.status_code == 200
    assert answer.get_data(as_text=True).strip() == "<p><em>hi</em></p>"
