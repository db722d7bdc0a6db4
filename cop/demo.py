"""The demo community, loaded by `flask --app wsgi demo` (and by `make run` on an empty database)."""

import click


@click.command("demo")
@click.option("--password", default="cop-demo-2026", show_default=True, help="Password of every demo account.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
def demo_command(password: str, if_empty: bool) -> None:
    """Load the demo community."""
