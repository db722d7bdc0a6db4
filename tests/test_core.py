"""What every response shares: security headers, CSRF, compression, errors, health, languages."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cop import create_app
from cop.auth.models import User
from cop.communities.models import Community, Membership
from cop.config import Config
from cop.extensions import db
from tests.conftest import PASSWORD, TEST_DATABASE_URL, csrf_token_from

ROOT = Path(__file__).resolve().parent.parent


def test_security_headers_on_every_response(client):
    for path in ("/", "/login", "/healthz", "/no-such-page", "/static/css/cop.css"):
        response = client.get(path)
        response.close()
        policy = response.headers["Content-Security-Policy"]
        for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in policy
        assert "unsafe-inline" not in policy
        assert "script-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_carry_no_inline_script_or_style(client, auth, make):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    for path in ("/", f"/c/{slug}", f"/c/{slug}/members", f"/c/{slug}/edit", "/account"):
        page = client.get(path).get_data(as_text=True)
        assert "<script" not in page and "style=" not in page and " on" + "click=" not in page


@pytest.fixture
def csrf_client(csrf_app):
    return csrf_app.test_client()


def test_forms_without_a_csrf_token_are_refused_and_change_nothing(csrf_client, csrf_app):
    data = {
        "email": "a@example.org",
        "display_name": "A",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    response = csrf_client.post("/register", data=data)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    with csrf_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0

    token = csrf_token_from(csrf_client.get("/register").get_data(as_text=True))
    assert csrf_client.post("/register", data=data | {"csrf_token": token}).status_code == 302


def test_a_logged_in_form_needs_its_token_too(csrf_client, csrf_app):
    token = csrf_token_from(csrf_client.get("/register").get_data(as_text=True))
    csrf_client.post(
        "/register",
        data={
            "email": "a@example.org",
            "display_name": "A",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": token,
        },
    )
    community = {"name": "C", "slug": "c", "visibility": "private", "organisation": ""}
    assert csrf_client.post("/communities/new", data=community).status_code == 400
    assert csrf_client.post("/logout").status_code == 400
    with csrf_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Community)) == 0
    token = csrf_token_from(csrf_client.get("/communities/new").get_data(as_text=True))
    assert (
        csrf_client.post("/communities/new", data=community | {"csrf_token": token}).status_code
        == 302
    )


def test_responses_are_compressed(client):
    response = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    response = client.get("/static/css/cop.css", headers={"Accept-Encoding": "br"})
    response.close()
    assert response.headers["Content-Encoding"] == "br"


def test_page_weight_stays_within_the_budget(client, auth, make):
    """DESIGN.md: any page but a live room weighs at most 60 KB compressed on a first visit."""
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    css = client.get("/static/css/cop.css", headers={"Accept-Encoding": "br"})
    css_size = len(css.get_data())
    for path in ("/", f"/c/{slug}", f"/c/{slug}/members", "/account", f"/c/{slug}/invitations"):
        page = client.get(path, headers={"Accept-Encoding": "br"})
        assert page.status_code == 200
        assert len(page.get_data()) + css_size <= 60_000, path


def test_errors_answer_json_to_api_clients_and_pages_to_browsers(client):
    page = client.get("/c/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/c/nowhere", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.get_json() == {
        "error": "not_found",
        "message": "This page does not exist, or you cannot see it.",
    }


def test_no_state_changes_on_get(client, auth, make):
    host = make.user()
    slug = make.community(host_id=host)
    auth.login(host)
    for path in ("/logout", f"/c/{slug}/themes", "/account/tokens", "/language"):
        assert client.get(path).status_code == 405
    assert client.get("/account").status_code == 200  # still logged in


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_down(app, client):
    with app.app_context():
        healthy_engine = db.engine
        down = create_engine(
            "postgresql+psycopg2://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
        )
        db._app_engines[app][None] = down
        try:
            response = client.get("/healthz")
        finally:
            db._app_engines[app][None] = healthy_engine
            down.dispose()
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set (PostgreSQL)")
def test_a_postgresql_connection_dropped_by_the_server_is_replaced(app, client):
    with app.app_context():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        db.session.commit()  # the connection goes back to the pool
        assert db.engine.pool.checkedin() == 1
        other = create_engine(TEST_DATABASE_URL)
        try:
            with other.connect() as connection:
                terminated = connection.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                )
        finally:
            other.dispose()
        assert terminated
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["database"] == "ok"
    with app.app_context():
        assert db.session.scalar(text("SELECT pg_backend_pid()")) != pid


def test_connections_to_a_sqlite_file_are_not_tested_on_each_use(tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "x"}
    )
    with app.app_context():
        assert db.engine.pool._pre_ping is False  # a SELECT 1 per request and per live window
    assert Config.SQLALCHEMY_ENGINE_OPTIONS == {"pool_pre_ping": True}  # for other apps


@pytest.mark.parametrize(
    ("accept_language", "expected_word"),
    [("fr-FR,fr;q=0.9,en;q=0.5", "Se connecter"), ("en-GB,en", "Log in"), ("de-DE", "Log in")],
)
def test_the_interface_follows_the_browser_language(client, accept_language, expected_word):
    page = client.get("/login", headers={"Accept-Language": accept_language})
    assert expected_word in page.get_data(as_text=True)


def test_the_language_chosen_is_remembered_without_an_account(client):
    response = client.post("/language", data={"locale": "fr", "next": "/login"})
    assert response.headers["Location"] == "/login"
    assert "Se connecter" in client.get("/login", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    response = client.post("/language", data={"locale": "fr", "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"


def test_the_language_chosen_is_stored_on_the_account(client, auth, make, app):
    user_id = make.user()
    auth.login(user_id)
    client.post("/language", data={"locale": "fr"})
    with app.app_context():
        assert db.session.get(User, user_id).locale == "fr"
    client.post("/logout")
    auth.login(user_id)
    assert "Mon compte" in client.get("/account", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )


def test_dates_are_shown_in_the_viewers_time_zone_and_language(client, auth, make, app):
    from datetime import datetime

    host = make.user()
    slug = make.community(host_id=host)
    with app.app_context():
        user = db.session.get(User, host)
        user.locale, user.time_zone = "fr", "America/Montreal"
        community = db.session.scalar(db.select(Community).filter_by(slug=slug))
        from cop.communities.services import create_invitation

        invitation = create_invitation(
            user, community, Membership.role.type.enum_class("participant"), 1, 1
        )
        invitation.expires_at = datetime(2026, 7, 14, 16, 30)
        db.session.commit()
    auth.login(host)
    page = client.get(f"/c/{slug}/invitations").get_data(as_text=True)
    assert "14/07/2026 12:30" in page  # 16:30 UTC is 12:30 in Montreal in summer


def test_the_french_catalogue_is_complete():
    """Every message of the code and templates has a French translation, none fuzzy."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    with (ROOT / "cop/translations/fr/LC_MESSAGES/messages.po").open("rb") as po_file:
        catalogue = read_po(po_file)
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (message.fuzzy or not all(message.string if message.pluralizable else [message.string]))
    ]
    assert untranslated == []

    with (ROOT / "babel.cfg").open() as mapping_file:
        method_map, options_map = parse_mapping_cfg(mapping_file)
    keywords = DEFAULT_KEYWORDS | {"_l": None, "lazy_gettext": None}
    in_code = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for folder in ("cop", "templates")
        for message in extract_from_dir(
            ROOT, method_map, options_map, keywords=keywords, directory_filter=_only(folder)
        )
    }
    missing = sorted(message_id for message_id in in_code if message_id not in catalogue)
    assert missing == [], "run `make messages` and translate the new strings"


def _only(folder: str):
    """Extract from `folder` only (not .venv or tests)."""

    def accept(dirpath: str) -> bool:
        relative = Path(dirpath).resolve().relative_to(ROOT)
        return relative == Path(".") or relative.parts[0] == folder

    return accept


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(tmp_path):
    from cop import create_app
    from tests.conftest import config_for_tests

    app = create_app(
        config_for_tests(tmp_path) | {"PROXY_COUNT": 1, "LOGIN_RATE_LIMIT": "1 per minute"}
    )
    with app.app_context():
        db.create_all()
    try:
        client = app.test_client()

        def attempt(client_address: str, email: str) -> int:
            return client.post(
                "/login",
                data={"email": email, "password": "wrong"},
                headers={"X-Forwarded-For": client_address},
            ).status_code

        assert attempt("203.0.113.1", "a@example.org") == 400
        assert attempt("203.0.113.2", "b@example.org") == 400  # another client: not throttled
        assert attempt("203.0.113.1", "c@example.org") == 429  # the same client again
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
