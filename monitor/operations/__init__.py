"""Operations shared by the command line and the web front door: one copy of each.

Queries for pages of hits, item search, feed changes, the outbox, API tokens,
operator passwords, unsubscribes and readiness. Each takes a session (or an
engine) and plain values, and returns plain values; callers print or render.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor import store
from monitor.db import current_revision, head_revision, redact_url
from monitor.errors import DatabaseError
from monitor.models import ApiToken, Delivery, Feed, Hit, Item, Operator, Unsubscribe, Worker

if TYPE_CHECKING:
    from monitor.net.guard import FetchPolicy

MAX_PAGE = 200
MIN_INDEXED_TERM = 3  # the trigram index finds terms of three characters or more; shorter ones are scanned for


class OperationError(Exception):
    """A request the operation refuses, with a message for the person who asked."""


# --- hits ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HitFilter:
    watchlist: str | None = None
    feed: str | None = None  # a feed's id, URL or name
    since: datetime | None = None  # when the hit was recorded
    until: datetime | None = None
    lang: str | None = None
    watchlists: tuple[str, ...] = ()  # any of these (a subscription's lists)
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class HitView:
    hit_id: int
    item_id: int
    watchlist: str
    watchlist_version: str
    score: float
    evidence: list[dict[str, Any]]
    title: str
    summary: str
    link: str | None
    lang: str | None
    published_at: datetime | None
    created_at: datetime
    feed_id: int
    feed: str
    story_id: int | None
    also_reported_by: list[str] = field(default_factory=list)


def _feed_condition(value: str) -> Any:
    if value.isdigit():
        return col(Feed.id) == int(value)
    return sa.or_(col(Feed.url) == value, col(Feed.name) == value)


def hits_page(session: Session, filters: HitFilter, *, before: int | None = None,
              limit: int = 50) -> tuple[list[HitView], int | None]:
    """Hits, newest first, older than hit id ``before``; returns the page and the cursor of the next one.

    Keyset pagination on the hit id: each page is one indexed range scan, however deep.
    """
    limit = max(1, min(limit, MAX_PAGE))
    # Plain columns, not ORM objects: a page needs neither the items' content nor their signatures.
    query = (
        sa.select(Hit.id, Hit.item_id, Hit.watchlist, Hit.watchlist_version, Hit.score,  # type: ignore[call-overload,misc]
                  Hit.evidence, Hit.created_at, Item.title, Item.summary, Item.link, Item.lang, Item.published_at,
                  Item.story_id, Feed.id, Feed.name, Feed.url)
        .join(Item, col(Item.id) == col(Hit.item_id))
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .order_by(col(Hit.id).desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(col(Hit.id) < before)
    if filters.watchlist:
        query = query.where(col(Hit.watchlist) == filters.watchlist)
    if filters.watchlists:
        query = query.where(col(Hit.watchlist).in_(list(filters.watchlists)))
    if filters.min_score is not None:
        query = query.where(col(Hit.score) >= filters.min_score)
    if filters.feed:
        query = query.where(_feed_condition(filters.feed))
    if filters.since:
        query = query.where(col(Hit.created_at) >= filters.since)
    if filters.until:
        query = query.where(col(Hit.created_at) < filters.until)
    if filters.lang:
        query = query.where(col(Item.lang) == filters.lang)
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    also = _also_reported_by(session, [(r.item_id, r.story_id) for r in rows])
    views = [
        HitView(hit_id=r[0], item_id=r[1], watchlist=r[2], watchlist_version=r[3], score=r[4],
                evidence=_evidence(r[5]), created_at=r[6], title=r[7], summary=r[8], link=r[9], lang=r[10],
                published_at=r[11], story_id=r[12], feed_id=r[13], feed=r[14] or r[15],
                also_reported_by=also.get(r[1], []))
        for r in rows
    ]
    return views, (views[-1].hit_id if more and views else None)


def _evidence(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _also_reported_by(session: Session, items: Sequence[tuple[int | None, int | None]],
                      per_story: int = 10) -> dict[int, list[str]]:
    """For each item, the other feeds that carried its story (one query for the whole page)."""
    stories = {story for _item, story in items if story is not None}
    if not stories:
        return {}
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    # The first reports of each story, ranked within the story: the story_id index serves it. (A plain
    # ORDER BY items.id LIMIT lets PostgreSQL walk the primary key through the whole archive instead.)
    rank = sa.func.row_number().over(partition_by=col(Item.story_id), order_by=col(Item.id)).label("rank")
    ranked = (sa.select(Item.id, Item.story_id, Feed.name, Feed.url, rank)  # type: ignore[call-overload]
              .join(Feed, col(Feed.id) == col(Item.feed_id))
              .where(col(Item.story_id).in_(sorted(stories))).subquery())
    rows = session.execute(sa.select(ranked.c.id, ranked.c.story_id, ranked.c.name, ranked.c.url)
                           .where(ranked.c.rank <= per_story * 2).order_by(ranked.c.id))
    for item_id, story_id, name, url in rows:
        members[story_id].append((item_id, name or url))
    out: dict[int, list[str]] = {}
    for item_id, story in items:
        if item_id is None or story is None:
            continue
        own = next((feed for other, feed in members[story] if other == item_id), None)
        names = sorted({feed for other, feed in members[story] if other != item_id and feed != own})
        if names:
            out[item_id] = names[:per_story]
    return out


# --- search -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemView:
    item_id: int
    title: str
    summary: str
    link: str | None
    lang: str | None
    published_at: datetime | None
    fetched_at: datetime | None
    feed: str


# Control characters never occur in stored text, and a NUL ends an FTS5 query string (SQLite) or is
# refused in a parameter (PostgreSQL): they separate words like spaces do.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def search_terms(query: str) -> list[str]:
    """The words of a search, each looked for as a substring (all must occur)."""
    return [t for t in _CONTROL.sub(" ", query).split() if t][:8]


def search_items(session: Session, query: str, *, before: int | None = None,
                 limit: int = 50) -> tuple[list[ItemView], int | None]:
    """Stored items containing every term of ``query`` (case-insensitive substrings), newest first.

    SQLite answers from the FTS5 trigram index (terms of three characters or more), walking it
    newest first and stopping once the page is full; shorter terms are checked on the rows it
    returns, or scanned for when the query has no longer term. PostgreSQL uses ILIKE, which its
    pg_trgm index serves.
    """
    terms = search_terms(query)
    if not terms:
        return [], None
    limit = max(1, min(limit, MAX_PAGE))
    dialect = session.get_bind().dialect.name
    indexed = [t for t in terms if len(t) >= MIN_INDEXED_TERM]
    if dialect == "sqlite" and indexed:
        rows = _sqlite_indexed_search(session, indexed, [t for t in terms if len(t) < MIN_INDEXED_TERM],
                                      before=before, want=limit + 1)
    else:
        rows = list(session.execute(_item_rows(dialect, terms, before=before).limit(limit + 1)).all())
    views = [ItemView(item_id=r[0], title=r[1], summary=r[2], link=r[3], lang=r[4], published_at=r[5],
                      fetched_at=r[6], feed=r[7] or r[8]) for r in rows[:limit]]
    return views, (views[-1].item_id if len(rows) > limit and views else None)


def _item_rows(dialect: str, terms: Sequence[str], *, before: int | None, ids: Sequence[int] | None = None) -> Any:
    """Items (newest first) holding every one of ``terms``, among ``ids`` when given."""
    if dialect == "postgresql":
        text = col(Item.title) + " " + col(Item.summary) + " " + col(Item.content)  # the trigram index's expression
        conditions: list[Any] = [text.ilike(f"%{_like_escape(t)}%", escape="\\") for t in terms]
    else:
        text = col(Item.title) + " " + col(Item.summary) + " " + col(Item.content)
        conditions = [sa.func.instr(sa.func.lower(text), t.lower()) > 0 for t in terms]
    conditions.append(col(Item.pruned).is_(False))
    if before is not None:
        conditions.append(col(Item.id) < before)
    if ids is not None:
        conditions.append(col(Item.id).in_(list(ids)))
    return (
        sa.select(Item.id, Item.title, Item.summary, Item.link, Item.lang,  # type: ignore[call-overload,misc]
                  Item.published_at, Item.fetched_at, Feed.name, Feed.url)
        .join(Feed, col(Feed.id) == col(Item.feed_id))
        .where(*conditions).order_by(col(Item.id).desc())
    )


def _sqlite_indexed_search(session: Session, indexed: Sequence[str], short: Sequence[str], *, before: int | None,
                           want: int) -> list[Any]:
    """Walk the FTS5 index newest first in batches until ``want`` rows pass the other checks.

    ``ORDER BY rowid DESC LIMIT`` on the FTS table stops early, so a common term costs one page,
    not every match in the archive.
    """
    match = " AND ".join('"' + t.replace('"', '""') + '"' for t in indexed)
    batch = want * (4 if short else 1)
    found: list[Any] = []
    while len(found) < want:
        ids = list(session.scalars(
            sa.text("SELECT rowid FROM items_fts WHERE items_fts MATCH :match AND rowid < :before "
                    "ORDER BY rowid DESC LIMIT :batch")
            .bindparams(match=match, before=before if before is not None else 2**63 - 1, batch=batch)))
        if not ids:
            break
        found += session.execute(_item_rows("sqlite", short, before=None, ids=ids)).all()
        if len(ids) < batch:
            break
        before = ids[-1]
        batch = min(batch * 2, 5000)
    return found[:want]


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- feeds --------------------------------------------------------------------------------------


def add_feed(session: Session, url: str, *, name: str | None, now: datetime, interval: int,
             alert_window: int, policy: FetchPolicy) -> Feed:
    """Add a feed by URL (http(s) only; ``policy`` is the polling one, ``FetchPolicy.from_settings``,
    so its network guard and allowances apply); an inactive known URL is re-enabled."""
    from monitor.errors import MonitorError
    from monitor.ingest.fetch import check_url

    url = url.strip()
    try:
        check_url(url, policy)
    except MonitorError as exc:
        raise OperationError(f"{url}: {exc}") from None
    existing = session.exec(select(Feed).where(col(Feed.url) == url)).first()
    if existing is not None:
        if existing.active:
            raise OperationError(f"{url} is already watched (feed {existing.id})")
        existing.active, existing.next_poll_at, existing.error_count = True, now, 0
        session.add(existing)
        session.flush()
        return existing
    store.add_imported_feeds(session, [(url, name or None, None)], now=now, interval=interval,
                             alert_window=alert_window)
    feed = session.exec(select(Feed).where(col(Feed.url) == url)).one()
    feed.origin = "web"
    session.add(feed)
    session.flush()
    return feed


@dataclass(frozen=True, slots=True)
class FeedName:
    id: int
    name: str | None
    url: str


def feed_names(session: Session) -> list[FeedName]:
    """Every feed's id, name and URL (for filter menus): three columns, not whole rows."""
    return [FeedName(id=r[0], name=r[1], url=r[2]) for r in session.execute(
        sa.select(Feed.id, Feed.name, Feed.url).order_by(col(Feed.id)))]  # type: ignore[call-overload]


def get_feed(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise OperationError(f"no feed with id {feed_id}")
    return feed


def pause_feed(session: Session, feed_id: int) -> Feed:
    """Stop polling a feed (its items and hits stay). A feed from the config file is removed there instead."""
    feed = get_feed(session, feed_id)
    if feed.origin == "config":
        raise OperationError(f"feed {feed_id} ({feed.url}) comes from the config file: remove it there")
    feed.active = False
    session.add(feed)
    session.flush()
    return feed


def reset_feed(session: Session, feed_id: int, *, now: datetime) -> Feed:
    feed = get_feed(session, feed_id)
    store.reset_feeds(session, now=now, url=feed.url)
    session.refresh(feed)
    return feed


# --- deliveries ---------------------------------------------------------------------------------


DELIVERY_STATUSES = ("pending", "sent", "dead")


def deliveries_page(session: Session, *, status: str | None = None, before: int | None = None,
                    limit: int = 50) -> tuple[list[Delivery], int | None]:
    """Deliveries newest first; the payload column is left unread (it can be large)."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise OperationError(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Delivery).options(sa.orm.defer(Delivery.payload)).order_by(col(Delivery.id).desc())  # type: ignore[arg-type]
    if status:
        query = query.where(col(Delivery.status) == status)
    if before is not None:
        query = query.where(col(Delivery.id) < before)
    rows = list(session.exec(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def retry_delivery(session: Session, delivery_id: int, *, now: datetime) -> None:
    if store.retry_deliveries(session, now=now, delivery_id=delivery_id) == 0:
        raise OperationError(f"no unsent delivery with id {delivery_id}")


# --- API tokens ---------------------------------------------------------------------------------


TOKEN_PREFIX = "mon_"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(session: Session, name: str, *, read_only: bool, now: datetime) -> str:
    """A new token (returned once, in clear); the database keeps its SHA-256 only."""
    name = name.strip()
    if not name or len(name) > 64:
        raise OperationError("a token name is 1 to 64 characters")
    if session.exec(select(ApiToken).where(col(ApiToken.name) == name)).first() is not None:
        raise OperationError(f"a token named {name!r} exists; revoke it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_hash_token(token), read_only=read_only, created_at=now))
    session.flush()
    return token


def revoke_api_token(session: Session, name: str) -> None:
    if not session.execute(sa.delete(ApiToken).where(col(ApiToken.name) == name)).rowcount:  # type: ignore[attr-defined]
        raise OperationError(f"no token named {name!r}")


def list_api_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.name))))


def check_api_token(session: Session, presented: str) -> ApiToken | None:
    """The token row ``presented`` belongs to, or None.

    The lookup is by the SHA-256 of a 256-bit random token, so timing reveals nothing usable;
    the stored hash is compared again in constant time all the same.
    """
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        return None
    digest = _hash_token(presented)
    row = session.exec(select(ApiToken).where(col(ApiToken.token_hash) == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


# --- operators ----------------------------------------------------------------------------------


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


MIN_PASSWORD = 10


def set_operator_password(session: Session, name: str, password: str, *, now: datetime) -> None:
    if len(password) < MIN_PASSWORD:
        raise OperationError(f"a password needs at least {MIN_PASSWORD} characters")
    if not name or len(name) > 64:
        raise OperationError("an operator name is 1 to 64 characters")
    row = session.get(Operator, name) or Operator(name=name, password_hash="")
    row.password_hash, row.updated_at = _hasher().hash(password), now
    session.add(row)
    session.flush()


_DUMMY_HASH: list[str] = []


def check_operator_password(session: Session, name: str, password: str) -> bool:
    """True when ``password`` is the operator's; an unknown name costs the same work as a wrong password."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    row = session.get(Operator, name) if name else None
    if row is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hasher.hash(secrets.token_hex(16)))
        stored, known = _DUMMY_HASH[0], False
    else:
        stored, known = row.password_hash, True
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return known


def operator_exists(session: Session, name: str) -> bool:
    return bool(name) and len(name) <= 64 and session.get(Operator, name) is not None


def has_operators(session: Session) -> bool:
    return session.exec(select(Operator.name).limit(1)).first() is not None


# --- unsubscribes -------------------------------------------------------------------------------


def record_unsubscribe(session: Session, subscription: str, address: str, *, now: datetime) -> bool:
    """Store that ``address`` left ``subscription``; False when it had already."""
    return store.record_unsubscribe(session, subscription, address, now=now)


def list_unsubscribes(session: Session) -> list[Unsubscribe]:
    return list(session.exec(select(Unsubscribe).order_by(col(Unsubscribe.subscription), col(Unsubscribe.address))))


# --- readiness and metrics ----------------------------------------------------------------------


def readiness(engine: Engine, *, now: datetime, max_heartbeat_age: int) -> list[str]:
    """What stops this installation from working: unreachable database, pending migrations, no live worker."""
    try:
        revision, head = current_revision(engine), head_revision()
    except DatabaseError as exc:
        return [str(exc)]
    if revision != head:
        return [f"database {redact_url(engine.url)} at revision {revision or '(empty)'}, the code needs {head}"]
    horizon = now - timedelta(seconds=max_heartbeat_age)
    try:
        with Session(engine) as session:
            alive = session.scalar(sa.select(sa.func.count()).select_from(Worker).where(
                col(Worker.heartbeat_at) >= horizon))
    except sa.exc.SQLAlchemyError as exc:
        return [f"cannot read the database {redact_url(engine.url)}: {type(exc).__name__}"]
    if not alive:
        return [f"no worker has sent a heartbeat in the last {max_heartbeat_age} s"]
    return []


@dataclass(frozen=True, slots=True)
class Figures:
    """Numbers for /metrics, read in a handful of aggregate queries."""

    feeds: dict[str, int]
    items_per_feed_origin: dict[str, int]
    hits_per_watchlist: dict[str, int]
    deliveries: dict[str, int]
    retrying: int
    oldest_pending_age: float
    workers_alive: int
    heartbeat_ages: dict[str, float]
    last_cycle: dict[str, dict[str, Any]]
    # Each polled feed's last poll duration in seconds (feeds removed with ``feeds remove`` left out).
    poll_seconds: tuple[float, ...] = ()


def figures(session: Session, *, now: datetime, max_heartbeat_age: int = 120) -> Figures:
    feeds: dict[str, int] = {"ok": 0, "failing": 0, "paused": 0, "gone": 0}
    for active, errors, status, count in session.execute(
        sa.select(Feed.active, Feed.error_count, Feed.last_status, sa.func.count())  # type: ignore[call-overload]
        .group_by(Feed.active, Feed.error_count, Feed.last_status)
    ):
        state = ("gone" if status == 410 else "paused") if not active else ("failing" if errors else "ok")
        feeds[state] += int(count)
    items = {str(origin): int(n) for origin, n in session.execute(
        sa.select(Feed.origin, sa.func.count(col(Item.id)))  # type: ignore[call-overload]
        .join(Item, col(Item.feed_id) == col(Feed.id)).group_by(Feed.origin))}
    hits = {str(name): int(n) for name, n in session.execute(
        sa.select(Hit.watchlist, sa.func.count()).group_by(Hit.watchlist))}  # type: ignore[call-overload]
    deliveries = dict.fromkeys(DELIVERY_STATUSES, 0)
    for status, n in session.execute(sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)):  # type: ignore[call-overload]
        deliveries[str(status)] = int(n)
    retrying = int(session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
        col(Delivery.status) == "pending", col(Delivery.attempts) > 0)) or 0)
    oldest = session.scalar(sa.select(sa.func.min(Delivery.created_at)).where(col(Delivery.status) == "pending"))
    if isinstance(oldest, str):  # SQLite hands aggregates back as text
        oldest = datetime.fromisoformat(oldest)
    if isinstance(oldest, datetime) and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    ages: dict[str, float] = {}
    last: dict[str, dict[str, Any]] = {}
    for worker in session.exec(select(Worker)):
        if worker.heartbeat_at is not None:
            ages[worker.owner] = max(0.0, (now - worker.heartbeat_at).total_seconds())
        try:
            info = json.loads(worker.info)
        except ValueError:
            info = {}
        if isinstance(info, dict):
            last[worker.owner] = info
    poll_seconds = tuple(int(ms) / 1000 for ms in session.scalars(
        sa.select(Feed.last_poll_ms).where(col(Feed.last_poll_ms).is_not(None), col(Feed.removed_at).is_(None))))  # type: ignore[call-overload]
    return Figures(
        feeds=feeds, items_per_feed_origin=items, hits_per_watchlist=hits, deliveries=deliveries,
        retrying=retrying, oldest_pending_age=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        workers_alive=sum(1 for age in ages.values() if age <= max_heartbeat_age), heartbeat_ages=ages,
        last_cycle=last, poll_seconds=poll_seconds,
    )
