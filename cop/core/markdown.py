"""Markdown to safe HTML: the one sanitiser that pages, previews and every export go through.

markdown-it-py's `js-default` preset keeps raw HTML off (its CommonMark preset would pass
it through) and already refuses `javascript:`-like links; bleach then keeps only the tags,
attributes and URL schemes listed here, so a bug or a new plugin upstream cannot let
markup through that this module did not choose (DESIGN.md, "From workshops to publication").
"""

import re
import threading

import bleach
from markdown_it import MarkdownIt
from markupsafe import Markup
from mdit_py_plugins.footnote import footnote_plugin

ALLOWED_TAGS = frozenset(
    {
        "a",
        "blockquote",
        "br",
        "code",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "section",
        "strong",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})

# The classes and ids markdown-it and its footnote plugin write; nothing a writer can choose
# (raw HTML is off), but listing them keeps the page's own classes and ids out of reach.
FOOTNOTE_CLASSES = frozenset(
    {
        "footnote-ref",
        "footnote-backref",
        "footnote-item",
        "footnotes",
        "footnotes-list",
        "footnotes-sep",
    }
)
CODE_LANGUAGE_CLASS = re.compile(r"language-[\w+#.-]{1,40}")
# `fn3`, `fnref3:1`, or with a document id (several documents on one page): `fn-s12-3`.
FOOTNOTE_ID = re.compile(r"fn(ref)?(-[a-z]\d{1,9}-)?\d{1,6}(:\d{1,6})?")


def _allowed_class(value: str) -> bool:
    return all(
        name in FOOTNOTE_CLASSES or CODE_LANGUAGE_CLASS.fullmatch(name) for name in value.split()
    )


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """Tell whether bleach keeps attribute `name` of `tag` (URLs are checked by bleach)."""
    if name == "class":
        return tag in {"code", "hr", "li", "ol", "section", "sup", "a"} and _allowed_class(value)
    if name == "id":
        return tag in {"a", "li"} and FOOTNOTE_ID.fullmatch(value) is not None
    return name in ALLOWED_ATTRIBUTES.get(tag, ())


ALLOWED_ATTRIBUTES = {
    "a": ("href", "title"),
    "img": ("src", "alt", "title"),
    "ol": ("start",),
}

_markdown = MarkdownIt("js-default").use(footnote_plugin)
# A bleach Cleaner keeps parser state between calls: one per thread (or green thread).
_per_thread = threading.local()


def _cleaner() -> bleach.Cleaner:
    cleaner = getattr(_per_thread, "cleaner", None)
    if cleaner is None:
        cleaner = _per_thread.cleaner = bleach.Cleaner(
            tags=ALLOWED_TAGS,
            attributes=_allowed_attribute,
            protocols=ALLOWED_PROTOCOLS,
            strip=True,
            strip_comments=True,
        )
    return cleaner


def render_markdown(text: str, document_id: str | None = None) -> Markup:
    """Render markdown to HTML that is safe to put in a page as is.

    Give `document_id` (a letter and digits) when several rendered texts share a page: their
    footnotes' ids then differ.
    """
    env = {"docId": document_id} if document_id else {}
    return Markup(_cleaner().clean(_markdown.render(text, env)))
