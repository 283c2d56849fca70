"""Reading and re-working what is stored: ``hits``, ``status``, ``match``, ``anniversaries``,
``digest preview``, ``rematch`` and ``prune``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli.common import (
    app,
    digest_app,
    fail,
    hits_line,
    load_matcher,
    open_context,
    parse_day,
    require_schema,
    row,
    settings,
    show,
    table,
    utcnow,
    watchlists_dir,
    when,
)
from monitor.errors import ConfigError, DatabaseError


def _read_jsonl(path: Path | None) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    stream = sys.stdin if path is None or str(path) == "-" else path.open(encoding="utf-8")
    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"line {number}: not JSON: {exc.msg}"
                continue
            if not isinstance(value, dict):
                yield number, None, f"line {number}: expected a JSON object"
                continue
            yield number, value, None
    finally:
        if stream is not sys.stdin:
            stream.close()


def _parse_published(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@app.command()
def match(
    file: Annotated[Path | None, typer.Argument(help="JSON Lines file (default: standard input).")] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w",
                                                     help="Watchlist folder (default: the config's).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Readable evidence instead of JSON.")] = False,
) -> None:
    """Match JSON Lines items ({id, title, summary, content?, published?, link?}); no database needed."""
    from monitor.domain import Document
    from monitor.ingest.normalize import html_to_text
    from monitor.match import explain as explain_match

    _result, matcher = load_matcher(watchlists_dir(watchlists))
    out = sys.stdout
    bad = 0
    for _number, value, error in _read_jsonl(file):
        if value is None:
            bad += 1
            typer.echo(f"monitor: {error}", err=True)
            continue
        published = _parse_published(value.get("published"))
        doc = Document(
            title=html_to_text(str(value.get("title") or "")),
            summary=html_to_text(str(value.get("summary") or "")),
            content=html_to_text(str(value.get("content") or "")),
            published=published,
        )
        # Without a date the ordinal cannot be checked against the year; say so (ordinal_ok null).
        matches = matcher.match(doc, on=published.date() if published else None)
        if explain:
            out.write(f"{value.get('id')}: {doc.title[:100]}\n")
            if not matches:
                out.write("  no match\n")
            for m in matches:
                out.write("  " + explain_match(m).replace("\n", "\n  ") + "\n")
            continue
        record = {"id": value.get("id"), "matches": [m.to_json() for m in matches]}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    if bad:
        raise typer.Exit(1)


@app.command()
def hits(
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or table.")] = "table",
    watchlist: Annotated[str | None, typer.Option(help="Only this watchlist.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
) -> None:
    """Stored hits."""
    from monitor import store
    from monitor.db import make_engine, read_scope

    if format not in ("jsonl", "table"):
        fail("--format must be jsonl or table", 2)
    current = settings()
    engine = make_engine(current.database_url)
    require_schema(engine)
    with read_scope(engine) as session:
        if watchlist is not None:
            from monitor.match import load_watchlists

            # A list removed from the folder still has its stored hits; any other name is a typo.
            known = {w.name for w in load_watchlists(current.watchlists_dir).watchlists}
            known |= store.known_hit_watchlists(session)
            if watchlist not in known:
                fail(f"--watchlist {watchlist!r}: no such watchlist; the watchlists are: "
                     f"{', '.join(sorted(known)) or '(none)'}", 2)
        rows = store.list_hits(session, watchlist=watchlist, limit=limit)
    if format == "jsonl":
        for hit in rows:
            typer.echo(json.dumps({
                "hit_id": hit.hit_id, "item_id": hit.item_id, "watchlist": hit.watchlist, "score": hit.score,
                "title": hit.title, "link": hit.link,
                "published": hit.published_at.isoformat() if hit.published_at else None,
                "feed": hit.feed_name or hit.feed_url, "feed_url": hit.feed_url,
                "created_at": hit.created_at.isoformat(), "evidence": hit.evidence,
            }, ensure_ascii=False))
        return
    if not rows:
        return
    grid = table("id", "watchlist", "score", "published", "feed", "title", right=("id", "score"))
    for hit in rows:
        row(grid, hit.hit_id, hit.watchlist, f"{hit.score:.2f}", when(hit.published_at, empty="—"),
            hit.feed_name or hit.feed_url, hit.title[:100])
    show(grid)


@app.command()
def anniversaries(
    upcoming: Annotated[str, typer.Option("--upcoming", help="Window in days or weeks, e.g. 90d or 12w.")] = "90d",
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
    today: Annotated[str | None, typer.Option(help="Reference date YYYY-MM-DD (default: today).")] = None,
) -> None:
    """Round-number anniversaries (5, 10, 15 … years) coming up in the reference calendar."""
    from monitor.match import load_watchlists
    from monitor.match.anniversaries import upcoming as upcoming_events

    days = _window_days(upcoming)
    try:
        start = date.fromisoformat(today) if today else datetime.now(UTC).date()
    except ValueError:
        fail(f"--today {today!r}: write a date as YYYY-MM-DD", 2)
    result = load_watchlists(watchlists_dir(watchlists))
    for error in result.errors:
        typer.echo(f"monitor: watchlist error: {error}", err=True)
    rows = upcoming_events(result.calendar, start, days)
    if not rows:
        typer.echo(f"no round-number anniversaries between {start} and {start + timedelta(days=days)}")
    for event in rows:
        typer.echo(f"{event.date.isoformat()}  {event.years:>3} years  {event.name}  [{'–'.join(event.parties)}]")


def _window_days(text: str) -> int:
    """``90d``, ``12w`` or ``90`` (days) → days. Anything else, ``3m`` included (minutes? months?), is refused."""
    import re

    found = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if found is None:
        fail(f"--upcoming {text!r}: write the window in days or weeks, e.g. 90d or 12w "
             "(m and h are not calendar units here)", 2)
    days = int(found.group(1)) * (7 if found.group(2) == "w" else 1)
    if not 1 <= days <= 3660:
        fail(f"--upcoming {text!r}: the window must be between 1 day and 10 years", 2)
    return days


@digest_app.command("preview")
def digest_preview(
    subscription: Annotated[str, typer.Argument(help="The subscription's name.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML body to this file.")] = None,
) -> None:
    """Render what the subscription's next message would contain; sends and records nothing."""
    from monitor import store
    from monitor.db import session_scope
    from monitor.deliver.chat import render_chat
    from monitor.deliver.render import render_email, render_webhook
    from monitor.pipeline import MAX_HITS_PER_PLAN, build_subscription_digest, example_for, watchlist_titles

    ctx = open_context(now=utcnow())
    try:
        cfg = ctx.settings.subscription(subscription)
    except ConfigError as exc:
        fail(str(exc), 2)
    now = utcnow()
    with session_scope(ctx.engine) as session:
        subscribed = store.get_subscriptions(session)[cfg.name]
        assert subscribed.id is not None
        pending = store.undelivered_hits(session, subscribed.id, cfg.watchlists, since=subscribed.created_at or now,
                                         limit=MAX_HITS_PER_PLAN, min_score=cfg.min_score)
        digest = build_subscription_digest(session, ctx, cfg, pending, watchlist_titles(ctx), now=now)
        session.rollback()
    if not pending:
        typer.echo(f"nothing pending for {cfg.name}: no undelivered hits. An example of its messages follows "
                   "(made-up entries, nothing is sent):\n")
        digest = example_for(ctx, cfg, now=now, test=False)
    if cfg.webhook is not None:
        bodies = ([render_webhook(digest, delivery_key="msg_preview")] if cfg.webhook.format == "json"
                  else render_chat(digest, cfg.webhook.format, delivery_key="msg_preview"))
        for body in bodies:
            typer.echo(body.decode("utf-8"))
        return
    rendered = render_email(digest)
    typer.echo(f"Subject: {rendered.subject}\n")
    typer.echo(rendered.text)
    if html is not None:
        html.write_text(rendered.html, encoding="utf-8")
        typer.echo(f"HTML written to {html}")


@app.command()
def status(
    max_age: Annotated[int, typer.Option(help="A worker is alive if its heartbeat is younger (seconds).")] = 120,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    this_host: Annotated[bool, typer.Option("--this-host", help="Healthy only if a worker on this host is alive "
                                                              "(a container's own health check).")] = False,
    stuck_after: Annotated[int, typer.Option(help="Unhealthy when a worker's poll or delivery cycle has been running "
                                                  "longer than this (seconds).")] = 900,
) -> None:
    """Workers' heartbeats, feeds due, deliveries pending/dead; exit 1 when unhealthy (for health checks)."""
    from monitor.db import make_engine
    from monitor.operations.health import health_report

    engine = make_engine(settings().database_url)
    try:
        health = health_report(engine, now=utcnow(), max_age=max_age, this_host=this_host, stuck_after=stuck_after)
    except DatabaseError as exc:
        fail(f"unhealthy: {exc}", 1)
    report = health.report
    if format == "json":
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        typer.echo(f"database: {report['database']} at revision {report['revision'] or '(empty)'}")
        if report.get("workers"):
            grid = table("worker", "host", "pid", "state", "last heartbeat", right=("pid",))
            for w in report["workers"]:
                age = w["heartbeat_age_s"]
                row(grid, w["owner"], w["hostname"] or "-", w["pid"] or "-", "alive" if w["alive"] else "stale",
                    "-" if age is None else f"{age} s ago")
            show(grid)
        if "feeds_active" in report:
            typer.echo(f"feeds: {report['feeds_active']} active, {report['feeds_overdue']} overdue, "
                       f"{report['feeds_failing']} failing")
            typer.echo(f"deliveries: {report['deliveries_pending']} pending "
                       f"({report['deliveries_retrying']} retrying), {report['deliveries_dead']} dead")
        typer.echo("healthy" if health.healthy else "unhealthy: " + "; ".join(health.problems))
    if not health.healthy:
        raise typer.Exit(1)


@app.command()
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go.")] = False,
) -> None:
    """Apply the retention settings now (the daemon does it daily)."""
    from monitor.pipeline import prune_cycle

    ctx = open_context(now=utcnow())
    counts = prune_cycle(ctx, now=utcnow(), dry_run=dry_run)
    verb = "would prune" if dry_run else "pruned"
    typer.echo(f"{verb}: " + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items()))



@app.command()
def rematch(
    since: Annotated[str | None, typer.Option(help="Items fetched since YYYY-MM-DD (default: the alert "
                                                   "window, new_feed_alert_window).")] = None,
    watchlist: Annotated[str | None, typer.Option(help="Only this watchlist (default: all).")] = None,
) -> None:
    """Match stored items against the watchlists as they are now; new hits go out at the next delivery.

    Hits already stored are kept and never sent twice.
    """
    from monitor.pipeline import rematch_stored

    now = utcnow()
    start = parse_day("--since", since)
    ctx = open_context(now=now, one_shot=True)
    try:
        names = sorted(ctx.watchlists.versions)
        if watchlist is not None and watchlist not in names:
            fail(f"--watchlist {watchlist!r}: no such watchlist; the watchlists are: {', '.join(names)}", 2)
        start = start or now - timedelta(seconds=ctx.settings.new_feed_alert_window)
        result = rematch_stored(ctx, now=now, since=start, names=[watchlist] if watchlist else None, force=True)
    finally:
        ctx.close()
    lists = watchlist or ", ".join(names)
    typer.echo(f"matched {result.items} stored items fetched since {start:%Y-%m-%d %H:%M} UTC against {lists}: "
               f"{sum(result.hits.values())} new hits" + (f" ({hits_line(result.hits)})" if result.hits else ""))
