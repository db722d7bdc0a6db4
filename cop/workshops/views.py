"""Workshop pages: the programme, planning days and their agenda, calendars."""

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from cop.core.errors import ServiceError
from cop.core.markdown import render_markdown
from cop.core.permissions import (
    Action,
    can,
    can_facilitate,
    community_or_abort,
    workshop_day_or_abort,
    workshop_session_or_abort,
)
from cop.extensions import db
from cop.workshops import record as session_records
from cop.workshops import services
from cop.workshops.attendance import attendance_of
from cop.workshops.calendar import calendar
from cop.workshops.forms import (
    DayForm,
    DuplicateDayForm,
    MoveSessionForm,
    ParkItemForm,
    SessionForm,
)

bp = Blueprint("workshops", __name__)


def _status(*forms) -> int:
    return 400 if any(form.errors for form in forms) else 200


def _show_service_errors(form, error: ServiceError) -> None:
    """Put a service's refusal on the form's fields (or above the form)."""
    db.session.rollback()
    for name, messages in error.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors) + messages
    if not any(hasattr(form, name) for name in error.fields):
        form.form_errors.append(error.message)


# --- The programme ----------------------------------------------------------------------


@bp.get("/c/<slug>/workshops")
def programme(slug: str):
    """Show the community's workshop days and their agenda, in the viewer's time zone."""
    community, membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    return render_template(
        "workshops/programme.html",
        community=community,
        days=services.days_of(community),
        can_plan=can_facilitate(membership),
        feed_url=_feed_url(membership),
    )


def _feed_url(membership) -> str | None:
    if membership is None or membership.calendar_token is None:
        return None
    return url_for("workshops.calendar_feed", token=membership.calendar_token, _external=True)


@bp.post("/c/<slug>/calendar-link")
def renew_calendar_link(slug: str):
    """Make (or replace) the member's private calendar feed address."""
    community, membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    services.calendar_token_of(membership, renew=True)
    db.session.commit()
    flash(_("Your calendar address is ready; any earlier one no longer works."), "success")
    return redirect(url_for("workshops.programme", slug=slug) + "#calendar")


def _calendar_response(community, days, filename: str) -> Response:
    text = calendar(
        community.name,
        days,
        request.host.split(":")[0],
        lambda session: url_for(
            "workshops.session", slug=community.slug, session_id=session.id, _external=True
        ),
    )
    return Response(
        text,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/c/<slug>/workshops.ics")
def programme_calendar(slug: str):
    """Download the whole programme as a calendar."""
    community, _membership = community_or_abort(slug, Action.VIEW_MEMBERS_AREA)
    return _calendar_response(community, services.days_of(community), f"{community.slug}.ics")


@bp.get("/calendar/<token>.ics")
def calendar_feed(token: str):
    """Serve a member's private calendar feed (calendar apps fetch it without logging in)."""
    membership = services.membership_by_calendar_token(token)
    if membership is None:
        abort(404)
    community = membership.community
    return _calendar_response(community, services.days_of(community), f"{community.slug}.ics")


# --- Days -------------------------------------------------------------------------------


def _day_form(**kwargs) -> DayForm:
    form = DayForm(**kwargs)
    form.time_zone.choices = services.time_zone_names()
    return form


@bp.route("/c/<slug>/workshops/new", methods=["GET", "POST"])
def create_day(slug: str):
    """Plan a new workshop day (hosts and facilitators)."""
    community, _membership = community_or_abort(slug, Action.PLAN_WORKSHOPS)
    form = _day_form()
    if form.validate_on_submit():
        try:
            day = services.create_day(current_user, community, form.plan())
        except ServiceError as error:
            _show_service_errors(form, error)
        else:
            db.session.commit()
            flash(_("The day is planned. Add its sessions next."), "success")
            return redirect(url_for("workshops.day", slug=slug, day_id=day.id))
    return render_template(
        "workshops/day_form.html", community=community, form=form, day=None
    ), _status(form)


@bp.get("/c/<slug>/workshops/<int:day_id>")
def day(slug: str, day_id: int):
    """Show a workshop day's agenda, and what earlier days parked for it."""
    day, membership = workshop_day_or_abort(slug, day_id, Action.VIEW_MEMBERS_AREA)
    return _day_page(day, membership)


def _day_page(day, membership, duplicate_form=None, status=200):
    return render_template(
        "workshops/day.html",
        community=day.community,
        day=day,
        parked=services.items_parked_before(day),
        recorded=session_records.recorded_session_ids(session.id for session in day.sessions),
        can_plan=can_facilitate(membership),
        duplicate_form=duplicate_form or DuplicateDayForm(formdata=None),
        move_form=MoveSessionForm(formdata=None),
    ), status


@bp.get("/c/<slug>/workshops/<int:day_id>.ics")
def day_calendar(slug: str, day_id: int):
    """Download one day as a calendar."""
    day, _membership = workshop_day_or_abort(slug, day_id, Action.VIEW_MEMBERS_AREA)
    return _calendar_response(day.community, [day], f"{day.community.slug}-{day.date}.ics")


@bp.route("/c/<slug>/workshops/<int:day_id>/edit", methods=["GET", "POST"])
def edit_day(slug: str, day_id: int):
    """Change a workshop day's details (hosts and facilitators)."""
    day, _membership = workshop_day_or_abort(slug, day_id, Action.PLAN_WORKSHOPS)
    form = _day_form(obj=None if request.method == "POST" else day)
    if form.validate_on_submit():
        try:
            services.update_day(current_user, day, form.plan())
        except ServiceError as error:
            _show_service_errors(form, error)
        else:
            db.session.commit()
            flash(_("The day is updated."), "success")
            return redirect(url_for("workshops.day", slug=slug, day_id=day.id))
    return render_template(
        "workshops/day_form.html", community=day.community, form=form, day=day
    ), _status(form)


@bp.post("/c/<slug>/workshops/<int:day_id>/duplicate")
def duplicate_day(slug: str, day_id: int):
    """Start the next day as a copy of this one (hosts and facilitators)."""
    day, membership = workshop_day_or_abort(slug, day_id, Action.PLAN_WORKSHOPS)
    form = DuplicateDayForm()
    if not form.validate_on_submit():
        return _day_page(day, membership, duplicate_form=form, status=400)
    copy = services.duplicate_day(current_user, day, form.date.data)
    db.session.commit()
    flash(_("The day is copied with its agenda. Adjust it as needed."), "success")
    return redirect(url_for("workshops.day", slug=slug, day_id=copy.id))


# --- Sessions ---------------------------------------------------------------------------


def _session_form(community, **kwargs) -> SessionForm:
    form = SessionForm(**kwargs)
    form.fill_choices(community.active_themes, services.facilitators_of(community))
    return form


@bp.route("/c/<slug>/workshops/<int:day_id>/sessions/new", methods=["GET", "POST"])
def add_session(slug: str, day_id: int):
    """Add a session to a day's agenda (hosts and facilitators)."""
    day, _membership = workshop_day_or_abort(slug, day_id, Action.PLAN_WORKSHOPS)
    form = _session_form(day.community)
    if request.method == "GET":
        last = day.sessions[-1] if day.sessions else None
        form.starts_at_local.data = last.ends_at.time() if last else day.starts_at_local
    if form.validate_on_submit():
        try:
            services.add_session(current_user, day, form.plan())
        except ServiceError as error:
            _show_service_errors(form, error)
        else:
            db.session.commit()
            flash(_("The session is added to the agenda."), "success")
            return redirect(url_for("workshops.day", slug=slug, day_id=day.id))
    return render_template(
        "workshops/session_form.html", community=day.community, day=day, form=form, session=None
    ), _status(form)


@bp.get("/c/<slug>/sessions/<int:session_id>")
def session(slug: str, session_id: int):
    """Show a session's live room: its plan and question, phase, cards, votes, note, hands."""
    session, membership = workshop_session_or_abort(slug, session_id, Action.VIEW_MEMBERS_AREA)
    return _session_page(session, membership, ParkItemForm(formdata=None))


def _session_page(session, membership, park_form, status=200):
    community = session.workshop_day.community
    return render_template(
        "workshops/session.html",
        community=community,
        day=session.workshop_day,
        session=session,
        can_plan=can_facilitate(membership),
        can_take_part=can(current_user, community, Action.TAKE_PART),
        park_form=park_form,
    ), status


@bp.route("/c/<slug>/sessions/<int:session_id>/edit", methods=["GET", "POST"])
def edit_session(slug: str, session_id: int):
    """Change a session's plan (hosts and facilitators)."""
    session, _membership = workshop_session_or_abort(slug, session_id, Action.PLAN_WORKSHOPS)
    community = session.workshop_day.community
    form = _session_form(community, obj=None if request.method == "POST" else session)
    if request.method == "GET":
        form.theme_id.data = str(session.theme_id or "")
        form.facilitator_id.data = str(session.facilitator_id or "")
    if form.validate_on_submit():
        try:
            services.update_session(current_user, session, form.plan())
        except ServiceError as error:
            _show_service_errors(form, error)
        else:
            db.session.commit()
            flash(_("The session is updated."), "success")
            return redirect(url_for("workshops.day", slug=slug, day_id=session.workshop_day_id))
    return render_template(
        "workshops/session_form.html",
        community=community,
        day=session.workshop_day,
        form=form,
        session=session,
    ), _status(form)


@bp.post("/c/<slug>/sessions/<int:session_id>/move")
def move_session(slug: str, session_id: int):
    """Move a session within its day's agenda (hosts and facilitators)."""
    session, membership = workshop_session_or_abort(slug, session_id, Action.PLAN_WORKSHOPS)
    form = MoveSessionForm()
    try:
        if not form.validate_on_submit():
            raise ServiceError(_("Choose a valid position."))
        services.move_session(current_user, session, form.position.data)
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _day_page(session.workshop_day, membership, status=400)
    db.session.commit()
    return redirect(url_for("workshops.day", slug=slug, day_id=session.workshop_day_id))


@bp.post("/c/<slug>/sessions/<int:session_id>/remove")
def remove_session(slug: str, session_id: int):
    """Take a session off the agenda (hosts and facilitators)."""
    session, membership = workshop_session_or_abort(slug, session_id, Action.PLAN_WORKSHOPS)
    day = session.workshop_day
    try:
        services.remove_session(current_user, session)
    except ServiceError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _day_page(day, membership, status=error.status)
    db.session.commit()
    flash(_("The session is removed from the agenda."), "success")
    return redirect(url_for("workshops.day", slug=slug, day_id=day.id))


@bp.post("/c/<slug>/sessions/<int:session_id>/parked")
def park_item(slug: str, session_id: int):
    """Park something in a session, to list it on the next day (hosts and facilitators)."""
    session, membership = workshop_session_or_abort(slug, session_id, Action.PLAN_WORKSHOPS)
    form = ParkItemForm()
    if form.validate_on_submit():
        try:
            services.park_item(current_user, session, form.text.data)
        except ServiceError as error:
            _show_service_errors(form, error)
        else:
            db.session.commit()
            flash(_("Parked: it will be listed on the next day's agenda."), "success")
            return redirect(url_for("workshops.session", slug=slug, session_id=session.id))
    return _session_page(session, membership, form, status=400)


# --- Session records --------------------------------------------------------------------

RECORD_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def _record_or_abort(slug: str, session_id: int):
    """Load a session the current user may see, and its record (404 while it has none)."""
    session, _membership = workshop_session_or_abort(slug, session_id, Action.VIEW_MEMBERS_AREA)
    record = session_records.record_of(session)
    if record is None:
        abort(404)
    return session, record.data


def _record_context(session, data: dict) -> dict:
    """Return what the record's page and its HTML export show, all from the frozen data."""
    return {
        "community": session.workshop_day.community,
        "day": session.workshop_day,
        "session": session,
        "data": data,
        "day_date": session_records.day_date_of(data),
        "closed_at": session_records.closed_at_of(data),
        "takeaway_sections": session_records.takeaways_by_kind(data),
        "cluster_names": lambda takeaway: session_records.cluster_names(data, takeaway),
        "kind_label": session_records.kind_label,
        "render_markdown": render_markdown,
    }


@bp.get("/c/<slug>/sessions/<int:session_id>/record")
def session_record(slug: str, session_id: int):
    """Show what a closed session produced: takeaways, cards by cluster with their dots, notes."""
    session, data = _record_or_abort(slug, session_id)
    return render_template("workshops/record.html", **_record_context(session, data))


@bp.get("/c/<slug>/sessions/<int:session_id>/record.<any(md, html, csv, json):kind>")
def session_record_export(slug: str, session_id: int, kind: str):
    """Download a session's record as Markdown, HTML, CSV (cards and votes) or JSON."""
    session, data = _record_or_abort(slug, session_id)
    if kind == "md":
        body = session_records.markdown_of(data)
    elif kind == "csv":
        body = session_records.csv_of(data)
    elif kind == "json":
        body = session_records.json_of(data)
    else:
        body = render_template("workshops/record_export.html", **_record_context(session, data))
    return Response(
        body,
        headers={
            "Content-Type": RECORD_TYPES[kind],
            "Content-Disposition": (
                f'attachment; filename="{session_records.filename(data, kind)}"'
            ),
        },
    )


@bp.get("/c/<slug>/workshops/<int:day_id>/attendance")
def day_attendance(slug: str, day_id: int):
    """Show who came to a day and for how long, from the live rooms (hosts and facilitators)."""
    day, _membership = workshop_day_or_abort(slug, day_id, Action.PLAN_WORKSHOPS)
    return render_template(
        "workshops/attendance.html",
        community=day.community,
        day=day,
        attendance=attendance_of(day),
    )
