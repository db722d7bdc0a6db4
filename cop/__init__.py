"""cop: a platform for communities of practice."""

from pathlib import Path

from flask import Flask, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import event

from cop.config import INSTANCE_PATH, Config, load_secret_key
from cop.core.errors import error_response, wants_json
from cop.extensions import babel, compress, csrf, db, limiter, login_manager, migrate, socketio

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """Build the cop application; `config` overrides settings (tests use it)."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_PATH),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(Config)
    if config:
        app.config.update(config)
    # Cookies travel only over https when the site is served over https.
    if app.config["PREFERRED_URL_SCHEME"] == "https":
        app.config["SESSION_COOKIE_SECURE"] = app.config["REMEMBER_COOKIE_SECURE"] = True
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(Path(app.instance_path))

    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    register_extensions(app)
    register_login(app)
    register_template_helpers(app)
    register_blueprints(app)
    register_security_headers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of `cop.extensions` to the app."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A connection to a SQLite file cannot be dropped the way a server drops one:
        # testing it as it leaves the pool would cost every request and every live
        # group-commit window a query (a third of a window's database time).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            "pool_pre_ping": False,
        }
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    compress.init_app(app)
    register_compression(app)
    limiter.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_time_zone,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    login_manager.init_app(app)
    socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"],
        message_queue=app.config["REDIS_URL"],
        channel=app.config["SOCKETIO_CHANNEL"],
        cors_allowed_origins=None,  # same origin only
        namespaces="*",  # one namespace per live document: /yjs|note-<id>
        # Run each event's handler in the green thread that read it, in the order received,
        # rather than in a green thread of its own: one spawn fewer per event, a twentieth
        # of a busy note's CPU (docs/performance.md).
        async_handlers=False,
    )
    app.wsgi_app = without_websocket_compression(app.wsgi_app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _configure_sqlite()


def without_websocket_compression(wsgi_app):
    """Decline permessage-deflate, which browsers and Node offer and eventlet would accept.

    Live frames are Yjs updates of about a hundred bytes: compressing them saves nothing and
    cost a fifth more server CPU in the benchmark (docs/performance.md). Without the offer in
    the handshake, eventlet and simple-websocket answer with plain frames.
    """

    def wsgi(environ, start_response):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return wsgi_app(environ, start_response)

    return wsgi


def register_login(app: Flask) -> None:
    """Tell Flask-Login how to find the user: session cookie or API token."""
    from cop.auth import services as auth_services

    login_manager.user_loader(auth_services.load_user_from_session)
    login_manager.request_loader(auth_services.load_user_from_api_token)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page says what to do; no flash needed
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.session_protection = "basic"


def register_template_helpers(app: Flask) -> None:
    """Give templates the locale, translated labels and date formatting."""
    from cop.core import labels
    from cop.core.csp import csp_nonce
    from cop.core.formatting import (
        country_name,
        local_date,
        local_datetime,
        viewer_date,
        viewer_time,
        viewer_time_zone,
    )

    app.jinja_env.globals.update(
        current_locale_code=lambda: str(select_locale()),
        csp_nonce=csp_nonce,
        role_label=labels.role_label,
        organisation_kind_label=labels.organisation_kind_label,
        draft_status_label=labels.draft_status_label,
        source_kind_label=labels.source_kind_label,
        country_name=country_name,
        local_date=local_date,
        local_datetime=local_datetime,
        viewer_date=viewer_date,
        viewer_time=viewer_time,
        viewer_time_zone=viewer_time_zone,
    )


def _unauthorized():
    """Answer 401 JSON to API clients and send people to the login page."""
    if wants_json():
        return error_response(401, "unauthorized", _("Please log in to continue."))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _configure_sqlite() -> None:
    """Turn on WAL and foreign keys for every SQLite connection."""

    @event.listens_for(db.engine, "connect")
    def set_pragmas(dbapi_connection, _record):  # noqa: D401 - event hook
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL loses no committed data on an application crash, and
        # saves an fsync per commit (SQLite's advice for WAL).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        # SQLite copies the write-ahead log into the file (a checkpoint) in the commit that
        # takes it past this many pages, and waits for the disk meanwhile: 7 to 10 ms at
        # 1,000 pages, its default, on the test machine, with a live server's event loop
        # stopped. A live server copies most of it in a thread of the OS (LiveLog), so that
        # little is left for the commit at 10,000 pages (40 MB), after which the log starts
        # over; the last connection to close checkpoints too.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    """Attach every feature's blueprint."""
    from cop.api.views import bp as api_bp
    from cop.auth.views import bp as auth_bp
    from cop.communities.views import bp as communities_bp
    from cop.core.errors import register_error_handlers
    from cop.core.views import bp as core_bp
    from cop.drafts.views import bp as drafts_bp
    from cop.live import notes as live_notes
    from cop.live import workshop as live_workshop
    from cop.notes.views import bp as notes_bp
    from cop.workshops.views import bp as workshops_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(communities_bp)
    app.register_blueprint(notes_bp)
    app.register_blueprint(workshops_bp)
    app.register_blueprint(drafts_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    live_notes.init_app(app)
    live_workshop.init_app(app)
    register_error_handlers(app)


def register_compression(app: Flask) -> None:
    """Compress responses (Flask-Compress), closing the files it reads for static assets."""

    @app.after_request
    def compress_response(response):
        if response.direct_passthrough:
            # Flask-Compress reads a streamed file into memory but never closes it.
            stream = response.response
            response.direct_passthrough = False
            response.set_data(response.get_data())
            if hasattr(stream, "close"):
                stream.close()
        return compress.after_request(response)


def select_locale() -> str:
    """Choose the interface language: the user's choice, then the browser's, then English."""
    languages = Config.LANGUAGES
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(languages) or Config.BABEL_DEFAULT_LOCALE


def select_time_zone() -> str | None:
    """Show times in the user's time zone when they chose one."""
    if current_user and current_user.is_authenticated and current_user.time_zone:
        return current_user.time_zone
    return None


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


def register_security_headers(app: Flask) -> None:
    """Send the security headers on every response."""
    from cop.core.csp import widen

    @app.after_request
    def add_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", widen(CONTENT_SECURITY_POLICY))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if request.is_secure or app.config["PREFERRED_URL_SCHEME"] == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if getattr(g, "no_store", False):
            response.headers["Cache-Control"] = "no-store"
        return response


def register_commands(app: Flask) -> None:
    """Add cop's `flask` commands."""
    from cop.demo import demo_command

    app.cli.add_command(demo_command)
