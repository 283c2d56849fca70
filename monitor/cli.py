"""The ``monitor`` command line (Typer). Thin: parse arguments, call pipeline/store, print.

Other tools drive these commands: output formats and exit codes are a contract
(docs/architecture.md). Exit 0 when the cycle ran, even if single feeds or
deliveries failed (they are reported); 2 for a bad config or watchlist; 1 when
the cycle itself could not run (database unreachable).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from monitor import store
from monitor.config import Settings, load_settings
from monitor.db import current_revision, head_revision, make_engine, redact_url, session_scope, upgrade
from monitor.domain import Document
from monitor.errors import ConfigError, DatabaseError, MonitorError, WatchlistError
from monitor.logs import setup_logging

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
app.add_typer(digest_app, name="digest")
app.add_typer(feeds_app, name="feeds")
app.add_typer(watchlists_app, name="watchlists")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(db_app, name="db")
web_app = typer.Typer(help="The web front door: pages, JSON API, unsubscribe links, Atom, /metrics.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the JSON API (stored hashed).")
app.add_typer(web_app, name="web")
app.add_typer(tokens_app, name="tokens")

_state: dict[str, Any] = {}


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"monitor: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings(_state.get("config"))
    except ConfigError as exc:
        _fail(str(exc), 2)


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
    _state["config"] = config
    _state["log_level"] = log_level


def _open(*, now: datetime, daemon: bool = False) -> Any:
    from monitor.pipeline import open_context

    setup_logging(_state.get("log_level") or ("INFO" if daemon else "WARNING"))
    settings = _settings()
    try:
        return open_context(settings, now=now)
    except DatabaseError as exc:
        _fail(str(exc), 1)
    except MonitorError as exc:
        _fail(str(exc), 2)


def _hits_line(hits: dict[str, int]) -> str:
    if not hits:
        return "no hits"
    return ", ".join(f"{name} {count}" for name, count in sorted(hits.items()))


@app.command()
def poll(
    once: Annotated[bool, typer.Option("--once", help="One poll cycle, then exit.")] = False,
    all_feeds: Annotated[bool, typer.Option("--all", help="Poll every active feed, due or not.")] = False,
) -> None:
    """Fetch due feeds, store new items, match them, store hits."""
    from monitor.pipeline import poll_cycle, utcnow

    if not once:
        _fail("use 'monitor poll --once' for one cycle, or 'monitor run' for the daemon", 2)
    ctx = _open(now=utcnow())
    try:
        summary = poll_cycle(ctx, now=utcnow(), all_feeds=all_feeds)
    finally:
        ctx.close()
    typer.echo(f"polled {summary.feeds_polled} feeds ({summary.feeds_failed} failed, "
               f"{summary.not_modified} unchanged): {summary.new_items} new items; "
               f"hits: {_hits_line(summary.hits)}")


@app.command()
def deliver(
    once: Annotated[bool, typer.Option("--once", help="Plan and send what is due now, then exit.")] = False,
    flush: Annotated[bool, typer.Option("--flush", help="Treat every digest as due now.")] = False,
) -> None:
    """Plan digests that are due and send every delivery whose attempt is due."""
    from monitor.pipeline import delivery_cycle, utcnow

    if not once:
        _fail("use 'monitor deliver --once' for one cycle, or 'monitor run' for the daemon", 2)
    ctx = _open(now=utcnow())
    summary = delivery_cycle(ctx, now=utcnow(), flush=flush)
    _print_delivery(summary)


def _print_delivery(summary: Any) -> None:
    if summary.planned == 0 and summary.sent == 0 and summary.failed == 0 and summary.dead == 0:
        typer.echo("nothing new to deliver: no digest written")
        return
    typer.echo(f"deliveries: {summary.planned} planned, {summary.sent} sent, {summary.failed} to retry, "
               f"{summary.dead} dead")
    for target in summary.targets:
        typer.echo(f"  sent: {target}")
    for error in summary.errors:
        typer.echo(f"  failed: {error}")


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One poll cycle (all feeds) and one delivery "
                                                      "cycle (digests flushed), then exit.")] = False,
) -> None:
    """The daemon: poll and deliver on schedule until SIGTERM/SIGINT."""
    from monitor.pipeline import delivery_cycle, poll_cycle, utcnow
    from monitor.scheduler import run_daemon

    ctx = _open(now=utcnow(), daemon=not once)
    if not once:
        run_daemon(ctx)
        return
    try:
        polled = poll_cycle(ctx, now=utcnow(), all_feeds=True)
    finally:
        ctx.close()
    typer.echo(f"feeds polled: {polled.feeds_polled} ({polled.feeds_failed} failed, "
               f"{polled.not_modified} unchanged)")
    typer.echo(f"new items: {polled.new_items}")
    typer.echo(f"hits: {_hits_line(polled.hits)}")
    for error in polled.errors:
        typer.echo(f"  feed error: {error}")
    delivered = delivery_cycle(ctx, now=utcnow(), flush=True)
    if delivered.planned == 0 and delivered.sent == 0:
        typer.echo("digests written: 0 (nothing new since the last run)")
    else:
        typer.echo(f"digests written: {delivered.sent} (planned {delivered.planned}, "
                   f"{delivered.failed} to retry, {delivered.dead} dead)")
        for target in delivered.targets:
            typer.echo(f"  {target}")
        for error in delivered.errors:
            typer.echo(f"  delivery error: {error}")


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


def _load_matcher(folder: Path) -> Any:
    from monitor.match import Matcher, load_watchlists

    result = load_watchlists(folder)
    for error in result.errors:
        typer.echo(f"monitor: watchlist error: {error}", err=True)
    if not result.watchlists:
        _fail(f"no valid watchlists in {folder}", 2)
    return result, Matcher.compile(result)


def _watchlists_dir(watchlists: Path | None) -> Path:
    if watchlists is not None:
        return watchlists
    return _settings().watchlists_dir


@app.command()
def match(
    file: Annotated[Path | None, typer.Argument(help="JSON Lines file (default: standard input).")] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w",
                                                     help="Watchlist folder (default: the config's).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Readable evidence instead of JSON.")] = False,
) -> None:
    """Match JSON Lines items ({id, title, summary, content?, published?, link?}); no database needed."""
    from monitor.ingest.normalize import html_to_text
    from monitor.match import explain as explain_match

    _result, matcher = _load_matcher(_watchlists_dir(watchlists))
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
    if format not in ("jsonl", "table"):
        _fail("--format must be jsonl or table", 2)
    settings = _settings()
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    with session_scope(engine) as session:
        rows = store.list_hits(session, watchlist=watchlist, limit=limit)
    for hit in rows:
        if format == "jsonl":
            typer.echo(json.dumps({
                "hit_id": hit.hit_id, "item_id": hit.item_id, "watchlist": hit.watchlist, "score": hit.score,
                "title": hit.title, "link": hit.link,
                "published": hit.published_at.isoformat() if hit.published_at else None,
                "feed": hit.feed_name or hit.feed_url, "feed_url": hit.feed_url,
                "created_at": hit.created_at.isoformat(), "evidence": hit.evidence,
            }, ensure_ascii=False))
        else:
            when = hit.published_at.strftime("%Y-%m-%d %H:%M") if hit.published_at else "—"
            typer.echo(f"{hit.hit_id:>6}  {hit.watchlist:<18} {hit.score:5.2f}  {when}  {hit.title[:70]}")


def _require_schema(engine: Any) -> None:
    try:
        revision = current_revision(engine)
    except DatabaseError as exc:
        _fail(str(exc), 1)
    if revision is None:
        _fail(f"the database {redact_url(engine.url)} has no schema yet; run 'monitor db upgrade' "
              "or any poll/deliver/run command", 1)


@feeds_app.command("list")
def feeds_list(
    format: Annotated[str, typer.Option("--format", "-f", help="table or jsonl.")] = "table",
) -> None:
    """Feeds with their poll state: status, errors, next poll."""
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    now = utcnow()
    with session_scope(ctx.engine) as session:
        rows = store.list_feeds(session)
    for row in rows:
        problem = store.feed_problem(row, now=now, failing_for=ctx.settings.source_problem_after)
        record = {
            "id": row.id, "url": row.url, "name": row.name, "category": row.category, "origin": row.origin,
            "active": row.active, "last_status": row.last_status, "last_error": row.last_error,
            "error_count": row.error_count, "problem": problem,
            "last_polled_at": row.last_polled_at.isoformat() if row.last_polled_at else None,
            "next_poll_at": row.next_poll_at.isoformat() if row.next_poll_at else None,
            "last_entry_at": row.last_entry_at.isoformat() if row.last_entry_at else None,
            "moved_to": row.moved_to,
        }
        if format == "jsonl":
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            state = "off" if not row.active else ("ERR" if row.error_count else "ok")
            typer.echo(f"{row.id:>4} {state:<3} {row.last_status or '-':>4} errors={row.error_count} "
                       f"next={record['next_poll_at'] or '-'}  {row.url}")
            if problem:
                typer.echo(f"       problem: {problem}")
            elif row.last_error:
                typer.echo(f"       last error: {row.last_error}")
            if row.moved_to:
                typer.echo(f"       moved permanently to {row.moved_to} (since {row.moved_since:%Y-%m-%d})")


@feeds_app.command("import")
def feeds_import(
    file: Annotated[Path, typer.Argument(help="An OPML file.")],
) -> None:
    """Add the feeds of an OPML file (titles and categories kept); URLs already known are skipped."""
    from monitor.ingest.fetch import FetchPolicy, check_url
    from monitor.opml import parse_opml
    from monitor.pipeline import utcnow

    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"{file}: cannot read: {exc.strerror}", 2)
    try:
        feeds = parse_opml(data, source=str(file))
    except ConfigError as exc:
        _fail(str(exc), 2)
    ctx = _open(now=utcnow())
    # Imported URLs are user input: only http(s), and the network guard applies when they are polled.
    policy = FetchPolicy(allow_private_networks=ctx.settings.allow_private_networks)
    accepted, refused = [], []
    for feed in feeds:
        try:
            check_url(feed.url, policy)
        except MonitorError as exc:
            refused.append(f"{feed.url}: {exc}")
            continue
        accepted.append((feed.url, feed.title, feed.category))
    with session_scope(ctx.engine) as session:
        added = store.add_imported_feeds(session, accepted, now=utcnow(), interval=ctx.settings.poll_interval,
                                         alert_window=ctx.settings.new_feed_alert_window)
    for line in refused:
        typer.echo(f"  skipped {line}", err=True)
    typer.echo(f"imported {added} feeds ({len(accepted) - added} already known, {len(refused)} refused) from {file}")


@feeds_app.command("export")
def feeds_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write every active feed as OPML 2.0 (titles and categories)."""
    from monitor.opml import OpmlFeed, export_opml
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    with session_scope(ctx.engine) as session:
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
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    with session_scope(ctx.engine) as session:
        count = store.reset_feeds(session, now=utcnow(), url=url)
    if url is not None and count == 0:
        _fail(f"no feed with URL {url}", 1)
    typer.echo(f"reset {count} feeds")


@watchlists_app.command("validate")
def watchlists_validate(
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
) -> None:
    """Check every watchlist file; print each problem with file and line."""
    from monitor.match import load_watchlists

    folder = _watchlists_dir(watchlists)
    result = load_watchlists(folder)
    for error in result.errors:
        typer.echo(str(error), err=True)
    typer.echo(f"{len(result.watchlists)} valid watchlists, {len(result.errors)} problems in {folder}")
    if result.errors:
        raise typer.Exit(2)


@watchlists_app.command("test")
def watchlists_test(
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
) -> None:
    """Run the positive and negative examples written in each watchlist."""
    from monitor.match import run_examples

    result, matcher = _load_matcher(_watchlists_dir(watchlists))
    failures = run_examples(result, matcher)
    for failure in failures:
        typer.echo(f"FAIL {failure}", err=True)
    typer.echo(f"{len(result.watchlists)} watchlists, {len(failures)} failing examples")
    if failures or result.errors:
        raise typer.Exit(1)


@watchlists_app.command("backtest")
def watchlists_backtest(
    name: Annotated[str, typer.Argument(help="The watchlist to try (as it is now in the folder).")],
    since: Annotated[str | None, typer.Option(help="Only items fetched since YYYY-MM-DD.")] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
    samples: Annotated[int, typer.Option(help="Sample hits to show with their evidence.")] = 5,
) -> None:
    """Run a new or edited watchlist over stored items: hits per feed and day, samples, changes. Sends nothing."""
    from collections import Counter

    from monitor.match import explain as explain_match

    settings = _settings()
    result, matcher = _load_matcher(_watchlists_dir(watchlists))
    if name not in matcher.watchlist_names:
        _fail(f"no valid watchlist named {name!r} in {_watchlists_dir(watchlists)}", 2)
    version = next(w.version for w in result.watchlists if w.name == name)
    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    except ValueError:
        _fail(f"--since {since!r}: write a date as YYYY-MM-DD", 2)
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    per_feed: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    shown: list[str] = []
    would: set[int] = set()
    titles: dict[int, str] = {}
    scanned = 0
    with session_scope(engine) as session:
        stored = store.stored_hit_items(session, name, since=start)
        for item in store.iter_items(session, since=start):
            scanned += 1
            doc = Document(title=item.title, summary=item.summary, content=item.content, published=item.published_at)
            when = item.published_at or item.fetched_at
            matches = [m for m in matcher.match(doc, on=when.date() if when else None) if m.watchlist == name]
            if not matches:
                if item.id in stored:
                    titles[item.id] = item.title
                continue
            would.add(item.id)
            titles[item.id] = item.title
            per_feed[item.feed] += 1
            per_day[(when or datetime.now(UTC)).strftime("%Y-%m-%d")] += 1
            if len(shown) < samples:
                shown.append(f"{item.title[:100]}\n    {item.link or ''}\n    "
                             + explain_match(matches[0]).replace("\n", "\n    "))
    new, gone = sorted(would - stored.keys()), sorted(stored.keys() - would)
    previous = sorted(set(stored.values()) - {version})
    typer.echo(f"backtest of {name} version {version} over {scanned} stored items"
               + (f" since {since}" if since else "") + f": {len(would)} hits")
    typer.echo("hits per feed:")
    for feed, count in per_feed.most_common(20):
        typer.echo(f"  {count:>6}  {feed}")
    typer.echo("hits per day:")
    for day, count in sorted(per_day.items())[-31:]:
        typer.echo(f"  {day}  {count}")
    typer.echo(f"against the stored hits ({len(stored)}, versions {', '.join(sorted(set(stored.values()))) or '-'}"
               f"{'; previous: ' + ', '.join(previous) if previous else ''}): {len(new)} new, {len(gone)} no longer")
    for item_id in new[:samples]:
        typer.echo(f"  + {titles.get(item_id, item_id)}")
    for item_id in gone[:samples]:
        typer.echo(f"  - {titles.get(item_id, item_id)}")
    if shown:
        typer.echo("sample hits:")
        for line in shown:
            typer.echo(f"  {line}")


@app.command()
def anniversaries(
    upcoming: Annotated[str, typer.Option("--upcoming", help="Window, e.g. 90d.")] = "90d",
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w", help="Watchlist folder.")] = None,
    today: Annotated[str | None, typer.Option(help="Reference date YYYY-MM-DD (default: today).")] = None,
) -> None:
    """Round-number anniversaries (5, 10, 15 … years) coming up in the reference calendar."""
    from monitor.config import parse_duration
    from monitor.match import load_watchlists
    from monitor.match.anniversaries import upcoming as upcoming_events

    try:
        days = max(1, parse_duration(upcoming) // 86400)
        start = date.fromisoformat(today) if today else datetime.now(UTC).date()
    except ValueError as exc:
        _fail(str(exc), 2)
    result = load_watchlists(_watchlists_dir(watchlists))
    for error in result.errors:
        typer.echo(f"monitor: watchlist error: {error}", err=True)
    rows = upcoming_events(result.calendar, start, days)
    if not rows:
        typer.echo(f"no round-number anniversaries between {start} and {start + timedelta(days=days)}")
    for row in rows:
        typer.echo(f"{row.date.isoformat()}  {row.years:>3} years  {row.name}  [{'–'.join(row.parties)}]")


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[str | None, typer.Option(help="pending, sent or dead.")] = None,
) -> None:
    """Deliveries with attempts, last error and next attempt."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    with session_scope(engine) as session:
        rows = store.list_deliveries(session, status=status)
    for d in rows:
        nxt = d.next_attempt_at.isoformat() if d.next_attempt_at and d.status == "pending" else "-"
        typer.echo(f"{d.id:>5} {d.status:<7} {d.transport:<7} attempts={d.attempts} hits={d.hit_count} "
                   f"next={nxt} {d.key}")
        if d.last_error:
            typer.echo(f"      last error: {d.last_error}")


@deliveries_app.command("retry")
def deliveries_retry(
    delivery_id: Annotated[int | None, typer.Argument(help="A delivery id from 'deliveries list'.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
) -> None:
    """Queue a dead or failing delivery again, due now (same payload and idempotency key)."""
    from monitor.pipeline import utcnow

    if (delivery_id is None) == (not all_dead):
        _fail("give a delivery id or --all-dead", 2)
    settings = _settings()
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    with session_scope(engine) as session:
        count = store.retry_deliveries(session, now=utcnow(), delivery_id=delivery_id)
    if delivery_id is not None and count == 0:
        _fail(f"no unsent delivery with id {delivery_id}", 1)
    typer.echo(f"queued {count} deliveries; they go out at the next delivery cycle")


@digest_app.command("preview")
def digest_preview(
    subscription: Annotated[str, typer.Argument(help="The subscription's name.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML body to this file.")] = None,
) -> None:
    """Render what the subscription's next message would contain; sends and records nothing."""
    from monitor.deliver.chat import render_chat
    from monitor.deliver.render import render_email, render_webhook
    from monitor.pipeline import MAX_HITS_PER_PLAN, build_subscription_digest, utcnow, watchlist_titles

    ctx = _open(now=utcnow())
    try:
        cfg = ctx.settings.subscription(subscription)
    except ConfigError as exc:
        _fail(str(exc), 2)
    now = utcnow()
    with session_scope(ctx.engine) as session:
        row = store.get_subscriptions(session)[cfg.name]
        assert row.id is not None
        hits = store.undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                      limit=MAX_HITS_PER_PLAN, min_score=cfg.min_score)
        digest = build_subscription_digest(session, ctx, cfg, hits, watchlist_titles(ctx), now=now)
        session.rollback()
    if not hits:
        typer.echo(f"nothing to send to {cfg.name}: no undelivered hits")
        return
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
) -> None:
    """Workers' heartbeats, feeds due, deliveries pending/dead; exit 1 when unhealthy (for health checks)."""
    from monitor.pipeline import utcnow

    settings = _settings()
    now = utcnow()
    engine = make_engine(settings.database_url)
    problems: list[str] = []
    report: dict[str, Any] = {"database": redact_url(engine.url)}
    try:
        revision, head = current_revision(engine), head_revision()
    except DatabaseError as exc:
        _fail(f"unhealthy: {exc}", 1)
    report["revision"] = revision
    if revision != head:
        problems.append(f"database at revision {revision or '(empty)'}, code needs {head} (run 'monitor db upgrade')")
    else:
        with session_scope(engine) as session:
            workers = store.list_workers(session)
            counts = store.health_counts(session, now=now, overdue_after=max(max_age, 600))
        report["workers"] = [
            {"owner": w.owner, "hostname": w.hostname, "pid": w.pid,
             "started_at": w.started_at.isoformat() if w.started_at else None,
             "heartbeat_age_s": round((now - w.heartbeat_at).total_seconds()) if w.heartbeat_at else None,
             "alive": bool(w.heartbeat_at and (now - w.heartbeat_at).total_seconds() <= max_age),
             "last": json.loads(w.info)}
            for w in workers
        ]
        report.update(counts)
        import socket

        mine = [w for w in report["workers"] if not this_host or w["hostname"] == socket.gethostname()]
        if not any(w["alive"] for w in mine):
            where = " on this host" if this_host else ""
            problems.append(f"no worker{where} has sent a heartbeat in the last {max_age} s")
    report["healthy"] = not problems
    report["problems"] = problems
    if format == "json":
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        typer.echo(f"database: {report['database']} at revision {revision or '(empty)'}")
        for w in report.get("workers", []):
            state = "alive" if w["alive"] else "stale"
            typer.echo(f"worker {w['owner']}: {state}, last heartbeat {w['heartbeat_age_s']} s ago")
        if "feeds_active" in report:
            typer.echo(f"feeds: {report['feeds_active']} active, {report['feeds_overdue']} overdue, "
                       f"{report['feeds_failing']} failing")
            typer.echo(f"deliveries: {report['deliveries_pending']} pending "
                       f"({report['deliveries_retrying']} retrying), {report['deliveries_dead']} dead")
        typer.echo("healthy" if not problems else "unhealthy: " + "; ".join(problems))
    if problems:
        raise typer.Exit(1)


@app.command()
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go.")] = False,
) -> None:
    """Apply the retention settings now (the daemon does it daily)."""
    from monitor.pipeline import prune_cycle, utcnow

    ctx = _open(now=utcnow())
    counts = prune_cycle(ctx, now=utcnow(), dry_run=dry_run)
    verb = "would prune" if dry_run else "pruned"
    typer.echo(f"{verb}: " + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")
    except DatabaseError as exc:
        _fail(str(exc), 1)


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and the code's."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        typer.echo(f"database: {current_revision(engine) or '(empty)'}; code: {head_revision()}")
    except DatabaseError as exc:
        _fail(str(exc), 1)


def _schema_engine() -> Any:
    """The engine of a database at the code's revision (a SQLite file is upgraded in place)."""
    settings = _settings()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    try:
        if engine.dialect.name == "sqlite":
            upgrade(engine)
        elif current_revision(engine) != head_revision():
            _fail(f"the database {redact_url(engine.url)} is not at the code's revision: run 'monitor db upgrade'", 1)
    except DatabaseError as exc:
        _fail(str(exc), 1)
    return engine


@web_app.callback(invoke_without_command=True)
def web(
    context: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default: put a TLS proxy in front).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the web front door (operator pages, /api/v1, unsubscribe links, Atom, /healthz, /metrics)."""
    if context.invoked_subcommand is not None:
        return
    import os

    import uvicorn

    from monitor.web.app import create_app

    setup_logging(_state.get("log_level") or "INFO")
    engine = _schema_engine()
    typer.echo(f"monitor web on http://{host}:{port}/ ({redact_url(engine.url)})", err=True)
    uvicorn.run(create_app(_settings(), engine), host=host, port=port, log_config=None, access_log=False,
                server_header=False, proxy_headers=True,
                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))


@web_app.command("passwd")
def web_passwd(
    name: Annotated[str, typer.Argument(help="The operator's login name.")] = "admin",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard "
                                                                         "input instead of prompting.")] = False,
) -> None:
    """Create an operator or change an operator's password (stored as an argon2 hash)."""
    from monitor import operations
    from monitor.pipeline import utcnow

    password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                else typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    engine = _schema_engine()
    try:
        with session_scope(engine) as session:
            operations.set_operator_password(session, name, password, now=utcnow())
    except operations.OperationError as exc:
        _fail(str(exc), 2)
    typer.echo(f"operator {name} can log in")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. grafana.")],
    read_only: Annotated[bool, typer.Option("--read-only", help="May read, never change anything.")] = False,
) -> None:
    """Create an API token and print it once; only its hash is stored."""
    from monitor import operations
    from monitor.pipeline import utcnow

    engine = _schema_engine()
    try:
        with session_scope(engine) as session:
            token = operations.create_api_token(session, name, read_only=read_only, now=utcnow())
    except operations.OperationError as exc:
        _fail(str(exc), 2)
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """API tokens by name (the tokens themselves are not stored)."""
    from monitor import operations

    engine = _schema_engine()
    with session_scope(engine) as session:
        rows = operations.list_api_tokens(session)
    for row in rows:
        created = row.created_at.strftime("%Y-%m-%d") if row.created_at else "-"
        typer.echo(f"{row.name:<24} {'read-only' if row.read_only else 'read-write':<10} created {created}")


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke an API token: calls with it are refused from now on."""
    from monitor import operations

    engine = _schema_engine()
    try:
        with session_scope(engine) as session:
            operations.revoke_api_token(session, name)
    except operations.OperationError as exc:
        _fail(str(exc), 1)
    typer.echo(f"revoked {name}")


def main() -> None:
    try:
        app()
    except WatchlistError as exc:
        _fail(str(exc), 2)
    except ConfigError as exc:
        _fail(str(exc), 2)
