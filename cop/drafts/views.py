"""Draft pages: guides and experience sheets, sections, the material panel, review, revisions.

Every page works without JavaScript; the section editor adds the live note (the notes
engine) when it can. Refusals raise `DraftError`, answered as 400 with the reason and
nothing written (cop/core/errors.py).
"""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from cop.auth.models import NAME_MAX
from cop.core.csp import allow_style_attributes
from cop.core.permissions import (
    Action,
    Verdict,
    can,
    can_write_note,
    community_or_abort,
    decide,
    draft_edit_verdict,
    draft_or_abort,
    enforce,
    sheet_verdict,
)
from cop.drafts import document as documents
from cop.drafts import services, workflow
from cop.drafts.models import DraftKind, DraftStatus, MarkVerdict, SourceKind
from cop.drafts.services import DraftError, MaterialFilter
from cop.extensions import db
from cop.live.notes import broadcast_update
from cop.workshops.models import TakeawayKind

bp = Blueprint("drafts", __name__)

# The material panel lists at most this many items; filters narrow the rest.
MATERIAL_SHOWN = 200


# --- Reading form fields -----------------------------------------------------------------


def _field(name: str, maximum: int | None = None, required: bool = True) -> str:
    """Return a form field's text, or refuse the request with the reason."""
    value = (request.form.get(name) or "").strip()
    if required and not value:
        raise DraftError(_("The field “%(name)s” is needed.", name=name), {name: [_("Needed.")]})
    if maximum is not None and len(value) > maximum:
        raise DraftError(
            _("The field “%(name)s” has at most %(max)d characters.", name=name, max=maximum),
            {name: [_("Too long.")]},
        )
    return value


def _number(source, name: str, required: bool = True) -> int | None:
    """Return a whole number from a form or query string, or refuse the request."""
    value = (source.get(name) or "").strip()
    if not value and not required:
        return None
    # isdigit() alone takes « ² » too, which int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise DraftError(_("The field “%(name)s” must be a number.", name=name))
    return int(value)


def _choice(source, name: str, enum_type, required: bool = True):
    """Return a value of `enum_type` named in a form or query string, or refuse the request."""
    value = (source.get(name) or "").strip()
    if not value and not required:
        return None
    try:
        return enum_type(value)
    except ValueError:
        raise DraftError(_("The field “%(name)s” has an unknown value.", name=name)) from None


def _section_or_abort(draft, section_id: int):
    return services.section_in(draft, section_id) or abort(404)


def _broadcast(changes: dict[int, bytes]) -> None:
    """Send committed note changes to their live editors."""
    for note_id, change in changes.items():
        broadcast_update(note_id, change)


# --- Lists and creation ------------------------------------------------------------------


@bp.get("/c/<slug>/drafts")
def index(slug: str):
    """List the community's guide drafts and experience sheets."""
    community, membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    return render_template(
        "drafts/index.html",
        community=community,
        membership=membership,
        guides=services.drafts_of(community, DraftKind.GUIDE),
        sheets=services.drafts_of(community, DraftKind.EXPERIENCE_SHEET),
        can_edit=can(current_user, community, Action.EDIT_DRAFTS),
        can_write_sheet=can(current_user, community, Action.WRITE_SHEET),
    )


@bp.post("/c/<slug>/drafts")
def create(slug: str):
    """Create a guide draft from the community's themes."""
    community, _membership = community_or_abort(slug, Action.EDIT_DRAFTS)
    draft = services.create_guide(current_user, community, _field("title", NAME_MAX))
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft.id), 303)


@bp.post("/c/<slug>/sheets")
def create_sheet(slug: str):
    """Create an experience sheet for the member's organisation."""
    _community, membership = community_or_abort(slug, Action.WRITE_SHEET)
    sheet = services.create_sheet(current_user, membership, _field("title", NAME_MAX))
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=sheet.id), 303)


# --- A draft -----------------------------------------------------------------------------


@bp.get("/c/<slug>/drafts/<int:draft_id>")
def show(slug: str, draft_id: int):
    """Show a draft: its sections rendered, their evidence, review and what can be done."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    community = draft.community
    snapshot = documents.snapshot_of(draft)
    links = {link.id: link for link in services.links_of(draft)}
    sections = []
    for section, data in zip(draft.sections, snapshot["sections"], strict=True):
        used = [links[i] for i in services.references_in(data["text"]) if i in links]
        sections.append(
            {
                "section": section,
                "html": documents.section_html(snapshot, data),
                "evidence": services.evidence_over([link.evidence for link in used]),
                "linked": bool(used),
            }
        )
    used_ids = {i for data in snapshot["sections"] for i in services.references_in(data["text"])}
    comments = workflow.comments_of(draft)
    is_sheet = draft.kind is DraftKind.EXPERIENCE_SHEET
    return render_template(
        "drafts/show.html",
        community=community,
        draft=draft,
        membership=membership,
        sections=sections,
        unused_links=[link for i, link in links.items() if i not in used_ids],
        threads=[c for c in comments if c.parent_id is None],
        replies=[c for c in comments if c.parent_id is not None],
        open_comments=workflow.open_comment_count(draft),
        marks=workflow.marks_by_section(draft),
        changes=workflow.status_changes_of(draft),
        publications=workflow.publications_of(draft),
        signed_off_sheets=[
            sheet
            for sheet in services.drafts_of(community, DraftKind.EXPERIENCE_SHEET)
            if sheet.status is DraftStatus.SIGNED_OFF
        ],
        themes=services.themes_in_order(community),
        is_sheet=is_sheet,
        can_edit=_may_edit(draft, membership),
        can_review=can(current_user, community, Action.REVIEW),
        can_publish=can(current_user, community, Action.PUBLISH),
        can_comment=can(current_user, community, Action.COMMENT),
        moves=[to for (frm, to) in workflow.MOVES if frm is draft.status],
        my_marks=workflow.marks_of_user(draft, current_user),
    )


def _edit_rights(slug: str, draft_id: int):
    """Load a draft its viewer may restructure: a guide for editors, a sheet for its writers."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    enforce(draft_edit_verdict(current_user, membership, draft))
    return draft, membership


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections")
def add_section(slug: str, draft_id: int):
    """Add a free section at the end of a guide."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.EDIT_DRAFTS, DraftKind.GUIDE)
    section = services.add_section(
        current_user, draft, _field("title", NAME_MAX), _number(request.form, "theme_id", False)
    )
    db.session.commit()
    return redirect(url_for("drafts.section", slug=slug, draft_id=draft_id, section_id=section.id))


@bp.post("/c/<slug>/drafts/<int:draft_id>/sheets")
def place_sheet(slug: str, draft_id: int):
    """Place a signed-off experience sheet in a guide as a boxed insert."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.EDIT_DRAFTS, DraftKind.GUIDE)
    services.place_sheet(current_user, draft, _number(request.form, "sheet_id"))
    db.session.commit()
    flash(_("The experience sheet is placed at the end of the guide."), "success")
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id), 303)


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/rename")
def rename_section(slug: str, draft_id: int, section_id: int):
    """Give a section a new title."""
    draft, _membership = _edit_rights(slug, draft_id)
    services.rename_section(_section_or_abort(draft, section_id), _field("title", NAME_MAX))
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id) + f"#section-{section_id}")


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/move")
def move_section(slug: str, draft_id: int, section_id: int):
    """Move a section up or down."""
    draft, _membership = _edit_rights(slug, draft_id)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        raise DraftError(_("Say whether the section moves up or down."))
    services.move_section(_section_or_abort(draft, section_id), -1 if direction == "up" else 1)
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id) + f"#section-{section_id}")


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/remove")
def remove_section(slug: str, draft_id: int, section_id: int):
    """Remove a section (revisions keep its text)."""
    draft, _membership = _edit_rights(slug, draft_id)
    services.remove_section(_section_or_abort(draft, section_id))
    db.session.commit()
    flash(_("The section is removed. Earlier revisions still hold its text."), "success")
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id), 303)


# --- The section editor and its material panel --------------------------------------------


def _material_filter() -> MaterialFilter:
    args = request.args
    return MaterialFilter(
        theme_id=_number(args, "theme", False),
        day_id=_number(args, "day", False),
        session_id=_number(args, "session", False),
        kind=_choice(args, "kind", SourceKind, False),
        takeaway_kind=_choice(args, "takeaway", TakeawayKind, False),
        search=(args.get("q") or "")[:200],
    )


@bp.get("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>")
def section(slug: str, draft_id: int, section_id: int):
    """Edit a section live, with the material of every session record beside it."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    shown = _section_or_abort(draft, section_id)
    if shown.note is None:  # a boxed sheet: its own page shows it
        return redirect(url_for("drafts.show", slug=slug, draft_id=shown.sheet_id))
    wanted = _material_filter()
    material = services.material_of(draft.community, wanted)
    records = services.records_of(draft.community)
    text = services.section_text(shown)
    links = {link.id: link for link in services.links_of(draft)}
    used = [links[i] for i in services.references_in(text) if i in links]
    allow_style_attributes()  # the editor colours remote cursors inline (cop/core/csp.py)
    return render_template(
        "drafts/section.html",
        community=draft.community,
        draft=draft,
        section=shown,
        note=shown.note,
        saved_text=text,  # log included: material inserted a moment ago shows without JS
        membership=membership,
        can_write=can_write_note(current_user, shown.note),
        material=material[:MATERIAL_SHOWN],
        material_total=len(material),
        wanted=wanted,
        records=records,
        themes=services.themes_in_order(draft.community),
        used=used,
        unused=[
            link for link in links.values() if link.section_id == shown.id and link not in used
        ],
        evidence=services.evidence_over([link.evidence for link in used]),
        evidence_of=services.evidence_over,
        source_labels={
            link_id: documents.source_label(documents.source_data(link.evidence))
            for link_id, link in links.items()
        },
    )


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/material")
def insert_material(slug: str, draft_id: int, section_id: int):
    """Put an item of a session record in the section, with its source reference."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    shown = _section_or_abort(draft, section_id)
    if shown.note is None:  # a boxed sheet: editors are told why nothing can go in it
        enforce(decide(current_user, draft.community, Action.EDIT_DRAFTS, membership))
    elif not can_write_note(current_user, shown.note):
        abort(403)
    kind = _choice(request.form, "kind", SourceKind)
    link, change = services.insert_material(
        current_user,
        shown,
        session_id=_number(request.form, "session_id"),
        kind=kind,
        source_id=_number(request.form, "source_id"),
        excerpt=_number(request.form, "excerpt", kind is SourceKind.NOTE_EXCERPT),
        quote=request.form.get("mode", "quote") == "quote",
    )
    db.session.commit()
    broadcast_update(shown.note.id, change)
    if request.accept_mimetypes.best == "application/json":
        return {"id": link.id, "reference": f"[^s{link.id}]"}
    flash(_("Inserted at the end of the section, with its source."), "success")
    back = request.form.get("back") or ""
    # Only the panel's own filters come back: a query string, nothing that ends the header.
    query = back if back.startswith("?") and back.isprintable() else ""
    return redirect(
        url_for("drafts.section", slug=slug, draft_id=draft_id, section_id=section_id) + query,
        303,
    )


# --- Status, sign-off, publication ----------------------------------------------------------


@bp.post("/c/<slug>/drafts/<int:draft_id>/status")
def move(slug: str, draft_id: int):
    """Move a guide to review, approve it, or send it back to draft."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.REVIEW, DraftKind.GUIDE)
    workflow.move(current_user, draft, _choice(request.form, "to", DraftStatus))
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id), 303)


@bp.post("/c/<slug>/drafts/<int:draft_id>/publish")
def publish(slug: str, draft_id: int):
    """Publish an approved guide as its next version."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.PUBLISH, DraftKind.GUIDE)
    publication = workflow.publish(current_user, draft)
    db.session.commit()
    flash(_("Version %(version)d is published.", version=publication.version), "success")
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id), 303)


@bp.post("/c/<slug>/drafts/<int:draft_id>/sign-off")
def sign_off(slug: str, draft_id: int):
    """Sign off an experience sheet of one's own organisation."""
    sheet, membership = draft_or_abort(
        slug, draft_id, Action.WRITE_SHEET, DraftKind.EXPERIENCE_SHEET
    )
    if sheet.status is not DraftStatus.SIGNED_OFF:
        enforce(sheet_verdict(membership, sheet))
    workflow.sign_off(current_user, sheet)
    db.session.commit()
    flash(_("The experience sheet is signed off: guides may now include it."), "success")
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id), 303)


# --- Review comments and validation -------------------------------------------------------


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/comments")
def comment(slug: str, draft_id: int, section_id: int):
    """Comment on a section (quoting a passage), or reply to a thread."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.COMMENT, DraftKind.GUIDE)
    shown = _section_or_abort(draft, section_id)
    parent = None
    parent_id = _number(request.form, "parent_id", False)
    if parent_id is not None:
        parent = workflow.comment_in(draft, parent_id) or abort(404)
    workflow.add_comment(
        current_user,
        draft,
        shown,
        body=request.form.get("body", ""),
        quoted=request.form.get("quoted", ""),
        parent=parent,
    )
    db.session.commit()
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id) + f"#section-{section_id}")


@bp.post("/c/<slug>/drafts/<int:draft_id>/comments/<int:comment_id>/resolve")
def resolve(slug: str, draft_id: int, comment_id: int):
    """Resolve a comment's thread, or reopen it (`reopen=1`)."""
    draft, membership = draft_or_abort(slug, draft_id, Action.COMMENT, DraftKind.GUIDE)
    shown = workflow.comment_in(draft, comment_id) or abort(404)
    thread = workflow.thread_of(shown)
    if thread.author_id != current_user.id:
        enforce(decide(current_user, draft.community, Action.REVIEW, membership))
    workflow.set_resolved(current_user, thread, request.form.get("reopen") != "1")
    db.session.commit()
    return redirect(
        url_for("drafts.show", slug=slug, draft_id=draft_id) + f"#section-{thread.section_id}"
    )


@bp.post("/c/<slug>/drafts/<int:draft_id>/sections/<int:section_id>/validation")
def validate(slug: str, draft_id: int, section_id: int):
    """Say « I recognise this » or « not what we said » about a section, during review."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.COMMENT, DraftKind.GUIDE)
    shown = _section_or_abort(draft, section_id)
    workflow.mark(
        current_user,
        draft,
        shown,
        _choice(request.form, "verdict", MarkVerdict),
        request.form.get("comment", ""),
    )
    db.session.commit()
    flash(_("Thank you: your answer is recorded."), "success")
    return redirect(url_for("drafts.show", slug=slug, draft_id=draft_id) + f"#section-{section_id}")


# --- Revisions ------------------------------------------------------------------------------


@bp.get("/c/<slug>/drafts/<int:draft_id>/revisions")
def revisions(slug: str, draft_id: int):
    """List a draft's revisions, to view, compare or restore them."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    return render_template(
        "drafts/revisions.html",
        community=draft.community,
        draft=draft,
        revisions=workflow.revisions_of(draft),
        can_edit=_may_edit(draft, membership),
    )


def _may_edit(draft, membership) -> bool:
    return draft_edit_verdict(current_user, membership, draft) is Verdict.ALLOWED


@bp.post("/c/<slug>/drafts/<int:draft_id>/revisions")
def save_revision(slug: str, draft_id: int):
    """Snapshot every section as a new revision, with a message."""
    draft, _membership = _edit_rights(slug, draft_id)
    revision = workflow.save_revision(current_user, draft, request.form.get("message", ""))
    db.session.commit()
    flash(_("Revision %(number)d is saved.", number=revision.number), "success")
    return redirect(url_for("drafts.revisions", slug=slug, draft_id=draft_id), 303)


def _revision_or_abort(draft, number: int):
    return workflow.revision_of(draft, number) or abort(404)


@bp.get("/c/<slug>/drafts/<int:draft_id>/revisions/<int:number>")
def revision(slug: str, draft_id: int, number: int):
    """Show one revision as it was."""
    draft, membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    shown = _revision_or_abort(draft, number)
    return render_template(
        "drafts/revision.html",
        community=draft.community,
        draft=draft,
        revision=shown,
        rendered=documents.html_of(shown.snapshot),
        can_edit=_may_edit(draft, membership),
    )


@bp.get("/c/<slug>/drafts/<int:draft_id>/compare")
def compare(slug: str, draft_id: int):
    """Compare two revisions (or a revision and the current draft), section by section."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)

    def chosen(name: str):
        value = request.args.get(name) or "current"
        if value == "current":
            return _("current draft"), documents.snapshot_of(draft)
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            raise DraftError(_("Choose revisions by their number."))
        found = _revision_or_abort(draft, int(value))
        return _("revision %(number)d", number=found.number), found.snapshot

    old_label, old = chosen("from")
    new_label, new = chosen("to")
    return render_template(
        "drafts/compare.html",
        community=draft.community,
        draft=draft,
        old_label=old_label,
        new_label=new_label,
        entries=documents.compare(old, new),
        revisions=workflow.revisions_of(draft),
    )


@bp.post("/c/<slug>/drafts/<int:draft_id>/revisions/<int:number>/restore")
def restore(slug: str, draft_id: int, number: int):
    """Bring a revision's texts back as new changes that editors see live."""
    draft, _membership = _edit_rights(slug, draft_id)
    restored, changes = workflow.restore_revision(
        current_user, draft, _revision_or_abort(draft, number)
    )
    db.session.commit()
    _broadcast(changes)
    flash(_("Revision %(number)d is restored.", number=number), "success")
    return redirect(url_for("drafts.revisions", slug=slug, draft_id=draft_id), 303)


# --- Exports -------------------------------------------------------------------------------


def _download(document: dict, fmt: str, publication=None) -> Response:
    """Answer a document as a file; a published version's file is made once and kept."""
    from cop.drafts import exports

    if fmt not in exports.FORMATS:
        abort(404)
    try:
        if publication is not None:
            content = workflow.published_file(publication, fmt)
        else:
            content, _mimetype = exports.export(document, fmt)
    except exports.ExportError as error:
        current_app.logger.error("export %s failed: %s", fmt, error.reason)
        raise
    filename = exports.filename(document, fmt)
    return Response(
        content,
        mimetype=exports.FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/c/<slug>/drafts/<int:draft_id>/export.<fmt>")
def export(slug: str, draft_id: int, fmt: str):
    """Download the current draft as Markdown, HTML, DOCX, ODT or PDF."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    return _download(documents.snapshot_of(draft), fmt)


@bp.get("/c/<slug>/drafts/<int:draft_id>/revisions/<int:number>/export.<fmt>")
def export_revision(slug: str, draft_id: int, number: int, fmt: str):
    """Download a revision as Markdown, HTML, DOCX, ODT or PDF."""
    draft, _membership = draft_or_abort(slug, draft_id, Action.VIEW_MEMBERS_AREA)
    return _download(_revision_or_abort(draft, number).snapshot, fmt)


# --- Published guides ----------------------------------------------------------------------


def _published(slug: str, guide_slug: str, version: int | None):
    community, _membership = community_or_abort(slug, Action.VIEW_HOME)
    guide = services.guide_by_slug(community, guide_slug) or abort(404)
    publication = workflow.publication_of(guide, version) or abort(404)
    return community, guide, publication


@bp.get("/p/<slug>/<guide_slug>")
@bp.get("/p/<slug>/<guide_slug>/v<int:version>")
def published(slug: str, guide_slug: str, version: int | None = None):
    """Show a published guide (its latest version, or the one asked for): light, printable."""
    community, guide, publication = _published(slug, guide_slug, version)
    return render_template(
        "drafts/published.html",
        community=community,
        guide=guide,
        publication=publication,
        # Rendered and sanitised when it was published (cop/drafts/workflow.py, publish).
        rendered=Markup(publication.html),
        publications=workflow.publications_of(guide),
    )


@bp.get("/p/<slug>/<guide_slug>/v<int:version>.<fmt>")
def published_export(slug: str, guide_slug: str, version: int, fmt: str):
    """Download a published version as PDF, ODT or DOCX (or Markdown, HTML)."""
    _community, _guide, publication = _published(slug, guide_slug, version)
    return _download(publication.revision.snapshot, fmt, publication)
