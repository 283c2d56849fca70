"""One poll cycle: claim due feeds, fetch, parse, store new items, match them.

Per-feed failures are caught here, logged once, recorded on the feed row, and the cycle goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from monitor import rhythm, store
from monitor.db import reader, session_scope
from monitor.domain import Item, Match
from monitor.errors import (
    FetchError,
    HTTPStatusError,
)
from monitor.ingest.cluster import StorySignature
from monitor.ingest.fetch import FeedState, FetchResult, build_client, fetch_feed
from monitor.ingest.prepare import (
    MatchPlan,
    Prepared,
    alertable_flags,
    document_for,
    prepare_feed,
    prepare_in_worker,
    reference_date,
    story_signatures,
    versions_key,
)
from monitor.match import Matcher
from monitor.pipeline.context import (
    STORY_THRESHOLD,
    STORY_WINDOW,
    Context,
    CycleStopped,
)
from monitor.pipeline.rematch import catch_up
from monitor.pipeline.writer import FeedWrite, GroupBatch, GroupWriter, Written
from monitor.redact import redact

log = logging.getLogger("monitor")

FEED_LEASE_SECONDS = 300
MAX_BACKOFF_SECONDS = rhythm.MAX_BACKOFF_SECONDS
# Most feeds claimed at a time: several workers share a large cycle (each claims a batch, works it,
# claims the next). :func:`batch_limits` shrinks it further so that a batch fits inside its lease.
POLL_BATCH = 250
PARALLEL_MIN_FEEDS = 20  # below this a cycle parses in-process (starting workers would cost more)
STOP_CHECK_SECONDS = 0.2  # how often a poll in flight looks for a shutdown request


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
        asyncio.run(_poll_claims(ctx, matcher, now=now, summary=summary, match_key=match_key, all_feeds=all_feeds))
    except CycleStopped:
        # Feeds claimed but not finished go back at once (their due time is unchanged), so
        # another worker, or this one after a restart, polls them without waiting for the lease.
        with session_scope(ctx.engine) as session:
            released = store.release_feed_leases(session, owner=ctx.owner)
        log.info("poll cycle stopped for shutdown; %d unfinished feeds released", released)
    else:
        # A feed whose outcome could not be recorded keeps no lease past its cycle.
        with session_scope(ctx.engine) as session:
            store.release_feed_leases(session, owner=ctx.owner)
    summary.duration_ms = (time.perf_counter() - started) * 1000
    ctx.last["poll"] = {"at": now.isoformat(), **summary.as_dict(), "errors": len(summary.errors)}
    log.info(
        "poll cycle done: %d feeds, %d new items, %d hits, %d failed",
        summary.feeds_polled, summary.new_items, sum(summary.hits.values()), summary.feeds_failed,
        extra={"duration_ms": round(summary.duration_ms)},
    )
    return summary


def batch_limits(concurrency: int, per_host_limit: int, deadline: float, lease_seconds: float) -> tuple[int, int]:
    """(feeds per claim, feeds of one host per claim) so that a batch finishes inside its lease.

    A batch takes at most one fetch deadline per round of ``concurrency`` fetches, and per round
    of ``per_host_limit`` fetches to one host; one deadline of the lease is left for parsing and
    storing. With a lease shorter than two deadlines a batch is one round: its lease is renewed
    while it runs (:class:`_LeaseRenewal`), so it holds however long the round takes.
    """
    rounds = max(1, int(lease_seconds // deadline) - 1)
    return max(1, min(POLL_BATCH, concurrency * rounds)), max(1, per_host_limit * rounds)


class _LeaseRenewal:
    """Keeps this worker's feed leases alive while a batch runs, a third of a lease at a time.

    A worker that dies stops renewing, and its feeds are free once the lease has run out.
    """

    def __init__(self, ctx: Context, *, now: datetime, began: float) -> None:
        self.ctx, self.now, self.began = ctx, now, began

    async def run(self) -> None:
        lease = self.ctx.settings.feed_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            until = self.now + timedelta(seconds=self.ctx.monotonic() - self.began + lease)
            try:
                await asyncio.to_thread(store.renew_feed_leases, self.ctx.engine, owner=self.ctx.owner, until=until)
            except Exception:  # a database hiccup: the next renewal tries again, well inside the lease
                log.warning("could not renew feed leases; retrying", exc_info=True)


async def _poll_claims(
    ctx: Context, matcher: Matcher, *, now: datetime, summary: PollSummary, match_key: str | None,
    all_feeds: bool,
) -> None:
    """Claim due feeds a batch at a time and poll them, on one event loop and one HTTP client.

    The next batch is claimed while the last feeds of the current one are still fetched, so the
    fetch slots stay busy across batches (a claim is a short write, run on a thread). Finished
    feeds go to the :class:`GroupWriter`, which stores them while fetching and parsing go on.
    """
    policy = ctx.fetch_policy
    lease, began = ctx.settings.feed_lease_seconds, ctx.monotonic()
    batch, per_host = batch_limits(ctx.settings.poll_concurrency, policy.per_host_limit, policy.deadline, lease)
    refill = max(1, min(batch, ctx.settings.poll_concurrency) // 2)  # feeds left in flight when the next claim starts
    limit = asyncio.Semaphore(ctx.settings.poll_concurrency)
    loop = asyncio.get_running_loop()
    parallel = False  # parse in worker processes: once the cycle is large enough to pay for starting them

    def workers() -> ProcessPoolExecutor | None:
        # Started when the first feed needs parsing, not at the claim: an all-304 cycle starts none.
        return ctx.parse_pool() if parallel else None
    Done = tuple[store.ClaimedFeed, float, FetchResult | FetchError, Prepared | None]
    # The parse workers match too, with the watchlists they load from the same folder; they check
    # that what they loaded is the version this cycle uses (else this process matches).
    watchlists = (str(ctx.watchlists.folder.resolve()), versions_key(ctx.watchlists.versions))

    async def one(feed: store.ClaimedFeed) -> Done:
        async with limit:
            started = ctx.monotonic()
            try:
                state = FeedState(url=feed.fetch_url, etag=feed.etag, last_modified=feed.last_modified)
                result = await fetch_feed(client, state, policy)
            except FetchError as exc:
                return feed, started, exc, None
            except Exception as exc:  # a bug or an odd server must cost one feed, not the cycle
                log.exception("unexpected error fetching a feed", extra={"feed_url": feed.url})
                return feed, started, FetchError(f"{feed.url}: unexpected error: {exc!r}", url=feed.url), None
        prepared = None
        content = None if result.not_modified else result.content
        if content is not None and (pool := workers()) is not None:
            plan = MatchPlan(*watchlists, first_poll=feed.first_poll,
                             window_start=now - timedelta(seconds=feed.alert_window_seconds))
            try:  # parsing and matching are CPU-bound: the worker process uses the other core meanwhile
                prepared = await loop.run_in_executor(pool, prepare_in_worker, content, result.final_url,
                                                      result.content_type, feed.url, now, plan,
                                                      *feed_options(ctx, feed))
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): new ones start
                lost_workers(pool, exc)
            except Exception:
                log.exception("parse worker failed; parsing here", extra={"feed_url": feed.url})
        return feed, started, result, prepared

    def lost_workers(pool: ProcessPoolExecutor, exc: BrokenProcessPool) -> None:
        if ctx.discard_parse_pool(pool):  # once per pool, not once per feed that was waiting for it
            log.error("a parse worker process died (%s); the feeds it held are parsed in this process and new "
                      "workers start for the next ones", exc)

    def claim() -> list[store.ClaimedFeed]:
        # ``now`` is when the cycle started; a lease runs from the real time of its claim.
        elapsed = max(0.0, ctx.monotonic() - began)
        return store.claim_due_feeds(
            ctx.engine, now=now, owner=ctx.owner, lease_seconds=lease + int(elapsed), limit=batch,
            include_not_due=all_feeds, not_polled_since=now if all_feeds else None, per_host=per_host,
        )

    async def store_one(done: Done) -> None:
        feed, started, outcome, prepared = done
        summary.feeds_polled += 1
        signatures: dict[str, StorySignature] = {}
        unsigned: list[Item] = []
        try:
            write = _store_outcome(ctx, feed, outcome, matcher, now=now, summary=summary, started=started,
                                   reading=reading, prepared=prepared, match_key=match_key,
                                   signatures=signatures, unsigned=unsigned)
            pool = workers() if unsigned else None
            if pool is not None:  # the hit items' story signatures, on the other core
                try:
                    signatures.update(await loop.run_in_executor(
                        pool, story_signatures, [(it.fingerprint, it.title, it.summary) for it in unsigned]))
                except BrokenProcessPool as exc:  # the writer computes what is missing
                    lost_workers(pool, exc)
                except Exception:  # the writer computes what is missing
                    log.exception("parse worker failed; signing here", extra={"feed_url": feed.url})
        except CycleStopped:
            raise
        except Exception as exc:  # one bad feed never stops the cycle
            log.exception("feed processing failed", extra={"feed_url": feed.url, "feed_id": feed.id})
            write = _record_failure(ctx, feed, None, f"internal error: {exc}", now=now, summary=summary,
                                    started=started)
        await writer.add(write)

    async def work() -> None:
        nonlocal parallel
        running: set[asyncio.Future[Done]] = set()
        claimed_so_far, exhausted = 0, False
        try:
            while True:
                if not exhausted and len(running) <= refill and not ctx.stopping.is_set():
                    claimed = await asyncio.to_thread(claim)
                    exhausted = not claimed
                    claimed_so_far += len(claimed)
                    # Small cycles parse here: starting worker processes would cost more than they save.
                    parallel = claimed_so_far >= PARALLEL_MIN_FEEDS
                    running.update(asyncio.ensure_future(one(feed)) for feed in claimed)
                if not running:
                    return
                finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    await store_one(task.result())
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def finish(session: Session, batch: GroupBatch) -> None:
        store.insert_hits(session, batch.hits, now=now)  # one statement for the group's hits, not one per feed
        store.index_for_search(session, batch.new_items)
        # Stories only matter for what is delivered: the items that hit a watchlist (a few in a
        # hundred) are grouped, not the whole stream, which keeps the story index small and writes cheap.
        store.assign_stories(session, [(item_id, item) for item_id, item, _sig in batch.stories], now=now,
                             window=STORY_WINDOW, threshold=STORY_THRESHOLD,
                             precomputed={it.fingerprint: sig for _id, it, sig in batch.stories if sig is not None})

    writer = GroupWriter(ctx.engine, ctx.monotonic, finish=finish)
    reading = reader(ctx.engine).connect()  # one connection for the cycle's "seen already?" reads
    renewing = asyncio.ensure_future(_LeaseRenewal(ctx, now=now, began=began).run())
    try:
        async with build_client(policy) as client:
            await _until_stopped(ctx, work())
    finally:
        try:
            await writer.drain()  # what finished is stored, at shutdown too
        finally:
            writer.close()
            reading.close()
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing


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


def _rhythm_policy(ctx: Context) -> rhythm.RhythmPolicy:
    return rhythm.RhythmPolicy(max_poll_interval=ctx.settings.max_poll_interval)


def _failure(
    ctx: Context, feed: store.ClaimedFeed, status: int | None, message: str, *, now: datetime,
    summary: PollSummary, retry_after: float | None = None,
) -> Written:
    """The state a failed poll leaves on the feed's row, and its report (counted and logged once stored)."""
    next_poll = rhythm.next_poll_at(rhythm.PollOutcome(failed=True, retry_after=retry_after), feed,
                                    _rhythm_policy(ctx), now, ctx.rand).at
    state = store.PollState(feed.id, now=now, status=status, error=message, next_poll_at=next_poll,
                            disable=status == 410)

    def report() -> None:
        summary.feeds_failed += 1
        summary.errors.append(redact(f"{feed.url}: {message}"))
        log.warning("feed fetch failed: %s", message, extra={"feed_url": feed.url, "feed_id": feed.id,
                                                              "status": status})
    return state, report


def _record_failure(
    ctx: Context, feed: store.ClaimedFeed, status: int | None, message: str, *, now: datetime,
    summary: PollSummary, started: float, retry_after: float | None = None,
) -> FeedWrite:
    written = _failure(ctx, feed, status, message, now=now, summary=summary, retry_after=retry_after)
    return FeedWrite(feed, started, lambda _session, _batch: written,
                     _internal_error(ctx, feed, now=now, summary=summary))


def _internal_error(ctx: Context, feed: store.ClaimedFeed, *, now: datetime,
                    summary: PollSummary) -> Callable[[Exception], Written]:
    return lambda exc: _failure(ctx, feed, None, f"internal error: {exc}", now=now, summary=summary)


def _store_outcome(
    ctx: Context, feed: store.ClaimedFeed, outcome: FetchResult | FetchError, matcher: Matcher, *,
    now: datetime, summary: PollSummary, started: float, reading: Connection, prepared: Prepared | None = None,
    match_key: str | None = None, signatures: dict[str, StorySignature] | None = None,
    unsigned: list[Item] | None = None,
) -> FeedWrite:
    """What storing this feed's outcome takes (parsed and matched here; written by the :class:`GroupWriter`).

    Story signatures are only needed for the items that hit (stories group what is delivered), so they
    are computed for those alone: ``unsigned`` receives the hit items whose signature ``signatures``
    (read when the write runs) lacks, for the caller to compute off the event loop; the write computes
    any still missing.
    """
    signatures = {} if signatures is None else signatures
    if isinstance(outcome, FetchError):
        message = str(outcome)
        if isinstance(outcome, HTTPStatusError) and outcome.status == 410:
            message += " (410 Gone: feed disabled; remove it from the config or re-add it to retry)"
        return _record_failure(ctx, feed, outcome.status, message, now=now, summary=summary, started=started,
                               retry_after=outcome.retry_after)
    # The URL the feed lives at now: a permanent redirect seen this time, or the move already followed.
    moved = outcome.permanent_redirect or (feed.moved_to if feed.fetch_url != feed.url else None)
    if outcome.not_modified or outcome.content is None:
        summary.not_modified += 1
        next_poll = rhythm.next_poll_at(rhythm.PollOutcome(hints=(outcome.max_age,)), feed, _rhythm_policy(ctx),
                                        now, ctx.rand).at
        state = store.PollState(feed.id, now=now, status=outcome.status, next_poll_at=next_poll, not_modified=True,
                                moved_to=moved)
        return FeedWrite(feed, started, lambda _session, _batch: (state, _nothing),
                         _internal_error(ctx, feed, now=now, summary=summary))
    if prepared is None:
        prepared = prepare_feed(outcome.content, outcome.final_url, outcome.content_type, feed.url, now,
                                *feed_options(ctx, feed), signatures=False)
    if prepared.error is not None:
        return _record_failure(ctx, feed, outcome.status, prepared.error, now=now, summary=summary, started=started)
    items = prepared.items
    alertable = alertable_flags(items, first_poll=feed.first_poll,
                                window_start=now - timedelta(seconds=feed.alert_window_seconds))
    # Match first, outside any write transaction, so the write lock is held for inserts only
    # (a slow item never makes other commands wait or fail with "database is locked"). A parse
    # worker has matched already (every alertable item: it cannot tell which are stored).
    if prepared.matches is not None:
        matches = prepared.matches
    else:
        matches = _match_unseen(ctx, items, alertable, matcher, now=now, reading=reading)
    signatures.update(prepared.signatures)
    if unsigned is not None:
        unsigned.extend(it for it in items if matches.get(it.fingerprint) and it.fingerprint not in signatures)
    fetched, parsed = outcome, prepared

    def apply(session: Session, batch: GroupBatch) -> Written:
        new = store.insert_new_items(session, feed.id, items, alertable=alertable, matched_with=match_key,
                                     index=False)  # indexed with the group's (GroupWriter)
        batch.new_items.extend(item_id for item_id, _item, _ok in new)
        hits: list[tuple[int, Match]] = []
        for item_id, item, ok in new:
            if ok:
                found = matches.get(item.fingerprint)
                if found is None:  # unseen a moment ago and matched only now: rare (pruned meanwhile)
                    found = matcher.match(document_for(item), on=reference_date(item, now))
                hits.extend((item_id, m) for m in found)
        batch.hits.extend(hits)  # stored with the group's (GroupWriter)
        hit_items = {item_id for item_id, _m in hits}  # their stories: assigned with the group's (GroupWriter)
        batch.stories.extend((item_id, item, signatures.get(item.fingerprint)) for item_id, item, _ok in new
                             if item_id in hit_items)
        ttl = parsed.ttl_minutes * 60 if parsed.ttl_minutes else None
        upcoming_poll = rhythm.next_poll_at(rhythm.PollOutcome(new_items=len(new), hints=(fetched.max_age, ttl)),
                                            feed, _rhythm_policy(ctx), now, ctx.rand)
        state = store.PollState(feed.id, now=now, status=fetched.status, etag=fetched.etag,
                                last_modified=fetched.last_modified, next_poll_at=upcoming_poll.at,
                                not_modified=False, moved_to=moved, new_items=len(new),
                                entry_gap_seconds=upcoming_poll.entry_gap_seconds,
                                note=_skipped_note(parsed.skipped))
        return state, lambda: _report_stored(summary, feed, items, parsed, len(new), hits)

    return FeedWrite(feed, started, apply, _internal_error(ctx, feed, now=now, summary=summary))


def _nothing() -> None:
    pass


def _report_stored(summary: PollSummary, feed: store.ClaimedFeed, items: list[Item], prepared: Prepared,
                   new: int, hits: list[tuple[int, Match]]) -> None:
    summary.new_items += new
    for _item_id, m in hits:
        summary.hits[m.watchlist] += 1
    if prepared.skipped:
        log.warning("feed read with entries skipped: %s", _skipped_note(prepared.skipped),
                    extra={"feed_url": feed.url, "feed_id": feed.id})
    log.info("feed polled", extra={"feed_url": feed.url, "feed_id": feed.id, "new_items": new,
                                   "hits": len(hits), "undated": sum(it.date_from_fetch for it in items)})


def _match_unseen(ctx: Context, items: list[Item], alertable: list[bool], matcher: Matcher, *,
                  now: datetime, reading: Connection) -> dict[str, list[Match]]:
    """Matches of the alertable items the database has not seen, by fingerprint; no write lock held.

    Items another worker inserts meanwhile are matched for nothing: the insert that follows
    tells which items are new, and only their matches become hits. ``reading``: the cycle's
    read-only connection; its transaction ends before matching (no snapshot held meanwhile).
    """
    try:
        known = store.known_fingerprints(reading, (it.fingerprint for it in items))
    finally:
        reading.rollback()
    matches: dict[str, list[Match]] = {}
    for item, ok in zip(items, alertable, strict=True):
        if ok and item.fingerprint not in known and item.fingerprint not in matches:
            ctx.check_stop()
            matches[item.fingerprint] = matcher.match(document_for(item), on=reference_date(item, now))
    return matches


def feed_options(ctx: Context, feed: store.ClaimedFeed) -> tuple[str | None, str | None]:
    """The feed's ``encoding:`` and ``timezone:`` settings (config feeds only; others have none)."""
    return ctx.feed_options(feed.url)


def _skipped_note(skipped: tuple[str, ...]) -> str | None:
    """"2 entries skipped: entry 3: ...; entry 7: ..." for the feed's row, or None when none was."""
    if not skipped:
        return None
    count = len(skipped)
    shown = "; ".join(skipped[:3]) + ("; ..." if count > 3 else "")
    return f"{count} {'entry' if count == 1 else 'entries'} skipped: {shown}"
