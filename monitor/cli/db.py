"""``monitor db``: database migrations."""

from __future__ import annotations

import typer

from monitor.cli.common import db_app, fail, settings
from monitor.errors import DatabaseError


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    from monitor.db import current_revision, make_engine, upgrade

    engine = make_engine(settings().database_url)
    try:
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")
    except DatabaseError as exc:
        fail(str(exc), 1)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and the code's."""
    from monitor.db import current_revision, head_revision, make_engine

    engine = make_engine(settings().database_url)
    try:
        typer.echo(f"database: {current_revision(engine) or '(empty)'}; code: {head_revision()}")
    except DatabaseError as exc:
        fail(str(exc), 1)
