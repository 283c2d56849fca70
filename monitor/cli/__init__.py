"""The ``monitor`` command line (Typer). Thin: parse arguments, call operations/pipeline/store, print.

One module per command group; the shared apps and helpers live in ``common``. Other tools drive these
commands: output formats and exit codes are a contract (docs/architecture.md). Exit 0 when the cycle
ran, even if single feeds or deliveries failed (they are reported); 2 for a bad config or watchlist;
1 when the cycle itself could not run (database unreachable).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

import typer

from monitor.cli import cycles, db, deliveries, feeds, notify, reports, watchlists, web  # noqa: F401  (registers)
from monitor.cli.common import app
from monitor.errors import ConfigError, DatabaseError, WatchlistError

__all__ = ["app", "main"]


def main() -> None:
    # Outside the app, typer.Exit is no longer turned into an exit status: leave through _leave.
    try:
        app()
    except (WatchlistError, ConfigError) as exc:
        typer.echo(f"monitor: {exc}", err=True)
        _leave(2)
    except DatabaseError as exc:
        typer.echo(f"monitor: {exc}", err=True)
        _leave(1)
    except SystemExit as exc:  # how every command ends (click's standalone mode)
        _leave(exc.code)
    _leave(0)


def _leave(code: int | str | None) -> NoReturn:
    """End the process once the command is done, without tearing the interpreter down piece by piece.

    When a command has printed its last line, what is left is the exit handlers (logging, worker
    processes: run here, as at any exit) and then Python freeing every object and module one at a time,
    which costs more than some commands take to run (0.4 s after ``status``, 0.6 s after a poll on a
    slow machine) and has nothing left to do: connections are closed, files flushed. The status is what
    ``sys.exit(code)`` would give.
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # under a profiler or tracer (python -m cProfile): it writes its results after main returns
    status = 1
    try:
        atexit._run_exitfuncs()
        if code is None or isinstance(code, int):
            status = code or 0
        else:
            print(code, file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a reader gone (| head) or a closed stream
                stream.flush()
    finally:
        os._exit(status)
