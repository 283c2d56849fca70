"""Storing a poll's outcomes: off the event loop, several feeds per transaction.

Fetching and parsing overlap with storing: finished feeds wait in a list while one writer
thread stores the previous group, and the next group is whatever finished meanwhile (so a
quiet moment writes a feed at once, and a busy one writes many in one transaction; at most
``max_group`` wait before the event loop waits for the writer). One transaction per group
saves a commit (an fsync on SQLite) and a lock round per feed, and a group's poll-state
updates are one ``executemany``.

One bad feed never costs the others: when a group's transaction fails, its feeds are written
again one transaction each, so the feed at fault is logged by name, recorded as failed, and
the rest are stored. A single writer thread also means one writer connection on SQLite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor import store
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.ingest.cluster import StorySignature

log = logging.getLogger("monitor")

Report = Callable[[], None]  # runs on the event loop once the write is committed (summary figures, logs)
Written = tuple[store.PollState, Report]
# An item a write inserted that belongs in a story (it hit a watchlist), with its signature when known.
StoryItem = tuple[int, Item, StorySignature | None]


@dataclass(slots=True)
class GroupBatch:
    """What the writes of a group leave to be done once for the whole group, in its transaction."""

    new_items: list[int] = field(default_factory=list)  # ids of the items inserted (for the search index)
    hits: list[tuple[int, Match]] = field(default_factory=list)  # the inserted items' matches (item id, match)
    stories: list[StoryItem] = field(default_factory=list)  # the inserted items that need a story


FinishGroup = Callable[[Session, GroupBatch], None]

MAX_GROUP = 64  # finished feeds waiting for the writer before fetching waits for it


@dataclass(frozen=True, slots=True)
class FeedWrite:
    """One finished feed, ready to store.

    ``apply`` writes what the feed brought (its items) in the session it is given, adds what is done
    once per group to the :class:`GroupBatch` it is given (hits, search index, stories), and returns the
    state for the feed's row; it may run twice (a failed group is written again feed by feed), so it
    only writes. ``failed`` turns an error in that write into the failure to record.
    """

    feed: store.ClaimedFeed
    started: float  # monotonic time the fetch began (the stored poll duration runs from here)
    apply: Callable[[Session, GroupBatch], Written]
    failed: Callable[[Exception], Written]


class GroupWriter:
    """A single writer thread storing groups of :class:`FeedWrite` (see the module docstring)."""

    def __init__(self, engine: Engine, monotonic: Callable[[], float], *, finish: FinishGroup | None = None,
                 max_group: int = MAX_GROUP) -> None:
        self.engine, self.monotonic, self.max_group = engine, monotonic, max_group
        self.finish = finish
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-writer")
        self._pending: list[FeedWrite] = []
        self._inflight: asyncio.Future[list[Report]] | None = None
        self._error: Exception | None = None

    async def add(self, write: FeedWrite) -> None:
        """Queue one feed: the writer takes it at once when idle, else with the next group (when the group
        being written is stored). With ``max_group`` feeds waiting, wait for the writer."""
        self._pending.append(write)
        while self._inflight is not None and len(self._pending) >= self.max_group:
            await self._written_once()
        if self._inflight is None:
            self._submit()

    async def drain(self) -> None:
        """Store everything queued and wait for it (the end of a cycle, or shutdown: nothing finished is lost)."""
        while self._inflight is not None or self._pending:
            if self._inflight is None:
                self._submit()
            else:
                await self._written_once()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _submit(self) -> None:
        group, self._pending = self._pending, []
        if group:
            inflight = asyncio.get_running_loop().run_in_executor(self._executor, self.write_group, group)
            inflight.add_done_callback(self._written)
            self._inflight = inflight

    def _written(self, inflight: asyncio.Future[list[Report]]) -> None:
        """A group is stored (on the event loop): run its reports and hand the writer what finished meanwhile."""
        self._inflight = None
        if inflight.cancelled():
            return
        error = inflight.exception()
        if error is not None:  # write_group catches errors; this is an interrupt in the writer thread
            self._error = error if isinstance(error, Exception) else RuntimeError(repr(error))
            return
        try:
            for report in inflight.result():
                report()
        finally:
            self._submit()

    async def _written_once(self) -> None:
        """Wait until the group being written is stored. Not cancelled with the caller (shutdown): the write
        goes on, and :meth:`drain` waits for it again."""
        inflight = self._inflight
        if inflight is not None:
            await asyncio.wait({inflight})
        await asyncio.sleep(0)  # the done callback runs first; this lets it finish before the caller looks

    # --- the writer thread ----------------------------------------------------------------------

    def write_group(self, group: list[FeedWrite]) -> list[Report]:
        """Store ``group`` in one transaction, or feed by feed when that fails; returns the reports to run.

        What is done once for the whole group (``finish``: the search index, stories in the group's
        order, as feed after feed would) runs in the same transaction: a statement per group, not per feed.
        """
        try:
            with session_scope(self.engine) as session:
                batch = GroupBatch()
                written = [self._apply(write, session, batch) for write in group]
                if self.finish is not None:
                    self.finish(session, batch)
                store.record_poll_states(session, [state for state, _report in written])
            return [report for _state, report in written]
        except Exception as exc:
            if len(group) == 1:
                return [self._record_failure(group[0], exc)]
            log.warning("could not store %d feeds together (%s); storing them one at a time", len(group),
                        type(exc).__name__)
            return [report for write in group for report in self.write_group([write])]

    def _apply(self, write: FeedWrite, session: Session, batch: GroupBatch) -> Written:
        state, report = write.apply(session, batch)
        return self._timed(write, state), report

    def _timed(self, write: FeedWrite, state: store.PollState) -> store.PollState:
        elapsed_ms = max(0, round((self.monotonic() - write.started) * 1000))
        return dataclasses.replace(state, poll_ms=elapsed_ms)

    def _record_failure(self, write: FeedWrite, exc: Exception) -> Report:
        """The write of one feed failed: name it in the log and record the failure on its row."""
        feed = write.feed
        log.error("feed processing failed", exc_info=exc, extra={"feed_url": feed.url, "feed_id": feed.id})
        state, report = write.failed(exc)
        try:
            with session_scope(self.engine) as session:
                store.record_poll_states(session, [self._timed(write, state)])
        except Exception:  # the database itself is failing: the lease runs out and the feed is polled again
            log.exception("could not record a feed's failure", extra={"feed_url": feed.url, "feed_id": feed.id})
        return report
