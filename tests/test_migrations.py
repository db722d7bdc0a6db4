"""The migrations build exactly the schema the models describe, and take it down again."""

import json
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text

from cop import ROOT, create_app
from cop.extensions import db
from tests.conftest import TEST_DATABASE_URL, config_for_tests

MIGRATIONS = ROOT / "migrations"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set (PostgreSQL)"
        ),
    ),
]


def alembic_config() -> AlembicConfig:
    """Return the configuration `flask db` uses, minus alembic.ini's logging set-up.

    alembic.ini only configures logging, which would replace pytest's log handlers.
    """
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def drop_every_table() -> None:
    """Drop every table of the database, alembic_version included."""
    db.session.remove()
    with db.engine.begin() as connection:
        existing = MetaData()
        existing.reflect(connection)
        existing.drop_all(connection)


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path):
    """Yield inside the context of an app whose database has no table; empty it afterwards.

    On PostgreSQL this is TEST_DATABASE_URL, which other tests fill with `db.create_all()`:
    it is left without any table, alembic_version included, so that they still can.
    """
    config = config_for_tests(tmp_path)
    if request.param == "sqlite":
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    else:
        config["SQLALCHEMY_DATABASE_URI"] = TEST_DATABASE_URL
    app = create_app(config)
    with app.app_context():
        drop_every_table()
        try:
            yield
        finally:
            drop_every_table()
            db.engine.dispose()


def schema_differences() -> list:
    """Return what autogenerate would change to turn the database into the models."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def cop_tables_in_database() -> set[str]:
    """Return the names of the models' tables that exist in the database."""
    with db.engine.connect() as connection:
        return set(inspect(connection).get_table_names()) & set(db.metadata.tables)


def test_the_revisions_form_a_single_line():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads, merge them: flask --app wsgi db merge {heads}"


def test_upgrade_to_head_builds_the_schema_of_the_models(empty_database):
    assert cop_tables_in_database() == set()

    command.upgrade(alembic_config(), "head")

    assert cop_tables_in_database() == set(db.metadata.tables)
    differences = schema_differences()
    assert differences == [], (
        "the models and the migrations disagree; add a revision with "
        f'`flask --app wsgi db migrate -m "..."`: {differences}'
    )


def test_downgrade_to_base_removes_every_table(empty_database):
    command.upgrade(alembic_config(), "head")

    command.downgrade(alembic_config(), "base")

    assert cop_tables_in_database() == set()
    with db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is None


def test_note_update_seqs_are_never_reused_on_sqlite(tmp_path):
    """Autogenerate cannot see AUTOINCREMENT; without it SQLite reuses compacted seqs."""
    config = config_for_tests(tmp_path)
    config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    app = create_app(config)
    with app.app_context():
        command.upgrade(alembic_config(), "head")
        with db.engine.connect() as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'note_update'"
            ).scalar_one()
        db.engine.dispose()
    assert "AUTOINCREMENT" in sql


def test_logged_updates_keep_their_author_across_the_author_ids_revision(empty_database):
    """Rows logged before a row could hold a window of several authors keep their author."""
    command.upgrade(alembic_config(), "0d5ee6401b3d")
    moment = datetime(2026, 11, 23)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, session_nonce, created_at)'
                " VALUES (7, 'a@example.org', 'A', 'n', :moment)"
            ),
            {"moment": moment},
        )
        connection.execute(
            text(
                "INSERT INTO community (id, slug, name, description, visibility, created_at)"
                " VALUES (1, 'c', 'C', '', 'private', :moment)"
            ),
            {"moment": moment},
        )
        connection.execute(
            text(
                "INSERT INTO note (id, community_id, owner_kind, title, state, state_seq, text,"
                " unversioned_contributors, is_locked, created_at, last_activity_at)"
                " VALUES (1, 1, 'community', 'N', :empty, 0, '', '[]', false, :moment, :moment)"
            ),
            {"moment": moment, "empty": b""},
        )
        connection.execute(
            text(
                'INSERT INTO note_update (note_id, "update", user_id, created_at)'
                " VALUES (1, :update, :user_id, :moment)"
            ),
            [
                {"update": b"a", "user_id": 7, "moment": moment},
                {"update": b"b", "user_id": None, "moment": moment},
            ],
        )

    command.upgrade(alembic_config(), "head")
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT author_ids FROM note_update ORDER BY seq"))
        authors = [
            value if isinstance(value, list) else json.loads(value) for value in rows.scalars()
        ]
    assert authors == [[7], []]

    command.downgrade(alembic_config(), "0d5ee6401b3d")
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT user_id FROM note_update ORDER BY seq"))
        assert list(rows.scalars()) == [7, None]
