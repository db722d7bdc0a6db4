"""Draft rules: guides and sheets, their sections, material from session records, sources.

Views call these with the acting user and commit once. A refusal raises `DraftError` with a
message for the person, before anything is written.
"""

import re
from collections import Counter
from dataclasses import dataclass

from flask import current_app, has_request_context
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from cop.auth.models import NAME_MAX, User
from cop.communities.models import Community, Membership, Theme
from cop.communities.services import slugify
from cop.core.errors import ServiceError
from cop.drafts.models import (
    Draft,
    DraftKind,
    DraftSection,
    DraftStatus,
    ReviewComment,
    SectionKind,
    SourceKind,
    SourceLink,
    ValidationMark,
)
from cop.extensions import db
from cop.notes.models import Note, NoteOwnerKind, NoteUpdate, NoteVersion
from cop.notes.services import append_paragraph, current_text
from cop.workshops.models import Card, SessionRecord, Takeaway, WorkshopDay, WorkshopSession
from cop.workshops.record import all_cards, markdown_text

# A source reference in a section's markdown: `[^s<link id>]`.
REFERENCE = re.compile(r"\[\^s(\d{1,9})\]")
# A footnote definition for a source reference, which only cop writes (when rendering).
SOURCE_DEFINITION = re.compile(r"^ {0,3}\[\^s\d{1,9}\]:.*$", re.MULTILINE)
EXCERPT_MAX = 1000

SECTION_TITLES = {
    SectionKind.INTRO: _l("Introduction"),
    SectionKind.KEY_ISSUES: _l("Key issues"),
    SectionKind.LEVERS: _l("Levers"),
    SectionKind.CONDITIONS: _l("Favourable conditions"),
    SectionKind.CONTEXT: _l("Context"),
    SectionKind.ACTORS: _l("Actors"),
    SectionKind.ACTIONS: _l("What was done"),
    SectionKind.RESULTS: _l("Results"),
    SectionKind.LESSONS: _l("Lessons learned"),
    SectionKind.REPRODUCE: _l("Conditions to reproduce it"),
    SectionKind.CONTACT: _l("Contact"),
}
THEME_SECTIONS = (SectionKind.KEY_ISSUES, SectionKind.LEVERS, SectionKind.CONDITIONS)
SHEET_TEMPLATE = (
    SectionKind.CONTEXT,
    SectionKind.ACTORS,
    SectionKind.ACTIONS,
    SectionKind.RESULTS,
    SectionKind.LESSONS,
    SectionKind.REPRODUCE,
    SectionKind.CONTACT,
)


class DraftError(ServiceError):
    """A refused change to a draft, with the reason to show (nothing was written)."""


# --- Drafts and sections ---------------------------------------------------------------


def draft_in(community: Community, draft_id: int, kind: DraftKind | None = None) -> Draft | None:
    """Return the community's draft with this id (of `kind`, if given), or None."""
    draft = db.session.get(Draft, draft_id)
    if draft is None or draft.community_id != community.id:
        return None
    if kind is not None and draft.kind is not kind:
        return None
    return draft


def drafts_of(community: Community, kind: DraftKind) -> list[Draft]:
    """Return the community's drafts of one kind, newest first."""
    return list(
        db.session.scalars(
            select(Draft).filter_by(community_id=community.id, kind=kind).order_by(Draft.id.desc())
        )
    )


def guide_by_slug(community: Community, slug: str) -> Draft | None:
    """Return the community's guide with this slug, or None."""
    return db.session.scalar(
        select(Draft).filter_by(community_id=community.id, kind=DraftKind.GUIDE, slug=slug)
    )


def _unique_slug(community: Community, title: str) -> str:
    base = slugify(title) or "draft"
    taken = set(
        db.session.scalars(
            select(Draft.slug).where(
                Draft.community_id == community.id, Draft.slug.startswith(base[:70])
            )
        )
    )
    slug, number = base, 2
    while slug in taken:
        suffix = f"-{number}"
        slug = base[: 80 - len(suffix)] + suffix
        number += 1
    return slug


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise DraftError(_("A title is needed."))
    return title


def themes_in_order(community: Community) -> list[Theme]:
    """Return the community's current themes, in their order."""
    return list(
        db.session.scalars(
            select(Theme)
            .filter_by(community_id=community.id, archived_at=None)
            .order_by(Theme.position, Theme.id)
        )
    )


def _writing_locale(actor: User) -> str:
    """Return the language a new draft is written in: its author's, else the page's."""
    if actor.locale:
        return actor.locale
    if has_request_context():
        return str(get_locale())
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def create_guide(actor: User, community: Community, title: str) -> Draft:
    """Create a guide draft from the community's themes.

    An introduction, then for each theme its key issues, levers and favourable conditions;
    each section's body is a live note.
    """
    draft = Draft(
        community=community,
        kind=DraftKind.GUIDE,
        title=_clean_title(title),
        slug=_unique_slug(community, title),
        locale=_writing_locale(actor),
        created_by=actor,
    )
    db.session.add(draft)
    db.session.flush()
    with force_locale(draft.locale):
        _new_section(actor, draft, SectionKind.INTRO, str(SECTION_TITLES[SectionKind.INTRO]))
        for theme in themes_in_order(community):
            for kind in THEME_SECTIONS:
                _new_section(actor, draft, kind, str(SECTION_TITLES[kind]), theme)
    return draft


def create_sheet(actor: User, membership: Membership, title: str) -> Draft:
    """Create an experience sheet for the member's organisation, from the template."""
    if membership.organisation is None:
        raise DraftError(
            _("An experience sheet speaks for an organisation: set yours in your membership first.")
        )
    community = membership.community
    sheet = Draft(
        community=community,
        kind=DraftKind.EXPERIENCE_SHEET,
        title=_clean_title(title),
        slug=_unique_slug(community, title),
        organisation=membership.organisation,
        locale=_writing_locale(actor),
        created_by=actor,
    )
    db.session.add(sheet)
    db.session.flush()
    with force_locale(sheet.locale):
        for kind in SHEET_TEMPLATE:
            _new_section(actor, sheet, kind, str(SECTION_TITLES[kind]))
    return sheet


def _new_section(
    actor: User,
    draft: Draft,
    kind: SectionKind,
    title: str,
    theme: Theme | None = None,
    sheet: Draft | None = None,
) -> DraftSection:
    """Add a section at the end of a draft, with its note (none for a boxed sheet)."""
    last = db.session.scalar(
        select(func.max(DraftSection.position)).where(DraftSection.draft_id == draft.id)
    )
    section = DraftSection(
        draft=draft,
        kind=kind,
        title=title,
        theme=theme,
        position=(last or 0) + 1,
        sheet=sheet,
    )
    db.session.add(section)
    db.session.flush()
    if kind is not SectionKind.SHEET:
        owner_kind = (
            NoteOwnerKind.EXPERIENCE_SHEET
            if draft.kind is DraftKind.EXPERIENCE_SHEET
            else NoteOwnerKind.DRAFT_SECTION
        )
        note = Note(
            community_id=draft.community_id,
            owner_kind=owner_kind,
            owner_id=section.id,
            title=_note_title(draft, title),
            created_by=actor,
        )
        db.session.add(note)
        db.session.flush()
        section.note = note
    return section


def _note_title(draft: Draft, section_title: str) -> str:
    """Name a section's note after its draft and itself, within a note title's length."""
    return f"{draft.title} — {section_title}"[:NAME_MAX]


def section_in(draft: Draft, section_id: int) -> DraftSection | None:
    """Return the draft's section with this id, or None."""
    section = db.session.get(DraftSection, section_id)
    return section if section is not None and section.draft_id == draft.id else None


def add_section(actor: User, draft: Draft, title: str, theme_id: int | None = None) -> DraftSection:
    """Add a free section at the end of a guide, optionally under a theme."""
    theme = None
    if theme_id is not None:
        theme = db.session.get(Theme, theme_id)
        if theme is None or theme.community_id != draft.community_id:
            raise DraftError(_("This theme is not one of the community's."))
    return _new_section(actor, draft, SectionKind.FREE, _clean_title(title), theme)


def place_sheet(actor: User, draft: Draft, sheet_id: int) -> DraftSection:
    """Place a signed-off experience sheet of the community in a guide, as a boxed insert."""
    sheet = draft_in(draft.community, sheet_id, DraftKind.EXPERIENCE_SHEET)
    if sheet is None:
        raise DraftError(_("This experience sheet is not one of the community's."))
    if sheet.status is not DraftStatus.SIGNED_OFF:
        raise DraftError(
            _("A member of the sheet's organisation must sign it off before it goes in a guide.")
        )
    return _new_section(actor, draft, SectionKind.SHEET, sheet.title, sheet=sheet)


def rename_section(section: DraftSection, title: str) -> None:
    """Give a section a new title."""
    section.title = _clean_title(title)
    if section.note is not None:
        section.note.title = _note_title(section.draft, section.title)


def move_section(section: DraftSection, offset: int) -> None:
    """Move a section up (-1) or down (+1) among its draft's sections."""
    sections = list(section.draft.sections)
    index = sections.index(section)
    target = index + offset
    if offset not in (-1, 1) or not 0 <= target < len(sections):
        raise DraftError(_("This section cannot move further."))
    sections[index], sections[target] = sections[target], sections[index]
    for position, each in enumerate(sections, start=1):
        each.position = position
    db.session.expire(section.draft, ["sections"])  # loaded again in the new order


def remove_section(section: DraftSection) -> None:
    """Remove a section with its note, sources, comments and marks (revisions keep its text)."""
    draft = section.draft
    db.session.execute(delete(SourceLink).where(SourceLink.section_id == section.id))
    db.session.execute(delete(ValidationMark).where(ValidationMark.section_id == section.id))
    comments = ReviewComment.__table__
    db.session.execute(
        delete(comments).where(
            comments.c.section_id == section.id, comments.c.parent_id.is_not(None)
        )
    )
    db.session.execute(delete(comments).where(comments.c.section_id == section.id))
    note_id = section.note_id
    draft.sections.remove(section)
    db.session.delete(section)
    db.session.flush()
    if note_id is not None:
        db.session.execute(delete(NoteUpdate).where(NoteUpdate.note_id == note_id))
        db.session.execute(delete(NoteVersion).where(NoteVersion.note_id == note_id))
        db.session.execute(delete(Note).where(Note.id == note_id))
    for position, each in enumerate(draft.sections, start=1):
        each.position = position


# --- Text of a section -----------------------------------------------------------------


def section_text(section: DraftSection) -> str:
    """Return a section's current markdown (its note, log included); "" for a boxed sheet."""
    return current_text(section.note) if section.note is not None else ""


def references_in(text: str) -> list[int]:
    """Return the source link ids referenced in a text, in order, each once."""
    return list(dict.fromkeys(int(match) for match in REFERENCE.findall(text)))


# --- Material from session records -------------------------------------------------------


@dataclass
class Material:
    """One item of a session record an editor can put in a section."""

    kind: SourceKind
    source_id: int
    session_id: int
    text: str
    day: dict
    session: dict
    theme: dict | None
    votes: int | None = None
    takeaway_kind: str | None = None
    # For a note excerpt: its place among the note's paragraphs.
    excerpt: int | None = None

    @property
    def key(self) -> str:
        """A stable identifier of the item in the panel and in forms."""
        suffix = f"-{self.excerpt}" if self.excerpt is not None else ""
        return f"{self.session_id}-{self.kind.value}-{self.source_id}{suffix}"


def records_of(community: Community) -> list[SessionRecord]:
    """Return the community's session records, by day and then by session start."""
    return list(
        db.session.scalars(
            select(SessionRecord)
            .join(WorkshopSession, WorkshopSession.id == SessionRecord.session_id)
            .join(WorkshopDay, WorkshopDay.id == WorkshopSession.workshop_day_id)
            .where(WorkshopDay.community_id == community.id)
            .order_by(WorkshopDay.date, WorkshopSession.starts_at_local, WorkshopSession.id)
        )
    )


def excerpts_of(text: str) -> list[str]:
    """Split a note's markdown into paragraphs an editor may quote (headings left out)."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text or "")]
    return [
        block[:EXCERPT_MAX]
        for block in blocks
        if block and not re.fullmatch(r"#{1,6}\s.*", block) and block != "---"
    ]


def items_of_record(data: dict) -> list[Material]:
    """Return every item of a session record: cards by votes, clusters, takeaways, excerpts."""
    common = {
        "session_id": data["session"]["id"],
        "day": data["session"]["day"],
        "session": {"id": data["session"]["id"], "title": data["session"]["title"]},
        "theme": data["session"]["theme"],
    }
    # A takeaway names its own theme, which may differ from its session's.
    items = [
        Material(
            SourceKind.TAKEAWAY,
            t["id"],
            text=t["text"],
            takeaway_kind=t["kind"],
            **(common | {"theme": t["theme"] or common["theme"]}),
        )
        for t in data["takeaways"]
    ]
    items += [
        Material(SourceKind.CLUSTER, c["id"], text=c["label"], votes=c["votes"], **common)
        for c in data["clusters"]
    ]
    cards = sorted(all_cards(data), key=lambda card: (-card["votes"], card["id"]))
    items += [
        Material(SourceKind.CARD, card["id"], text=card["body"], votes=card["votes"], **common)
        for card in cards
    ]
    notes = [data["note"]] + [group["note"] for group in data["groups"]]
    for note in notes:
        if note is None:
            continue
        for index, excerpt in enumerate(excerpts_of(note["text"])):
            items.append(
                Material(SourceKind.NOTE_EXCERPT, note["id"], text=excerpt, excerpt=index, **common)
            )
    return items


@dataclass
class MaterialFilter:
    """What the material panel shows: each field narrows the list when set."""

    theme_id: int | None = None
    day_id: int | None = None
    session_id: int | None = None
    kind: SourceKind | None = None
    takeaway_kind: str | None = None
    search: str = ""

    def keeps(self, item: Material) -> bool:
        """Tell whether an item passes every filter that is set."""
        if self.theme_id is not None and (item.theme or {}).get("id") != self.theme_id:
            return False
        if self.day_id is not None and item.day["id"] != self.day_id:
            return False
        if self.session_id is not None and item.session_id != self.session_id:
            return False
        if self.kind is not None and item.kind is not self.kind:
            return False
        if self.takeaway_kind and item.takeaway_kind != self.takeaway_kind:
            return False
        words = self.search.casefold().split()
        haystack = item.text.casefold()
        return all(word in haystack for word in words)


def material_of(community: Community, wanted: MaterialFilter) -> list[Material]:
    """Return the items of the community's session records that pass the filter."""
    return [
        item
        for record in records_of(community)
        for item in items_of_record(record.data)
        if wanted.keeps(item)
    ]


def find_material(
    community: Community, session_id: int, kind: SourceKind, source_id: int, excerpt: int | None
) -> tuple[SessionRecord, Material]:
    """Return a record and one of its items, or raise DraftError when there is no such item."""
    record = db.session.scalar(select(SessionRecord).filter_by(session_id=session_id))
    if record is None or record.data["community"]["slug"] != community.slug:
        raise DraftError(_("This session has no record in this community."))
    for item in items_of_record(record.data):
        if item.kind is kind and item.source_id == source_id and item.excerpt == excerpt:
            return record, item
    raise DraftError(_("This item is not in the session's record."))


# --- Evidence ----------------------------------------------------------------------------


def _contributors(record: SessionRecord, item: Material) -> tuple[int, list[int | None]]:
    """Return how many contributions stand behind an item, and their authors' user ids."""
    data = record.data
    if item.kind is SourceKind.NOTE_EXCERPT:
        note = db.session.get(Note, item.source_id)
        people = set(note.unversioned_contributors or []) if note else set()
        people.update(
            user_id
            for contributors in db.session.scalars(
                select(NoteVersion.contributors).filter_by(note_id=item.source_id)
            )
            for user_id in contributors or []
        )
        # Writers whose changes are still in the log, not yet compacted into the state.
        people.update(
            user_id
            for author_ids in db.session.scalars(
                select(NoteUpdate.author_ids).filter_by(note_id=item.source_id)
            )
            for user_id in author_ids or []
        )
        return max(len(people), 1), sorted(people)
    if item.kind is SourceKind.CARD:
        card_ids = [item.source_id]
    else:
        cluster_ids = {item.source_id}
        if item.kind is SourceKind.TAKEAWAY:
            takeaway = next(t for t in data["takeaways"] if t["id"] == item.source_id)
            cluster_ids = set(takeaway["cluster_ids"])
        card_ids = [card["id"] for card in all_cards(data) if card["cluster_id"] in cluster_ids]
        if not card_ids and item.kind is SourceKind.TAKEAWAY:
            author = db.session.scalar(select(Takeaway.created_by_id).filter_by(id=item.source_id))
            return 1, [author]
    authors = list(db.session.scalars(select(Card.author_id).where(Card.id.in_(card_ids))))
    return len(card_ids), authors


def evidence_of(community: Community, record: SessionRecord, item: Material) -> dict:
    """Count what stands behind an item, to keep with its source link.

    Organisations are kept by id with their kind; names are never kept, so an anonymous
    card's author cannot be read back from a guide.
    """
    contributions, authors = _contributors(record, item)
    memberships = db.session.execute(
        select(Membership.user_id, Membership.organisation_id).where(
            Membership.community_id == community.id,
            Membership.user_id.in_([author for author in authors if author is not None]),
        )
    ).all()
    organisation_ids = {org for _user, org in memberships if org is not None}
    from cop.communities.models import Organisation

    kinds = dict(
        db.session.execute(
            select(Organisation.id, Organisation.kind).where(Organisation.id.in_(organisation_ids))
        ).all()
    )
    return {
        "day": item.day,
        "session": item.session,
        "sessions": [item.session_id],
        "contributions": contributions,
        "organisations": {str(org): kinds[org].value for org in sorted(kinds)},
    }


@dataclass
class Evidence:
    """What stands behind a passage or a section, counted over its source links."""

    sessions: int
    contributions: int
    organisations: int
    kinds: Counter

    @property
    def thin(self) -> bool:
        """True when it rests on a single organisation or a single kind of organisation."""
        return self.organisations <= 1 or len(self.kinds) <= 1


def evidence_over(evidences: list[dict]) -> Evidence:
    """Add up the evidence of several source links (organisations counted once)."""
    organisations: dict[str, str] = {}
    sessions: set[int] = set()
    for evidence in evidences:
        organisations.update(evidence.get("organisations", {}))
        sessions.update(evidence.get("sessions", []))
    return Evidence(
        sessions=len(sessions),
        contributions=sum(evidence.get("contributions", 0) for evidence in evidences),
        organisations=len(organisations),
        kinds=Counter(organisations.values()),
    )


# --- Source links ------------------------------------------------------------------------


def insert_material(
    actor: User,
    section: DraftSection,
    session_id: int,
    kind: SourceKind,
    source_id: int,
    excerpt: int | None,
    quote: bool,
) -> tuple[SourceLink, bytes]:
    """Put a record item's text at the end of a section, with its source reference.

    Quoted, the text goes in as a block quote; otherwise as a paragraph to reword. Returns
    the new source link and the Yjs update to broadcast to the section's live editors.
    """
    if section.note is None:
        raise DraftError(_("A boxed experience sheet has no text of its own to add to."))
    community = section.draft.community
    record, item = find_material(community, session_id, kind, source_id, excerpt)
    link = SourceLink(
        section=section,
        session_id=session_id,
        source_kind=kind,
        source_id=source_id,
        quoted_text=item.text,
        evidence=evidence_of(community, record, item),
        created_by_id=actor.id,
    )
    db.session.add(link)
    db.session.flush()
    # Card and cluster texts are plain text: escaped so that they read as written. A note
    # excerpt is markdown already.
    body = item.text if kind is SourceKind.NOTE_EXCERPT else markdown_text(item.text)
    body = SOURCE_DEFINITION.sub("", body).strip()
    if quote:
        body = "\n".join("> " + line if line else ">" for line in body.splitlines())
    change = append_paragraph(section.note, f"{body} [^s{link.id}]", actor)
    return link, change


def links_of(draft: Draft) -> list[SourceLink]:
    """Return every source link of a draft's sections, in order of creation."""
    return list(
        db.session.scalars(
            select(SourceLink)
            .join(DraftSection, DraftSection.id == SourceLink.section_id)
            .where(DraftSection.draft_id == draft.id)
            .order_by(SourceLink.id)
        )
    )
