"""Accounts: register, log in and out, preferences, passwords, tokens, data, deletion."""

import json
import logging
import re

import pytest

from cop.auth import services
from cop.auth.models import ApiToken, User
from cop.communities.models import Membership, Role
from cop.extensions import db
from tests.conftest import PASSWORD


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(User))


def register(client, **overrides):
    data = {
        "email": "new@example.org",
        "display_name": "New Person",
        "password": "a long enough password",
        "confirm": "a long enough password",
    } | overrides
    return client.post("/register", data=data)


def test_register_logs_in_and_stores_an_argon2id_hash(client, app):
    response = register(client, email="  New@Example.ORG ")
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.email == "new@example.org"
        assert user.password_hash.startswith("$argon2id$")
        assert "a long enough password" not in user.password_hash


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": "not-an-email"}, "valid email"),
        ({"email": "a@b"}, "valid email"),
        ({"email": ""}, "This field is required"),
        ({"password": "short", "confirm": "short"}, "between 10 and 128"),
        ({"password": "x" * 10_000, "confirm": "x" * 10_000}, "between 10 and 128"),
        ({"password": "x" * 129, "confirm": "x" * 129}, "between 10 and 128"),
        ({"confirm": "something else entirely"}, "differ"),
        ({"display_name": ""}, "This field is required"),
        ({"display_name": "   "}, "This field is required"),
        ({"display_name": "n" * 201}, "200"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(client, app, overrides, message):
    response = register(client, **overrides)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count_users(app) == 0


def test_register_accepts_password_of_exactly_10_and_128_characters(client, app):
    assert (
        register(client, email="a@example.org", password="p" * 10, confirm="p" * 10).status_code
        == 302
    )
    client.post("/logout")
    assert (
        register(client, email="b@example.org", password="p" * 128, confirm="p" * 128).status_code
        == 302
    )
    assert count_users(app) == 2


def test_duplicate_email_is_refused_case_insensitively(client, app, make):
    make.user(email="taken@example.org")
    response = register(client, email="TAKEN@example.org")
    assert response.status_code == 400
    assert "already uses this email" in response.get_data(as_text=True)
    assert count_users(app) == 1


def test_html_in_the_display_name_is_stored_as_typed_and_shown_escaped(client, app):
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    register(client, display_name=name)
    with app.app_context():
        assert db.session.scalar(db.select(User.display_name)) == name
    page = client.get("/account").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page


def test_login_with_wrong_password_and_unknown_email_say_the_same(client, make):
    user_id = make.user(email="known@example.org")
    wrong = client.post("/login", data={"email": "known@example.org", "password": "wrong password"})
    unknown = client.post("/login", data={"email": "nobody@example.org", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 400
    assert "Unknown email or wrong password." in wrong.get_data(as_text=True)
    assert "Unknown email or wrong password." in unknown.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    assert user_id


def test_login_renews_the_session_and_logout_clears_it(client, make):
    user_id = make.user()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    response = client.post(
        "/login",
        data={"email": make.email_of(user_id), "password": PASSWORD},
    )
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"].startswith(f"{user_id}:")
    client.post("/logout")
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert client.get("/account").status_code == 302


def test_login_follows_only_local_next_urls(client, make):
    user_id = make.user()
    email = make.email_of(user_id)
    response = client.post(
        "/login?next=https://evil.example/x", data={"email": email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/account", data={"email": email, "password": PASSWORD})
    assert response.headers["Location"] == "/account"


def test_session_cookie_is_httponly_and_samesite_lax(client, make):
    user_id = make.user()
    response = client.post("/login", data={"email": make.email_of(user_id), "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_cookies_are_secure_and_hsts_sent_when_served_over_https(tmp_path):
    from cop import create_app
    from tests.conftest import config_for_tests

    app = create_app(config_for_tests(tmp_path) | {"PREFERRED_URL_SCHEME": "https"})
    with app.app_context():
        db.create_all()
    try:
        client = app.test_client()
        response = client.post(
            "/register",
            data={
                "email": "s@example.org",
                "display_name": "S",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        )
        assert "Secure" in response.headers["Set-Cookie"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()


def test_no_hsts_and_no_secure_cookie_over_plain_http(client, make):
    user_id = make.user()
    response = client.post("/login", data={"email": make.email_of(user_id), "password": PASSWORD})
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_login_is_throttled_per_ip_and_per_account(tmp_path, make_app_with_limit, storage):
    app, client = make_app_with_limit(storage, "3 per minute")
    for _attempt in range(3):
        assert (
            client.post("/login", data={"email": "x@example.org", "password": "wrong"}).status_code
            == 400
        )
    blocked = client.post("/login", data={"email": "x@example.org", "password": "wrong"})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_login_throttle_counts_each_account_from_any_address(make_app_with_limit, storage):
    app, client = make_app_with_limit(storage, "2 per minute")
    for address in ("10.0.0.1", "10.0.0.2"):
        client.post(
            "/login",
            data={"email": "victim@example.org", "password": "guess"},
            environ_base={"REMOTE_ADDR": address},
        )
    blocked = client.post(
        "/login",
        data={"email": "VICTIM@example.org", "password": "guess"},
        environ_base={"REMOTE_ADDR": "10.0.0.3"},
    )
    assert blocked.status_code == 429
    other = client.post(
        "/login",
        data={"email": "someone-else@example.org", "password": "guess"},
        environ_base={"REMOTE_ADDR": "10.0.0.4"},
    )
    assert other.status_code == 400


@pytest.fixture
def make_app_with_limit(tmp_path):
    """Build an app whose login limit is small, on memory or Redis storage."""
    import os
    import uuid

    from cop import create_app
    from cop.extensions import limiter
    from tests.conftest import config_for_tests

    built = []

    def build(storage: str, limit: str):
        if storage == "redis":
            url = os.environ.get("TEST_REDIS_URL")
            if not url:
                pytest.skip("TEST_REDIS_URL is not set: no Redis server to store the limits in")
            config = {"RATELIMIT_STORAGE_URI": url, "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
        else:
            config = {"RATELIMIT_STORAGE_URI": "memory://"}
        app = create_app(config_for_tests(tmp_path) | config | {"LOGIN_RATE_LIMIT": limit})
        with app.app_context():
            db.create_all()
        built.append(app)
        return app, app.test_client()

    yield build
    for app in built:
        with app.app_context():
            if app.config["RATELIMIT_STORAGE_URI"] != "memory://":
                limiter.reset()
            db.drop_all()
            db.engine.dispose()


def test_preferences_change_language_time_zone_and_name(client, auth, make, app):
    user_id = make.user()
    auth.login(user_id)
    response = client.post(
        "/account/preferences",
        data={"display_name": "Renamed", "locale": "fr", "time_zone": "America/Montreal"},
    )
    assert response.status_code == 302
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.display_name, user.locale, user.time_zone) == (
            "Renamed",
            "fr",
            "America/Montreal",
        )
    assert "Mon compte" in client.get("/account").get_data(as_text=True)


@pytest.mark.parametrize(
    "data",
    [
        {"display_name": "x", "locale": "de", "time_zone": "Europe/Paris"},
        {"display_name": "x", "locale": "en", "time_zone": "Mars/Olympus"},
        {"display_name": "", "locale": "en", "time_zone": "Europe/Paris"},
    ],
)
def test_preferences_refuse_bad_values(client, auth, make, app, data):
    user_id = make.user(name="Before")
    auth.login(user_id)
    assert client.post("/account/preferences", data=data).status_code == 400
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.display_name, user.locale, user.time_zone) == ("Before", None, None)


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, make):
    user_id = make.user()
    email = make.email_of(user_id)
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        device.post("/login", data={"email": email, "password": PASSWORD})

    refused = laptop.post(
        "/account/password",
        data={
            "current_password": "not it at all",
            "password": "brand new secret",
            "confirm": "brand new secret",
        },
    )
    assert refused.status_code == 400
    accepted = laptop.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": "brand new secret",
            "confirm": "brand new secret",
        },
    )
    assert accepted.status_code == 302
    assert laptop.get("/account").status_code == 200  # this session was renewed
    assert phone.get("/account").status_code == 302  # the other one ended
    assert laptop.post("/logout").status_code == 302
    assert (
        laptop.post("/login", data={"email": email, "password": "brand new secret"}).status_code
        == 302
    )


def test_password_reset_link_is_logged_without_smtp_and_works_once(client, make, app, caplog):
    user_id = make.user(email="forgetful@example.org")
    with caplog.at_level(logging.WARNING):
        response = client.post("/reset", data={"email": "Forgetful@example.org"})
    assert response.status_code == 302
    link = re.search(r"http://cop\.test(/reset/\S+)", caplog.text)
    assert link, caplog.text
    path = link.group(1)

    assert client.get(path).status_code == 200
    response = client.post(path, data={"password": "my new password", "confirm": "my new password"})
    assert response.status_code == 302
    assert (
        client.post(
            "/login", data={"email": "forgetful@example.org", "password": "my new password"}
        ).status_code
        == 302
    )
    client.post("/logout")
    # A second use of the same link is refused.
    assert client.get(path).status_code == 400
    with app.app_context():
        assert services.check_password(db.session.get(User, user_id), "my new password")


def test_password_reset_answers_the_same_for_unknown_addresses(client, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.post("/reset", data={"email": "nobody@example.org"})
    assert response.status_code == 302
    assert "/reset/" not in caplog.text


@pytest.mark.parametrize("token", ["garbage", "a" * 300, "eyJ1c2VyIjoxfQ.bad.sig"])
def test_password_reset_refuses_forged_tokens(client, make, token):
    make.user()
    assert client.get(f"/reset/{token}").status_code == 400
    assert (
        client.post(f"/reset/{token}", data={"password": "x" * 12, "confirm": "x" * 12}).status_code
        == 400
    )


def test_password_reset_sends_through_smtp_when_configured(app, make, monkeypatch):
    sent = []

    class RecordingSMTP:
        def __init__(self, host, port, timeout):
            sent.append((host, port))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            sent.append(message)

    import cop.core.mail

    monkeypatch.setattr(cop.core.mail.smtplib, "SMTP", RecordingSMTP)
    app.config.update(MAIL_SERVER="smtp.localhost", MAIL_PORT=2525)
    make.user(email="mailed@example.org")
    app.test_client().post("/reset", data={"email": "mailed@example.org"})
    assert sent[0] == ("smtp.localhost", 2525)
    assert sent[1]["To"] == "mailed@example.org"
    assert "/reset/" in sent[1].get_content()


def test_api_tokens_are_shown_once_and_stored_hashed(client, auth, make, app):
    user_id = make.user()
    auth.login(user_id)
    page = client.post("/account/tokens", data={"name": "my script"}).get_data(as_text=True)
    secret = re.search(r"(cop_[A-Za-z0-9_\-]+)", page).group(1)
    assert secret not in client.get("/account").get_data(as_text=True)
    with app.app_context():
        token = db.session.scalar(db.select(ApiToken))
        assert token.token_hash != secret and secret not in token.token_hash
        assert services.user_for_api_token(secret).id == user_id
        token_id = token.id
    assert client.post(f"/account/tokens/{token_id}/delete").status_code == 302
    with app.app_context():
        assert services.user_for_api_token(secret) is None


def test_a_token_of_someone_else_cannot_be_revoked(client, auth, make, app):
    owner = make.user()
    with app.app_context():
        token, _secret = services.create_api_token(db.session.get(User, owner), "theirs")
        db.session.commit()
        token_id = token.id
    auth.login(make.user())
    assert client.post(f"/account/tokens/{token_id}/delete").status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, token_id) is not None


def test_personal_data_download(client, auth, make):
    user_id = make.user(name="Data Subject", email="subject@example.org")
    slug = make.community(host_id=user_id)
    auth.login(user_id)
    response = client.get("/account/export.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == "subject@example.org"
    assert data["memberships"] == [
        {
            "community": slug,
            "community_name": data["memberships"][0]["community_name"],
            "role": "host",
            "organisation": None,
            "joined_at": data["memberships"][0]["joined_at"],
        }
    ]


def test_deleting_an_account_keeps_nothing_personal(client, auth, make, app):
    host = make.user()
    slug = make.community(host_id=host)
    leaver = make.member(slug, Role.PARTICIPANT)
    auth.login(leaver)
    assert client.post("/account/delete", data={"password": "wrong one"}).status_code == 400
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/account").status_code == 302
    with app.app_context():
        user = db.session.get(User, leaver)
        assert user.is_deleted and user.password_hash is None and user.display_name == ""
        assert user.email.endswith("@deleted.invalid")
        assert db.session.scalar(db.select(Membership).filter_by(user_id=leaver)) is None
    assert auth.login(make.email_of(leaver)).status_code == 400


def test_the_last_host_cannot_delete_their_account(client, auth, make, app):
    host = make.user()
    make.community(host_id=host)
    auth.login(host)
    response = client.post("/account/delete", data={"password": PASSWORD})
    assert response.status_code == 400
    assert "last host" in response.get_data(as_text=True)
    with app.app_context():
        assert not db.session.get(User, host).is_deleted


def test_a_logged_out_session_cookie_replayed_logs_nobody_in(app, make):
    user_id = make.user()
    browser = app.test_client()
    browser.post("/login", data={"email": make.email_of(user_id), "password": PASSWORD})
    stolen = browser.get_cookie("session", domain="cop.test").value
    assert browser.get("/account").status_code == 200
    browser.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/account").status_code == 302
    # Another browser of the same person stays logged in.
    other = app.test_client()
    other.post("/login", data={"email": make.email_of(user_id), "password": PASSWORD})
    assert other.get("/account").status_code == 200
