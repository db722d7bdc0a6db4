"""A draft as one document: the snapshot that revisions keep, and its markdown and HTML.

`snapshot_of` reads a draft's sections as they are now (their live notes, log included),
the experience sheets placed in it, and the evidence of every source its text refers to.
Revisions and publications store that snapshot, so everything rendered from them — pages
and exports — reads only the snapshot and never changes afterwards.

Rendering goes through one markdown document: sections under their themes, experience
sheets as block quotes, and a footnote definition for each source reference, written by
cop (a definition typed in a section is dropped). Pages turn it into HTML with the one
sanitising renderer; exports hand it to pandoc (cop/drafts/exports.py).
"""

from collections import Counter

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _

from cop.core.markdown import render_markdown
from cop.drafts.models import Draft, DraftKind, SectionKind
from cop.drafts.services import REFERENCE, SOURCE_DEFINITION, links_of, section_text
from cop.notes.services import word_diff
from cop.workshops.record import kind_label, markdown_inline

FORMAT = "cop.draft"
VERSION = 1


def snapshot_of(draft: Draft) -> dict:
    """Return the draft as it is now, as plain data (see the module's docstring)."""
    sections = [_section_data(section) for section in draft.sections]
    texts = [section["text"] for section in sections]
    for section in sections:
        texts += [part["text"] for part in (section["sheet"] or {}).get("sections", [])]
    used = {link_id for text in texts for link_id in map(int, REFERENCE.findall(text))}
    links = links_of(draft) + [
        link
        for section in draft.sections
        if section.sheet is not None
        for link in links_of(section.sheet)
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": draft.title,
        "kind": draft.kind.value,
        "locale": draft.locale,
        "community": {"slug": draft.community.slug, "name": draft.community.name},
        "organisation": _organisation(draft),
        "sections": sections,
        "sources": {str(link.id): source_data(link.evidence) for link in links if link.id in used},
    }


def _organisation(draft: Draft) -> dict | None:
    if draft.organisation is None:
        return None
    return {"name": draft.organisation.name, "kind": draft.organisation.kind.value}


def _section_data(section) -> dict:
    sheet = None
    if section.sheet is not None:
        sheet = {
            "id": section.sheet.id,
            "title": section.sheet.title,
            "organisation": _organisation(section.sheet),
            "sections": [
                {"id": part.id, "title": part.title, "text": section_text(part)}
                for part in section.sheet.sections
            ],
        }
    return {
        "id": section.id,
        "kind": section.kind.value,
        "title": section.title,
        "theme": {"id": section.theme.id, "name": section.theme.name} if section.theme else None,
        "text": section_text(section),
        "sheet": sheet,
    }


def source_data(evidence: dict) -> dict:
    """Keep what a footnote shows: where and how much, by kind of organisation, no names."""
    return {
        "day": evidence.get("day"),
        "session": evidence.get("session"),
        "contributions": evidence.get("contributions", 0),
        "organisations": len(evidence.get("organisations", {})),
        "kinds": dict(Counter(evidence.get("organisations", {}).values()).most_common()),
    }


# --- Markdown ----------------------------------------------------------------------------


def _clean(text: str, sources: dict) -> str:
    """Drop footnote definitions typed in a section and references to no source of this draft."""
    text = SOURCE_DEFINITION.sub("", text)
    return REFERENCE.sub(lambda match: match.group(0) if match.group(1) in sources else "", text)


def _quoted(markdown: str) -> str:
    return "\n".join("> " + line if line.strip() else ">" for line in markdown.splitlines())


def _sheet_markdown(sheet: dict, sources: dict) -> str:
    organisation = sheet["organisation"]["name"] if sheet["organisation"] else ""
    heading = _("Experience sheet: %(title)s", title=sheet["title"])
    lines = [f"### {markdown_inline(heading)}", ""]
    if organisation:
        lines += [f"*{markdown_inline(organisation)}*", ""]
    for part in sheet["sections"]:
        body = _clean(part["text"], sources).strip()
        if body:
            lines += [f"#### {markdown_inline(part['title'])}", "", body, ""]
    return _quoted("\n".join(lines).strip())


def source_label(source: dict) -> str:
    """Say in one line where a source comes from and what stands behind it (plain text)."""
    parts = []
    if source.get("day"):
        parts.append(f"{source['day']['title']} ({source['day']['date']})")
    if source.get("session"):
        parts.append(_("session “%(title)s”", title=source["session"]["title"]))
    count = source.get("contributions", 0)
    parts.append(ngettext("%(num)d contribution", "%(num)d contributions", count))
    organisations = source.get("organisations", 0)
    if organisations:
        kinds = ", ".join(kind_label(kind) for kind in source.get("kinds", {}))
        parts.append(
            ngettext("%(num)d organisation", "%(num)d organisations", organisations)
            + (f" ({kinds})" if kinds else "")
        )
    return " · ".join(parts)


def markdown_of(document: dict) -> str:
    """Return the whole document as markdown with real footnotes for its sources.

    What cop writes around the text (footnotes, the sheets' headings) is in the document's
    language, whoever reads it.
    """
    with force_locale(document.get("locale") or "en"):
        return _markdown_of(document)


def _markdown_of(document: dict) -> str:
    sources = document["sources"]
    lines = [f"# {markdown_inline(document['title'])}", ""]
    if document.get("organisation"):
        lines += [f"*{markdown_inline(document['organisation']['name'])}*", ""]
    theme_id = None
    for section in document["sections"]:
        theme = section["theme"]
        if theme is not None and theme["id"] != theme_id:
            lines += [f"## {markdown_inline(theme['name'])}", ""]
        theme_id = theme["id"] if theme is not None else None
        level = "###" if theme is not None else "##"
        if section["kind"] == SectionKind.SHEET.value and section["sheet"]:
            lines += [_sheet_markdown(section["sheet"], sources), ""]
            continue
        lines += [f"{level} {markdown_inline(section['title'])}", ""]
        body = _clean(section["text"], sources).strip()
        if body:
            lines += [body, ""]
    for link_id, source in sources.items():
        lines.append(f"[^s{link_id}]: {markdown_inline(source_label(source))}")
    return "\n".join(lines).rstrip() + "\n"


def html_of(document: dict, *, for_print: bool = False):
    """Return the document as safe HTML (the one sanitising renderer), or for paper."""
    return render_markdown(markdown_of(document), for_print=for_print)


def section_html(document: dict, section: dict):
    """Return one section's text as safe HTML, its sources as footnotes below it."""
    sources = document["sources"]
    with force_locale(document.get("locale") or "en"):
        if section["kind"] == SectionKind.SHEET.value and section["sheet"]:
            markdown = _sheet_markdown(section["sheet"], sources)
        else:
            markdown = _clean(section["text"], sources).strip()
        cited = [str(link_id) for link_id in dict.fromkeys(REFERENCE.findall(markdown))]
        definitions = [
            f"[^s{link_id}]: {markdown_inline(source_label(sources[link_id]))}" for link_id in cited
        ]
    return render_markdown(
        "\n\n".join([markdown, "\n".join(definitions)]), document_id=f"s{section['id']}"
    )


def is_guide(document: dict) -> bool:
    """Tell whether a document is a guide (not an experience sheet)."""
    return document["kind"] == DraftKind.GUIDE.value


# --- Comparing two snapshots ------------------------------------------------------------


def compare(old: dict, new: dict) -> list[dict]:
    """Compare two snapshots section by section, word by word.

    Returns one entry per section of either, in the newer order then the removed ones:
    `title`, `theme` (its name, or None), `change` ("same" | "changed" | "added" |
    "removed") and the word diff `parts`.
    """
    old_sections = {section["id"]: section for section in old["sections"]}
    new_ids = {section["id"] for section in new["sections"]}
    entries = []
    for section in new["sections"]:
        before = old_sections.get(section["id"])
        text = _comparable(section)
        if before is None:
            entries.append(_entry(section, "added", [("added", text)] if text else []))
            continue
        previous = _comparable(before)
        change = "same" if previous == text and before["title"] == section["title"] else "changed"
        entries.append(_entry(section, change, word_diff(previous, text)))
    for section in old["sections"]:
        if section["id"] not in new_ids:
            text = _comparable(section)
            entries.append(_entry(section, "removed", [("removed", text)] if text else []))
    return entries


def _comparable(section: dict) -> str:
    if section["sheet"]:
        return "\n\n".join(part["text"] for part in section["sheet"]["sections"])
    return section["text"]


def _entry(section: dict, change: str, parts: list) -> dict:
    # The theme tells apart the sections every theme has (« Key issues » of each theme).
    theme = section["theme"]["name"] if section["theme"] else None
    return {
        "id": section["id"],
        "title": section["title"],
        "theme": theme,
        "change": change,
        "parts": parts,
    }
