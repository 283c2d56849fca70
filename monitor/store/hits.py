"""Hits: insert-if-new per (item, watchlist), and the views of them the CLI, web and planner read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.domain import Match, StoredHit, StoryRef
from monitor.models import DeliveryHit, Feed, Hit, Subscription
from monitor.models import Item as ItemRow
from monitor.store._sql import _CHUNK, _statement


def insert_hits(session: Session, hits: Iterable[tuple[int, Match]], *, now: datetime) -> int:
    """Store hits; a (item, watchlist) pair already stored is left alone. Returns the count inserted."""
    return len(insert_hits_reporting(session, hits, now=now))


def insert_hits_reporting(session: Session, hits: Iterable[tuple[int, Match]], *,
                          now: datetime) -> list[tuple[int, str]]:
    """Like :func:`insert_hits`, returning the ``(item_id, watchlist)`` of the hits that were new."""
    rows = [
        dict(item_id=item_id, watchlist=m.watchlist, watchlist_version=m.version, score=m.score,
             evidence=json.dumps(list(m.evidence), ensure_ascii=False), created_at=now)
        for item_id, m in hits
    ]
    if not rows:
        return []
    result = session.connection().execute(_statement(session, "hits", _hit_insert), rows)
    return [(item_id, name) for item_id, name in result]


def _hit_insert(insert: Any) -> Any:
    table = Hit.__table__  # type: ignore[attr-defined]
    return (insert(table).on_conflict_do_nothing(index_elements=["item_id", "watchlist"])
            .returning(table.c.item_id, table.c.watchlist))


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


def _not_yet_sent(subscription_id: Any) -> list[Any]:
    """Conditions on ``Hit``: neither this hit nor another hit on its item went to the subscription.

    ``subscription_id`` is a value or a column, so one subscription and a set of them share the rule.
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
    return [~sa.exists(sent), ~sa.exists(item_sent)]


def undelivered_hits(
    session: Session, subscription_id: int, watchlists: Sequence[str], *, since: datetime, limit: int,
    min_score: float = 0.0,
) -> list[StoredHit]:
    """Hits on these watchlists created since ``since`` that this subscription has not been sent.

    Each comes with ``follow_up``: another item of its story was already sent to this subscription.
    """
    query = (
        _hit_query()
        .where(*_undelivered(subscription_id, watchlists, since=since, min_score=min_score))
        .order_by(col(Hit.id))
        .limit(limit)
    )
    rows = list(session.execute(query))
    stories = {item.story_id for _h, item, _f in rows if item.story_id is not None}
    told = _stories_told(session, subscription_id, stories)
    return [replace(_view(h, i, f, follow_up=i.story_id in told),
                    follow_up_of=told.get(i.story_id) if i.story_id is not None else None)
            for h, i, f in rows]


def _undelivered(subscription_id: int, watchlists: Sequence[str], *, since: datetime,
                 min_score: float) -> list[Any]:
    """The conditions on ``hits`` for "waiting for this subscription"."""
    return [col(Hit.watchlist).in_(list(watchlists)), col(Hit.created_at) >= since, col(Hit.score) >= min_score,
            *_not_yet_sent(subscription_id)]


def count_undelivered_hits(session: Session, subscription_id: int, watchlists: Sequence[str], *, since: datetime,
                           min_score: float = 0.0, cap: int = 1001) -> int:
    """How many hits :func:`undelivered_hits` would return, counting at most ``cap`` (a bounded scan)."""
    waiting = (sa.select(Hit.id).where(*_undelivered(subscription_id, watchlists, since=since,  # type: ignore[call-overload]
                                                        min_score=min_score)).limit(cap).subquery())
    return int(session.scalar(sa.select(sa.func.count()).select_from(waiting)) or 0)


_VIEW_COLUMNS = (Hit.id, Hit.item_id, Hit.watchlist, Hit.score, Hit.evidence, Hit.created_at, ItemRow.title,
                 ItemRow.link, ItemRow.summary, ItemRow.published_at, ItemRow.story_id, ItemRow.content, Feed.name,
                 Feed.url)


def undelivered_hits_for(
    session: Session, subscription_ids: Sequence[int], watchlists: Sequence[str], *, now: datetime, limit: int,
    min_score: float = 0.0,
) -> dict[int, list[StoredHit]]:
    """:func:`undelivered_hits` for several subscriptions that follow the same lists, in three queries.

    Each subscription's window starts at its row's ``created_at`` (``now`` when unset), as the
    planner's does, and each gets at most ``limit`` hits, oldest first. A hit pending for many
    subscriptions is read and decoded once; only its follow-up marks differ between them.
    """
    if not subscription_ids:
        return {}
    sub = Subscription.__table__  # type: ignore[attr-defined]
    rank = sa.func.row_number().over(partition_by=sub.c.id, order_by=col(Hit.id)).label("rank")
    pending = (
        sa.select(sub.c.id.label("sub_id"), col(Hit.id).label("hit_id"), rank)
        .select_from(sub)
        .join(Hit, col(Hit.created_at) >= sa.func.coalesce(sub.c.created_at, sa.literal(now, sub.c.created_at.type)))
        .where(sub.c.id.in_(list(subscription_ids)), col(Hit.watchlist).in_(list(watchlists)),
               col(Hit.score) >= min_score, *_not_yet_sent(sub.c.id))
        .subquery()
    )
    pairs: dict[int, list[int]] = {sub_id: [] for sub_id in subscription_ids}
    for sub_id, hit_id in session.execute(
        sa.select(pending.c.sub_id, pending.c.hit_id).where(pending.c.rank <= limit)
        .order_by(pending.c.sub_id, pending.c.hit_id)
    ):
        pairs[sub_id].append(hit_id)
    wanted = sorted({hit_id for ids in pairs.values() for hit_id in ids})
    views: dict[int, StoredHit] = {}
    for start in range(0, len(wanted), _CHUNK):
        for (hit_id, item_id, watchlist, score, evidence, created_at, title, link, summary, published_at, story_id,
             content, feed_name, feed_url) in session.execute(
            sa.select(*_VIEW_COLUMNS).join(ItemRow, col(ItemRow.id) == col(Hit.item_id))  # type: ignore[call-overload]
            .join(Feed, col(Feed.id) == col(ItemRow.feed_id)).where(col(Hit.id).in_(wanted[start:start + _CHUNK]))
        ):
            views[hit_id] = StoredHit(
                hit_id=hit_id, item_id=item_id, watchlist=watchlist, score=score, evidence=json.loads(evidence),
                title=title, link=link, summary=summary, published_at=published_at, feed_name=feed_name,
                feed_url=feed_url, created_at=created_at, story_id=story_id, content=content,
            )
    stories = {view.story_id for view in views.values() if view.story_id is not None}
    told = _stories_told_for(session, list(subscription_ids), stories)
    result: dict[int, list[StoredHit]] = {}
    for sub_id, hit_ids in pairs.items():
        sub_told = told.get(sub_id, {})
        result[sub_id] = [
            replace(views[h], follow_up=True, follow_up_of=sub_told[views[h].story_id])  # type: ignore[index]
            if views[h].story_id in sub_told else views[h]
            for h in hit_ids
        ]
    return result


def _stories_told_for(session: Session, subscription_ids: list[int],
                      stories: set[int]) -> dict[int, dict[int, StoryRef]]:
    """:func:`_stories_told` for several subscriptions: ``{subscription_id: {story_id: first report sent}}``."""
    if not stories or not subscription_ids:
        return {}
    earlier = sa.orm.aliased(ItemRow)
    told: dict[int, dict[int, StoryRef]] = {}
    for sub_id, story_id, item_id, title, link, feed_name, feed_url in session.execute(
        sa.select(col(DeliveryHit.subscription_id), col(earlier.story_id), earlier.id, earlier.title,  # type: ignore[call-overload]
                  earlier.link, Feed.name, Feed.url)
        .join(Hit, col(Hit.item_id) == earlier.id)
        .join(DeliveryHit, col(DeliveryHit.hit_id) == col(Hit.id))
        .join(Feed, col(Feed.id) == earlier.feed_id)
        .where(col(DeliveryHit.subscription_id).in_(subscription_ids), col(earlier.story_id).in_(sorted(stories)))
        .order_by(earlier.id)
    ):
        mine = told.setdefault(sub_id, {})
        if story_id not in mine:
            source = feed_name or urlsplit(link or feed_url).hostname or feed_url
            mine[story_id] = StoryRef(item_id=item_id, title=title or "(untitled)", link=link, source=source)
    return told


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


def stored_hit_items(session: Session, watchlist: str, *, since: datetime | None) -> dict[int, str]:
    """``{item_id: watchlist_version}`` of the stored hits of one watchlist."""
    query = (sa.select(Hit.item_id, Hit.watchlist_version)  # type: ignore[call-overload]
             .join(ItemRow, col(ItemRow.id) == col(Hit.item_id)).where(col(Hit.watchlist) == watchlist))
    if since is not None:
        query = query.where(col(ItemRow.fetched_at) >= since)
    return {item_id: version for item_id, version in session.execute(query)}


def known_hit_watchlists(session: Session) -> set[str]:
    """Watchlist names that have stored hits (a list removed from the folder still has its history)."""
    return set(session.scalars(sa.select(Hit.watchlist).distinct()))  # type: ignore[call-overload]
