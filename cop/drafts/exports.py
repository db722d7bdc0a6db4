"""A draft document's exports: Markdown, standalone HTML, DOCX, ODT and PDF.

Every export starts from the document (`snapshot_of`, or a revision's stored snapshot) and
its one markdown text (`markdown_of`), so a published version exports the same way forever.

- Markdown is that text; HTML is a standalone page around `html_of`, the one sanitising
  renderer; PDF is that page, its footnotes written for paper, laid out by WeasyPrint in a
  child process with a URL fetcher that refuses every URL (`pdf.py`), so content can make
  it fetch nothing and the server's event loop never waits for it.
- DOCX and ODT come from pandoc (the `pypandoc-binary` wheel ships it), started once per
  export: CommonMark with footnotes, pipe tables and strikeout, every passthrough extension
  off, `--sandbox` (pandoc reads no file and fetches no URL named in content), and
  `reference/inert.lua`, which turns whatever pandoc still parses as raw markup into text,
  keeps link targets only for http(s), mailto and anchors, and never embeds an image.
  Styles come from `reference/reference.docx` and `reference/reference.odt`
  (`reference/build.py` says how they were made): experience sheets are boxed block quotes.
"""

import subprocess
from functools import cache
from pathlib import Path

import pypandoc
from flask import render_template
from flask_babel import gettext as _

from cop.communities.services import slugify
from cop.core.errors import ServiceError
from cop.drafts import pdf
from cop.drafts.document import html_of, is_guide, markdown_of

FORMATS = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "pdf": "application/pdf",
}

REFERENCE = Path(__file__).parent / "reference"
INERT_FILTER = REFERENCE / "inert.lua"

# What pandoc reads: CommonMark (as pages render it, through markdown-it) with the footnotes
# cop writes, pipe tables and strikeout. CommonMark in pandoc has no raw TeX, LaTeX macros or
# YAML metadata unless asked; raw HTML and raw attributes (```{=openxml}```) are turned off
# here, and the others are listed off so that a change of pandoc defaults cannot turn them on.
# (pandoc 3.9's CommonMark reader still yields raw HTML nodes with -raw_html: inert.lua turns
# every raw node into its text.)
PANDOC_INPUT = "".join(
    [
        "commonmark",
        "+footnotes+pipe_tables+strikeout",
        "-raw_html-raw_attribute-attributes-yaml_metadata_block",
        "-tex_math_dollars-tex_math_gfm-rebase_relative_paths",
        "-wikilinks_title_after_pipe-wikilinks_title_before_pipe",
    ]
)
# A document that makes pandoc take longer or more memory than this is refused, not served.
PANDOC_TIMEOUT = 60
PANDOC_MEMORY = "1g"


class ExportError(ServiceError):
    """An export could not be made (pandoc failed or took too long): answered 503."""

    status = 503
    code = "export_failed"

    def __init__(self, reason: str):
        super().__init__(_("The export could not be made. Please try again in a moment."))
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def export(document: dict, fmt: str) -> tuple[bytes, str]:
    """Return the document in format `fmt` (a key of FORMATS) and its MIME type."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format: {fmt!r}")
    return _WRITERS[fmt](document), FORMATS[fmt]


def filename(document: dict, fmt: str) -> str:
    """Return a safe download name: the title's ASCII slug and the format's extension."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format: {fmt!r}")
    fallback = "guide" if is_guide(document) else "experience-sheet"
    return f"{slugify(document.get('title') or '') or fallback}.{fmt}"


def standalone_html(document: dict, *, for_print: bool = False) -> str:
    """Return the document as one HTML page: inline print styles, no script, nothing to load.

    `for_print` gives the page WeasyPrint lays out for the PDF: footnotes written for paper.
    """
    return render_template(
        "drafts/export.html",
        document=document,
        body=html_of(document, for_print=for_print),
        language=_language(document),
        for_print=for_print,
    )


def _language(document: dict) -> str:
    """Return the document's language as a BCP 47 tag (fr, en, pt-BR)."""
    return str(document.get("locale") or "en").replace("_", "-")


# --- The writers ---------------------------------------------------------------------------


def _markdown(document: dict) -> bytes:
    return markdown_of(document).encode("utf-8")


def _html(document: dict) -> bytes:
    return standalone_html(document).encode("utf-8")


def _docx(document: dict) -> bytes:
    return _pandoc(document, "docx")


def _odt(document: dict) -> bytes:
    return _pandoc(document, "odt")


def _pdf(document: dict) -> bytes:
    try:
        return pdf.render(standalone_html(document, for_print=True))
    except pdf.PdfError as error:
        raise ExportError(str(error)) from error


_WRITERS = {"md": _markdown, "html": _html, "docx": _docx, "odt": _odt, "pdf": _pdf}


@cache
def _pandoc_path() -> str:
    """Return the pandoc binary of pypandoc-binary (looked up once)."""
    return pypandoc.get_pandoc_path()


def _pandoc(document: dict, writer: str) -> bytes:
    """Convert the document's markdown with one pandoc process (stdin to stdout)."""
    command = [
        _pandoc_path(),
        # Haskell runtime options first: cap the heap, so a hostile text cannot eat memory.
        "+RTS",
        f"-M{PANDOC_MEMORY}",
        "-RTS",
        f"--from={PANDOC_INPUT}",
        f"--to={writer}",
        "--sandbox",
        f"--lua-filter={INERT_FILTER}",
        f"--reference-doc={REFERENCE / f'reference.{writer}'}",
        f"--metadata=lang:{_language(document)}",
        "--output=-",
    ]
    try:
        completed = subprocess.run(
            command,
            input=markdown_of(document).encode("utf-8"),
            capture_output=True,
            timeout=PANDOC_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ExportError(f"pandoc took more than {PANDOC_TIMEOUT} s") from error
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()[-500:]
        raise ExportError(f"pandoc failed ({completed.returncode}): {message}")
    return completed.stdout
