"""What every command group shares: the Typer apps, settings, opening the database, failing, tables.

Start-up cost matters (health checks run ``monitor status`` every few seconds), so this module and the
command modules import only Typer and light modules at the top; the database, HTTP, parsing and
rendering stacks are imported inside the commands that use them.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from monitor.errors import ConfigError, DatabaseError, MonitorError

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.engine import Engine

    from monitor.config import Settings


def _hide_flag_types() -> None:
    """Flags take no value, so ``--help`` shows no type for them (typer labels them ``<bool>``)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Watch news feeds; alert on watchlist hits.\n\nSettings come from the config file; environment variables "
         "MONITOR_<KEY> override its keys (MONITOR_DATABASE_URL for database_url, and so on).",
)
feeds_app = typer.Typer(no_args_is_help=True, help="Feeds and their poll state.")
watchlists_app = typer.Typer(no_args_is_help=True, help="Check and try watchlists.")
deliveries_app = typer.Typer(no_args_is_help=True, help="The outbox: sent, pending and dead deliveries.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
digest_app = typer.Typer(no_args_is_help=True, help="Digests.")
notify_app = typer.Typer(no_args_is_help=True, help="Check that subscriptions reach their recipients.")
web_app = typer.Typer(help="The web front door: pages, JSON API, unsubscribe links, Atom, /metrics.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the JSON API (stored hashed).")
app.add_typer(digest_app, name="digest")
app.add_typer(notify_app, name="notify")
app.add_typer(feeds_app, name="feeds")
app.add_typer(watchlists_app, name="watchlists")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(db_app, name="db")
app.add_typer(web_app, name="web")
app.add_typer(tokens_app, name="tokens")

state: dict[str, Any] = {}


@app.callback()
def _main(
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="MONITOR_CONFIG",
                                                  help="Config file (default ./monitor.yaml).")] = None,
    log_level: Annotated[str | None, typer.Option(envvar="MONITOR_LOG_LEVEL",
                                                   help="DEBUG, INFO, WARNING, ERROR.")] = None,
) -> None:
    """monitor: feeds in, explained watchlist hits out by email and webhook.

    MONITOR_DATABASE_URL overrides database_url; any other key can be set as MONITOR_<KEY>.
    """
    state["config"] = config
    state["log_level"] = log_level


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, prefixed ``monitor:``, and the exit code (2: the operator's input; 1: the run)."""
    typer.echo(f"monitor: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from monitor.config import load_settings

    try:
        return load_settings(state.get("config"))
    except ConfigError as exc:
        fail(str(exc), 2)


def setup_logs(default: str = "WARNING") -> None:
    from monitor.logs import setup_logging

    setup_logging(state.get("log_level") or default)


def utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def open_context(*, now: datetime, daemon: bool = False, one_shot: bool = False, secrets: bool = False) -> Any:
    """The pipeline context, for commands that write: migrates a SQLite database and syncs the config into it.

    ``one_shot``: refuse to run with a broken or missing watchlist (the daemon runs on and keeps the last
    good version); ``secrets``: read the delivery secrets now.
    """
    from monitor.pipeline import open_context as open_pipeline

    setup_logs("INFO" if daemon else "WARNING")
    current = settings()
    if secrets:
        try:
            current.check_secrets()
        except ConfigError as exc:
            fail(str(exc), 2)
    try:
        ctx = open_pipeline(current, now=now)
    except DatabaseError as exc:
        fail(str(exc), 1)
    except MonitorError as exc:
        fail(str(exc), 2)
    result = ctx.watchlists.result
    if one_shot and (result is None or result.errors):
        ctx.close()
        for error in result.errors if result is not None else []:
            typer.echo(f"monitor: watchlist error: {error}", err=True)
        fail(f"the watchlists in {current.watchlists_dir} have errors; fix them "
             "('monitor watchlists validate' lists them) and run again", 2)
    return ctx


def reader_engine(current: Settings, *, empty_ok: bool = False) -> Engine | None:
    """The engine of a database to read, without syncing the config into it.

    A database without a schema is refused (exit 1), or with ``empty_ok`` read as empty (``None``): a
    listing of nothing. A SQLite file at an older revision is upgraded first, so its rows can be read.
    """
    from monitor.db import current_revision, head_revision, make_engine, redact_url, upgrade

    try:
        engine = make_engine(current.database_url)
        revision = current_revision(engine)
        if revision is None:
            if empty_ok:
                return None
            fail(f"the database {redact_url(engine.url)} has no schema yet; run 'monitor db upgrade' "
                 "or any poll/deliver/run command", 1)
        if empty_ok and engine.dialect.name == "sqlite" and revision != head_revision():
            upgrade(engine)
    except DatabaseError as exc:
        fail(str(exc), 1)
    return engine


def require_schema(engine: Any) -> None:
    from monitor.db import current_revision, redact_url

    try:
        revision = current_revision(engine)
    except DatabaseError as exc:
        fail(str(exc), 1)
    if revision is None:
        fail(f"the database {redact_url(engine.url)} has no schema yet; run 'monitor db upgrade' "
             "or any poll/deliver/run command", 1)


def schema_engine() -> Any:
    """The engine of a database at the code's revision (a SQLite file is upgraded in place)."""
    from monitor.db import current_revision, head_revision, make_engine, redact_url, upgrade

    current = settings()
    engine = make_engine(current.database_url, pool_size=current.db_pool_size)
    try:
        if engine.dialect.name == "sqlite":
            upgrade(engine)
        elif current_revision(engine) != head_revision():
            fail(f"the database {redact_url(engine.url)} is not at the code's revision: run 'monitor db upgrade'", 1)
    except DatabaseError as exc:
        fail(str(exc), 1)
    return engine


def hits_line(hits: dict[str, int]) -> str:
    if not hits:
        return "no hits"
    return ", ".join(f"{name} {count}" for name, count in sorted(hits.items()))


def watchlists_dir(watchlists: Path | None) -> Path:
    if watchlists is not None:
        return watchlists
    return settings().watchlists_dir


def load_matcher(folder: Path) -> Any:
    from monitor.match import Matcher, load_watchlists

    result = load_watchlists(folder)
    for error in result.errors:
        typer.echo(f"monitor: watchlist error: {error}", err=True)
    if not result.watchlists:
        fail(f"no valid watchlists in {folder}", 2)
    return result, Matcher.compile(result)


def parse_day(option: str, value: str | None) -> datetime | None:
    """``--since 2024-05-01`` → midnight UTC that day; a bad date is refused naming the option."""
    from datetime import UTC

    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        fail(f"{option} {value!r}: write a date as YYYY-MM-DD", 2)


# --- tables for people (``--format jsonl`` is for programs) ---------------------------------------


def when(value: datetime | None, *, empty: str = "-") -> str:
    """A time as a person reads it in a table: UTC, to the second, no microseconds."""
    if value is None:
        return empty
    return value.strftime("%Y-%m-%d %H:%M:%S")


def table(*headers: str, right: tuple[str, ...] = ()) -> Table:
    """A table with a header row; numbers (``right``) aligned right."""
    from rich import box
    from rich.table import Table

    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False)
    for header in headers:
        grid.add_column(header, justify="right" if header in right else "left", overflow="fold")
    return grid


def row(grid: Table, *cells: object) -> None:
    """Cells are plain text: markup-like text in a feed title is shown, never interpreted."""
    from rich.text import Text

    grid.add_row(*(Text(str(cell)) for cell in cells))


def show(grid: Table) -> None:
    """Print a table; piped into another program the lines are not wrapped at 80 columns."""
    from rich.console import Console

    out = sys.stdout
    console = Console(file=out, highlight=False, markup=False, emoji=False,
                      width=None if out.isatty() else 100_000, soft_wrap=False)
    console.print(grid)
