"""One poll cycle and one delivery cycle: the steps wired together.

The daemon's jobs and the one-shot commands (``poll --once``, ``deliver
--once``, ``run --once``) call exactly these functions; the time is always a
parameter. Per-feed and per-delivery failures are caught here, logged once,
recorded on their row, and the cycle goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor import store
from monitor.config import Settings, SubscriptionConfig
from monitor.db import current_revision, head_revision, make_engine, redact_url, session_scope, upgrade
from monitor.deliver.chat import render_chat_parts
from monitor.deliver.digest import ComingUp, Digest, SourceProblem, build_digest, split_digest
from monitor.deliver.email import FileTransport, OutgoingEmail, SmtpTransport, compose
from monitor.deliver.outbox import RetryPolicy, next_attempt_at
from monitor.deliver.render import render_email, render_webhook
from monitor.deliver.tokens import make_token
from monitor.deliver.webhook import OutgoingWebhook, WebhookTransport
from monitor.domain import Document, Item, Match, StoredHit
from monitor.errors import DatabaseError, DeliveryError, FetchError, HTTPStatusError, ParseError
from monitor.ingest.cluster import DEFAULT_THRESHOLD, StorySignature, signature_for
from monitor.ingest.fetch import FeedState, FetchPolicy, FetchResult, build_client, fetch_feed
from monitor.ingest.normalize import normalize_entry
from monitor.ingest.parse import parse_feed
from monitor.match import LoadResult, Matcher, load_watchlists
from monitor.match.anniversaries import upcoming
from monitor.models import Delivery
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
        stamp = self._files_stamp()
        if self.matcher is not None and stamp == self._stamp:
            return self.matcher
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
        try:
            matcher = Matcher.compile(result)
        except Exception:
            if self.matcher is None:
                raise
            log.exception("watchlists did not compile; keeping the previous ones")
            return self.matcher
        self.result, self.matcher = result, matcher
        return self.matcher

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


@dataclass
class Context:
    """What the cycles need, built once at the entry point."""

    settings: Settings
    engine: Engine
    watchlists: WatchlistSource
    owner: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rand: Callable[[], float] = random.random
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last: dict[str, object] = field(default_factory=dict)  # last cycles' summaries, for the heartbeat
    _pool: ProcessPoolExecutor | None = None

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
        s = self.settings
        return FetchPolicy(
            timeout=s.fetch_timeout, deadline=s.fetch_deadline, max_bytes=s.max_feed_bytes,
            user_agent=s.user_agent, allow_private_networks=s.allow_private_networks,
            allowed_networks=tuple(s.allowed_networks),
            # file: URLs only ever come from the config file (never from feed content).
            allow_file_urls=True,
        )

    @property
    def webhook_policy(self) -> FetchPolicy:
        return FetchPolicy(timeout=15.0, deadline=30.0, max_bytes=64 * 1024, user_agent=self.settings.user_agent,
                           allow_private_networks=self.settings.allow_private_networks,
                           allowed_networks=tuple(self.settings.allowed_networks))


def open_context(settings: Settings, *, now: datetime, migrate: bool | None = None) -> Context:
    """Connect, check or apply migrations, load watchlists, and sync config into the database.

    ``migrate=None`` (the default) upgrades a SQLite database in place (one process owns it)
    and refuses to start on a PostgreSQL database that is not at the code's revision: with
    several workers, migrations run once, by ``monitor db upgrade``, not by whichever starts first.
    """
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
    source = WatchlistSource(settings.watchlists_dir)
    source.get()
    retry = settings.delivery_retry
    ctx = Context(settings=settings, engine=engine, watchlists=source,
                  owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
                  retry=RetryPolicy(first_delay=retry.first_delay, max_delay=retry.max_delay, horizon=retry.horizon))
    with session_scope(engine) as session:
        store.sync_config(session, settings, now)
    return ctx


def beat(ctx: Context, *, now: datetime) -> None:
    """Record this process's heartbeat (``monitor status`` reads it)."""
    with session_scope(ctx.engine) as session:
        store.heartbeat(session, owner=ctx.owner, hostname=socket.gethostname(), pid=os.getpid(),
                        started_at=ctx.started_at, now=now, info=ctx.last)


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
    while True:
        claimed = store.claim_due_feeds(
            ctx.engine, now=now, owner=ctx.owner, lease_seconds=FEED_LEASE_SECONDS, limit=POLL_BATCH,
            include_not_due=all_feeds, not_polled_since=now if all_feeds else None,
        )
        if not claimed:
            break
        asyncio.run(_poll_feeds(ctx, claimed, matcher, now=now, summary=summary))
        if len(claimed) < POLL_BATCH:
            break
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
    ctx: Context, feeds: list[store.ClaimedFeed], matcher: Matcher, *, now: datetime, summary: PollSummary
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
                                                      result.content_type, feed.url, now)
            except Exception:
                log.exception("parse worker failed; parsing here", extra={"feed_url": feed.url})
        return feed, result, prepared

    writes = _StateWrites(ctx.engine)
    try:
        async with build_client(policy) as client:
            for next_done in asyncio.as_completed([one(f) for f in feeds]):
                feed, outcome, prepared = await next_done
                summary.feeds_polled += 1
                try:
                    _store_outcome(ctx, feed, outcome, matcher, now=now, summary=summary, writes=writes,
                                   prepared=prepared)
                except Exception as exc:  # one bad feed never stops the cycle
                    log.exception("feed processing failed", extra={"feed_url": feed.url, "feed_id": feed.id})
                    _record_failure(ctx, feed, None, f"internal error: {exc}", now=now, summary=summary,
                                    writes=writes)
    finally:
        writes.flush()


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
    summary.errors.append(f"{feed.url}: {message}")
    log.warning("feed fetch failed: %s", message, extra={"feed_url": feed.url, "feed_id": feed.id,
                                                          "status": status})
    next_poll = _backoff(feed, now, retry_after, ctx.rand())
    writes.add(lambda session: store.record_poll_failure(
        session, feed.id, now=now, status=status, error=message, next_poll_at=next_poll, disable=status == 410,
    ))


def _store_outcome(
    ctx: Context, feed: store.ClaimedFeed, outcome: FetchResult | FetchError, matcher: Matcher, *,
    now: datetime, summary: PollSummary, writes: _StateWrites, prepared: Prepared | None = None,
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
        try:
            parsed = parse_feed(outcome.content, url=outcome.final_url, content_type=outcome.content_type)
        except ParseError as exc:
            _record_failure(ctx, feed, outcome.status, str(exc), now=now, summary=summary, writes=writes)
            return
        prepared = Prepared([normalize_entry(e, feed_url=feed.url, now=now) for e in parsed.entries], {},
                            parsed.ttl_minutes)
    elif prepared.error is not None:
        _record_failure(ctx, feed, outcome.status, prepared.error, now=now, summary=summary, writes=writes)
        return
    items = prepared.items
    window_start = now - timedelta(seconds=feed.alert_window_seconds)
    alertable = [
        (not feed.first_poll) or (it.published_at is not None and it.published_at >= window_start)
        for it in items
    ]
    with session_scope(ctx.engine) as session:
        new = store.insert_new_items(session, feed.id, items, alertable=alertable)
        hits: list[tuple[int, Match]] = []
        for item_id, item, ok in new:
            if ok:
                hits.extend((item_id, m) for m in matcher.match(_document(item), on=_reference_date(item, now)))
        store.insert_hits(session, hits, now=now)
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
                                  moved_to=moved, new_items=len(new), entry_gap_seconds=gap)
    summary.new_items += len(new)
    for _item_id, m in hits:
        summary.hits[m.watchlist] += 1
    log.info("feed polled", extra={"feed_url": feed.url, "feed_id": feed.id, "new_items": len(new),
                                   "hits": len(hits)})


@dataclass(frozen=True, slots=True)
class Prepared:
    """A fetched feed turned into items off the main process (parse, normalise, story signatures)."""

    items: list[Item]
    signatures: dict[str, StorySignature]  # by fingerprint
    ttl_minutes: int | None
    error: str | None = None


def prepare_feed(content: bytes, url: str, content_type: str | None, feed_url: str, now: datetime) -> Prepared:
    """The CPU-bound part of polling one feed; runs in a worker process. Pure."""
    try:
        parsed = parse_feed(content, url=url, content_type=content_type)
    except ParseError as exc:
        return Prepared([], {}, None, str(exc))
    items = [normalize_entry(e, feed_url=feed_url, now=now) for e in parsed.entries]
    signatures = {it.fingerprint: signature_for(it.title, it.summary) for it in items}
    return Prepared(items, signatures, parsed.ttl_minutes)


def _document(item: Item) -> Document:
    return Document(title=item.title, summary=item.summary, content=item.content, published=item.published_at)


def _reference_date(item: Item, now: datetime) -> date:
    return (item.published_at or now).date()


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
                SourceProblem(name=f.name or f.url, url=f.url, problem=problem)
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
                          titles=titles, order=cfg.watchlists)
    return replace(digest, coming_up=extras.coming_up(cfg.timezone), sources=extras.sources(session))


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


async def send_due(ctx: Context, *, now: datetime, summary: DeliverySummary,
                   ids: list[int] | None = None) -> None:
    """Send every delivery whose attempt is due; never waits for a later retry.

    Transports are built once per cycle; outcomes are recorded per claimed batch in one
    transaction (a crash before that commit re-sends the batch with the same idempotency keys).
    """
    settings = ctx.settings
    with session_scope(ctx.engine) as session:
        names = {row.id: row.name for row in store.get_subscriptions(session).values()}
    secrets = {sub.name: sub.webhook.secret.get_secret_value() for sub in settings.subscriptions
               if sub.webhook is not None and sub.webhook.secret is not None}
    email: SmtpTransport | FileTransport = (
        SmtpTransport(settings.smtp) if settings.smtp else FileTransport(settings.outbox_dir)
    )
    sender = settings.smtp.from_ if settings.smtp else "monitor@localhost"
    policy = ctx.webhook_policy
    limit = asyncio.Semaphore(settings.delivery_concurrency)

    async def one(delivery: Delivery, webhooks: WebhookTransport) -> _Outcome:
        assert delivery.created_at is not None
        sub_name = names.get(delivery.subscription_id, "?")
        async with limit:
            try:
                if delivery.transport == "webhook":
                    target = await webhooks.send(
                        OutgoingWebhook(key=delivery.key, url=delivery.recipients, body=delivery.payload,
                                        secret=secrets.get(sub_name)),
                        now=now,
                    )
                else:
                    message = OutgoingEmail(key=delivery.key, subscription=sub_name, sender=sender,
                                            recipients=json.loads(delivery.recipients), payload=delivery.payload,
                                            created_at=delivery.created_at)
                    target = await asyncio.to_thread(email.send, message)
            except DeliveryError as exc:
                return _Outcome(delivery, sub_name, error=exc)
            return _Outcome(delivery, sub_name, target=target)

    async with build_client(policy) as client:
        webhooks = WebhookTransport(client, policy)
        while True:
            claimed = store.claim_due_deliveries(ctx.engine, now=now, lease_seconds=DELIVERY_LEASE_SECONDS,
                                                 limit=settings.delivery_batch, ids=ids)
            if not claimed:
                break
            outcomes = await asyncio.gather(*(one(d, webhooks) for d in claimed))
            _record_outcomes(ctx, outcomes, now=now, summary=summary)
            if len(claimed) < settings.delivery_batch:
                break


def _record_outcomes(ctx: Context, outcomes: list[_Outcome], *, now: datetime, summary: DeliverySummary) -> None:
    retries: dict[int, datetime | None] = {}
    for out in outcomes:
        if out.error is None:
            continue
        d = out.delivery
        assert d.id is not None and d.created_at is not None
        retries[d.id] = next_attempt_at(ctx.retry, attempts=d.attempts + 1, created_at=d.created_at, now=now,
                                        rand=ctx.rand(), retry_after=out.error.retry_after,
                                        permanent=out.error.permanent)
    try:
        with session_scope(ctx.engine) as session:
            for out in outcomes:
                assert out.delivery.id is not None
                if out.error is None:
                    store.record_delivery_sent(session, out.delivery.id, now=now, target=out.target or "")
                else:
                    store.record_delivery_failure(session, out.delivery.id, error=str(out.error),
                                                  next_attempt_at=retries[out.delivery.id])
    except Exception:
        # Sent but not recorded: the leases expire and these deliveries go out again with the
        # same idempotency keys (webhook-id / Message-ID), so receivers can drop the repeats.
        log.exception("deliveries sent but not recorded; they will be re-sent with the same keys")
        summary.errors.append(f"{len(outcomes)} deliveries sent but not recorded (will re-send with the same keys)")
        return
    for out in outcomes:
        if out.error is None:
            summary.sent += 1
            summary.targets.append(out.target or "")
            log.info("delivery sent", extra={"subscription": out.sub_name, "delivery_id": out.delivery.id})
            continue
        if retries[out.delivery.id or 0] is None:
            summary.dead += 1
        else:
            summary.failed += 1
        summary.errors.append(f"{out.sub_name}: {out.error}")
        log.warning("delivery failed: %s", out.error, extra={
            "subscription": out.sub_name, "delivery_id": out.delivery.id, "attempt": out.delivery.attempts + 1})


__all__ = [
    "Context",
    "DeliverySummary",
    "PollSummary",
    "delivery_cycle",
    "open_context",
    "poll_cycle",
    "utcnow",
]
