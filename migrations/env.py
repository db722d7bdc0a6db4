"""Alembic environment: migrate the database of the app that `flask db` built.

The target metadata is cop's `db.metadata`, whose naming convention (cop/extensions.py)
gives every constraint and index the same name on SQLite and PostgreSQL, so revisions can
name them and batch mode can rebuild SQLite tables.
"""

import importlib
import logging
import pkgutil
from logging.config import fileConfig

from alembic import context
from flask import current_app

import cop

config = context.config
if config.config_file_name is not None:
    # Keep the loggers that already exist (the app's; pytest's when a test migrates).
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

# create_app imports the models through the blueprints; importing every feature's models
# module as well means autogenerate never mistakes a table for one to drop.
for module in pkgutil.walk_packages(cop.__path__, "cop."):
    if module.name.endswith(".models"):
        importlib.import_module(module.name)

db = current_app.extensions["migrate"].db
target_metadata = db.metadata
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def run_migrations_offline() -> None:
    """Write the migrations' SQL to standard output instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        **current_app.extensions["migrate"].configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def skip_empty_revision(migration_context, revision, directives) -> None:
    """Write no revision file when autogenerate finds no change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_online() -> None:
    """Run the migrations through the app's engine."""
    configure_args = {
        "process_revision_directives": skip_empty_revision,
        **current_app.extensions["migrate"].configure_args,  # render_as_batch=True
    }
    with db.engine.connect() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        if is_sqlite:
            # Batch mode rebuilds a SQLite table by copying it and dropping the old one; with
            # foreign keys enforced (cop turns them on for every connection) that drop would
            # fail, or cascade, on rows that refer to the table. SQLite ignores this pragma
            # inside a transaction, hence the commit.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata, **configure_args)
        try:
            with context.begin_transaction():
                context.run_migrations()
                if is_sqlite:
                    check_sqlite_foreign_keys(connection)
        finally:
            if is_sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def check_sqlite_foreign_keys(connection) -> None:
    """Refuse to commit migrations that left rows pointing at nothing."""
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign keys broken by the migration: {problems[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
