"""Retention: pruning old hits, payloads, item texts and rows in short batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.models import Delivery, DeliveryHit, Hit, StoryKey
from monitor.models import Item as ItemRow
from monitor.store.stories import prune_story_keys


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
