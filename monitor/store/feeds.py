"""Feeds: their poll state, claims with leases, problems, and changes from the CLI, web and OPML."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.models import Feed
from monitor.rhythm import (  # noqa: F401 (re-exported: the feed rhythm's rules live in one module)
    MOVE_HOLD_SECONDS,
    SILENT_FACTOR,
    SILENT_MIN_SECONDS,
    feed_problem,
    move_has_held,
)
from monitor.store._sql import _claimable_ids


@dataclass(frozen=True, slots=True)
class ClaimedFeed:
    id: int
    url: str
    name: str | None
    etag: str | None
    last_modified: str | None
    first_poll: bool
    alert_window_seconds: int
    interval_seconds: int
    error_count: int
    fetch_url: str = ""  # where to fetch: ``url``, or where it moved once the move has held
    moved_to: str | None = None
    moved_since: datetime | None = None
    last_entry_at: datetime | None = None
    entry_gap_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.fetch_url:
            object.__setattr__(self, "fetch_url", self.url)


def _claimed(row: Feed, now: datetime) -> ClaimedFeed:
    assert row.id is not None
    held = row.moved_to is not None and move_has_held(row.moved_since, now)
    return ClaimedFeed(
        id=row.id, url=row.url, name=row.name, etag=row.etag, last_modified=row.last_modified,
        first_poll=row.first_polled_at is None, alert_window_seconds=row.alert_window_seconds,
        interval_seconds=row.interval_seconds, error_count=row.error_count,
        fetch_url=row.moved_to if held and row.moved_to else row.url, moved_to=row.moved_to,
        moved_since=row.moved_since, last_entry_at=row.last_entry_at, entry_gap_seconds=row.entry_gap_seconds,
    )


def add_imported_feeds(
    session: Session, feeds: Sequence[tuple[str, str | None, str | None]], *, now: datetime, interval: int,
    alert_window: int,
) -> int:
    """Add (url, title, category) feeds from OPML; URLs already known are skipped. Returns the count added."""
    known = set(session.exec(select(Feed.url)))
    added = 0
    for url, title, category in feeds:
        if url in known:
            continue
        known.add(url)
        session.add(Feed(url=url, name=title, category=category, interval_seconds=interval,
                         alert_window_seconds=alert_window, active=True, next_poll_at=now, created_at=now,
                         origin="import"))
        added += 1
    session.flush()
    return added


def get_feed(session: Session, url: str) -> Feed | None:
    return session.exec(select(Feed).where(col(Feed.url) == url)).first()


def add_feed(session: Session, url: str, *, name: str | None, interval: int, alert_window: int,
             now: datetime) -> str:
    """Add a feed from the command line (``origin="cli"``): ``"added"``, ``"restored"`` (it had been removed)
    or ``"known"`` (already there; nothing changed)."""
    row = get_feed(session, url)
    if row is None:
        session.add(Feed(url=url, name=name, interval_seconds=interval, alert_window_seconds=alert_window,
                         active=True, next_poll_at=now, created_at=now, origin="cli"))
        session.flush()
        return "added"
    if row.removed_at is None:
        return "known"
    row.removed_at, row.paused, row.active, row.next_poll_at = None, False, True, now
    row.name = name or row.name
    row.interval_seconds = interval
    session.add(row)
    return "restored"


def set_feed_paused(session: Session, row: Feed, *, paused: bool, now: datetime) -> None:
    """Pause (not polled) or resume (polled at the next cycle) a feed."""
    row.paused, row.active = paused, not paused
    if not paused:
        row.next_poll_at, row.error_count, row.last_error = now, 0, None
    session.add(row)


def remove_feed(session: Session, row: Feed, *, now: datetime) -> None:
    """Stop polling a feed and hide it; its items and hits stay (deliveries and stories refer to them)."""
    row.active, row.paused, row.removed_at = False, False, now
    session.add(row)


def claim_due_feeds(
    engine: Engine, *, now: datetime, owner: str, lease_seconds: int, limit: int, include_not_due: bool = False,
    not_polled_since: datetime | None = None, per_host: int | None = None,
) -> list[ClaimedFeed]:
    """Claim up to ``limit`` due feeds for ``owner`` until the lease expires.

    ``per_host`` caps the feeds of one host in the claim: the fetcher talks to a host a few
    requests at a time, so a batch full of one host's feeds would take many rounds to finish
    (the rest of that host's feeds go to the next claim).

    Other workers race for the same rows. One ``UPDATE … WHERE id IN (candidates) AND
    <lease free> RETURNING`` claims them: the rows it returns are this process's. On
    PostgreSQL the candidates are selected ``FOR UPDATE SKIP LOCKED``, so concurrent
    claimers skip each other's rows instead of waiting; SQLite has one writer at a time
    (``BEGIN IMMEDIATE``), and the lease condition is re-checked in the UPDATE itself.
    """
    until = now + timedelta(seconds=lease_seconds)
    free = sa.or_(col(Feed.lease_until).is_(None), col(Feed.lease_until) < now)
    query = select(Feed).where(col(Feed.active).is_(True), free)
    if not include_not_due:
        query = query.where(sa.or_(col(Feed.next_poll_at).is_(None), col(Feed.next_poll_at) <= now))
    if not_polled_since is not None:  # --all: each feed once per cycle, however many batches
        query = query.where(sa.or_(col(Feed.last_polled_at).is_(None), col(Feed.last_polled_at) < not_polled_since))
    conditions = query.whereclause
    assert conditions is not None
    query = query.order_by(col(Feed.next_poll_at), col(Feed.id)).limit(limit)
    with Session(engine, expire_on_commit=False) as session:
        rows = session.scalars(
            # The UPDATE re-checks the candidates' conditions (due, active, lease free) on the row it changes.
            sa.update(Feed).where(col(Feed.id).in_(_feed_ids_per_host(session, query, limit, per_host)), conditions)
            .values(lease_until=until, lease_owner=owner).returning(Feed)
            .execution_options(synchronize_session=False)
        ).all()
        claimed = [_claimed(row, now) for row in rows]
        session.commit()
    claimed.sort(key=lambda f: f.id)
    return claimed


def _feed_ids_per_host(session: Session, query: Any, limit: int, per_host: int | None) -> list[int]:
    """The candidate ids, at most ``per_host`` of one host among the first ``limit`` (see :func:`claim_due_feeds`).

    Looks a bounded window ahead (``PER_HOST_SCAN`` times ``limit``) so a claim stays short even when one
    host owns most due feeds. On PostgreSQL only the chosen rows are locked (others' locked rows skipped),
    so concurrent claimers do not starve each other by locking whole windows.
    """
    if per_host is None:
        return _claimable_ids(session, query, Feed)
    window = query.limit(limit * PER_HOST_SCAN).with_only_columns(col(Feed.id), col(Feed.url))
    taken: list[int] = []
    per: Counter[str] = Counter()
    # Core rows (no ORM row processing) and each URL's host worked out once per process: with one
    # host owning most due feeds, every claim of a cycle reads the same window again.
    for feed_id, url in session.connection().execute(window):
        host = _host_of(url)
        if per[host] < per_host:
            per[host] += 1
            taken.append(feed_id)
            if len(taken) == limit:
                break
    if taken and session.get_bind().dialect.name == "postgresql":
        chosen = sa.select(Feed.id).where(col(Feed.id).in_(taken)).with_for_update(skip_locked=True)  # type: ignore[call-overload]
        taken = list(session.scalars(chosen))
    return taken


PER_HOST_SCAN = 8


@functools.lru_cache(maxsize=65536)
def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def renew_feed_leases(engine: Engine, *, owner: str, until: datetime) -> int:
    """Extend every feed lease ``owner`` holds to ``until`` (its poll is still running); returns how many."""
    with Session(engine) as session:
        result = session.execute(
            sa.update(Feed).where(col(Feed.lease_owner) == owner, col(Feed.lease_until).is_not(None))
            .values(lease_until=until).execution_options(synchronize_session=False))
        session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_feed_leases(session: Session, *, owner: str) -> int:
    """Give back every feed lease ``owner`` still holds (at shutdown); returns how many."""
    result = session.execute(
        sa.update(Feed).where(col(Feed.lease_owner) == owner, col(Feed.lease_until).is_not(None))
        .values(lease_until=None, lease_owner=None).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def record_poll_success(
    session: Session, feed_id: int, *, now: datetime, status: int, etag: str | None,
    last_modified: str | None, next_poll_at: datetime, not_modified: bool, moved_to: str | None = None,
    new_items: int = 0, entry_gap_seconds: float | None = None, note: str | None = None,
    poll_ms: int | None = None,
) -> None:
    """A successful poll. ``moved_to``: the permanent redirect seen this time (None: no redirect).

    ``note``: what the operator should know although the poll succeeded ("2 entries skipped: ..."),
    kept in ``last_error`` (the error count stays 0: the feed is healthy).
    """
    record_poll_states(session, [PollState(
        feed_id, now=now, status=status, next_poll_at=next_poll_at, not_modified=not_modified, etag=etag,
        last_modified=last_modified, moved_to=moved_to, new_items=new_items, entry_gap_seconds=entry_gap_seconds,
        note=note, poll_ms=poll_ms)])


def record_poll_failure(
    session: Session, feed_id: int, *, now: datetime, status: int | None, error: str, next_poll_at: datetime,
    disable: bool = False, poll_ms: int | None = None,
) -> None:
    record_poll_states(session, [PollState(feed_id, now=now, status=status, next_poll_at=next_poll_at, error=error,
                                           disable=disable, poll_ms=poll_ms)])


@dataclass(frozen=True, slots=True)
class PollState:
    """What one poll leaves on its feed's row: a success (``error`` None) or a failure.

    Success: ``not_modified`` keeps the stored validators (ETag, Last-Modified); ``new_items`` moves
    the publishing rhythm; ``moved_to`` is the permanent redirect seen this time (None: none, and a
    move recorded earlier is forgotten). Failure: the error count grows; ``disable`` (410) turns the
    feed off. ``poll_ms``: from the start of the fetch until stored.
    """

    feed_id: int
    _: KW_ONLY
    now: datetime
    status: int | None
    next_poll_at: datetime
    error: str | None = None
    disable: bool = False
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None
    new_items: int = 0
    entry_gap_seconds: float | None = None
    note: str | None = None
    poll_ms: int | None = None


def record_poll_states(session: Session, states: Sequence[PollState]) -> None:
    """Write many feeds' poll outcomes: one ``executemany`` UPDATE for the successes, one for the failures.

    The statements are built once (module level), so each batch reuses one compiled statement however
    many rows it has; no ORM object is loaded. Every column any outcome may change is in both
    statements, the conditional ones as ``CASE`` over the row's old values (the right-hand sides of an
    ``UPDATE`` read the row before the change, on SQLite as on PostgreSQL).
    """
    successes = [
        {"_id": s.feed_id, "_now": s.now, "_status": s.status, "_next": s.next_poll_at, "_ms": s.poll_ms,
         "_note": s.note[:2000] if s.note else None, "_keep": s.not_modified, "_etag": s.etag,
         "_lm": s.last_modified, "_new": bool(s.new_items), "_gap": s.entry_gap_seconds, "_moved": s.moved_to}
        for s in states if s.error is None
    ]
    failures = [
        {"_id": s.feed_id, "_now": s.now, "_status": s.status, "_next": s.next_poll_at, "_ms": s.poll_ms,
         "_error": (s.error or "")[:2000], "_disable": s.disable}
        for s in states if s.error is not None
    ]
    connection = session.connection()
    if successes:
        connection.execute(_SUCCESS, successes)
    if failures:
        connection.execute(_FAILURE, failures)


def _poll_statements() -> tuple[Any, Any]:
    feeds = Feed.__table__  # type: ignore[attr-defined]
    c = feeds.c
    when = c.last_polled_at.type

    def param(name: str, type_: Any) -> Any:
        return sa.bindparam(name, type_=type_)

    now, moved = param("_now", when), param("_moved", c.moved_to.type)
    common = dict(last_status=param("_status", sa.Integer()), last_polled_at=now,
                  next_poll_at=param("_next", when), lease_until=None, lease_owner=None,
                  last_poll_ms=param("_ms", sa.Integer()))
    success = sa.update(feeds).where(c.id == param("_id", sa.Integer())).values(
        **common, last_error=param("_note", c.last_error.type), error_count=0, last_success_at=now,
        first_polled_at=sa.func.coalesce(c.first_polled_at, now),
        etag=sa.case((param("_keep", sa.Boolean()), c.etag), else_=param("_etag", c.etag.type)),
        last_modified=sa.case((param("_keep", sa.Boolean()), c.last_modified),
                              else_=param("_lm", c.last_modified.type)),
        last_entry_at=sa.case((param("_new", sa.Boolean()), now), else_=c.last_entry_at),
        entry_gap_seconds=sa.case((param("_new", sa.Boolean()), param("_gap", sa.Float())),
                                  else_=c.entry_gap_seconds),
        moved_to=moved,
        moved_since=sa.case((moved.is_(None), sa.null()),
                            (sa.or_(c.moved_to.is_(None), c.moved_to != moved), now), else_=c.moved_since),
    )
    failure = sa.update(feeds).where(c.id == param("_id", sa.Integer())).values(
        **common, last_error=param("_error", c.last_error.type), error_count=c.error_count + 1,
        active=sa.case((param("_disable", sa.Boolean()), sa.false()), else_=c.active),
    )
    return success, failure


_SUCCESS, _FAILURE = _poll_statements()


def problem_feeds(session: Session, *, now: datetime, failing_for: int) -> list[tuple[Feed, str]]:
    """Feeds failing for longer than ``failing_for`` seconds, silent far beyond their rhythm, or gone (410)."""
    candidates = session.exec(select(Feed).where(sa.or_(
        col(Feed.error_count) > 0, col(Feed.last_status) == 410, col(Feed.entry_gap_seconds).is_not(None),
    )).order_by(col(Feed.id)))
    found = []
    for feed in candidates:
        problem = feed_problem(feed, now=now, failing_for=failing_for)
        if problem:
            found.append((feed, problem))
    return found


def list_feeds(session: Session) -> list[Feed]:
    """Every feed but those removed with ``feeds remove``."""
    return list(session.exec(select(Feed).where(col(Feed.removed_at).is_(None)).order_by(col(Feed.id))))


def reset_feeds(session: Session, *, now: datetime, url: str | None = None) -> int:
    """Clear error state and make feeds due now (``url=None``: every feed in error or disabled by 410)."""
    query = sa.update(Feed).values(error_count=0, last_error=None, next_poll_at=now, lease_until=None, active=True)
    if url is not None:
        query = query.where(col(Feed.url) == url)
    else:
        query = query.where(sa.or_(col(Feed.error_count) > 0, col(Feed.last_status) == 410))
    return int(session.execute(query).rowcount)  # type: ignore[attr-defined]
