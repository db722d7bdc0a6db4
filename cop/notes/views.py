"""Note pages: list and create community notes, open one to co-edit it live."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from cop.auth.models import NAME_MAX
from cop.communities.services import slugify
from cop.core.csp import allow_style_attributes
from cop.core.formatting import local_datetime
from cop.core.markdown import render_markdown
from cop.core.permissions import Action, can_write_note, community_or_abort, note_or_abort
from cop.extensions import db
from cop.live.notes import broadcast_update
from cop.notes import services
from cop.notes.forms import NoteForm, VersionForm

bp = Blueprint("notes", __name__)

# The longest text the preview renders, in UTF-8 bytes: a long note, never a denial of service.
PREVIEW_MAX_BYTES = 1024 * 1024


@bp.post("/c/<slug>/notes")
def create(slug: str):
    """Create a community note and open it."""
    community, _membership = community_or_abort(slug, Action.WRITE_NOTES)
    form = NoteForm()
    if not form.validate_on_submit():
        flash(_("A note needs a title of at most %(max)d characters.", max=NAME_MAX), "error")
        return redirect(url_for("communities.home", slug=slug) + "#notes"), 303
    note = services.create_note(current_user, community, form.title.data)
    db.session.commit()
    return redirect(url_for("notes.show", slug=slug, note_id=note.id))


@bp.get("/c/<slug>/notes/<int:note_id>")
def show(slug: str, note_id: int):
    """Open a note in the live editor (read-only for those who may not write)."""
    note, membership = note_or_abort(slug, note_id)
    allow_style_attributes()  # the editor colours remote cursors inline (cop/core/csp.py)
    return render_template(
        "notes/show.html",
        community=note.community,
        note=note,
        membership=membership,
        can_write=can_write_note(current_user, note),
    )


@bp.post("/c/<slug>/notes/<int:note_id>/preview")
def preview(slug: str, note_id: int):
    """Answer the sanitised HTML of the markdown posted from the note's editor."""
    note_or_abort(slug, note_id)
    text = request.form.get("text")
    if text is None or len(text.encode()) > PREVIEW_MAX_BYTES:
        abort(400)
    return render_markdown(text)


@bp.get("/c/<slug>/notes/<int:note_id>/history")
def history(slug: str, note_id: int):
    """List the note's versions, with time and contributors."""
    note, _membership = note_or_abort(slug, note_id)
    versions = services.versions_of(note)
    return render_template(
        "notes/history.html",
        community=note.community,
        note=note,
        versions=versions,
        contributors=services.contributor_names(versions),
        can_write=can_write_note(current_user, note),
        form=VersionForm(formdata=None),
    )


@bp.post("/c/<slug>/notes/<int:note_id>/versions")
def save_version(slug: str, note_id: int):
    """Keep the note's current text as a labelled version."""
    note, _membership = note_or_abort(slug, note_id, write=True)
    form = VersionForm()
    if not form.validate_on_submit():
        flash(_("A version label has at most %(max)d characters.", max=NAME_MAX), "error")
        return redirect(url_for("notes.history", slug=slug, note_id=note_id)), 303
    services.save_version_now(note, form.label.data or "", current_user)
    db.session.commit()
    flash(_("The version is saved."), "success")
    return redirect(url_for("notes.history", slug=slug, note_id=note_id))


@bp.get("/c/<slug>/notes/<int:note_id>/versions/<int:version_id>")
def version(slug: str, note_id: int, version_id: int):
    """Show one version of a note."""
    note, _membership = note_or_abort(slug, note_id)
    shown = services.version_of(note, version_id) or abort(404)
    return render_template(
        "notes/version.html",
        community=note.community,
        note=note,
        version=shown,
        rendered=render_markdown(shown.text),
        can_write=can_write_note(current_user, note),
    )


@bp.get("/c/<slug>/notes/<int:note_id>/compare")
def compare(slug: str, note_id: int):
    """Compare two versions (or a version and the current text), word by word."""
    note, _membership = note_or_abort(slug, note_id)

    def text_of(choice: str | None):
        if choice in (None, "", "current"):
            return _("current text"), services.current_text(note)
        if not choice.isdigit():
            abort(400)
        chosen = services.version_of(note, int(choice)) or abort(404)
        return chosen.label or local_datetime(chosen.created_at), chosen.text

    old_label, old_text = text_of(request.args.get("from"))
    new_label, new_text = text_of(request.args.get("to"))
    return render_template(
        "notes/compare.html",
        community=note.community,
        note=note,
        old_label=old_label,
        new_label=new_label,
        parts=services.word_diff(old_text, new_text),
        versions=services.versions_of(note),
    )


@bp.post("/c/<slug>/notes/<int:note_id>/versions/<int:version_id>/restore")
def restore_version(slug: str, note_id: int, version_id: int):
    """Bring a version's text back as a new change that everyone sees live."""
    note, _membership = note_or_abort(slug, note_id, write=True)
    chosen = services.version_of(note, version_id) or abort(404)
    change = services.restore_version(note, chosen, current_user)
    db.session.commit()
    if change is not None:
        broadcast_update(note.id, change)
    flash(_("The version is restored; the change is in the note's history."), "success")
    return redirect(url_for("notes.show", slug=slug, note_id=note_id))


EXPORT_TYPES = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}


@bp.get("/c/<slug>/notes/<int:note_id>/export.<kind>")
def export(slug: str, note_id: int, kind: str):
    """Download the note as Markdown or as a standalone sanitised HTML page."""
    note, _membership = note_or_abort(slug, note_id)
    if kind not in EXPORT_TYPES:
        abort(404)
    text = services.current_text(note)
    if kind == "md":
        body = text
    else:
        body = render_template(
            "notes/export.html", note=note, community=note.community, rendered=render_markdown(text)
        )
    filename = f"{slugify(note.title) or 'note'}-{note.id}.{kind}"
    return (
        body,
        200,
        {
            "Content-Type": EXPORT_TYPES[kind],
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
