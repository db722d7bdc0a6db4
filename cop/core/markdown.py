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
from markdown_it.token import Token
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

# For paper (the PDF export): the same HTML but for the footnotes. A call is a link around
# superscript digits (no <sup> box, no [brackets]), a note starts with its number as text
# and has no link back. WeasyPrint lays out every inline box and generated number anew; on
# a guide with 300 notes these made the PDF half again as slow (docs/performance.md).
_SUPERSCRIPT_DIGITS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _print_footnote_ref(self, tokens, idx, options, env) -> str:
    anchor = self.rules["footnote_anchor_name"](tokens, idx, options, env)
    number = str(tokens[idx].meta["id"] + 1).translate(_SUPERSCRIPT_DIGITS)
    return f'<a class="footnote-ref" href="#fn{anchor}">{number}</a>'


def _number_footnotes(state) -> None:
    """Start each footnote's first paragraph with its number ("3. "), as plain text."""
    for index, token in enumerate(state.tokens):
        if token.type != "footnote_open":
            continue
        for inner in state.tokens[index + 1 :]:
            if inner.type == "footnote_close":
                break
            if inner.type == "inline":
                number = Token("text", "", 0, content=f"{token.meta['id'] + 1}. ")
                inner.children = [number, *(inner.children or [])]
                break


_print_markdown = MarkdownIt("js-default").use(footnote_plugin)
_print_markdown.add_render_rule("footnote_ref", _print_footnote_ref)
_print_markdown.add_render_rule("footnote_anchor", lambda *_arguments: "")
_print_markdown.core.ruler.push("number_footnotes", _number_footnotes)
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


def render_markdown(
    text: str, document_id: str | None = None, *, for_print: bool = False
) -> Markup:
    """Render markdown to HTML that is safe to put in a page as is.

    Give `document_id` (a letter and digits) when several rendered texts share a page: their
    footnotes' ids then differ. `for_print` writes footnotes for paper (the PDF export).
    """
    env = {"docId": document_id} if document_id else {}
    renderer = _print_markdown if for_print else _markdown
    return Markup(_cleaner().clean(renderer.render(text, env)))
