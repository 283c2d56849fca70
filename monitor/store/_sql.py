"""Statements every aggregate shares: dialect-aware INSERT, claim candidates, batch size."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col

_CHUNK = 200  # rows per multi-row INSERT (well under SQLite's bound-parameter limit)

T = TypeVar("T")


def in_list(values: Sequence[T]) -> list[T]:
    """``values`` for an expanding ``IN``, padded with its last value to a power of two (at least 8).

    An expanding ``IN`` renders one SQL text per list length, and the driver keeps a prepared
    statement per text (Python's sqlite3 caches 128 per connection; psycopg prepares repeated ones
    on the server): long lists of ever-new lengths fill that cache with large statements (128 lists
    of about 2,000 values held 55 MB). Padded, a query has a dozen lengths at most; a repeated value
    changes nothing in an ``IN``.
    """
    if not values:
        return []
    size = max(8, 1 << (len(values) - 1).bit_length())
    return [*values, *([values[-1]] * (size - len(values)))]


def one_of(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``, for long lists of keys or ids.

    On SQLite the list is one JSON parameter read by ``json_each``: one statement text and one bound
    value whatever the length, where an expanding ``IN`` makes SQLAlchemy render, and the driver bind,
    every value in Python. Elsewhere an expanding ``IN`` of :func:`in_list`.
    """
    if session.get_bind().dialect.name == "sqlite":
        listed = sa.func.json_each(sa.bindparam("listed", json.dumps(values), unique=True))
        return column.in_(sa.select(sa.column("value")).select_from(listed).scalar_subquery())
    return column.in_(in_list(values))


def _insert(session: Session, table: Any) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite  # loaded by the first write, not by reading commands

    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(session: Session, name: str, build: Callable[[Any], Any]) -> Any:
    """A statement built once per dialect (``build`` takes the dialect's ``insert``) and reused.

    Executed with a list of parameter sets (``executemany``; with RETURNING, SQLAlchemy's
    "insertmanyvalues" batches the rows), one statement object compiles once, however many rows
    a call has; a ``VALUES`` list built per call changes shape with every row count.
    """
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get((dialect, name))
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        stmt = _STATEMENTS[(dialect, name)] = build(postgresql.insert if dialect == "postgresql" else sqlite.insert)
    return stmt


def _claimable_ids(session: Session, query: Any, model: Any) -> list[int]:
    """The candidate ids of ``query``, at most its LIMIT; on PostgreSQL locked until commit, others' skipped.

    A separate statement, not ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``:
    PostgreSQL may evaluate that subquery more than once and claim more than ``n`` rows.
    """
    ids = query.with_only_columns(col(model.id))
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    return list(session.scalars(ids))
