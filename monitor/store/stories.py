"""Stories: grouping new items with similar recent ones through shared band keys."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.domain import Item
from monitor.ingest import cluster
from monitor.ingest.cluster import StorySignature, signature_for
from monitor.models import Item as ItemRow
from monitor.models import StoryKey
from monitor.store._sql import one_of


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
            .where(one_of(session, col(StoryKey.key), all_keys[start:start + 5000]))
        ):
            if published is None or not lo <= published <= hi:
                continue
            recent.by_key[key].append((item_id, story_id, published))
    wanted = sorted({other for item_id, sig in sigs.items()
                     for other, _story in cluster.shortlist(recent, item_id, sig, whens[item_id], window)})
    for start in range(0, len(wanted), 5000):
        for other, blob in session.execute(
            sa.select(ItemRow.id, ItemRow.signature).where(  # type: ignore[call-overload]
                one_of(session, col(ItemRow.id), wanted[start:start + 5000]))
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
