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
from monitor.db import current_revision, head_revision, make_engine, read_scope, redact_url, session_scope, upgrade
from monitor.domain import Document
from monitor.errors import ConfigError, DatabaseError, MonitorError, WatchlistError
from monitor.logs import setup_logging
from monitor.redact import redact


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
app.add_typer(digest_app, name="digest")
app.add_typer(notify_app, name="notify")
app.add_typer(feeds_app, name="feeds")
app.add_typer(watchlists_app, name="watchlists")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(db_app, name="db")
web_app = typer.Typer(help="The web front door: pages, JSON API, unsubscribe links, Atom, /metrics.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the JSON API (stored hashed).")
app.add_typer(web_app, name="web")
app.add_typer(tokens_app, name="tokens")

_state: dict[str, Any] = {}
DELIVERY_STATUSES = ("pending", "sent", "dead")


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


def _open(*, now: datetime, daemon: bool = False, one_shot: bool = False, secrets: bool = False) -> Any:
    """The pipeline context. ``one_shot``: refuse to run with a broken or missing watchlist (the daemon
    runs on and keeps the last good version); ``secrets``: read the delivery secrets now."""
    from monitor.pipeline import open_context

    setup_logging(_state.get("log_level") or ("INFO" if daemon else "WARNING"))
    settings = _settings()
    if secrets:
        try:
            settings.check_secrets()
        except ConfigError as exc:
            _fail(str(exc), 2)
    try:
        ctx = open_context(settings, now=now)
    except DatabaseError as exc:
        _fail(str(exc), 1)
    except MonitorError as exc:
        _fail(str(exc), 2)
    result = ctx.watchlists.result
    if one_shot and (result is None or result.errors):
        ctx.close()
        for error in result.errors if result is not None else []:
            typer.echo(f"monitor: watchlist error: {error}", err=True)
        _fail(f"the watchlists in {settings.watchlists_dir} have errors; fix them "
              "('monitor watchlists validate' lists them) and run again", 2)
    return ctx


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
    ctx = _open(now=utcnow(), one_shot=True)
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
    ctx = _open(now=utcnow(), one_shot=True, secrets=True)
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

    ctx = _open(now=utcnow(), daemon=not once, one_shot=once, secrets=True)
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
    from monitor.match import load_watchlists

    if format not in ("jsonl", "table"):
        _fail("--format must be jsonl or table", 2)
    settings = _settings()
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    with read_scope(engine) as session:
        if watchlist is not None:
            # A list removed from the folder still has its stored hits; any other name is a typo.
            known = {w.name for w in load_watchlists(settings.watchlists_dir).watchlists}
            known |= store.known_hit_watchlists(session)
            if watchlist not in known:
                _fail(f"--watchlist {watchlist!r}: no such watchlist; the watchlists are: "
                      f"{', '.join(sorted(known)) or '(none)'}", 2)
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
    with read_scope(ctx.engine) as session:
        rows = store.list_feeds(session)
    for row in rows:
        problem = store.feed_problem(row, now=now, failing_for=ctx.settings.source_problem_after)
        # URLs can carry credentials (userinfo, ?api_key=): listings show them redacted; `feeds export` keeps them.
        record = {
            "id": row.id, "url": redact(row.url), "name": row.name, "category": row.category,
            "origin": row.origin, "active": row.active, "paused": row.paused, "last_status": row.last_status,
            "last_error": redact(row.last_error) if row.last_error else None,
            "error_count": row.error_count, "problem": redact(problem) if problem else None,
            "last_polled_at": row.last_polled_at.isoformat() if row.last_polled_at else None,
            "next_poll_at": row.next_poll_at.isoformat() if row.next_poll_at else None,
            "last_entry_at": row.last_entry_at.isoformat() if row.last_entry_at else None,
            "moved_to": redact(row.moved_to) if row.moved_to else None,
        }
        if format == "jsonl":
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            state = "paused" if row.paused else "off" if not row.active else ("ERR" if row.error_count else "ok")
            typer.echo(f"{row.id:>4} {state:<3} {row.last_status or '-':>4} errors={row.error_count} "
                       f"next={record['next_poll_at'] or '-'}  {record['url']}")
            if problem:
                typer.echo(f"       problem: {record['problem']}")
            elif row.last_error:
                typer.echo(f"       last error: {record['last_error']}")
            if row.moved_to:
                typer.echo(f"       moved permanently to {record['moved_to']} (since {row.moved_since:%Y-%m-%d})")


@feeds_app.command("import")
def feeds_import(
    file: Annotated[Path, typer.Argument(help="An OPML file.")],
) -> None:
    """Add the feeds of an OPML file (titles and categories kept); URLs already known are skipped."""
    from monitor.ingest.fetch import FetchPolicy, check_url
    from monitor.opml import read_opml
    from monitor.pipeline import utcnow

    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"{file}: cannot read: {exc.strerror}", 2)
    try:
        document = read_opml(data, source=str(file))
    except ConfigError as exc:
        _fail(str(exc), 2)
    feeds = document.feeds
    ctx = _open(now=utcnow())
    # Imported URLs are user input: only http(s), checked by the same guard (and allowances) as polling.
    policy = FetchPolicy.from_settings(ctx.settings, allow_file_urls=False)
    accepted: list[tuple[str, str | None, str | None]] = []
    refused = [f"{url}: {reason}" for url, reason in document.refused]
    for feed in feeds:
        try:
            check_url(feed.url, policy)
        except MonitorError as exc:
            refused.append(str(exc))  # names the URL, redacted
            continue
        accepted.append((feed.url, feed.title, feed.category))
    with session_scope(ctx.engine) as session:
        added = store.add_imported_feeds(session, accepted, now=utcnow(), interval=ctx.settings.poll_interval,
                                         alert_window=ctx.settings.new_feed_alert_window)
    if refused:
        typer.echo(f"monitor: {file}: refused {len(refused)} "
                   f"{'entry' if len(refused) == 1 else 'entries'}:", err=True)
    for line in refused:
        typer.echo(f"  refused {line}", err=True)
    typer.echo(f"imported {added} feeds ({len(accepted) - added} already known, {len(refused)} refused) from {file}")


@feeds_app.command("export")
def feeds_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write every active feed as OPML 2.0 (titles and categories)."""
    from monitor.opml import OpmlFeed, export_opml
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    with read_scope(ctx.engine) as session:
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


@watchlists_app.command("draft")
def watchlists_draft(
    folder: Annotated[Path, typer.Argument(help="Folder of documents (.txt, .md, .html, .pdf) to draft from.")],
    name: Annotated[str, typer.Option("--name", help="Name of the draft watchlist (lower_snake_case).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the draft (a NAME folder inside it).")] = Path(
        "drafts"),
    sides: Annotated[str | None, typer.Option(help="The parties as sides, comma-separated, the first required "
                                                   "by every rule (default: the sides the documents name most).")
                     ] = None,
    watchlists: Annotated[Path | None, typer.Option("--watchlists", "-w",
                                                    help="Watchlist folder whose actors and calendar to reuse.")]
    = None,
) -> None:
    """Draft a watchlist from documents: YAML, actors, calendar entries and a report. Never activates it."""
    from monitor.draft import DraftError, make_draft, read_folder, write_draft

    if not folder.is_dir():
        _fail(f"{folder} is not a folder of documents", 2)
    read = read_folder(folder)
    for problem in read.problems:
        typer.echo(f"monitor: {problem}", err=True)
    try:
        draft = make_draft(read.sources, _watchlists_dir(watchlists), name,
                           sides=[s.strip() for s in sides.split(",") if s.strip()] if sides else None)
    except DraftError as exc:
        _fail(str(exc), 2)
    files = write_draft(draft, out, read.problems, read.sources)
    caught = len(draft.caught) - len(draft.missed)
    typer.echo(f"draft {name}: parties {', '.join(draft.parties)}; {len(draft.families)} event cues, "
               f"{len(draft.new_actors)} new actors, {sum(e.new for e in draft.events)} new calendar entries; "
               f"catches {caught} of {len(draft.caught)} documents")
    for path in files:
        typer.echo(f"  wrote {path}")
    if draft.errors or draft.example_failures:
        for problem in [*draft.errors, *draft.example_failures]:
            typer.echo(f"monitor: draft problem: {problem}", err=True)
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
    with read_scope(engine) as session:
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
        _fail(f"--today {today!r}: write a date as YYYY-MM-DD", 2)
    result = load_watchlists(_watchlists_dir(watchlists))
    for error in result.errors:
        typer.echo(f"monitor: watchlist error: {error}", err=True)
    rows = upcoming_events(result.calendar, start, days)
    if not rows:
        typer.echo(f"no round-number anniversaries between {start} and {start + timedelta(days=days)}")
    for row in rows:
        typer.echo(f"{row.date.isoformat()}  {row.years:>3} years  {row.name}  [{'–'.join(row.parties)}]")


def _window_days(text: str) -> int:
    """``90d``, ``12w`` or ``90`` (days) → days. Anything else, ``3m`` included (minutes? months?), is refused."""
    import re

    found = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if found is None:
        _fail(f"--upcoming {text!r}: write the window in days or weeks, e.g. 90d or 12w "
              "(m and h are not calendar units here)", 2)
    days = int(found.group(1)) * (7 if found.group(2) == "w" else 1)
    if not 1 <= days <= 3660:
        _fail(f"--upcoming {text!r}: the window must be between 1 day and 10 years", 2)
    return days


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[str | None, typer.Option(help="pending, sent or dead.")] = None,
) -> None:
    """Deliveries with attempts, last error and next attempt."""
    if status is not None and status not in DELIVERY_STATUSES:
        _fail(f"--status {status!r}: write one of {', '.join(DELIVERY_STATUSES)}", 2)
    settings = _settings()
    engine = make_engine(settings.database_url)
    _require_schema(engine)
    with read_scope(engine) as session:
        rows = store.list_deliveries(session, status=status)
    for d in rows:
        nxt = d.next_attempt_at.isoformat() if d.next_attempt_at and d.status == "pending" else "-"
        typer.echo(f"{d.id:>5} {d.status:<7} {d.transport:<7} attempts={d.attempts} hits={d.hit_count} "
                   f"next={nxt} {d.key}")
        if d.last_error:
            typer.echo(f"      last error: {redact(d.last_error)}")


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
        from monitor.pipeline import example_for

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


def _stuck_cycles(workers: list[dict[str, Any]], *, now: datetime, stuck_after: int) -> list[str]:
    """A live worker whose poll or delivery cycle started more than ``stuck_after`` seconds ago is stuck:
    its heartbeat still beats (another thread sends it) while the work it exists for does not move."""
    problems = []
    for w in workers:
        running = w["last"].get("running") if w["alive"] and isinstance(w["last"], dict) else None
        for name, started in (running or {}).items():
            try:
                age = (now - datetime.fromisoformat(started)).total_seconds()
            except (TypeError, ValueError):
                continue
            if age > stuck_after:
                problems.append(f"worker {w['owner']}: {name} cycle running for {round(age)} s "
                                f"without finishing (limit {stuck_after} s)")
    return problems


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
        with read_scope(engine) as session:
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
        problems.extend(_stuck_cycles(mine, now=now, stuck_after=stuck_after))
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


# --- feeds added, paused and removed from the command line ----------------------------------------


def _cli_feed(session: Any, url: str, config: Path | None) -> Any:
    """The feed row for ``url``; refuses unknown URLs and feeds the config file owns."""
    row = store.get_feed(session, url)
    if row is None or row.removed_at is not None:
        _fail(f"no feed with URL {url} ('monitor feeds list' shows them)", 2)
    if row.origin == "config":
        _fail(f"{url} comes from the config file {config or 'monitor.yaml'}; config feeds stay config-owned: "
              "change or delete its entry there", 2)
    return row


async def _probe_feed(url: str, policy: Any) -> tuple[str, str]:
    """Fetch ``url``: ``("feed", url)`` when it is a feed, ``("page", url)`` for the one feed a web page names.

    Refuses (exit 2) a page naming several feeds (listing them) or none.
    """
    from monitor.errors import ParseError
    from monitor.ingest.discover import discover_feeds
    from monitor.ingest.fetch import FeedState, build_client, fetch_feed
    from monitor.ingest.parse import parse_feed

    async with build_client(policy) as client:
        result = await fetch_feed(client, FeedState(url=url), policy)
    content = result.content or b""
    try:
        parse_feed(content, url=result.final_url, content_type=result.content_type)
        return "feed", url
    except ParseError:
        found = discover_feeds(content, url=result.final_url)
    if not found:
        _fail(f"{url} is not a feed and names no feed (no <link rel=\"alternate\"> to RSS, Atom or JSON Feed)", 2)
    if len(found) > 1:
        listed = "\n".join(f"  {f.url}" + (f"  ({f.title})" if f.title else "") for f in found)
        _fail(f"{url} is a web page naming {len(found)} feeds; add one of them:\n{listed}", 2)
    return "page", found[0].url


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's URL, or a web page that links its feed.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: none; the site's host is shown).")] = None,
    interval: Annotated[str | None, typer.Option(help="Poll interval, e.g. 15m (default: poll_interval).")] = None,
) -> None:
    """Add a feed (checked by fetching it); a web page's own feed is found through its alternate links."""
    import asyncio

    from monitor.config import parse_duration
    from monitor.errors import FetchError
    from monitor.ingest.fetch import FetchPolicy, check_url
    from monitor.pipeline import utcnow

    settings = _settings()
    try:
        seconds = parse_duration(interval) if interval is not None else settings.poll_interval
    except ValueError as exc:
        _fail(f"--interval: {exc}", 2)
    policy = FetchPolicy(timeout=settings.fetch_timeout, deadline=settings.fetch_deadline,
                         max_bytes=settings.max_feed_bytes, user_agent=settings.user_agent,
                         allow_private_networks=settings.allow_private_networks,
                         allowed_networks=tuple(settings.allowed_networks))
    try:
        check_url(url, policy)
    except MonitorError as exc:  # not http(s), or an address the network guard forbids
        _fail(f"cannot add {url}: {exc}", 2)
    try:
        kind, feed_url = asyncio.run(_probe_feed(url, policy))
    except FetchError as exc:
        _fail(f"cannot add {url}: {exc}", 1)
    except MonitorError as exc:
        _fail(f"cannot add {url}: {exc}", 2)
    if kind == "page":
        typer.echo(f"{url} is a web page; it names the feed {feed_url}: adding that")
    ctx = _open(now=utcnow())
    try:
        clamped = max(settings.min_poll_interval, min(settings.max_poll_interval, seconds))
        with session_scope(ctx.engine) as session:
            outcome = store.add_feed(session, feed_url, name=name, interval=clamped,
                                     alert_window=settings.new_feed_alert_window, now=utcnow())
    finally:
        ctx.close()
    if outcome == "known":
        typer.echo(f"{feed_url} is already a feed; nothing changed")
        return
    typer.echo(f"{outcome} feed {feed_url} (polled every {clamped // 60} min from the next cycle)")


@feeds_app.command("remove")
def feeds_remove(url: Annotated[str, typer.Argument(help="The feed's URL.")]) -> None:
    """Stop polling a feed added by 'feeds add' or 'feeds import' and hide it; its items and hits stay."""
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    try:
        with session_scope(ctx.engine) as session:
            store.remove_feed(session, _cli_feed(session, url, _state.get("config")), now=utcnow())
    finally:
        ctx.close()
    typer.echo(f"removed feed {url} (its items and hits are kept)")


def _pause(url: str, *, paused: bool) -> None:
    from monitor.pipeline import utcnow

    ctx = _open(now=utcnow())
    try:
        with session_scope(ctx.engine) as session:
            row = _cli_feed(session, url, _state.get("config"))
            if row.paused == paused:
                typer.echo(f"feed {url} is already {'paused' if paused else 'active'}")
                return
            store.set_feed_paused(session, row, paused=paused, now=utcnow())
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


# --- matching stored items again ----------------------------------------------------------------


@app.command()
def rematch(
    since: Annotated[str | None, typer.Option(help="Items fetched since YYYY-MM-DD (default: the alert "
                                                   "window, new_feed_alert_window).")] = None,
    watchlist: Annotated[str | None, typer.Option(help="Only this watchlist (default: all).")] = None,
) -> None:
    """Match stored items against the watchlists as they are now; new hits go out at the next delivery.

    Hits already stored are kept and never sent twice.
    """
    from monitor.pipeline import rematch_stored, utcnow

    now = utcnow()
    try:
        start = (datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None)
    except ValueError:
        _fail(f"--since {since!r}: write a date as YYYY-MM-DD", 2)
    ctx = _open(now=now, one_shot=True)
    try:
        names = sorted(ctx.watchlists.versions)
        if watchlist is not None and watchlist not in names:
            _fail(f"--watchlist {watchlist!r}: no such watchlist; the watchlists are: {', '.join(names)}", 2)
        start = start or now - timedelta(seconds=ctx.settings.new_feed_alert_window)
        result = rematch_stored(ctx, now=now, since=start, names=[watchlist] if watchlist else None, force=True)
    finally:
        ctx.close()
    lists = watchlist or ", ".join(names)
    typer.echo(f"matched {result.items} stored items fetched since {start:%Y-%m-%d %H:%M} UTC against {lists}: "
               f"{sum(result.hits.values())} new hits" + (f" ({_hits_line(result.hits)})" if result.hits else ""))


# --- checking a subscription's transport ----------------------------------------------------------


@notify_app.command("test")
def notify_test(
    subscription: Annotated[str, typer.Argument(help="The subscription's name.")],
) -> None:
    """Send a clearly marked test message to the subscription's recipients through its real transport."""
    from monitor.pipeline import send_test_message, utcnow

    ctx = _open(now=utcnow(), secrets=True)
    try:
        try:
            cfg = ctx.settings.subscription(subscription)
        except ConfigError as exc:
            names = ", ".join(s.name for s in ctx.settings.subscriptions) or "(none)"
            _fail(f"{exc}; the subscriptions are: {names}", 2)
        try:
            target = send_test_message(ctx, cfg, now=utcnow())
        except MonitorError as exc:
            _fail(f"test message to {cfg.name} failed: {exc}", 1)
    finally:
        ctx.close()
    typer.echo(f"test message for {cfg.name} sent: {target}")
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
    # Outside the app, typer.Exit is no longer turned into an exit status: leave through sys.exit.
    try:
        app()
    except (WatchlistError, ConfigError) as exc:
        typer.echo(f"monitor: {exc}", err=True)
        sys.exit(2)
    except DatabaseError as exc:
        typer.echo(f"monitor: {exc}", err=True)
        sys.exit(1)
