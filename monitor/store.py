"""All SQL: feeds' poll state, new items, hits, subscriptions' progress, the outbox.

The store tells the caller what was new — ``insert_new_items`` is an
``INSERT … ON CONFLICT DO NOTHING RETURNING`` — so "an item is new once" holds
with any number of workers; nothing here checks and then inserts. Work is
claimed with a lease by compare-and-set (a conditional ``UPDATE`` whose row
count says whether this process won), which serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import Settings
from monitor.domain import Item, Match, StoredHit, StoryRef
from monitor.ingest import cluster
from monitor.ingest.cluster import StorySignature, signature_for
from monitor.lang import script_language
from monitor.models import Delivery, DeliveryHit, Feed, Hit, MatchSet, StoryKey, Subscription, Unsubscribe, Worker
from monitor.models import Item as ItemRow
from monitor.rhythm import (  # noqa: F401 (re-exported: the feed rhythm's rules live in one module)
    MOVE_HOLD_SECONDS,
    SILENT_FACTOR,
    SILENT_MIN_SECONDS,
    feed_problem,
    move_has_held,
)
from monitor.schedules import parse_schedule

_CHUNK = 200  # rows per multi-row INSERT (well under SQLite's bound-parameter limit)


# --- feeds -------------------------------------------------------------------------------------




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


def sync_config(session: Session, settings: Settings, now: datetime) -> None:
    """Make the feeds and subscriptions tables agree with the config file.

    New feeds are due at once; config feeds gone from the config are deactivated
    (their items and hits stay); imported (OPML) feeds are left alone. A
    subscription whose schedule changed gets a new due time.
    """
    configured = {f.url: f for f in settings.feeds}
    existing = {row.url: row for row in session.exec(select(Feed))}
    for url, cfg in configured.items():
        row = existing.get(url)
        interval = settings.feed_interval(cfg)
        window = cfg.alert_window if cfg.alert_window is not None else settings.new_feed_alert_window
        if row is None:
            # Several workers may start at once on a new database: insert-if-absent, never check-then-insert.
            session.execute(_insert(session, Feed.__table__).values(  # type: ignore[attr-defined]
                url=url, name=cfg.name, interval_seconds=interval, alert_window_seconds=window, active=True,
                next_poll_at=now, created_at=now, origin="config", error_count=0,
            ).on_conflict_do_nothing(index_elements=["url"]))
        else:
            row.name, row.interval_seconds, row.alert_window_seconds = cfg.name, interval, window
            row.origin, row.paused, row.removed_at = "config", False, None
            if not row.active and row.last_status != 410:
                row.active, row.next_poll_at = True, now
            session.add(row)
    for url, row in existing.items():
        if url not in configured and row.active and row.origin == "config":
            row.active = False
            session.add(row)

    subs = {row.name: row for row in session.exec(select(Subscription))}
    for sub in settings.subscriptions:
        schedule = parse_schedule(sub.schedule, sub.timezone)
        sub_row = subs.get(sub.name)
        if sub_row is None:
            session.execute(_insert(session, Subscription.__table__).values(  # type: ignore[attr-defined]
                name=sub.name, schedule=sub.schedule, created_at=now, next_due_at=schedule.next_due(now),
            ).on_conflict_do_nothing(index_elements=["name"]))
        elif sub_row.schedule != sub.schedule:
            sub_row.schedule, sub_row.next_due_at = sub.schedule, schedule.next_due(now)
            session.add(sub_row)
    session.flush()


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
    for feed_id, url in session.execute(window):
        host = (urlsplit(url).hostname or "").lower()
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
) -> None:
    """A successful poll. ``moved_to``: the permanent redirect seen this time (None: no redirect).

    ``note``: what the operator should know although the poll succeeded ("2 entries skipped: ..."),
    kept in ``last_error`` (the error count stays 0: the feed is healthy).
    """
    values: dict[str, Any] = dict(
        last_status=status, last_error=note[:2000] if note else None, error_count=0, last_polled_at=now,
        last_success_at=now, next_poll_at=next_poll_at, lease_until=None, lease_owner=None,
    )
    if not not_modified:
        values.update(etag=etag, last_modified=last_modified)
    if new_items:
        values.update(last_entry_at=now, entry_gap_seconds=entry_gap_seconds)
    session.execute(sa.update(Feed).where(col(Feed.id) == feed_id).values(**values))
    session.execute(
        sa.update(Feed).where(col(Feed.id) == feed_id, col(Feed.first_polled_at).is_(None))
        .values(first_polled_at=now)
    )
    if moved_to is None:
        # The redirect did not hold: forget it (and go back to the original URL).
        session.execute(sa.update(Feed).where(col(Feed.id) == feed_id, col(Feed.moved_to).is_not(None))
                        .values(moved_to=None, moved_since=None))
    else:
        session.execute(sa.update(Feed).where(col(Feed.id) == feed_id, sa.or_(
            col(Feed.moved_to).is_(None), col(Feed.moved_to) != moved_to)).values(moved_to=moved_to, moved_since=now))


def record_poll_failure(
    session: Session, feed_id: int, *, now: datetime, status: int | None, error: str, next_poll_at: datetime,
    disable: bool = False,
) -> None:
    values: dict[str, Any] = dict(
        last_status=status, last_error=error[:2000], error_count=Feed.error_count + 1, last_polled_at=now,
        next_poll_at=next_poll_at, lease_until=None, lease_owner=None,
    )
    if disable:
        values["active"] = False
    session.execute(sa.update(Feed).where(col(Feed.id) == feed_id).values(**values))


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


# --- items and hits ----------------------------------------------------------------------------


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def known_fingerprints(session: Session, fingerprints: Iterable[str]) -> set[str]:
    """Which of ``fingerprints`` this database already holds (a read: call it outside write transactions)."""
    wanted = list(dict.fromkeys(fingerprints))
    known: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        known.update(session.scalars(sa.select(col(ItemRow.fingerprint)).where(col(ItemRow.fingerprint).in_(chunk))))
    return known


def insert_new_items(
    session: Session, feed_id: int, items: Sequence[Item], *, alertable: Sequence[bool]
) -> list[tuple[int, Item, bool]]:
    """Insert the items this database has not seen; return ``(id, item, alertable)`` for those only."""
    by_fp: dict[str, tuple[Item, bool]] = {}
    for item, ok in zip(items, alertable, strict=True):
        by_fp.setdefault(item.fingerprint, (item, ok))  # a feed repeating an entry: keep the first
    new: list[tuple[int, Item, bool]] = []
    rows = [
        dict(fingerprint=fp, feed_id=feed_id, guid=it.guid, link=it.link, title=it.title, summary=it.summary,
             content=it.content, author=it.author, published_at=it.published_at, fetched_at=it.fetched_at,
             alertable=ok, lang=script_language(f"{it.title} {it.summary}"))
        for fp, (it, ok) in by_fp.items()
    ]
    table = ItemRow.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _CHUNK):
        stmt = (
            _insert(session, table)
            .values(rows[start:start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["fingerprint"])
            .returning(table.c.id, table.c.fingerprint)
        )
        for item_id, fp in session.execute(stmt):
            item, ok = by_fp[fp]
            new.append((item_id, item, ok))
    return new


def insert_hits(session: Session, hits: Iterable[tuple[int, Match]], *, now: datetime) -> int:
    """Store hits; a (item, watchlist) pair already stored is left alone. Returns the count inserted."""
    rows = [
        dict(item_id=item_id, watchlist=m.watchlist, watchlist_version=m.version, score=m.score,
             evidence=json.dumps(list(m.evidence), ensure_ascii=False), created_at=now)
        for item_id, m in hits
    ]
    table = Hit.__table__  # type: ignore[attr-defined]
    inserted = 0
    for start in range(0, len(rows), _CHUNK):
        stmt = (
            _insert(session, table).values(rows[start:start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["item_id", "watchlist"])
            .returning(table.c.id)
        )
        inserted += len(session.execute(stmt).all())
    return inserted


def _hit_query() -> Any:
    return (
        sa.select(Hit, ItemRow, Feed)
        .join(ItemRow, col(ItemRow.id) == col(Hit.item_id))
        .join(Feed, col(Feed.id) == col(ItemRow.feed_id))
    )


def _view(hit: Hit, item: ItemRow, feed: Feed, follow_up: bool = False) -> StoredHit:
    assert hit.id is not None and hit.created_at is not None
    return StoredHit(
        hit_id=hit.id, item_id=hit.item_id, watchlist=hit.watchlist, score=hit.score,
        evidence=json.loads(hit.evidence), title=item.title, link=item.link, summary=item.summary,
        published_at=item.published_at, feed_name=feed.name, feed_url=feed.url, created_at=hit.created_at,
        story_id=item.story_id, follow_up=follow_up, content=item.content,
    )


def list_hits(session: Session, *, watchlist: str | None = None, limit: int | None = None) -> list[StoredHit]:
    query = _hit_query().order_by(col(Hit.id))
    if watchlist:
        query = query.where(col(Hit.watchlist) == watchlist)
    if limit:
        query = query.limit(limit)
    return [_view(h, i, f) for h, i, f in session.execute(query)]


def undelivered_hits(
    session: Session, subscription_id: int, watchlists: Sequence[str], *, since: datetime, limit: int,
    min_score: float = 0.0,
) -> list[StoredHit]:
    """Hits on these watchlists created since ``since`` that this subscription has not been sent.

    Each comes with ``follow_up``: another item of its story was already sent to this subscription.
    """
    sent = sa.select(DeliveryHit.hit_id).where(  # type: ignore[call-overload]
        col(DeliveryHit.subscription_id) == subscription_id, col(DeliveryHit.hit_id) == col(Hit.id)
    )
    # A hit found later for an item this subscription was already sent (a watchlist edited or added,
    # then stored items matched again) would repeat the item: what was sent is not sent again.
    earlier = sa.orm.aliased(Hit)
    item_sent = (sa.select(DeliveryHit.hit_id)  # type: ignore[call-overload]
                 .join(earlier, col(earlier.id) == col(DeliveryHit.hit_id))
                 .where(col(DeliveryHit.subscription_id) == subscription_id, earlier.item_id == col(Hit.item_id)))
    query = (
        _hit_query()
        .where(col(Hit.watchlist).in_(list(watchlists)), col(Hit.created_at) >= since, col(Hit.score) >= min_score,
               ~sa.exists(sent), ~sa.exists(item_sent))
        .order_by(col(Hit.id))
        .limit(limit)
    )
    rows = list(session.execute(query))
    stories = {item.story_id for _h, item, _f in rows if item.story_id is not None}
    told = _stories_told(session, subscription_id, stories)
    return [replace(_view(h, i, f, follow_up=i.story_id in told),
                    follow_up_of=told.get(i.story_id) if i.story_id is not None else None)
            for h, i, f in rows]


def _stories_told(session: Session, subscription_id: int, stories: set[int]) -> dict[int, StoryRef]:
    """For each story already sent to this subscription, its first report that was sent."""
    if not stories:
        return {}
    earlier = sa.orm.aliased(ItemRow)
    told: dict[int, StoryRef] = {}
    for story_id, item_id, title, link, feed_name, feed_url in session.execute(
        sa.select(col(earlier.story_id), earlier.id, earlier.title, earlier.link, Feed.name, Feed.url)  # type: ignore[call-overload]
        .join(Hit, col(Hit.item_id) == earlier.id)
        .join(DeliveryHit, col(DeliveryHit.hit_id) == col(Hit.id))
        .join(Feed, col(Feed.id) == earlier.feed_id)
        .where(col(DeliveryHit.subscription_id) == subscription_id, col(earlier.story_id).in_(sorted(stories)))
        .order_by(earlier.id)
    ):
        if story_id not in told:
            source = feed_name or urlsplit(link or feed_url).hostname or feed_url
            told[story_id] = StoryRef(item_id=item_id, title=title or "(untitled)", link=link, source=source)
    return told


# --- subscriptions and the outbox --------------------------------------------------------------


def get_subscriptions(session: Session) -> dict[str, Subscription]:
    return {row.name: row for row in session.exec(select(Subscription))}


def claim_subscription(session: Session, sub_id: int, *, now: datetime, lease_seconds: int) -> bool:
    """Compare-and-set lease on a subscription while its digest is planned (other workers may race)."""
    free = sa.or_(col(Subscription.lease_until).is_(None), col(Subscription.lease_until) < now)
    result = session.execute(
        sa.update(Subscription).where(col(Subscription.id) == sub_id, free)
        .values(lease_until=now + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finish_subscription_plan(session: Session, sub_id: int, *, now: datetime, next_due_at: datetime | None) -> None:
    session.execute(
        sa.update(Subscription).where(col(Subscription.id) == sub_id)
        .values(lease_until=None, last_planned_at=now, next_due_at=next_due_at)
    )


def enqueue_delivery(
    session: Session, *, subscription_id: int, key: str, transport: str, subject: str, payload: bytes,
    recipients: str, hit_ids: Sequence[int], now: datetime,
) -> int:
    """Add a rendered delivery and link its hits; the unique (subscription, hit) key forbids a second send."""
    delivery = Delivery(
        subscription_id=subscription_id, key=key, transport=transport, status="pending", subject=subject,
        payload=payload, recipients=recipients, hit_count=len(hit_ids), next_attempt_at=now, created_at=now,
    )
    session.add(delivery)
    session.flush()
    assert delivery.id is not None
    if hit_ids:
        session.execute(
            sa.insert(DeliveryHit),
            [dict(delivery_id=delivery.id, hit_id=h, subscription_id=subscription_id) for h in hit_ids],
        )
    return delivery.id


def claim_due_deliveries(
    engine: Engine, *, now: datetime, lease_seconds: int, limit: int, ids: Sequence[int] | None = None,
    due_by: datetime | None = None,
) -> list[Delivery]:
    """Claim pending deliveries whose next attempt is due (one UPDATE … RETURNING; others may race, see
    :func:`claim_due_feeds`).

    The lease runs from ``now``; ``due_by`` (default ``now``) is the time by which the attempt must be
    due, so a cycle that began earlier does not retry within itself what failed during it.
    """
    until = now + timedelta(seconds=lease_seconds)
    due = due_by if due_by is not None else now
    free = sa.or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now)
    query = select(Delivery).where(col(Delivery.status) == "pending", col(Delivery.next_attempt_at) <= due, free)
    if ids is not None:
        query = query.where(col(Delivery.id).in_(list(ids)))
    query = query.order_by(col(Delivery.next_attempt_at), col(Delivery.id)).limit(limit)
    with Session(engine, expire_on_commit=False) as session:
        claimed = list(session.scalars(
            # The UPDATE re-checks every condition, not only the lease: a row another worker sent
            # and released meanwhile must not be claimed again.
            sa.update(Delivery).where(col(Delivery.id).in_(_claimable_ids(session, query, Delivery)), free,
                                      col(Delivery.status) == "pending", col(Delivery.next_attempt_at) <= due)
            .values(lease_until=until).returning(Delivery)
            .execution_options(synchronize_session=False)
        ).all())
        session.commit()
    claimed.sort(key=lambda d: (d.next_attempt_at or until, d.id or 0))
    return claimed


def _claimable_ids(session: Session, query: Any, model: Any) -> list[int]:
    """The candidate ids of ``query``, at most its LIMIT; on PostgreSQL locked until commit, others' skipped.

    A separate statement, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``:
    PostgreSQL may evaluate that subquery more than once and claim more than ``n`` rows.
    """
    ids = query.with_only_columns(col(model.id))
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    return list(session.scalars(ids))


def record_delivery_sent(session: Session, delivery_id: int, *, now: datetime, target: str) -> None:
    session.execute(
        sa.update(Delivery).where(col(Delivery.id) == delivery_id).values(
            status="sent", sent_at=now, attempts=Delivery.attempts + 1, last_error=None, lease_until=None,
            target=target,
        )
    )


def record_delivery_failure(
    session: Session, delivery_id: int, *, error: str, next_attempt_at: datetime | None
) -> None:
    """A failed attempt: retry at ``next_attempt_at``, or ``dead`` when it is None."""
    session.execute(
        sa.update(Delivery).where(col(Delivery.id) == delivery_id).values(
            status="pending" if next_attempt_at is not None else "dead",
            attempts=Delivery.attempts + 1, last_error=error[:2000], next_attempt_at=next_attempt_at,
            lease_until=None,
        )
    )


def list_deliveries(session: Session, *, status: str | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(col(Delivery.id))
    if status:
        query = query.where(col(Delivery.status) == status)
    return list(session.exec(query))


def reset_feeds(session: Session, *, now: datetime, url: str | None = None) -> int:
    """Clear error state and make feeds due now (``url=None``: every feed in error or disabled by 410)."""
    query = sa.update(Feed).values(error_count=0, last_error=None, next_poll_at=now, lease_until=None, active=True)
    if url is not None:
        query = query.where(col(Feed.url) == url)
    else:
        query = query.where(sa.or_(col(Feed.error_count) > 0, col(Feed.last_status) == 410))
    return int(session.execute(query).rowcount)  # type: ignore[attr-defined]


def retry_deliveries(session: Session, *, now: datetime, delivery_id: int | None = None) -> int:
    """Put dead deliveries (or one delivery) back in the queue, due now; the payload and key stay the same."""
    query = sa.update(Delivery).values(status="pending", next_attempt_at=now, lease_until=None)
    if delivery_id is not None:
        query = query.where(col(Delivery.id) == delivery_id, col(Delivery.status) != "sent")
    else:
        query = query.where(col(Delivery.status) == "dead")
    return int(session.execute(query).rowcount)  # type: ignore[attr-defined]


# --- stories ------------------------------------------------------------------------------------


def assign_stories(
    session: Session, items: Sequence[tuple[int, Item]], *, now: datetime, window: timedelta, threshold: float,
    precomputed: Mapping[str, StorySignature] | None = None,
) -> dict[int, tuple[int, bool]]:
    """Put each new item in a story: an existing one when a similar item appeared within ``window``.

    Returns ``{item_id: (story_id, joined_existing)}``; a story's id is the id of its first item.
    One query fetches the band keys the batch shares with the recent stories' first items; only the
    candidates sharing the most keys (at most MAX_VERIFIED per item) have their signatures compared,
    so the cost follows the batch, not the archive.
    """
    if not items:
        return {}
    known = precomputed or {}
    sigs = {item_id: known.get(item.fingerprint) or signature_for(item.title, item.summary) for item_id, item in items}
    whens = {item_id: min(item.published_at or now, now) for item_id, item in items}
    all_keys = sorted({k for sig in sigs.values() for k in sig.keys})
    lo, hi = min(whens.values()) - window, max(whens.values()) + window
    recent = cluster.Recent()
    for start in range(0, len(all_keys), 5000):  # bounded IN lists
        for key, item_id, story_id, published in session.execute(
            sa.select(StoryKey.key, StoryKey.item_id, StoryKey.story_id, StoryKey.published_at)  # type: ignore[call-overload]
            # Only the key condition: with a time range too, SQLite prefers the published_at index and
            # scans every recent key. Out-of-window rows are dropped below (and pruned daily).
            .where(col(StoryKey.key).in_(all_keys[start:start + 5000]))
        ):
            if published is None or not lo <= published <= hi:
                continue
            recent.by_key[key].append((item_id, story_id, published))
    wanted = sorted({other for item_id, sig in sigs.items()
                     for other, _story in cluster.shortlist(recent, item_id, sig, whens[item_id], window)})
    for start in range(0, len(wanted), 5000):
        for other, blob in session.execute(
            sa.select(ItemRow.id, ItemRow.signature).where(  # type: ignore[call-overload]
                col(ItemRow.id).in_(wanted[start:start + 5000]))
        ):
            if blob:
                recent.signatures[other] = _unpack(blob)
    result = cluster.assign({item_id: (sig, whens[item_id]) for item_id, sig in sigs.items()}, recent,
                            window=window, threshold=threshold)
    item_rows = [{"_id": item_id, "_story": result[item_id][0], "_sig": _pack(sig.signature)}
                 for item_id, sig in sigs.items()]
    # Only a story's first item is indexed (see cluster.Recent).
    key_rows = [(item_id, item_id, whens[item_id], sig.keys) for item_id, sig in sigs.items()
                if not result[item_id][1]]
    table = ItemRow.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(table).where(table.c.id == sa.bindparam("_id"))
        .values(story_id=sa.bindparam("_story"), signature=sa.bindparam("_sig")),
        item_rows,
    )
    if key_rows:
        _insert_story_keys(session, key_rows)
    return result


def _insert_story_keys(session: Session, rows: list[tuple[int, int, datetime, tuple[str, ...]]]) -> None:
    """64 rows per story: straight to the driver, the timestamp converted once per item, not once per key."""
    connection = session.connection()
    dialect = connection.dialect
    column = StoryKey.__table__.c.published_at  # type: ignore[attr-defined]
    to_db = column.type.bind_processor(dialect) or (lambda value: value)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO story_keys (key, item_id, story_id, published_at) VALUES ({mark}, {mark}, {mark}, {mark})"
    params: list[tuple[str, int, int, Any]] = []
    for item_id, story_id, when, keys in rows:
        stored = to_db(when)
        params.extend((key, item_id, story_id, stored) for key in keys)
    connection.exec_driver_sql(sql, params)


def _pack(signature: Sequence[int]) -> bytes:
    return array("Q", signature).tobytes()


def _unpack(blob: bytes) -> tuple[int, ...]:
    return tuple(array("Q", blob))


def prune_story_keys(session: Session, *, before: datetime) -> int:
    """Drop band keys older than the grouping window: they can no longer match anything."""
    return int(session.execute(sa.delete(StoryKey).where(col(StoryKey.published_at) < before)).rowcount)  # type: ignore[attr-defined]


# --- workers and health -------------------------------------------------------------------------


def heartbeat(session: Session, *, owner: str, hostname: str, pid: int, started_at: datetime, now: datetime,
              info: dict[str, Any] | None = None) -> None:
    """Record that ``owner`` is alive (upsert), with its last cycles' summaries."""
    values = dict(owner=owner, hostname=hostname, pid=pid, started_at=started_at, heartbeat_at=now,
                  info=json.dumps(info or {}))
    table = Worker.__table__  # type: ignore[attr-defined]
    update = {"heartbeat_at": now} | ({"info": values["info"]} if info is not None else {})
    session.execute(_insert(session, table).values(values)
                    .on_conflict_do_update(index_elements=["owner"], set_=update))


def remove_worker(session: Session, owner: str) -> None:
    session.execute(sa.delete(Worker).where(col(Worker.owner) == owner))


def list_workers(session: Session) -> list[Worker]:
    return list(session.exec(select(Worker).order_by(col(Worker.started_at))))


def health_counts(session: Session, *, now: datetime, overdue_after: int) -> dict[str, int]:
    """Numbers an operator checks: overdue feeds, failing feeds, deliveries by status."""
    overdue = now - timedelta(seconds=overdue_after)

    def count(query: Any) -> int:
        return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)

    active = select(Feed.id).where(col(Feed.active).is_(True))
    counts = {
        "feeds_active": count(active),
        "feeds_overdue": count(active.where(col(Feed.next_poll_at) < overdue)),
        "feeds_failing": count(active.where(col(Feed.error_count) > 0)),
    }
    for status in ("pending", "dead"):
        counts[f"deliveries_{status}"] = count(
            select(Delivery.id).where(col(Delivery.status) == status))
    counts["deliveries_retrying"] = count(select(Delivery.id).where(
        col(Delivery.status) == "pending", col(Delivery.attempts) > 0))
    return counts


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retention:
    items: int  # seconds: item text kept this long (items without hits)
    hits: int  # hits (and their items) kept this long
    deliveries: int  # sent deliveries' rendered payloads kept this long
    fingerprints: int  # rows of pruned items (their fingerprints) kept this long, so re-served items never alert


def prune(session: Session, *, now: datetime, retention: Retention, batch: int = 500, dry_run: bool = False,
          story_window: timedelta = timedelta(hours=48)) -> dict[str, int]:
    """Apply retention in batches of ``batch`` rows per statement; returns what was (or would be) pruned.

    Item rows outlive their text: a pruned item keeps its fingerprint until ``fingerprints`` so a
    feed re-serving an old entry never alerts again. Delivery links (the at-most-once guard) go only
    with their hits.
    """
    def ago(seconds: int) -> datetime:
        return now - timedelta(seconds=seconds)

    has_hit = sa.exists(sa.select(Hit.id).where(col(Hit.item_id) == col(ItemRow.id)))  # type: ignore[call-overload]
    steps: list[tuple[str, Any]] = [
        ("hits", sa.select(Hit.id).where(col(Hit.created_at) < ago(retention.hits))),  # type: ignore[call-overload]
        ("delivery_payloads", sa.select(Delivery.id).where(  # type: ignore[call-overload]
            col(Delivery.status) == "sent", col(Delivery.sent_at) < ago(retention.deliveries),
            sa.func.length(col(Delivery.payload)) > 0)),
        ("item_texts", sa.select(ItemRow.id).where(  # type: ignore[call-overload]
            col(ItemRow.pruned).is_(False), col(ItemRow.fetched_at) < ago(retention.items), ~has_hit)),
        ("item_rows", sa.select(ItemRow.id).where(  # type: ignore[call-overload]
            col(ItemRow.fetched_at) < ago(retention.fingerprints), ~has_hit)),
        ("story_keys", None),
    ]
    counts: dict[str, int] = {}
    keys_before = now - story_window - timedelta(days=1)
    for name, ids_query in steps:
        if name == "story_keys":
            query = sa.select(sa.func.count()).where(col(StoryKey.published_at) < keys_before)
            counts[name] = int(session.scalar(query) or 0) if dry_run else prune_story_keys(session, before=keys_before)
            continue
        if dry_run:
            counts[name] = int(session.scalar(sa.select(sa.func.count()).select_from(ids_query.subquery())) or 0)
            continue
        total = 0
        while True:
            ids = list(session.scalars(ids_query.limit(batch)))
            if not ids:
                break
            _prune_batch(session, name, ids)
            session.commit()  # short transactions: no long locks on a live database
            total += len(ids)
            if len(ids) < batch:
                break
        counts[name] = total
    return counts


def _prune_batch(session: Session, name: str, ids: list[int]) -> None:
    if name == "hits":
        session.execute(sa.delete(DeliveryHit).where(col(DeliveryHit.hit_id).in_(ids)))
        session.execute(sa.delete(Hit).where(col(Hit.id).in_(ids)))
    elif name == "delivery_payloads":
        session.execute(sa.update(Delivery).where(col(Delivery.id).in_(ids)).values(payload=b""))
    elif name == "item_texts":
        session.execute(sa.update(ItemRow).where(col(ItemRow.id).in_(ids)).values(
            title="", summary="", content="", signature=None, pruned=True))
    elif name == "item_rows":
        session.execute(sa.delete(StoryKey).where(col(StoryKey.item_id).in_(ids)))
        session.execute(sa.delete(ItemRow).where(col(ItemRow.id).in_(ids)))


# --- backtests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    id: int
    feed: str
    title: str
    summary: str
    content: str
    link: str | None
    published_at: datetime | None
    fetched_at: datetime | None


def iter_items(session: Session, *, since: datetime | None, batch: int = 1000) -> Iterator[ArchivedItem]:
    """Stored items (text not pruned) fetched since ``since``, streamed in id order, ``batch`` rows at a time."""
    last_id = 0
    while True:
        query = (
            sa.select(ItemRow.id, Feed.name, Feed.url, ItemRow.title, ItemRow.summary,  # type: ignore[call-overload,misc]
                      ItemRow.content, ItemRow.link, ItemRow.published_at, ItemRow.fetched_at)
            .join(Feed, col(Feed.id) == col(ItemRow.feed_id))
            .where(col(ItemRow.id) > last_id, col(ItemRow.pruned).is_(False))
            .order_by(col(ItemRow.id)).limit(batch)
        )
        if since is not None:
            query = query.where(col(ItemRow.fetched_at) >= since)
        rows = session.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield ArchivedItem(id=row[0], feed=row[1] or row[2], title=row[3], summary=row[4], content=row[5],
                               link=row[6], published_at=row[7], fetched_at=row[8])
        last_id = rows[-1][0]


def stored_hit_items(session: Session, watchlist: str, *, since: datetime | None) -> dict[int, str]:
    """``{item_id: watchlist_version}`` of the stored hits of one watchlist."""
    query = (sa.select(Hit.item_id, Hit.watchlist_version)  # type: ignore[call-overload]
             .join(ItemRow, col(ItemRow.id) == col(Hit.item_id)).where(col(Hit.watchlist) == watchlist))
    if since is not None:
        query = query.where(col(ItemRow.fetched_at) >= since)
    return {item_id: version for item_id, version in session.execute(query)}


# --- which watchlist versions items were matched against ---------------------------------------


def match_set_key(versions: Mapping[str, str]) -> str:
    """A short stable key for a set of ``{watchlist: version}``."""
    return hashlib.sha256(json.dumps(sorted(versions.items())).encode()).hexdigest()[:32]


def ensure_match_set(session: Session, versions: Mapping[str, str], *, now: datetime) -> str:
    """Record this set of watchlist versions (once; several workers may race) and return its key."""
    key = match_set_key(versions)
    table = MatchSet.__table__  # type: ignore[attr-defined]
    session.execute(_insert(session, table).values(key=key, lists=json.dumps(dict(sorted(versions.items()))),
                                                   created_at=now).on_conflict_do_nothing(index_elements=["key"]))
    return key


def match_sets(session: Session, keys: Iterable[str]) -> dict[str, dict[str, str]]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(sa.select(MatchSet.key, MatchSet.lists).where(  # type: ignore[call-overload]
        col(MatchSet.key).in_(wanted)))
    return {key: json.loads(lists) for key, lists in rows}


def mark_matched(session: Session, item_ids: Sequence[int], key: str) -> None:
    """Record that these items were matched against the watchlist versions of match set ``key``."""
    for start in range(0, len(item_ids), 5000):
        session.execute(sa.update(ItemRow).where(col(ItemRow.id).in_(list(item_ids[start:start + 5000])))
                        .values(matched_with=key))


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An alertable stored item, as rematching needs it."""

    id: int
    item: Item
    matched_with: str | None
    story_id: int | None


def items_to_rematch(session: Session, *, since: datetime, after_id: int, limit: int,
                     skip_key: str | None) -> list[StoredItem]:
    """Alertable items (text not pruned) fetched since ``since``, in id order after ``after_id``;
    ``skip_key``: leave out items already matched against that set."""
    query = (
        sa.select(ItemRow, Feed.url)  # type: ignore[call-overload]
        .join(Feed, col(Feed.id) == col(ItemRow.feed_id))
        .where(col(ItemRow.id) > after_id, col(ItemRow.fetched_at) >= since, col(ItemRow.alertable).is_(True),
               col(ItemRow.pruned).is_(False))
        .order_by(col(ItemRow.id)).limit(limit)
    )
    if skip_key is not None:
        query = query.where(sa.or_(col(ItemRow.matched_with).is_(None), col(ItemRow.matched_with) != skip_key))
    out = []
    for row, feed_url in session.execute(query):
        assert row.id is not None and row.fetched_at is not None
        out.append(StoredItem(
            id=row.id, matched_with=row.matched_with, story_id=row.story_id,
            item=Item(fingerprint=row.fingerprint, title=row.title, link=row.link, guid=row.guid, summary=row.summary,
                      content=row.content, published_at=row.published_at, author=row.author, feed_url=feed_url,
                      fetched_at=row.fetched_at),
        ))
    return out


def insert_hits_reporting(session: Session, hits: Iterable[tuple[int, Match]], *,
                          now: datetime) -> list[tuple[int, str]]:
    """Like :func:`insert_hits`, returning the ``(item_id, watchlist)`` of the hits that were new."""
    rows = [
        dict(item_id=item_id, watchlist=m.watchlist, watchlist_version=m.version, score=m.score,
             evidence=json.dumps(list(m.evidence), ensure_ascii=False), created_at=now)
        for item_id, m in hits
    ]
    table = Hit.__table__  # type: ignore[attr-defined]
    inserted: list[tuple[int, str]] = []
    for start in range(0, len(rows), _CHUNK):
        stmt = (
            _insert(session, table).values(rows[start:start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["item_id", "watchlist"])
            .returning(table.c.item_id, table.c.watchlist)
        )
        inserted.extend((item_id, name) for item_id, name in session.execute(stmt))
    return inserted


def known_hit_watchlists(session: Session) -> set[str]:
    """Watchlist names that have stored hits (a list removed from the folder still has its history)."""
    return set(session.scalars(sa.select(Hit.watchlist).distinct()))  # type: ignore[call-overload]
# --- unsubscribes -------------------------------------------------------------------------------


def record_unsubscribe(session: Session, subscription: str, address: str, *, now: datetime) -> bool:
    """Store that ``address`` left ``subscription`` (insert-if-absent); False when it had already."""
    table = Unsubscribe.__table__  # type: ignore[attr-defined]
    result = session.execute(_insert(session, table).values(
        subscription=subscription, address=address.strip().lower(), created_at=now,
    ).on_conflict_do_nothing(index_elements=["subscription", "address"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unsubscribed_addresses(session: Session, subscription: str) -> set[str]:
    """Lower-cased addresses that left ``subscription``: the planner sends them nothing more."""
    return set(session.scalars(sa.select(Unsubscribe.address).where(  # type: ignore[call-overload]
        col(Unsubscribe.subscription) == subscription)))
