"""Stories: grouping new items with similar recent ones through shared band keys."""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.domain import Item
from monitor.ingest.cluster import MAX_VERIFIED, StorySignature, signature_for, similarity
from monitor.models import Item as ItemRow
from monitor.models import StoryKey


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
    by_key: dict[str, list[tuple[int, int, datetime | None]]] = defaultdict(list)
    for start in range(0, len(all_keys), 5000):  # bounded IN lists
        for key, item_id, story_id, published in session.execute(
            sa.select(StoryKey.key, StoryKey.item_id, StoryKey.story_id, StoryKey.published_at)  # type: ignore[call-overload]
            # Only the key condition: with a time range too, SQLite prefers the published_at index and
            # scans every recent key. Out-of-window rows are dropped below (and pruned daily).
            .where(col(StoryKey.key).in_(all_keys[start:start + 5000]))
        ):
            if published is None or not lo <= published <= hi:
                continue
            by_key[key].append((item_id, story_id, published))
    def shortlist(item_id: int) -> list[tuple[int, int]]:
        """Recent items sharing the most band keys with this one (story id kept alongside)."""
        shared: Counter[tuple[int, int]] = Counter()
        for key in sigs[item_id].keys:
            for other, story_id, published in by_key.get(key, ()):
                if other != item_id and published is not None and abs(published - whens[item_id]) <= window:
                    shared[(other, story_id)] += 1
        return [pair for pair, _n in shared.most_common(MAX_VERIFIED)]

    wanted = sorted({other for item_id in sigs for other, _story in shortlist(item_id)})
    signatures: dict[int, tuple[int, ...]] = {}
    for start in range(0, len(wanted), 5000):
        for other, blob in session.execute(
            sa.select(ItemRow.id, ItemRow.signature).where(  # type: ignore[call-overload]
                col(ItemRow.id).in_(wanted[start:start + 5000]))
        ):
            if blob:
                signatures[other] = _unpack(blob)
    result: dict[int, tuple[int, bool]] = {}
    key_rows: list[tuple[int, int, datetime, tuple[str, ...]]] = []
    item_rows: list[dict[str, Any]] = []
    for item_id, sig in sigs.items():
        best_story: tuple[float, int] | None = None
        for other, story_id in shortlist(item_id):  # now also sees this batch's earlier items
            if other in signatures:
                score = similarity(sig, StorySignature(signatures[other], ()))
                if score >= threshold and (best_story is None or score > best_story[0]):
                    best_story = (score, story_id)
        if best_story is not None:
            story_id, joined = best_story[1], True
        else:
            story_id, joined = item_id, False  # a new story, named after the item that starts it
        item_rows.append({"_id": item_id, "_story": story_id, "_sig": _pack(sig.signature)})
        if not joined:
            # Only a story's first item is indexed: later reports find the story through it, and a
            # story syndicated to hundreds of feeds keeps one set of keys instead of hundreds.
            key_rows.append((item_id, story_id, whens[item_id], sig.keys))
            signatures[item_id] = sig.signature
            for k in sig.keys:
                by_key[k].append((item_id, story_id, whens[item_id]))
        result[item_id] = (story_id, joined)
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
