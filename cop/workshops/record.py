"""The record of a closed session: its output frozen as data, and that data's exports.

`freeze` reads the session from the database once, when a facilitator closes it, and
stores the result as `SessionRecord.data`. The record page and every export read only that
data, so they show what the session produced at closing, whatever happens to its cards,
notes or people afterwards. docs/session-record.md documents the shape: a stable contract
(`format` and `version`) that editors quote cards, clusters, takeaways and notes from, by id.

What a person wrote is plain text (cards, cluster labels, takeaways, parked items, names),
except the notes, which are markdown. Every export keeps it inert: escaped in HTML, with
markdown's special characters escaped in Markdown, neutralised against spreadsheet
formulas in CSV; the notes' markdown goes through the one sanitising renderer for HTML.
"""

import csv
import io
import json
import re
from collections import Counter
from datetime import date, datetime

from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from cop.auth.models import User
from cop.communities.models import Membership
from cop.communities.services import slugify
from cop.core.formatting import local_datetime, viewer_date
from cop.core.labels import organisation_kind_label
from cop.core.time import utc_text, utcnow
from cop.extensions import db
from cop.notes.models import Note
from cop.notes.services import current_text
from cop.workshops.models import (
    Attendance,
    BreakoutGroup,
    Card,
    Cluster,
    ParkedItem,
    SessionRecord,
    Takeaway,
    TakeawayKind,
    Vote,
    WorkshopSession,
    takeaway_cluster,
)

FORMAT = "cop.session-record"
VERSION = 1
# The organisation kind counted for people without an organisation (or no longer members).
NO_ORGANISATION = "none"

TAKEAWAY_HEADINGS = {
    TakeawayKind.KEY_ISSUE: _l("Key issues"),
    TakeawayKind.LEVER: _l("Levers"),
    TakeawayKind.CONDITION: _l("Favourable conditions"),
}


# --- Freezing --------------------------------------------------------------------------


def freeze(
    session: WorkshopSession, closed_by: User | None, closed_at: datetime | None = None
) -> SessionRecord:
    """Freeze the session's output into its record (flushed, not committed).

    Freezing a session that already has a record replaces that record's data.
    """
    closed_at = closed_at or utcnow()
    data = record_data(session, closed_by, closed_at)
    record = db.session.scalar(select(SessionRecord).filter_by(session_id=session.id))
    if record is None:
        record = SessionRecord(session_id=session.id)
        db.session.add(record)
    record.data = data
    record.closed_at = closed_at
    record.closed_by_id = closed_by.id if closed_by is not None else None
    db.session.flush()
    return record


def record_of(session: WorkshopSession) -> SessionRecord | None:
    """Return the session's record, or None while it has none."""
    return db.session.scalar(select(SessionRecord).filter_by(session_id=session.id))


def recorded_session_ids(session_ids) -> set[int]:
    """Return which of these sessions have a record (one query, without loading the data)."""
    ids = list(session_ids)
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(SessionRecord.session_id).where(SessionRecord.session_id.in_(ids))
        )
    )


def _note_data(note_id: int | None) -> dict | None:
    """Return a note's id and exact current text, log included.

    `current_text` reads the note's state and its not yet compacted log consistently and
    writes nothing, so freezing neither waits for nor competes with the live server's
    compaction (which `compact_note` would).
    """
    note = db.session.get(Note, note_id) if note_id else None
    if note is None:
        return None
    return {"id": note.id, "text": current_text(note)}


def _counted(counter: Counter) -> dict[str, int]:
    """Return counts by kind, largest first, then by kind."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _rows(model, session: WorkshopSession, *order) -> list:
    """Return a session's rows of `model`, read afresh (a loaded collection may be stale)."""
    return list(db.session.scalars(select(model).filter_by(session_id=session.id).order_by(*order)))


def record_data(session: WorkshopSession, closed_by: User | None, closed_at: datetime) -> dict:
    """Build the record's data from the database (docs/session-record.md, version 1)."""
    day = session.workshop_day
    community = day.community
    memberships = {
        membership.user_id: membership
        for membership in db.session.scalars(
            select(Membership)
            .filter_by(community_id=community.id)
            .options(selectinload(Membership.organisation))
        )
    }

    def kind_of(user_id: int | None) -> str:
        membership = memberships.get(user_id)
        if membership is None or membership.organisation is None:
            return NO_ORGANISATION
        return membership.organisation.kind.value

    # Hidden cards (moderation) are left out, and so are the dots they had.
    cards = list(
        db.session.scalars(
            select(Card)
            .filter_by(session_id=session.id)
            .where(Card.hidden_reason.is_(None))
            .order_by(Card.id)
            .options(selectinload(Card.author))
        )
    )
    card_ids = [card.id for card in cards]
    votes = dict(
        db.session.execute(
            select(Vote.card_id, func.count())
            .where(Vote.session_id == session.id, Vote.card_id.in_(card_ids))
            .group_by(Vote.card_id)
        ).all()
    )
    voters = db.session.scalar(
        select(func.count(func.distinct(Vote.user_id))).where(
            Vote.session_id == session.id, Vote.card_id.in_(card_ids)
        )
    )
    clusters = _rows(Cluster, session, Cluster.position, Cluster.id)
    groups = _rows(BreakoutGroup, session, BreakoutGroup.position, BreakoutGroup.id)
    group_names = {group.id: group.name for group in groups}
    takeaways = _rows(Takeaway, session, Takeaway.position, Takeaway.id)
    takeaway_clusters: dict[int, list[int]] = {}
    if takeaways:
        links = db.session.execute(
            select(takeaway_cluster.c.takeaway_id, takeaway_cluster.c.cluster_id)
            .join(Cluster, Cluster.id == takeaway_cluster.c.cluster_id)
            .where(takeaway_cluster.c.takeaway_id.in_([t.id for t in takeaways]))
            .order_by(Cluster.position, Cluster.id)
        )
        for takeaway_id, cluster_id in links:
            takeaway_clusters.setdefault(takeaway_id, []).append(cluster_id)

    def card_data(card: Card) -> dict:
        author = None
        if not card.is_anonymous and card.author is not None:
            membership = memberships.get(card.author_id)
            organisation = membership.organisation if membership else None
            author = {
                "name": card.author.display_name,
                "organisation": organisation.name if organisation else None,
            }
        return {
            "id": card.id,
            "body": card.body,
            "anonymous": card.is_anonymous,
            "author": author,
            # An anonymous card's kind counts in `statistics` only: shown on the card, it
            # could point at its author.
            "organisation_kind": None if card.is_anonymous else kind_of(card.author_id),
            "cluster_id": card.cluster_id,
            "group": (
                {"id": card.group_id, "name": group_names[card.group_id]}
                if card.group_id in group_names
                else None
            ),
            "votes": votes.get(card.id, 0),
        }

    def by_votes(chosen: list[Card]) -> list[dict]:
        chosen = sorted(chosen, key=lambda card: (-votes.get(card.id, 0), card.id))
        return [card_data(card) for card in chosen]

    cluster_ids = {cluster.id for cluster in clusters}
    attendees = list(
        db.session.scalars(select(Attendance.user_id).filter_by(session_id=session.id).distinct())
    )
    theme = session.theme
    return {
        "format": FORMAT,
        "version": VERSION,
        "community": {"slug": community.slug, "name": community.name},
        "session": {
            "id": session.id,
            "title": session.title,
            "question": session.question,
            "theme": {"id": theme.id, "name": theme.name} if theme else None,
            "day": {"id": day.id, "title": day.title, "date": day.date.isoformat()},
            "starts_at": session.starts_at.isoformat(),
            "duration_min": session.duration_min,
            "facilitator": session.facilitator.display_name if session.facilitator else None,
            "dots_per_person": session.dots_per_person,
            "max_dots_per_card": session.max_dots_per_card,
        },
        "closed_at": utc_text(closed_at),
        "closed_by": closed_by.display_name if closed_by is not None else None,
        "note": _note_data(session.note_id),
        "clusters": [
            {
                "id": cluster.id,
                "label": cluster.label,
                "position": cluster.position,
                "votes": sum(
                    votes.get(card.id, 0) for card in cards if card.cluster_id == cluster.id
                ),
                "cards": by_votes([card for card in cards if card.cluster_id == cluster.id]),
            }
            for cluster in clusters
        ],
        "unclustered_cards": by_votes([c for c in cards if c.cluster_id not in cluster_ids]),
        "takeaways": [
            {
                "id": takeaway.id,
                "kind": takeaway.kind.value,
                "theme": (
                    {"id": takeaway.theme.id, "name": takeaway.theme.name}
                    if takeaway.theme
                    else None
                ),
                "text": takeaway.text,
                "cluster_ids": takeaway_clusters.get(takeaway.id, []),
            }
            for takeaway in takeaways
        ],
        "parked_items": [
            {"id": item.id, "text": item.text} for item in _rows(ParkedItem, session, ParkedItem.id)
        ],
        "groups": [
            {"id": group.id, "name": group.name, "note": _note_data(group.note_id)}
            for group in groups
        ],
        "attendance": {
            "people": len(attendees),
            "by_organisation_kind": _counted(Counter(kind_of(user) for user in attendees)),
        },
        "statistics": {
            "cards": len(cards),
            "anonymous_cards": sum(card.is_anonymous for card in cards),
            "votes": sum(votes.values()),
            "voters": voters or 0,
            "cards_by_organisation_kind": _counted(
                Counter(kind_of(card.author_id) for card in cards)
            ),
        },
    }


# --- Reading the data --------------------------------------------------------------------


def all_cards(data: dict) -> list[dict]:
    """Return the record's cards: cluster by cluster, then those in no cluster."""
    return [card for cluster in data["clusters"] for card in cluster["cards"]] + data[
        "unclustered_cards"
    ]


def closed_at_of(data: dict) -> datetime:
    """Return when the session was closed, as a naive UTC datetime."""
    return datetime.fromisoformat(data["closed_at"]).replace(tzinfo=None)


def day_date_of(data: dict) -> date:
    """Return the date of the session's day."""
    return date.fromisoformat(data["session"]["day"]["date"])


def kind_label(kind: str) -> str:
    """Return the translated name of an organisation kind of the record ("none" included)."""
    if kind == NO_ORGANISATION:
        return str(_l("No organisation"))
    return organisation_kind_label(kind)


def takeaways_by_kind(data: dict) -> list[tuple[str, list[dict]]]:
    """Return (translated heading, takeaways) for each kind that has some, in guide order."""
    return [
        (str(heading), [t for t in data["takeaways"] if t["kind"] == kind.value])
        for kind, heading in TAKEAWAY_HEADINGS.items()
        if any(t["kind"] == kind.value for t in data["takeaways"])
    ]


def cluster_labels(data: dict) -> dict[int, str]:
    """Return each cluster's label by id."""
    return {cluster["id"]: cluster["label"] for cluster in data["clusters"]}


def cluster_names(data: dict, takeaway: dict) -> list[str]:
    """Return the labels of the clusters a takeaway comes from."""
    labels = cluster_labels(data)
    return [labels[cluster_id] for cluster_id in takeaway["cluster_ids"] if cluster_id in labels]


def filename(data: dict, extension: str) -> str:
    """Return a safe download name: the session title's slug and its id."""
    session = data["session"]
    return f"{slugify(session['title']) or 'session'}-{session['id']}-record.{extension}"


# --- Markdown ----------------------------------------------------------------------------

# Characters that mean something to markdown anywhere in a line (footnotes, links, code,
# emphasis, raw HTML, entities, tables, strikethrough); a backslash makes each literal.
MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>#|~&])")
# What means something only at the start of a line: list markers, setext underlines.
MARKDOWN_LINE_START = re.compile(r"^([-+=]|\d+(?=[.)]))")


def _escaped_line(line: str) -> str:
    line = MARKDOWN_SPECIALS.sub(r"\\\1", line.strip())
    match = MARKDOWN_LINE_START.match(line)
    if match is None:
        return line
    marker = match.group(1)
    if marker.isdigit():  # "1." → "1\." so that it is not an ordered list
        return marker + "\\" + line[len(marker) :]
    return "\\" + line


def markdown_text(text: str, indent: str = "") -> str:
    """Return plain text as markdown that renders it literally, line breaks kept.

    Empty lines are dropped (they would end the list item or paragraph the text is in);
    following lines are indented by `indent` so that they stay in a list item.
    """
    lines = [_escaped_line(line) for line in text.splitlines() if line.strip()]
    return ("\\\n" + indent).join(lines)


def markdown_inline(text: str) -> str:
    """Return plain text as markdown for one line (a heading, a name), rendered literally."""
    # ASCII whitespace only: French typography's non-breaking spaces stay as written.
    return _escaped_line(re.sub(r"[ \t\r\n\f\v]+", " ", text).strip(" "))


def _card_markdown(card: dict) -> str:
    """Write a card as a list item: its text, then who wrote it, its dots and its id."""
    if card["author"] is None:
        who = gettext("Anonymous")
    elif card["author"]["organisation"]:
        who = f"{card['author']['name']}, {card['author']['organisation']}"
    else:
        who = card["author"]["name"]
    details = [markdown_inline(who)]
    if card["group"]:
        details.append(markdown_inline(card["group"]["name"]))
    details.append(ngettext("%(num)d dot", "%(num)d dots", card["votes"]))
    details.append(gettext("card %(id)d", id=card["id"]))
    return f"- {markdown_text(card['body'], indent='  ')}  \n  *{' · '.join(details)}*"


def markdown_of(data: dict) -> str:
    """Write the record as a Markdown document (headings in the viewer's language).

    The notes are markdown already and come as written; everything else is plain text,
    escaped so that it renders literally.
    """
    session = data["session"]
    facts = [data["community"]["name"], session["day"]["title"]]
    if session["theme"]:
        facts.append(session["theme"]["name"])
    out = [
        f"# {markdown_inline(session['title'])}",
        "",
        " · ".join(markdown_inline(fact) for fact in facts) + "  ",
        viewer_date(day_date_of(data)) + "  ",
    ]
    if session["facilitator"]:
        name = markdown_inline(session["facilitator"])
        out.append(gettext("Facilitated by %(name)s", name=name) + "  ")
    out += [gettext("Closed on %(when)s", when=local_datetime(closed_at_of(data))), ""]
    if session["question"]:
        question = markdown_text(session["question"], indent="> ")
        out += [f"## {gettext('The question')}", "", f"> {question}", ""]

    out += [f"## {gettext('Takeaways')}", ""]
    sections = takeaways_by_kind(data)
    for heading, takeaways in sections:
        out += [f"### {heading}", ""]
        for takeaway in takeaways:
            line = f"- {markdown_text(takeaway['text'], indent='  ')}"
            names = [markdown_inline(name) for name in cluster_names(data, takeaway)]
            if names:
                line += "  \n  *" + gettext("From: %(clusters)s", clusters=", ".join(names)) + "*"
            out.append(line)
        out.append("")
    if not sections:
        out += [gettext("No takeaway was recorded."), ""]

    out += [f"## {gettext('Cards and votes')}", ""]
    for cluster in data["clusters"]:
        dots = ngettext("%(num)d dot", "%(num)d dots", cluster["votes"])
        out += [f"### {markdown_inline(cluster['label'])} ({dots})", ""]
        cards = [_card_markdown(card) for card in cluster["cards"]]
        out += (cards or [gettext("No card in this cluster.")]) + [""]
    if data["unclustered_cards"]:
        out += [f"### {gettext('In no cluster')}", ""]
        out += [_card_markdown(card) for card in data["unclustered_cards"]] + [""]
    if not all_cards(data):
        out += [gettext("No card was posted."), ""]

    if data["note"] is not None:
        out += [f"## {gettext('Shared note')}", "", data["note"]["text"].strip(), ""]
    for group in data["groups"]:
        if group["note"] is not None and group["note"]["text"].strip():
            heading = gettext("Note of %(group)s", group=markdown_inline(group["name"]))
            out += [f"## {heading}", "", group["note"]["text"].strip(), ""]

    out += [f"## {gettext('Parked for the next day')}", ""]
    parked = [f"- {markdown_text(item['text'], indent='  ')}" for item in data["parked_items"]]
    out += (parked or [gettext("Nothing parked.")]) + [""]

    attendance = data["attendance"]
    out += [
        f"## {gettext('Attendance')}",
        "",
        ngettext("%(num)d person attended.", "%(num)d people attended.", attendance["people"]),
        "",
    ]
    out += [
        f"- {kind_label(kind)}: {count}"
        for kind, count in attendance["by_organisation_kind"].items()
    ]
    return "\n".join(out).rstrip() + "\n"


# --- CSV ---------------------------------------------------------------------------------

CSV_COLUMNS = (
    "card_id",
    "cluster_id",
    "cluster",
    "body",
    "votes",
    "anonymous",
    "author",
    "organisation",
    "organisation_kind",
    "group",
)
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# injection"): such cells get a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str | int:
    """Return a cell a spreadsheet shows as text, never runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_of(data: dict) -> str:
    """Write the record's cards and votes as CSV: one row per card, with a header row.

    It starts with a byte order mark, so that spreadsheets read its accents as UTF-8.
    """
    labels = cluster_labels(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for card in all_cards(data):
        author = card["author"] or {}
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    card["id"],
                    card["cluster_id"],
                    labels.get(card["cluster_id"]),
                    card["body"],
                    card["votes"],
                    card["anonymous"],
                    author.get("name"),
                    author.get("organisation"),
                    card["organisation_kind"],
                    card["group"]["name"] if card["group"] else None,
                )
            ]
        )
    return "\ufeff" + buffer.getvalue()


# --- JSON --------------------------------------------------------------------------------


def json_of(data: dict) -> str:
    """Write the record's data as JSON, as stored."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
