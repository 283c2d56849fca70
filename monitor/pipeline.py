"""One poll cycle and one delivery cycle: the steps wired together.

The daemon's jobs and the one-shot commands (``poll --once``, ``deliver
--once``, ``run --once``) call exactly these functions; the time is always a
parameter. Per-feed and per-delivery failures are caught here, logged once,
recorded on their row, and the cycle goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor import store
from monitor.config import Settings, SubscriptionConfig
from monitor.db import current_revision, head_revision, make_engine, read_scope, redact_url, session_scope, upgrade
from monitor.deliver.chat import render_chat, render_chat_parts
from monitor.deliver.digest import ComingUp, Digest, SourceProblem, build_digest, example_digest, split_digest
from monitor.deliver.email import compose
from monitor.deliver.ntfy import render_ntfy
from monitor.deliver.outbox import RetryPolicy, next_attempt_at
from monitor.deliver.render import render_email, render_webhook, webhook_payload
from monitor.deliver.tokens import make_token
from monitor.deliver.transport import Outgoing, TransportDeps, Transports
from monitor.domain import Document, Item, Match, StoredHit
from monitor.errors import (
    ConfigError,
    DatabaseError,
    DeliveryError,
    FetchError,
    HTTPStatusError,
    ParseError,
    WatchlistError,
)
from monitor.ingest.budget import BudgetExceeded, cpu_budget
from monitor.ingest.cluster import DEFAULT_THRESHOLD, StorySignature, signature_for
from monitor.ingest.fetch import FeedState, FetchPolicy, FetchResult, build_client, fetch_feed
from monitor.ingest.normalize import normalize_entries
from monitor.ingest.parse import parse_feed
from monitor.match import LoadResult, Matcher, load_watchlists
from monitor.match.anniversaries import upcoming
from monitor.models import Delivery
from monitor.redact import display_host, redact
from monitor.schedules import in_quiet_hours, load_zone, parse_schedule

log = logging.getLogger("monitor")

FEED_LEASE_SECONDS = 300
DELIVERY_LEASE_SECONDS = 300
MAX_HITS_PER_PLAN = 2000  # hits planned per subscription per cycle; the rest follow next cycle
MAX_BACKOFF_SECONDS = 24 * 3600
STORY_WINDOW = timedelta(hours=48)  # near-identical items this close in time form one story
STORY_THRESHOLD = DEFAULT_THRESHOLD
# Feeds claimed at a time. Small enough that several workers share a large cycle (each claims a
# batch, works it, claims the next) and that a batch always finishes well inside its lease.
POLL_BATCH = 250
PARALLEL_MIN_FEEDS = 20  # below this a cycle parses in-process (starting workers would cost more)
STOP_CHECK_SECONDS = 0.2  # how often a poll in flight looks for a shutdown request
# CPU seconds one feed's parse and text extraction may take (enforced in the parse workers and in a
# main-thread poll): far above what any real feed needs (a 9 MB full-content feed takes about 2 s).
PARSE_BUDGET_SECONDS = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the matcher, reloaded when watchlist files change -----------------------------------------


class WatchlistSource:
    """Holds the compiled matcher; reloads it when a file in the folder changes.

    A reload that finds an invalid file keeps the last good matcher and logs why,
    so a typo in one watchlist never silences the others.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self.result: LoadResult | None = None
        self.matcher: Matcher | None = None
        self._versions: dict[str, str] = {}
        self._versions_of: LoadResult | None = None

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        try:
            paths = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml"))
        except OSError:
            return ()
        out = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def get(self) -> Matcher:
        """The matcher for the folder as it is now, or the last good one when the folder is broken.

        Never raises once a good version has been loaded: whatever goes wrong while loading
        or compiling (a bad file, an unforeseen bug) is logged and the last good matcher runs on.
        """
        stamp = self._files_stamp()
        if self.matcher is not None and stamp == self._stamp:
            return self.matcher
        try:
            return self._reload(stamp)
        except Exception as exc:
            if self.matcher is None:
                raise WatchlistError(f"the watchlists in {self.folder} could not be loaded: {exc}") from exc
            self._stamp = stamp  # report once per change, not on every cycle
            log.error("watchlists could not be loaded (%s); keeping the previous ones", exc)
            return self.matcher

    def _reload(self, stamp: tuple[tuple[str, int, int], ...]) -> Matcher:
        result = load_watchlists(self.folder)
        for error in result.errors:
            log.error("watchlist invalid: %s", error, extra={"watchlist": error.path})
        self._stamp = stamp
        if self.result is not None and self.matcher is not None and result.errors:
            merged = self._keep_last_good(result)
            if merged is None:
                log.warning("keeping the previous watchlists until the errors above are fixed")
                return self.matcher
            result = merged
        matcher = Matcher.compile(result)
        self.result, self.matcher = result, matcher
        return self.matcher

    @property
    def versions(self) -> dict[str, str]:
        """``{name: "version:fingerprint"}`` of the watchlists in use; the fingerprint changes with any edit
        that can change what matches (rules, cues, threshold, or the shared actors and calendar)."""
        if self.result is None:
            return {}
        if self._versions_of is not self.result:
            shared = repr(sorted(self.result.actors.items())) + repr(self.result.calendar)
            self._versions = {
                w.name: f"{w.version}:" + hashlib.sha256(
                    (repr(replace(w, line=0, examples=(), path="")) + shared).encode()).hexdigest()[:12]
                for w in self.result.watchlists
            }
            self._versions_of = self.result
        return self._versions

    def _keep_last_good(self, result: LoadResult) -> LoadResult | None:
        """The new lists, plus the last good version of each list whose file is now broken.

        None when a shared file (actors, calendar) is broken: then nothing new is trusted.
        """
        assert self.result is not None
        previous = {w.path: w for w in self.result.watchlists}
        loaded = {w.name for w in result.watchlists}
        kept = []
        for error in result.errors:
            old = previous.get(str(error.path)) if error.path else None
            if old is None:
                if error.path and any(str(error.path).endswith(n) for n in ("actors.yaml", "calendar.yaml")):
                    return None
                continue
            if old.name not in loaded:
                kept.append(old)
                log.warning("keeping the last good version of %s", old.name, extra={"watchlist": old.name})
        return replace(result, watchlists=[*result.watchlists, *kept])


# --- context ------------------------------------------------------------------------------------


class CycleStopped(Exception):
    """The process is shutting down: the cycle stops where it is; unfinished feeds' leases are released."""


@dataclass
class Context:
    """What the cycles need, built once at the entry point."""

    settings: Settings
    engine: Engine
    watchlists: WatchlistSource
    owner: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rand: Callable[[], float] = random.random
    monotonic: Callable[[], float] = time.monotonic  # elapsed time within a cycle (injectable for tests)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last: dict[str, object] = field(default_factory=dict)  # last cycles' summaries, for the heartbeat
    # Cycles in flight and when they started (the heartbeat carries them; ``status`` flags one stuck).
    running: dict[str, datetime] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: wind down now
    rematched: str | None = None  # the match set whose stored items this process has matched up
    _pool: ProcessPoolExecutor | None = None

    def check_stop(self) -> None:
        """Raise :class:`CycleStopped` once shutdown has begun (called between units of work)."""
        if self.stopping.is_set():
            raise CycleStopped()

    def parse_pool(self) -> ProcessPoolExecutor | None:
        """Worker processes for parsing, started on first use and kept for later cycles."""
        if self.settings.parse_processes == 0:
            return None
        if self._pool is None:
            # spawn, not fork: this process runs threads (scheduler, event loop) that fork would copy mid-flight.
            self._pool = ProcessPoolExecutor(max_workers=self.settings.parse_processes,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.engine.dispose()

    @property
    def fetch_policy(self) -> FetchPolicy:
        # file: URLs only ever come from the config file (never from feed content).
        return FetchPolicy.from_settings(self.settings, allow_file_urls=True)

    @property
    def webhook_policy(self) -> FetchPolicy:
        return FetchPolicy.for_webhooks(self.settings)


def open_context(settings: Settings, *, now: datetime, migrate: bool | None = None) -> Context:
    """Connect, check or apply migrations, load watchlists, and sync config into the database.

    ``migrate=None`` (the default) upgrades a SQLite database in place (one process owns it)
    and refuses to start on a PostgreSQL database that is not at the code's revision: with
    several workers, migrations run once, by ``monitor db upgrade``, not by whichever starts first.
    """
    # Watchlists first: a subscription following a list that does not exist is refused before anything
    # touches the database.
    source = WatchlistSource(settings.watchlists_dir)
    source.get()
    check_subscribed_watchlists(settings, source.result)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    if migrate is None:
        migrate = engine.dialect.name == "sqlite"
    if migrate:
        upgrade(engine)
    else:
        current, head = current_revision(engine), head_revision()
        if current != head:
            raise DatabaseError(
                f"the database {redact_url(engine.url)} is at revision {current or '(empty)'}, the code needs "
                f"{head}: run 'monitor db upgrade' once, then start the workers"
            )
    retry = settings.delivery_retry
    ctx = Context(settings=settings, engine=engine, watchlists=source,
                  owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
                  retry=RetryPolicy(first_delay=retry.first_delay, max_delay=retry.max_delay, horizon=retry.horizon))
    with session_scope(engine) as session:
        store.sync_config(session, settings, now)
    return ctx


def check_subscribed_watchlists(settings: Settings, result: LoadResult | None) -> None:
    """Refuse a subscription that follows a watchlist that does not exist: it would never receive anything.

    A list whose file is present but broken counts as existing (the daemon keeps its last good
    version; one-shot commands refuse broken files on their own).
    """
    if result is None or any(e.path == str(settings.watchlists_dir) for e in result.errors):
        return  # the folder itself is missing or unreadable: that error is reported on its own
    known = {w.name for w in result.watchlists}
    present = known | {Path(str(e.path)).stem for e in result.errors if e.path}
    for sub in settings.subscriptions:
        missing = [name for name in sub.watchlists if name not in present]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            raise ConfigError(
                f"subscription {sub.name!r} follows {'watchlist' if len(missing) == 1 else 'watchlists'} {names}, "
                f"which {'does' if len(missing) == 1 else 'do'} not exist in {settings.watchlists_dir}; "
                f"the watchlists are: {', '.join(sorted(known)) or '(none)'}"
            )


def beat(ctx: Context, *, now: datetime) -> None:
    """Record this process's heartbeat (``monitor status`` reads it)."""
    running = {name: started.isoformat() for name, started in list(ctx.running.items())}
    with session_scope(ctx.engine) as session:
        store.heartbeat(session, owner=ctx.owner, hostname=socket.gethostname(), pid=os.getpid(),
                        started_at=ctx.started_at, now=now, info={**ctx.last, "running": running})


def prune_cycle(ctx: Context, *, now: datetime, dry_run: bool = False) -> dict[str, int]:
    r = ctx.settings.retention
    retention = store.Retention(items=r.items, hits=r.hits, deliveries=r.deliveries, fingerprints=r.fingerprints)
    with session_scope(ctx.engine) as session:
        counts = store.prune(session, now=now, retention=retention, dry_run=dry_run, story_window=STORY_WINDOW)
    log.info("prune %s: %s", "dry run" if dry_run else "done", counts)
    return counts


# --- polling ------------------------------------------------------------------------------------


@dataclass
class PollSummary:
    feeds_polled: int = 0
    feeds_failed: int = 0
    not_modified: int = 0
    new_items: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"feeds_polled": self.feeds_polled, "feeds_failed": self.feeds_failed,
                "not_modified": self.not_modified, "new_items": self.new_items, "hits": dict(self.hits),
                "errors": self.errors}


def poll_cycle(ctx: Context, *, now: datetime, all_feeds: bool = False) -> PollSummary:
    started = time.perf_counter()
    summary = PollSummary()
    matcher = ctx.watchlists.get()
    match_key = catch_up(ctx, now=now, summary=summary)
    try:
        while not ctx.stopping.is_set():
            claimed = store.claim_due_feeds(
                ctx.engine, now=now, owner=ctx.owner, lease_seconds=FEED_LEASE_SECONDS, limit=POLL_BATCH,
                include_not_due=all_feeds, not_polled_since=now if all_feeds else None,
            )
            if not claimed:
                break
            asyncio.run(_poll_feeds(ctx, claimed, matcher, now=now, summary=summary, match_key=match_key))
            if len(claimed) < POLL_BATCH:
                break
    except CycleStopped:
        # Feeds claimed but not finished go back at once (their due time is unchanged), so
        # another worker, or this one after a restart, polls them without waiting for the lease.
        with session_scope(ctx.engine) as session:
            released = store.release_feed_leases(session, owner=ctx.owner)
        log.info("poll cycle stopped for shutdown; %d unfinished feeds released", released)
    summary.duration_ms = (time.perf_counter() - started) * 1000
    ctx.last["poll"] = {"at": now.isoformat(), **summary.as_dict(), "errors": len(summary.errors)}
    log.info(
        "poll cycle done: %d feeds, %d new items, %d hits, %d failed",
        summary.feeds_polled, summary.new_items, sum(summary.hits.values()), summary.feeds_failed,
        extra={"duration_ms": round(summary.duration_ms)},
    )
    return summary


class _StateWrites:
    """Poll-state updates that touch one feed row each (304s, failures), applied in batches.

    A cycle where most feeds answer 304 then costs a few transactions, not one per feed.
    """

    def __init__(self, engine: Engine, size: int = 200) -> None:
        self.engine, self.size = engine, size
        self.pending: list[Callable[[Session], None]] = []

    def add(self, write: Callable[[Session], None]) -> None:
        self.pending.append(write)
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        writes, self.pending = self.pending, []
        with session_scope(self.engine) as session:
            for write in writes:
                write(session)


async def _poll_feeds(
    ctx: Context, feeds: list[store.ClaimedFeed], matcher: Matcher, *, now: datetime, summary: PollSummary,
    match_key: str | None = None,
) -> None:
    policy = ctx.fetch_policy
    limit = asyncio.Semaphore(ctx.settings.poll_concurrency)

    pool = ctx.parse_pool() if len(feeds) >= PARALLEL_MIN_FEEDS else None
    loop = asyncio.get_running_loop()

    async def one(feed: store.ClaimedFeed) -> tuple[store.ClaimedFeed, FetchResult | FetchError, Prepared | None]:
        async with limit:
            try:
                state = FeedState(url=feed.fetch_url, etag=feed.etag, last_modified=feed.last_modified)
                result = await fetch_feed(client, state, policy)
            except FetchError as exc:
                return feed, exc, None
            except Exception as exc:  # a bug or an odd server must cost one feed, not the cycle
                log.exception("unexpected error fetching a feed", extra={"feed_url": feed.url})
                return feed, FetchError(f"{feed.url}: unexpected error: {exc!r}", url=feed.url), None
        prepared = None
        if pool is not None and result.content is not None and not result.not_modified:
            try:  # parsing is CPU-bound: the worker process uses the other core meanwhile
                prepared = await loop.run_in_executor(pool, prepare_feed, result.content, result.final_url,
                                                      result.content_type, feed.url, now, *feed_options(ctx, feed))
            except Exception:
                log.exception("parse worker failed; parsing here", extra={"feed_url": feed.url})
        return feed, result, prepared

    writes = _StateWrites(ctx.engine)

    async def work() -> None:
        tasks = [asyncio.ensure_future(one(f)) for f in feeds]
        try:
            for next_done in asyncio.as_completed(tasks):
                feed, outcome, prepared = await next_done
                summary.feeds_polled += 1
                try:
                    _store_outcome(ctx, feed, outcome, matcher, now=now, summary=summary, writes=writes,
                                   prepared=prepared, match_key=match_key)
                except CycleStopped:
                    raise
                except Exception as exc:  # one bad feed never stops the cycle
                    log.exception("feed processing failed", extra={"feed_url": feed.url, "feed_id": feed.id})
                    _record_failure(ctx, feed, None, f"internal error: {exc}", now=now, summary=summary,
                                    writes=writes)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        async with build_client(policy) as client:
            await _until_stopped(ctx, work())
    finally:
        writes.flush()


async def _until_stopped(ctx: Context, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work``; when shutdown begins, cancel it (requests in flight included) and raise CycleStopped."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
        if not task.done() and ctx.stopping.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CycleStopped):
                await task
            raise CycleStopped()
    task.result()


def _next_poll(feed: store.ClaimedFeed, settings: Settings, now: datetime, *, gap: float | None,
               hints: tuple[int | None, ...] = ()) -> datetime:
    """The next poll: the feed's interval, longer for feeds that publish rarely or ask for it
    (RSS ``ttl``, ``Cache-Control: max-age``), never beyond ``max_poll_interval``."""
    interval = float(feed.interval_seconds)
    if gap:
        interval = max(interval, gap / 2)  # a feed with a new item every 2 days is polled about daily
    for hint in hints:
        if hint:
            interval = max(interval, float(hint))
    interval = min(interval, float(max(settings.max_poll_interval, feed.interval_seconds)))
    return now + timedelta(seconds=interval)


def _entry_gap(feed: store.ClaimedFeed, new_items: int, now: datetime) -> float | None:
    """Moving average of the time between new items (the backlog of a first poll says nothing)."""
    if new_items == 0 or feed.first_poll or feed.last_entry_at is None:
        return feed.entry_gap_seconds
    observed = (now - feed.last_entry_at).total_seconds() / new_items
    if feed.entry_gap_seconds is None:
        return observed
    return 0.7 * feed.entry_gap_seconds + 0.3 * observed


def _backoff(feed: store.ClaimedFeed, now: datetime, retry_after: float | None, rand: float) -> datetime:
    # Exponential in the number of consecutive errors, capped; never gives up for good.
    delay = min(MAX_BACKOFF_SECONDS, feed.interval_seconds * 2 ** min(feed.error_count, 8))
    delay *= 0.8 + 0.4 * rand
    if retry_after:
        delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
    return now + timedelta(seconds=delay)


def _record_failure(
    ctx: Context, feed: store.ClaimedFeed, status: int | None, message: str, *, now: datetime,
    summary: PollSummary, writes: _StateWrites, retry_after: float | None = None,
) -> None:
    summary.feeds_failed += 1
    summary.errors.append(redact(f"{feed.url}: {message}"))
    log.warning("feed fetch failed: %s", message, extra={"feed_url": feed.url, "feed_id": feed.id,
                                                          "status": status})
    next_poll = _backoff(feed, now, retry_after, ctx.rand())
    writes.add(lambda session: store.record_poll_failure(
        session, feed.id, now=now, status=status, error=message, next_poll_at=next_poll, disable=status == 410,
    ))


def _store_outcome(
    ctx: Context, feed: store.ClaimedFeed, outcome: FetchResult | FetchError, matcher: Matcher, *,
    now: datetime, summary: PollSummary, writes: _StateWrites, prepared: Prepared | None = None,
    match_key: str | None = None,
) -> None:
    if isinstance(outcome, FetchError):
        message = str(outcome)
        if isinstance(outcome, HTTPStatusError) and outcome.status == 410:
            message += " (410 Gone: feed disabled; remove it from the config or re-add it to retry)"
        _record_failure(ctx, feed, outcome.status, message, now=now, summary=summary, writes=writes,
                        retry_after=outcome.retry_after)
        return
    # The URL the feed lives at now: a permanent redirect seen this time, or the move already followed.
    moved = outcome.permanent_redirect or (feed.moved_to if feed.fetch_url != feed.url else None)
    if outcome.not_modified or outcome.content is None:
        summary.not_modified += 1
        next_poll = _next_poll(feed, ctx.settings, now, gap=feed.entry_gap_seconds, hints=(outcome.max_age,))
        result = outcome
        writes.add(lambda session: store.record_poll_success(
            session, feed.id, now=now, status=result.status, etag=result.etag,
            last_modified=result.last_modified, next_poll_at=next_poll, not_modified=True, moved_to=moved,
        ))
        return
    if prepared is None:
        prepared = prepare_feed(outcome.content, outcome.final_url, outcome.content_type, feed.url, now,
                                *feed_options(ctx, feed), signatures=False)
    if prepared.error is not None:
        _record_failure(ctx, feed, outcome.status, prepared.error, now=now, summary=summary, writes=writes)
        return
    items = prepared.items
    window_start = now - timedelta(seconds=feed.alert_window_seconds)
    alertable = [
        (not feed.first_poll) or (not it.date_from_fetch and it.published_at is not None
                                  and it.published_at >= window_start)
        for it in items
    ]
    # Match first, outside any write transaction, so the write lock is held for inserts only
    # (a slow item never makes other commands wait or fail with "database is locked").
    matches = _match_unseen(ctx, items, alertable, matcher, now=now)
    with session_scope(ctx.engine) as session:
        new = store.insert_new_items(session, feed.id, items, alertable=alertable)
        hits: list[tuple[int, Match]] = []
        for item_id, item, ok in new:
            if ok:
                found = matches.get(item.fingerprint)
                if found is None:  # unseen a moment ago and matched only now: rare (pruned meanwhile)
                    found = matcher.match(_document(item), on=_reference_date(item, now))
                hits.extend((item_id, m) for m in found)
        store.insert_hits(session, hits, now=now)
        if match_key is not None:
            store.mark_matched(session, [item_id for item_id, _item, ok in new if ok], match_key)
        # Stories only matter for what is delivered: group the items that hit a watchlist (a few
        # in a hundred), not the whole stream, which keeps the story index small and writes cheap.
        hit_items = {item_id for item_id, _m in hits}
        store.assign_stories(session, [(item_id, item) for item_id, item, _ok in new if item_id in hit_items],
                             now=now, window=STORY_WINDOW, threshold=STORY_THRESHOLD,
                             precomputed=prepared.signatures)
        gap = _entry_gap(feed, len(new), now)
        ttl = prepared.ttl_minutes * 60 if prepared.ttl_minutes else None
        next_poll = _next_poll(feed, ctx.settings, now, gap=gap, hints=(outcome.max_age, ttl))
        store.record_poll_success(session, feed.id, now=now, status=outcome.status, etag=outcome.etag,
                                  last_modified=outcome.last_modified, next_poll_at=next_poll, not_modified=False,
                                  moved_to=moved, new_items=len(new), entry_gap_seconds=gap,
                                  note=_skipped_note(prepared.skipped))
    summary.new_items += len(new)
    for _item_id, m in hits:
        summary.hits[m.watchlist] += 1
    if prepared.skipped:
        log.warning("feed read with entries skipped: %s", _skipped_note(prepared.skipped),
                    extra={"feed_url": feed.url, "feed_id": feed.id})
    log.info("feed polled", extra={"feed_url": feed.url, "feed_id": feed.id, "new_items": len(new),
                                   "hits": len(hits), "undated": sum(it.date_from_fetch for it in items)})


def _match_unseen(ctx: Context, items: list[Item], alertable: list[bool], matcher: Matcher, *,
                  now: datetime) -> dict[str, list[Match]]:
    """Matches of the alertable items the database has not seen, by fingerprint; no write lock held.

    Items another worker inserts meanwhile are matched for nothing: the insert that follows
    tells which items are new, and only their matches become hits.
    """
    with read_scope(ctx.engine) as session:
        known = store.known_fingerprints(session, (it.fingerprint for it in items))
    matches: dict[str, list[Match]] = {}
    for item, ok in zip(items, alertable, strict=True):
        if ok and item.fingerprint not in known and item.fingerprint not in matches:
            ctx.check_stop()
            matches[item.fingerprint] = matcher.match(_document(item), on=_reference_date(item, now))
    return matches


@dataclass(frozen=True, slots=True)
class Prepared:
    """A fetched feed turned into items off the main process (parse, normalise, story signatures)."""

    items: list[Item]
    signatures: dict[str, StorySignature]  # by fingerprint
    ttl_minutes: int | None
    error: str | None = None
    skipped: tuple[str, ...] = ()  # entries that could not be read, one reason each


def feed_options(ctx: Context, feed: store.ClaimedFeed) -> tuple[str | None, str | None]:
    """The feed's ``encoding:`` and ``timezone:`` settings (config feeds only; others have none)."""
    for cfg in ctx.settings.feeds:
        if cfg.url == feed.url:
            return cfg.encoding, cfg.timezone
    return None, None


def prepare_feed(content: bytes, url: str, content_type: str | None, feed_url: str, now: datetime,
                 encoding: str | None = None, timezone: str | None = None, *, signatures: bool = True,
                 budget: float | None = PARSE_BUDGET_SECONDS) -> Prepared:
    """The CPU-bound part of polling one feed; runs in a worker process. Pure but for the CPU budget."""
    try:
        with cpu_budget(budget):
            parsed = parse_feed(content, url=url, content_type=content_type, encoding=encoding, timezone=timezone)
            items, skipped = normalize_entries(parsed.entries, feed_url=feed_url, now=now)
            sigs = {it.fingerprint: signature_for(it.title, it.summary) for it in items} if signatures else {}
    except ParseError as exc:
        return Prepared([], {}, None, str(exc))
    except BudgetExceeded as exc:
        return Prepared([], {}, None, f"{url}: reading this feed took more than {exc.seconds:g} s of CPU; refused "
                                      f"({len(content) // 1024} KB; a feed this large or convoluted costs every poll)")
    return Prepared(items, sigs, parsed.ttl_minutes, skipped=(*parsed.skipped, *skipped))


def _skipped_note(skipped: tuple[str, ...]) -> str | None:
    """"2 entries skipped: entry 3: ...; entry 7: ..." for the feed's row, or None when none was."""
    if not skipped:
        return None
    count = len(skipped)
    shown = "; ".join(skipped[:3]) + ("; ..." if count > 3 else "")
    return f"{count} {'entry' if count == 1 else 'entries'} skipped: {shown}"


def _document(item: Item) -> Document:
    return Document(title=item.title, summary=item.summary, content=item.content, published=item.published_at)


def _reference_date(item: Item, now: datetime) -> date:
    return (item.published_at or now).date()


# --- matching stored items again when watchlists change ------------------------------------------


@dataclass
class RematchSummary:
    items: int = 0  # items matched again
    hits: Counter[str] = field(default_factory=Counter)  # new hits per watchlist


def catch_up(ctx: Context, *, now: datetime, summary: PollSummary | None = None) -> str:
    """Match the stored items of the alert window against the watchlist versions they have not met.

    A watchlist that was fixed, edited or added since an item was stored is applied to it
    once; new hits flow to subscriptions like any other, and hits already stored (and sent)
    stay as they are. Runs when this process first sees a set of watchlist versions; the
    items record the set they were matched against, so every worker does it at most once per change.
    Returns the key of the current set, for the cycle to record on the items it stores.
    """
    with session_scope(ctx.engine) as session:
        key = store.ensure_match_set(session, ctx.watchlists.versions, now=now)
    if ctx.rematched == key:
        return key
    since = now - timedelta(seconds=ctx.settings.new_feed_alert_window)
    result = rematch_stored(ctx, now=now, since=since)
    if result.items:
        log.info("matched %d stored items against changed watchlists: %d new hits", result.items,
                 sum(result.hits.values()), extra={"hits": dict(result.hits)})
    if summary is not None:
        summary.hits.update(result.hits)
    ctx.rematched = key
    return key


def rematch_stored(ctx: Context, *, now: datetime, since: datetime, names: Sequence[str] | None = None,
                   force: bool = False, batch: int = 500) -> RematchSummary:
    """Match alertable stored items fetched since ``since`` against the current watchlists (``names``: only
    these) they were not matched against yet; ``force``: whatever the items' record says.

    Hits are unique per (item, watchlist), so an item that already hit a list keeps its hit and
    is never sent again.
    """
    matcher = ctx.watchlists.get()
    versions = ctx.watchlists.versions
    wanted = {n: v for n, v in versions.items() if names is None or n in names}
    summary = RematchSummary()
    sets: dict[str | None, dict[str, str]] = {None: {}}
    with session_scope(ctx.engine) as session:
        current = store.ensure_match_set(session, versions, now=now)
    sets[current] = dict(versions)
    after = 0
    while True:
        with session_scope(ctx.engine) as session:
            rows = store.items_to_rematch(session, since=since, after_id=after, limit=batch,
                                          skip_key=None if force else current)
            if not rows:
                break
            after = rows[-1].id
            sets.update(store.match_sets(session, {r.matched_with for r in rows if r.matched_with not in sets
                                                   and r.matched_with is not None}))
            hits: list[tuple[int, Match]] = []
            marks: dict[str, list[int]] = {}
            for row in rows:
                done = sets.get(row.matched_with, {})
                todo = {n for n, v in wanted.items() if force or done.get(n) != v}
                if not todo:
                    continue
                summary.items += 1
                found = matcher.match(_document(row.item), on=_reference_date(row.item, row.item.fetched_at))
                hits.extend((row.id, m) for m in found if m.watchlist in todo)
                merged = {**done, **{n: versions[n] for n in todo}}
                key = store.ensure_match_set(session, merged, now=now) if merged != done else row.matched_with
                sets.setdefault(key, merged)
                if key is not None:
                    marks.setdefault(key, []).append(row.id)
            new = store.insert_hits_reporting(session, hits, now=now)
            for key, ids in marks.items():
                store.mark_matched(session, ids, key)
            hit_items = {item_id for item_id, _name in new}
            store.assign_stories(session, [(r.id, r.item) for r in rows if r.id in hit_items and r.story_id is None],
                                 now=now, window=STORY_WINDOW, threshold=STORY_THRESHOLD)
            summary.hits.update(name for _item_id, name in new)
        if len(rows) < batch:
            break
    return summary


# --- delivery -----------------------------------------------------------------------------------


@dataclass
class DeliverySummary:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    targets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"planned": self.planned, "sent": self.sent, "failed": self.failed, "dead": self.dead,
                "targets": self.targets, "errors": self.errors}


def delivery_cycle(ctx: Context, *, now: datetime, flush: bool = False) -> DeliverySummary:
    summary = DeliverySummary()
    plan_deliveries(ctx, now=now, flush=flush, summary=summary)
    asyncio.run(send_due(ctx, now=now, summary=summary))
    ctx.last["delivery"] = {"at": now.isoformat(), **summary.as_dict(), "errors": len(summary.errors),
                            "targets": len(summary.targets)}
    log.info("delivery cycle done: %d planned, %d sent, %d failed, %d dead",
             summary.planned, summary.sent, summary.failed, summary.dead)
    return summary


def plan_deliveries(ctx: Context, *, now: datetime, flush: bool, summary: DeliverySummary) -> None:
    """Render and enqueue one message per due subscription that has undelivered hits."""
    titles = watchlist_titles(ctx)
    extras = _DigestExtras(ctx, now)
    with session_scope(ctx.engine) as session:
        rows = store.get_subscriptions(session)
    for cfg in ctx.settings.subscriptions:
        row = rows.get(cfg.name)
        if row is None or row.id is None:
            continue
        schedule = parse_schedule(cfg.schedule, cfg.timezone)
        due = schedule.immediate or flush or (row.next_due_at is not None and row.next_due_at <= now)
        if not due or in_quiet_hours(cfg.quiet_hours, now, load_zone(cfg.timezone)):
            continue  # a digest due in quiet hours stays due and goes out when they end
        try:
            # One transaction: claim, render, enqueue, advance. Another worker's claim on the same
            # row waits for this commit and then finds the lease taken (or, after a crash, free again).
            with session_scope(ctx.engine) as session:
                if not store.claim_subscription(session, row.id, now=now, lease_seconds=DELIVERY_LEASE_SECONDS):
                    continue
                since = row.created_at or now
                hits = store.undelivered_hits(session, row.id, cfg.watchlists, since=since,
                                              limit=MAX_HITS_PER_PLAN, min_score=cfg.min_score)
                if hits:
                    digest = build_subscription_digest(session, ctx, cfg, hits, titles, now=now, extras=extras)
                    summary.planned += _enqueue(session, ctx, cfg, row.id, digest, now=now)
                next_due = None if schedule.immediate else schedule.next_due(now)
                store.finish_subscription_plan(session, row.id, now=now, next_due_at=next_due)
        except Exception as exc:  # one subscription's failure never blocks the others
            log.exception("planning failed", extra={"subscription": cfg.name})
            summary.errors.append(f"{cfg.name}: {exc}")


def watchlist_titles(ctx: Context) -> dict[str, str]:
    result = ctx.watchlists.result
    if result is None:
        return {}
    return {w.name: w.title for w in result.watchlists if getattr(w, "title", None)}


class _DigestExtras:
    """The calendar and sources notes, computed once per cycle (per time zone for the calendar)."""

    def __init__(self, ctx: Context, now: datetime) -> None:
        self.ctx, self.now = ctx, now
        self._sources: tuple[SourceProblem, ...] | None = None
        self._coming: dict[str, tuple[ComingUp, ...]] = {}

    def sources(self, session: Session) -> tuple[SourceProblem, ...]:
        if self._sources is None:
            self._sources = tuple(
                SourceProblem(name=f.name or display_host(f.url), host=display_host(f.url), problem=redact(problem))
                for f, problem in store.problem_feeds(session, now=self.now,
                                                      failing_for=self.ctx.settings.source_problem_after)
            )
        return self._sources

    def coming_up(self, zone_name: str) -> tuple[ComingUp, ...]:
        if zone_name not in self._coming:
            result, days = self.ctx.watchlists.result, self.ctx.settings.coming_up_days
            today = self.now.astimezone(load_zone(zone_name)).date()
            self._coming[zone_name] = tuple(
                ComingUp(u.date, u.name, u.years) for u in upcoming(result.calendar, today, days)
            ) if result is not None and days else ()
        return self._coming[zone_name]


def build_subscription_digest(
    session: Session, ctx: Context, cfg: SubscriptionConfig, hits: list[StoredHit], titles: dict[str, str], *,
    now: datetime, extras: _DigestExtras | None = None,
) -> Digest:
    """The digest value for these hits, with the calendar's coming-up notes and failing sources."""
    extras = extras or _DigestExtras(ctx, now)
    digest = build_digest(cfg.name, hits, now=now, zone=load_zone(cfg.timezone), zone_name=cfg.timezone,
                          titles=titles, order=cfg.watchlists, language=cfg.language)
    return replace(digest, coming_up=extras.coming_up(cfg.timezone), sources=extras.sources(session))


def example_for(ctx: Context, cfg: SubscriptionConfig, *, now: datetime, test: bool) -> Digest:
    """Made-up entries in the subscription's own layout, zone and spelling (a test or an example)."""
    return example_digest(cfg.name, cfg.watchlists, now=now, zone=load_zone(cfg.timezone), zone_name=cfg.timezone,
                          titles=watchlist_titles(ctx), language=cfg.language, test=test)


def send_test_message(ctx: Context, cfg: SubscriptionConfig, *, now: datetime) -> str:
    """Send a clearly marked test message through the subscription's real transport; returns where it went.

    Nothing is recorded in the outbox: a test carries no hits and is never retried.
    Raises DeliveryError when the transport refuses it.
    """
    digest = example_for(ctx, cfg, now=now, test=True)
    key = f"test_{uuid.uuid4().hex}"
    if cfg.webhook is not None:
        if cfg.webhook.format == "json":
            payload = webhook_payload(digest, delivery_key=key)
            payload.update(type="monitor.test", test=True, notice=digest.notice)
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        else:
            body = render_chat(digest, cfg.webhook.format, delivery_key=key)[0]
        return asyncio.run(_send_once(ctx, "webhook", Outgoing(key=key, subscription=cfg.name, target=cfg.webhook.url,
                                                               payload=body, created_at=now, config=cfg), now=now))
    if cfg.ntfy is not None:
        title, text = render_ntfy(digest)
        return asyncio.run(_send_once(ctx, "ntfy", Outgoing(key=key, subscription=cfg.name, target=cfg.ntfy.url,
                                                            payload=text, created_at=now, subject=title, config=cfg),
                                      now=now))
    settings = ctx.settings
    sender = settings.smtp.from_ if settings.smtp else "monitor@localhost"
    recipients = list(cfg.email or [])
    rendered = render_email(digest)
    payload_bytes = compose(subject=rendered.subject, text=rendered.text, html=rendered.html, sender=sender,
                            recipients=recipients, key=key, date=now,
                            extra_headers=_unsubscribe_headers(settings, cfg.name, recipients))
    return asyncio.run(_send_once(ctx, "email", Outgoing(key=key, subscription=cfg.name, target=json.dumps(recipients),
                                                         payload=payload_bytes, created_at=now, config=cfg), now=now))


async def _send_once(ctx: Context, kind: str, message: Outgoing, *, now: datetime) -> str:
    policy = ctx.webhook_policy
    async with build_client(policy) as client:
        return await Transports(TransportDeps(ctx.settings, client, policy)).send(kind, message, now=now)


def _enqueue(session: Session, ctx: Context, cfg: SubscriptionConfig, sub_id: int, digest: Digest, *,
             now: datetime) -> int:
    """Render and store the messages for one digest; returns how many deliveries were enqueued."""
    if cfg.webhook is not None:
        if cfg.webhook.format == "json":
            key = f"msg_{uuid.uuid4().hex}"
            parts = [(render_webhook(digest, delivery_key=key), digest.hit_ids, key)]
        else:  # chat platforms: one delivery per message, split to the platform's limits
            parts = [(body, hit_ids, f"msg_{uuid.uuid4().hex}")
                     for body, hit_ids in render_chat_parts(digest, cfg.webhook.format)]
        for body, hit_ids, key in parts:
            store.enqueue_delivery(session, subscription_id=sub_id, key=key, transport="webhook",
                                   subject=f"{len(hit_ids)} hits", payload=body, recipients=cfg.webhook.url,
                                   hit_ids=hit_ids, now=now)
        return len(parts)
    if cfg.ntfy is not None:
        ntfy_parts = split_digest(digest, cfg.max_items)
        for part in ntfy_parts:
            title, text = render_ntfy(part)
            store.enqueue_delivery(session, subscription_id=sub_id, key=f"msg_{uuid.uuid4().hex}", transport="ntfy",
                                   subject=title, payload=text, recipients=cfg.ntfy.url, hit_ids=part.hit_ids, now=now)
        return len(ntfy_parts)
    settings = ctx.settings
    sender = settings.smtp.from_ if settings.smtp else "monitor@localhost"
    # An address that unsubscribed (stored in the database) wins over the config's list.
    gone = store.unsubscribed_addresses(session, cfg.name)
    recipients = [address for address in cfg.email or [] if address.lower() not in gone]
    if not recipients:
        return 0
    messages = split_digest(digest, cfg.max_items)
    for part in messages:
        key = f"msg_{uuid.uuid4().hex}"
        rendered = render_email(part)
        payload = compose(subject=rendered.subject, text=rendered.text, html=rendered.html, sender=sender,
                          recipients=recipients, key=key, date=now,
                          extra_headers=_unsubscribe_headers(settings, cfg.name, recipients))
        store.enqueue_delivery(session, subscription_id=sub_id, key=key, transport="email",
                               subject=rendered.subject, payload=payload, recipients=json.dumps(recipients),
                               hit_ids=part.hit_ids, now=now)
    return len(messages)


def _unsubscribe_headers(settings: Settings, subscription: str, recipients: list[str]) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe, when a public base URL and a signing secret are configured."""
    if not settings.base_url or settings.unsubscribe_secret is None or len(recipients) != 1:
        # One message to several addresses cannot carry a per-address link.
        return {}
    token = make_token(settings.unsubscribe_secret.get_secret_value().encode(), subscription, recipients[0])
    return {
        "List-Unsubscribe": f"<{settings.base_url.rstrip('/')}/unsubscribe/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery: Delivery
    sub_name: str
    target: str | None = None
    error: DeliveryError | None = None


class _SendClock:
    """The time of one step of a delivery cycle: the cycle's ``now`` plus the time elapsed since.

    Claims, signatures and records use it, so a long batch signs each webhook with a fresh
    timestamp and each lease starts when its delivery is claimed, while the cycle's start
    stays a parameter (tests and replays pass it; ``monotonic`` is injectable).
    """

    def __init__(self, start: datetime, monotonic: Callable[[], float]) -> None:
        self.start, self.monotonic, self.origin = start, monotonic, monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=max(0.0, self.monotonic() - self.origin))


@dataclass(frozen=True)
class _Senders:
    """What one delivery cycle sends with: transports, the configured subscriptions, names by id."""

    transports: Transports
    names: dict[int, str]
    configured: dict[str, SubscriptionConfig]


async def send_due(ctx: Context, *, now: datetime, summary: DeliverySummary,
                   ids: list[int] | None = None) -> None:
    """Send every delivery that was due when the cycle began; never waits for a later retry.

    ``delivery_concurrency`` senders send and record one delivery at a time; deliveries are
    claimed a few at a time (one per sender), just before they are sent, so a lease starts at
    most one send before its delivery goes out and a long batch never lets another worker
    re-claim what is still being sent. Each outcome is recorded as soon as it is known: a crash
    re-sends at most the deliveries in flight, with the same idempotency keys. One delivery's
    failure, of whatever kind, is that delivery's outcome and never stops the others.
    """
    settings = ctx.settings
    clock = _SendClock(now, ctx.monotonic)
    with session_scope(ctx.engine) as session:
        names = {row.id: row.name for row in store.get_subscriptions(session).values() if row.id is not None}
    policy = ctx.webhook_policy
    async with build_client(policy) as client:
        senders = _Senders(
            transports=Transports(TransportDeps(settings, client, policy)),
            names=names, configured={sub.name: sub for sub in settings.subscriptions},
        )

        # Claimed but not yet started: never more than one delivery per sender, so none waits longer
        # than one send for a free sender, far inside its lease. No await between a check and its
        # update, so the senders (tasks on one loop) cannot race on these.
        waiting: list[Delivery] = []
        exhausted = False
        chunk = min(settings.delivery_concurrency, settings.delivery_batch)

        async def sender() -> None:
            nonlocal exhausted
            while True:
                if not waiting and not exhausted:
                    waiting.extend(store.claim_due_deliveries(
                        ctx.engine, now=clock(), due_by=now, limit=chunk, ids=ids,
                        lease_seconds=DELIVERY_LEASE_SECONDS))
                    exhausted = not waiting
                if not waiting:
                    return
                outcome = await _send_one(waiting.pop(0), senders, clock)
                _record_outcome(ctx, outcome, now=clock(), summary=summary)

        await asyncio.gather(*(sender() for _ in range(settings.delivery_concurrency)))


async def _send_one(delivery: Delivery, senders: _Senders, clock: _SendClock) -> _Outcome:
    """Send one delivery; every exception becomes its outcome (a bug or an odd receiver costs one)."""
    sub_name = senders.names.get(delivery.subscription_id, "?")
    try:
        assert delivery.created_at is not None
        message = Outgoing(key=delivery.key, subscription=sub_name, target=delivery.recipients,
                           payload=delivery.payload, created_at=delivery.created_at, subject=delivery.subject or "",
                           config=senders.configured.get(sub_name))
        target = await senders.transports.send(delivery.transport, message, now=clock())
    except DeliveryError as exc:
        return _Outcome(delivery, sub_name, error=exc)
    except Exception as exc:
        log.debug("unexpected error sending a delivery", exc_info=True,
                  extra={"subscription": sub_name, "delivery_id": delivery.id})
        error = DeliveryError(f"{delivery.transport} delivery failed unexpectedly: {str(exc) or 'no detail'}; "
                              "it will be retried")
        return _Outcome(delivery, sub_name, error=error)
    return _Outcome(delivery, sub_name, target=target)


def _record_outcome(ctx: Context, out: _Outcome, *, now: datetime, summary: DeliverySummary) -> None:
    """Record one outcome in its own transaction, as soon as it is known."""
    d = out.delivery
    assert d.id is not None and d.created_at is not None
    retry: datetime | None = None
    if out.error is not None:
        retry = next_attempt_at(ctx.retry, attempts=d.attempts + 1, created_at=d.created_at, now=now,
                                rand=ctx.rand(), retry_after=out.error.retry_after, permanent=out.error.permanent)
    try:
        with session_scope(ctx.engine) as session:
            if out.error is None:
                store.record_delivery_sent(session, d.id, now=now, target=out.target or "")
            else:
                store.record_delivery_failure(session, d.id, error=str(out.error), next_attempt_at=retry)
    except Exception as exc:
        # Sent but not recorded: the lease expires and the delivery goes out again with the
        # same idempotency key (webhook-id / Message-ID), so the receiver can drop the repeat.
        log.error("delivery outcome not recorded (%s); it will be re-sent with the same key", exc,
                  extra={"subscription": out.sub_name, "delivery_id": d.id})
        summary.errors.append(f"{out.sub_name}: delivery {d.id} sent but not recorded (will re-send with the "
                              "same key)")
        return
    if out.error is None:
        summary.sent += 1
        summary.targets.append(out.target or "")
        log.info("delivery sent", extra={"subscription": out.sub_name, "delivery_id": d.id})
        return
    if retry is None:
        summary.dead += 1
    else:
        summary.failed += 1
    summary.errors.append(f"{out.sub_name}: {out.error}")
    log.warning("delivery failed: %s", out.error, extra={
        "subscription": out.sub_name, "delivery_id": d.id, "attempt": d.attempts + 1})


__all__ = [
    "Context",
    "DeliverySummary",
    "PollSummary",
    "delivery_cycle",
    "open_context",
    "poll_cycle",
    "utcnow",
]
