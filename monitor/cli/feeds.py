"""``monitor feeds``: list, import, export, add, remove, pause, resume and reset feeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli.common import (
    fail,
    feeds_app,
    open_context,
    reader_engine,
    row,
    settings,
    show,
    state,
    table,
    utcnow,
    when,
)
from monitor.errors import ConfigError, MonitorError


@feeds_app.command("list")
def feeds_list(
    format: Annotated[str, typer.Option("--format", "-f", help="table or jsonl.")] = "table",
) -> None:
    """Feeds with their poll state: status, errors, next poll."""
    from monitor import store
    from monitor.db import read_scope
    from monitor.redact import redact

    current = settings()
    engine = reader_engine(current, empty_ok=True)
    if engine is None:
        return  # no schema yet: no feeds stored
    now = utcnow()
    with read_scope(engine) as session:
        rows = store.list_feeds(session)
    grid = table("id", "name", "state", "http", "errors", "last poll", "next poll", "url", "note",
                 right=("id", "http", "errors"))
    for feed in rows:
        problem = store.feed_problem(feed, now=now, failing_for=current.source_problem_after)
        # URLs can carry credentials (userinfo, ?api_key=): listings show them redacted; `feeds export` keeps them.
        record = {
            "id": feed.id, "url": redact(feed.url), "name": feed.name, "category": feed.category,
            "origin": feed.origin, "active": feed.active, "paused": feed.paused, "last_status": feed.last_status,
            "last_error": redact(feed.last_error) if feed.last_error else None,
            "error_count": feed.error_count, "problem": redact(problem) if problem else None,
            "last_polled_at": feed.last_polled_at.isoformat() if feed.last_polled_at else None,
            "next_poll_at": feed.next_poll_at.isoformat() if feed.next_poll_at else None,
            "last_entry_at": feed.last_entry_at.isoformat() if feed.last_entry_at else None,
            "moved_to": redact(feed.moved_to) if feed.moved_to else None,
        }
        if format == "jsonl":
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        status = "paused" if feed.paused else "off" if not feed.active else ("ERR" if feed.error_count else "ok")
        notes = []
        if problem:
            notes.append(f"problem: {record['problem']}")
        elif feed.last_error:
            notes.append(f"last error: {record['last_error']}")
        if feed.moved_to:
            notes.append(f"moved permanently to {record['moved_to']} (since {feed.moved_since:%Y-%m-%d})")
        row(grid, feed.id, feed.name or "-", status, feed.last_status or "-", feed.error_count,
            when(feed.last_polled_at), when(feed.next_poll_at), record["url"], "; ".join(notes))
    if format != "jsonl" and rows:
        show(grid)


@feeds_app.command("import")
def feeds_import(
    file: Annotated[Path, typer.Argument(help="An OPML file.")],
) -> None:
    """Add the feeds of an OPML file (titles and categories kept); URLs already known are skipped."""
    from monitor.db import session_scope
    from monitor.ingest.fetch import FetchPolicy
    from monitor.operations.opml_import import import_opml
    from monitor.opml import read_opml

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror}", 2)
    try:
        read_opml(data, source=str(file))  # a broken file is refused before the database is opened
    except ConfigError as exc:
        fail(str(exc), 2)
    ctx = open_context(now=utcnow())
    # Imported URLs are user input: only http(s), checked by the same guard (and allowances) as polling.
    policy = FetchPolicy.from_settings(ctx.settings, allow_file_urls=False)
    with session_scope(ctx.engine) as session:
        outcome = import_opml(session, data, source=str(file), policy=policy, now=utcnow(),
                              interval=ctx.settings.poll_interval, alert_window=ctx.settings.new_feed_alert_window)
    refused = outcome.refused
    if refused:
        typer.echo(f"monitor: {file}: refused {len(refused)} "
                   f"{'entry' if len(refused) == 1 else 'entries'}:", err=True)
    for line in refused:
        typer.echo(f"  refused {line}", err=True)
    typer.echo(f"imported {len(outcome.added)} feeds ({len(outcome.present)} already known, {len(refused)} refused) "
               f"from {file}")


@feeds_app.command("export")
def feeds_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write every active feed as OPML 2.0 (titles and categories)."""
    from monitor import store
    from monitor.db import read_scope
    from monitor.opml import OpmlFeed, export_opml

    engine = reader_engine(settings(), empty_ok=True)
    rows = []
    if engine is not None:
        with read_scope(engine) as session:
            rows = [f for f in store.list_feeds(session) if f.active]
    data = export_opml([OpmlFeed(url=f.url, title=f.name, category=f.category) for f in rows])
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        typer.echo(f"exported {len(rows)} feeds to {output}")


@feeds_app.command("reset")
def feeds_reset(
    url: Annotated[str | None, typer.Argument(help="The feed URL (default: every feed in error).")] = None,
) -> None:
    """Clear a feed's error state and poll it at the next cycle (re-enables a feed disabled by 410)."""
    from monitor import store
    from monitor.db import session_scope

    ctx = open_context(now=utcnow())
    with session_scope(ctx.engine) as session:
        count = store.reset_feeds(session, now=utcnow(), url=url)
    if url is not None and count == 0:
        fail(f"no feed with URL {url}", 1)
    typer.echo(f"reset {count} feeds")


def _cli_feed(session: Any, url: str, config: Path | None) -> Any:
    """The feed row for ``url``; refuses unknown URLs and feeds the config file owns."""
    from monitor import store

    found = store.get_feed(session, url)
    if found is None or found.removed_at is not None:
        fail(f"no feed with URL {url} ('monitor feeds list' shows them)", 2)
    if found.origin == "config":
        fail(f"{url} comes from the config file {config or 'monitor.yaml'}; config feeds stay config-owned: "
             "change or delete its entry there", 2)
    return found


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's URL, or a web page that links its feed.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: none; the site's host is shown).")] = None,
    interval: Annotated[str | None, typer.Option(help="Poll interval, e.g. 15m (default: poll_interval).")] = None,
) -> None:
    """Add a feed (checked by fetching it); a web page's own feed is found through its alternate links."""
    from monitor import store
    from monitor.config import parse_duration
    from monitor.db import session_scope
    from monitor.errors import FetchError
    from monitor.ingest.fetch import FetchPolicy, check_url
    from monitor.operations.probe import ProbeRefused, probe_feed

    current = settings()
    try:
        seconds = parse_duration(interval) if interval is not None else current.poll_interval
    except ValueError as exc:
        fail(f"--interval: {exc}", 2)
    policy = FetchPolicy.from_settings(current, allow_file_urls=False)
    try:
        check_url(url, policy)
    except MonitorError as exc:  # not http(s), or an address the network guard forbids
        fail(f"cannot add {url}: {exc}", 2)
    try:
        kind, feed_url = probe_feed(url, policy)
    except ProbeRefused as exc:
        fail(str(exc), 2)
    except FetchError as exc:
        fail(f"cannot add {url}: {exc}", 1)
    except MonitorError as exc:
        fail(f"cannot add {url}: {exc}", 2)
    if kind == "page":
        typer.echo(f"{url} is a web page; it names the feed {feed_url}: adding that")
    ctx = open_context(now=utcnow())
    try:
        clamped = max(current.min_poll_interval, min(current.max_poll_interval, seconds))
        with session_scope(ctx.engine) as session:
            outcome = store.add_feed(session, feed_url, name=name, interval=clamped,
                                     alert_window=current.new_feed_alert_window, now=utcnow())
    finally:
        ctx.close()
    if outcome == "known":
        typer.echo(f"{feed_url} is already a feed; nothing changed")
        return
    typer.echo(f"{outcome} feed {feed_url} (polled every {clamped // 60} min from the next cycle)")


@feeds_app.command("remove")
def feeds_remove(url: Annotated[str, typer.Argument(help="The feed's URL.")]) -> None:
    """Stop polling a feed added by 'feeds add' or 'feeds import' and hide it; its items and hits stay."""
    from monitor import store
    from monitor.db import session_scope

    ctx = open_context(now=utcnow())
    try:
        with session_scope(ctx.engine) as session:
            store.remove_feed(session, _cli_feed(session, url, state.get("config")), now=utcnow())
    finally:
        ctx.close()
    typer.echo(f"removed feed {url} (its items and hits are kept)")


def _pause(url: str, *, paused: bool) -> None:
    from monitor import store
    from monitor.db import session_scope

    ctx = open_context(now=utcnow())
    try:
        with session_scope(ctx.engine) as session:
            found = _cli_feed(session, url, state.get("config"))
            if found.paused == paused:
                typer.echo(f"feed {url} is already {'paused' if paused else 'active'}")
                return
            store.set_feed_paused(session, found, paused=paused, now=utcnow())
    finally:
        ctx.close()
    typer.echo(f"paused feed {url}" if paused else f"resumed feed {url}: polled at the next cycle")


@feeds_app.command("pause")
def feeds_pause(url: Annotated[str, typer.Argument(help="The feed's URL.")]) -> None:
    """Stop polling a feed added by 'feeds add' or 'feeds import' until 'feeds resume'."""
    _pause(url, paused=True)


@feeds_app.command("resume")
def feeds_resume(url: Annotated[str, typer.Argument(help="The feed's URL.")]) -> None:
    """Poll a paused feed again, from the next cycle."""
    _pause(url, paused=False)
