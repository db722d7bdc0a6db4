"""Note pages: list and create community notes, open one to co-edit it live."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from cop.core.permissions import Action, can_write_note, community_or_abort, note_or_abort
from cop.extensions import db
from cop.notes import services
from cop.notes.forms import NoteForm

bp = Blueprint("notes", __name__)


@bp.post("/c/<slug>/notes")
def create(slug: str):
    """Create a community note and open it."""
    community, _membership = community_or_abort(slug, Action.WRITE_NOTES)
    form = NoteForm()
    if not form.validate_on_submit():
        flash(_("A note needs a title of at most 200 characters."), "error")
        return redirect(url_for("communities.home", slug=slug) + "#notes"), 303
    note = services.create_note(current_user, community, form.title.data)
    db.session.commit()
    return redirect(url_for("notes.show", slug=slug, note_id=note.id))


@bp.get("/c/<slug>/notes/<int:note_id>")
def show(slug: str, note_id: int):
    """Open a note in the live editor (read-only for those who may not write)."""
    note, _membership = note_or_abort(slug, note_id)
    return render_template(
        "notes/show.html",
        community=note.community,
        note=note,
        can_write=can_write_note(current_user, note),
    )
