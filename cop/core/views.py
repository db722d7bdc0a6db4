"""Pages that belong to no feature: the front page, language choice, health check."""

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from cop.config import Config
from cop.core.safety import safe_next_url
from cop.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    """Show the front page: one's communities and the public ones."""
    from cop.communities import services

    return render_template(
        "core/index.html",
        my_communities=services.communities_of(current_user),
        public_communities=services.public_communities(),
    )


@bp.post("/language")
def set_language():
    """Remember the interface language chosen from the footer."""
    locale = request.form.get("locale")
    if locale in Config.LANGUAGES:
        session["locale"] = locale
        if current_user.is_authenticated:
            current_user.locale = locale
            db.session.commit()
    return redirect(safe_next_url(request.form.get("next")) or url_for("core.index"))


@bp.get("/healthz")
def healthz():
    """Report whether the application can reach its database."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        db.session.rollback()
        return jsonify(
            status="unavailable", database="unreachable", detail=type(error).__name__
        ), 503
    return jsonify(status="ok", database="ok")
