"""A feed's rhythm: when it is polled next, how it backs off, when it needs a look.

Pure: the feed's state, the outcome of a poll, the time and the random draw are parameters,
so every rule here is tested with a fixed clock and a fixed draw. The same backoff with
jitter serves failed polls and failed deliveries (:mod:`monitor.deliver.outbox`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

MAX_BACKOFF_SECONDS = 24 * 3600  # a failing feed is still tried at least daily: it never gives up for good
MAX_BACKOFF_DOUBLINGS = 8
MOVE_HOLD_SECONDS = 7 * 86400  # a permanent redirect must hold this long before the feed is polled at its new URL
SILENT_FACTOR = 4  # silent when no new item for this many times the usual gap ...
SILENT_MIN_SECONDS = 2 * 86400  # ... and for at least this long
JITTER = 0.2  # ± fraction of a backoff delay, so retries after one outage spread out


def backoff_delay(first: float, doublings: int, *, cap: float, rand: float, factor: float = 2.0,
                  jitter: float = JITTER) -> float:
    """``first`` × ``factor`` ** ``doublings``, capped at ``cap``, then spread by ± ``jitter``.

    ``rand`` is a uniform draw in [0, 1). ``doublings`` is bounded, so no count of failures
    overflows the arithmetic (2**64 × any first delay is far past any cap).
    """
    delay = min(cap, first * factor ** min(max(0, doublings), 64))
    return delay * (1 + jitter * (2 * rand - 1))


class FeedState(Protocol):
    """What the rhythm needs to know about a feed (a claimed feed carries it)."""

    @property
    def interval_seconds(self) -> int: ...
    @property
    def error_count(self) -> int: ...
    @property
    def first_poll(self) -> bool: ...
    @property
    def last_entry_at(self) -> datetime | None: ...
    @property
    def entry_gap_seconds(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll found. ``failed``: the fetch or the parse failed (then ``retry_after`` may be set).

    ``hints``: how long the feed asks to be left alone (``Cache-Control: max-age``, RSS ``ttl``), in seconds.
    """

    failed: bool = False
    new_items: int = 0
    hints: tuple[int | None, ...] = ()
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RhythmPolicy:
    max_poll_interval: int = 86400


@dataclass(frozen=True, slots=True)
class NextPoll:
    at: datetime
    entry_gap_seconds: float | None  # the feed's updated average time between new items


def next_poll_at(outcome: PollOutcome, state: FeedState, policy: RhythmPolicy, now: datetime,
                 rand: Callable[[], float]) -> NextPoll:
    """When the feed is polled next, and its updated rhythm.

    A failure backs off exponentially in the number of consecutive errors (at least as long as a
    ``Retry-After`` asks). Otherwise the feed's interval, longer for feeds that publish rarely or
    ask for it, never beyond ``max_poll_interval`` (unless the feed's own interval is longer).
    ``rand`` draws in [0, 1) for the backoff's jitter; it is called only when the poll failed.
    """
    if outcome.failed:
        return NextPoll(backoff_at(state, now, outcome.retry_after, rand()), state.entry_gap_seconds)
    gap = entry_gap(state, outcome.new_items, now)
    interval = float(state.interval_seconds)
    if gap:
        interval = max(interval, gap / 2)  # a feed with a new item every 2 days is polled about daily
    for hint in outcome.hints:
        if hint:
            interval = max(interval, float(hint))
    interval = min(interval, float(max(policy.max_poll_interval, state.interval_seconds)))
    return NextPoll(now + timedelta(seconds=interval), gap)


def backoff_at(state: FeedState, now: datetime, retry_after: float | None, rand: float) -> datetime:
    """The next poll of a failing feed: doubling with each consecutive error, capped, jittered."""
    delay = backoff_delay(state.interval_seconds, min(state.error_count, MAX_BACKOFF_DOUBLINGS),
                          cap=MAX_BACKOFF_SECONDS, rand=rand)
    if retry_after:
        delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
    return now + timedelta(seconds=delay)


def entry_gap(state: FeedState, new_items: int, now: datetime) -> float | None:
    """Moving average of the time between new items (the backlog of a first poll says nothing)."""
    if new_items == 0 or state.first_poll or state.last_entry_at is None:
        return state.entry_gap_seconds
    observed = (now - state.last_entry_at).total_seconds() / new_items
    if state.entry_gap_seconds is None:
        return observed
    return 0.7 * state.entry_gap_seconds + 0.3 * observed


def move_has_held(moved_since: datetime | None, now: datetime) -> bool:
    """A permanent redirect seen since ``moved_since`` has held long enough to poll the new URL."""
    return moved_since is not None and (now - moved_since).total_seconds() >= MOVE_HOLD_SECONDS


class FeedHealth(Protocol):
    """What :func:`feed_problem` reads of a feed row."""

    @property
    def active(self) -> bool: ...
    @property
    def last_status(self) -> int | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def error_count(self) -> int: ...
    @property
    def last_success_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def entry_gap_seconds(self) -> float | None: ...
    @property
    def last_entry_at(self) -> datetime | None: ...


def feed_problem(feed: FeedHealth, *, now: datetime, failing_for: int) -> str | None:
    """Why an operator or subscriber should look at this feed, or None when it is fine."""
    if not feed.active:
        return f"disabled: {feed.last_error}" if feed.last_status == 410 else None
    if feed.error_count:
        since = feed.last_success_at or feed.created_at
        if since is None or (now - since).total_seconds() >= failing_for:
            return f"{feed.last_error or 'failing'} ({feed.error_count} failed polls)"
    if feed.entry_gap_seconds and feed.last_entry_at:
        quiet = (now - feed.last_entry_at).total_seconds()
        if quiet >= max(SILENT_MIN_SECONDS, SILENT_FACTOR * feed.entry_gap_seconds):
            return (f"silent: no new item for {quiet / 86400:.1f} days "
                    f"(usually every {feed.entry_gap_seconds / 3600:.1f} h)")
    return None
