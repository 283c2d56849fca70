"""Items: insert-if-new by fingerprint, and reading stored items back for backtests and rematching."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.domain import Item
from monitor.lang import script_language
from monitor.models import Feed
from monitor.models import Item as ItemRow
from monitor.store._sql import _CHUNK, _statement, in_list


def known_fingerprints(session: Session | sa.Connection, fingerprints: Iterable[str]) -> set[str]:
    """Which of ``fingerprints`` this database already holds (a read: call it outside write transactions).

    One statement built once (an expanding IN), so a poll asking for every feed it reads costs no compiling.
    """
    wanted = list(dict.fromkeys(fingerprints))
    known: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        known.update(session.execute(_KNOWN, {"fingerprints": in_list(wanted[start:start + _CHUNK])}).scalars())
    return known


_FINGERPRINT = ItemRow.__table__.c.fingerprint  # type: ignore[attr-defined]
_KNOWN = sa.select(_FINGERPRINT).where(_FINGERPRINT.in_(sa.bindparam("fingerprints", expanding=True)))


def insert_new_items(
    session: Session, feed_id: int, items: Sequence[Item], *, alertable: Sequence[bool],
    matched_with: str | None = None, index: bool = True,
) -> list[tuple[int, Item, bool]]:
    """Insert the items this database has not seen; return ``(id, item, alertable)`` for those only.

    ``matched_with``: the match set the alertable items were just matched against (recorded with
    them, as :func:`monitor.store.mark_matched` would afterwards). ``index=False`` leaves adding them
    to the search index to the caller (:func:`index_for_search`, once for many feeds' items: cheaper),
    in the same transaction.
    """
    by_fp: dict[str, tuple[Item, bool]] = {}
    for item, ok in zip(items, alertable, strict=True):
        by_fp.setdefault(item.fingerprint, (item, ok))  # a feed repeating an entry: keep the first
    if not by_fp:
        return []
    rows = [
        dict(fingerprint=fp, feed_id=feed_id, guid=it.guid, link=it.link, title=it.title, summary=it.summary,
             content=it.content, author=it.author, published_at=it.published_at, fetched_at=it.fetched_at,
             alertable=ok, lang=it.lang if it.lang is not None else script_language(f"{it.title} {it.summary}"),
             matched_with=matched_with if ok else None)
        for fp, (it, ok) in by_fp.items()
    ]
    new: list[tuple[int, Item, bool]] = []
    # Rows RETURNING comes back in no particular order (conflicts return none): matched by fingerprint.
    for item_id, fp in session.connection().execute(_statement(session, "items", _item_insert), rows):
        item, ok = by_fp[fp]
        new.append((item_id, item, ok))
    if index:
        index_for_search(session, [item_id for item_id, _item, _ok in new])
    return new


def index_for_search(session: Session, item_ids: Sequence[int]) -> None:
    """Add newly inserted items to SQLite's full-text index (PostgreSQL's trigram index follows the table).

    One ``INSERT … SELECT`` for many items: FTS5 indexes a batch several times faster than row by row.
    Each item must be indexed exactly once, in the transaction that inserted it (the delete and update
    triggers take it out of the index again).
    """
    if not item_ids or session.get_bind().dialect.name != "sqlite":
        return
    connection = session.connection()
    # The items one transaction inserts have consecutive ids (one writer at a time on SQLite): a range
    # each binds two values, where an IN list binds (and SQLAlchemy renders) every id.
    for first, last in id_runs(item_ids):
        connection.execute(_INDEX_RANGE, {"first": first, "last": last})


def id_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """``ids`` as ranges of consecutive ids, ``(first, last)`` each, in order (duplicates once)."""
    runs: list[tuple[int, int]] = []
    for item_id in sorted(set(ids)):
        if runs and item_id == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], item_id)
        else:
            runs.append((item_id, item_id))
    return runs


_INDEX_RANGE = sa.text(
    "INSERT INTO items_fts(rowid, title, summary, content) SELECT id, title, summary, content FROM items "
    "WHERE id BETWEEN :first AND :last"
)


def _item_insert(insert: Any) -> Any:
    table = ItemRow.__table__  # type: ignore[attr-defined]
    return (insert(table).on_conflict_do_nothing(index_elements=["fingerprint"])
            .returning(table.c.id, table.c.fingerprint))


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


def iter_items(session: Session, *, since: datetime | None, batch: int = 1000,
               after_id: int = 0) -> Iterator[ArchivedItem]:
    """Stored items (text not pruned) fetched since ``since`` with an id above ``after_id``, streamed in id
    order, ``batch`` rows at a time."""
    last_id = after_id
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


def nth_newest_item_id(session: Session, n: int) -> int:
    """The id below the ``n`` newest items whose text is kept (0 when there are fewer): where a scan of
    only the newest ``n`` starts."""
    found = session.scalar(sa.select(ItemRow.id).where(col(ItemRow.pruned).is_(False))  # type: ignore[call-overload]
                           .order_by(col(ItemRow.id).desc()).offset(n).limit(1))
    return int(found or 0)

