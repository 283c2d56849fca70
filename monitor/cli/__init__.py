"""The ``monitor`` command line (Typer). Thin: parse arguments, call operations/pipeline/store, print.

One module per command group; the shared apps and helpers live in ``common``. Other tools drive these
commands: output formats and exit codes are a contract (docs/architecture.md). Exit 0 when the cycle
ran, even if single feeds or deliveries failed (they are reported); 2 for a bad config or watchlist;
1 when the cycle itself could not run (database unreachable).
"""

from __future__ import annotations

import sys

import typer

from monitor.cli import cycles, db, deliveries, feeds, notify, reports, watchlists, web  # noqa: F401  (registers)
from monitor.cli.common import app
from monitor.errors import ConfigError, DatabaseError, WatchlistError

__all__ = ["app", "main"]


def main() -> None:
    # Outside the app, typer.Exit is no longer turned into an exit status: leave through sys.exit.
    try:
        app()
    except (WatchlistError, ConfigError) as exc:
        typer.echo(f"monitor: {exc}", err=True)
        sys.exit(2)
    except DatabaseError as exc:
        typer.echo(f"monitor: {exc}", err=True)
        sys.exit(1)
