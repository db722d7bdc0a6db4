"""Fixtures: an app on SQLite (or TEST_DATABASE_URL), clients, users and communities."""

import os
import re
import shutil
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import inspect, text

from cop import create_app
from cop.auth import services as auth_services
from cop.communities import services as community_services
from cop.communities.models import Membership, Organisation, OrganisationKind, Role, Visibility
from cop.config import normalise_database_url
from cop.extensions import db

PASSWORD = "correct horse battery"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") and normalise_database_url(
    os.environ["TEST_DATABASE_URL"]
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Under CI, a skipped test is a failure: CI proves that every test ran."""
    skipped = terminalreporter.stats.get("skipped", [])
    if IN_CI and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} test(s) skipped; every test must run in CI.", red=True
        )


def pytest_sessionfinish(session, exitstatus):
    """Fail the run under CI when anything was skipped."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1


def config_for_tests(tmp_path: Path) -> dict:
    """Return settings for a test app: its own database, cheap hashing, no CSRF by default."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.sqlite'}",
        "ASYNC_MODE": "threading",
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 64,
        "ARGON2_PARALLELISM": 1,
        "SERVER_NAME": "cop.test",
    }


# The databases (by URL) whose tables were built from this run's models. The PostgreSQL test
# database keeps its tables from one run to the next, when the models may have changed.
DATABASES_BUILT_THIS_RUN: set[str] = set()


def reset_database() -> None:
    """Give the current app's database the models' tables, empty, with ids counting from 1.

    The tables are built from the models once per run, and again whenever a test has
    dropped some (test_migrations and the tests with an app of their own do); otherwise
    emptying them is enough. On PostgreSQL dropping and creating them takes ~0.3 s, and
    over 1 s once the system catalogue has swollen with a run's dropped tables (without
    autovacuum); emptying them takes ~3 ms.
    """
    db.session.remove()
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    with db.engine.connect() as connection:
        has_every_table = set(db.metadata.tables) <= set(inspect(connection).get_table_names())
    if has_every_table and url in DATABASES_BUILT_THIS_RUN:
        empty_every_table()
    else:
        db.drop_all()
        db.create_all()
        DATABASES_BUILT_THIS_RUN.add(url)


def empty_every_table() -> None:
    """Delete every row of the models' tables and restart their ids at 1, as in new tables.

    DELETE rather than TRUNCATE, which on tables this small is ~30 times slower: it makes
    new files for every table and index.
    """
    db.session.remove()
    tables = list(reversed(db.metadata.sorted_tables))  # children before their parents
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            quote = connection.dialect.identifier_preparer.quote
            # In one round trip; setval(..., false) makes the next id 1.
            connection.exec_driver_sql(
                "".join(f"DELETE FROM {quote(table.name)};" for table in tables)
                + "SELECT setval(oid, 1, false) FROM pg_class"
                " WHERE relkind = 'S' AND relnamespace = current_schema()::regnamespace"
            )
        else:
            for table in tables:
                connection.execute(table.delete())
            if inspect(connection).has_table("sqlite_sequence"):
                # Where SQLite's AUTOINCREMENT keeps the largest id ever used (note_update).
                connection.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path | None:
    """Return a SQLite file holding the models' empty tables; None on TEST_DATABASE_URL.

    Each test copies it (under 1 ms) instead of creating the tables in a new file (~50 ms).
    """
    if TEST_DATABASE_URL:
        return None
    folder = tmp_path_factory.mktemp("template")
    app = create_app(config_for_tests(folder))
    with app.app_context():
        db.create_all()
        db.engine.dispose()  # closing the last connection moves the WAL into the file
    return folder / "test.sqlite"


def app_for_tests(tmp_path: Path, sqlite_template: Path | None, **settings):
    """Yield an app whose database has the models' tables, empty; leave them so afterwards.

    Emptied afterwards too because the tests that build an app of their own, with
    `db.create_all()`, expect the PostgreSQL test database to hold no rows.
    """
    config = config_for_tests(tmp_path) | settings
    database = tmp_path / "test.sqlite"  # config_for_tests's file
    # Not over the file of another app of the same test (csrf_app with make, say): they share it.
    if sqlite_template is not None and not database.exists():
        shutil.copyfile(sqlite_template, database)
        DATABASES_BUILT_THIS_RUN.add(config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(config)
    with app.app_context():
        reset_database()
    yield app
    with app.app_context():
        reset_database()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path, sqlite_template):
    """Return an app whose database has the models' tables, empty."""
    yield from app_for_tests(tmp_path, sqlite_template)


@pytest.fixture
def csrf_app(tmp_path, sqlite_template):
    """Return an app with CSRF protection on, as in production."""
    yield from app_for_tests(tmp_path, sqlite_template, WTF_CSRF_ENABLED=True)


@pytest.fixture
def client(app):
    """Return a test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """Return a CLI runner of the app."""
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """Run the test inside an app context (for calling services directly)."""
    with app.app_context():
        yield


class Factory:
    """Make users, organisations, communities and memberships for a test."""

    def __init__(self, app):
        self.app = app
        self.count = 0

    def user(self, name: str = "", email: str | None = None, password: str = PASSWORD):
        """Create a user and return its id."""
        self.count += 1
        name = name or f"Person {self.count}"
        email = email or f"person{self.count}@example.org"
        with self.app.app_context():
            user = auth_services.register_user(email, name, password)
            db.session.commit()
            return user.id

    def organisation(self, name: str = "", kind: OrganisationKind = OrganisationKind.NGO):
        """Create an organisation and return its id."""
        self.count += 1
        with self.app.app_context():
            organisation = Organisation(name=name or f"Org {self.count}", kind=kind, country="FR")
            db.session.add(organisation)
            db.session.commit()
            return organisation.id

    def community(
        self,
        host_id: int | None = None,
        slug: str = "",
        visibility: Visibility = Visibility.PRIVATE,
        themes=("Information sharing", "Advocacy"),
    ) -> str:
        """Create a community hosted by `host_id` (a new user if None) and return its slug."""
        from cop.auth.models import User

        host_id = host_id or self.user("Host")
        self.count += 1
        with self.app.app_context():
            community = community_services.create_community(
                db.session.get(User, host_id),
                f"Community {self.count}",
                slug or f"community-{self.count}",
                "A test community.",
                visibility,
                list(themes),
            )
            db.session.commit()
            return community.slug

    def member(
        self, slug: str, role: Role, user_id: int | None = None, organisation_id=None
    ) -> int:
        """Add a user (new if None) to a community with a role; return the user id."""
        from cop.communities.models import Community

        user_id = user_id or self.user(f"{role.value.title()} {self.count + 1}")
        with self.app.app_context():
            community = db.session.scalar(db.select(Community).filter_by(slug=slug))
            db.session.add(
                Membership(
                    user_id=user_id,
                    community_id=community.id,
                    role=role,
                    organisation_id=organisation_id,
                )
            )
            db.session.commit()
        return user_id

    def email_of(self, user_id: int) -> str:
        """Return a user's email."""
        from cop.auth.models import User

        with self.app.app_context():
            return db.session.get(User, user_id).email


@pytest.fixture
def make(app):
    """Return the factory of test data."""
    return Factory(app)


class AuthActions:
    """Log a test client in and out."""

    def __init__(self, client, factory: Factory):
        self.client = client
        self.factory = factory

    def login(self, user_id_or_email, password: str = PASSWORD):
        """Log in as a user (by id or email)."""
        email = (
            self.factory.email_of(user_id_or_email)
            if isinstance(user_id_or_email, int)
            else user_id_or_email
        )
        return self.client.post("/login", data={"email": email, "password": password})

    def logout(self):
        """Log out."""
        return self.client.post("/logout")


@pytest.fixture
def auth(client, make):
    """Return login helpers for the test client."""
    return AuthActions(client, make)


def csrf_token_from(html: str) -> str:
    """Return the CSRF token embedded in a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)
