"""Statements every aggregate shares: dialect-aware INSERT, claim candidates, batch size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col

_CHUNK = 200  # rows per multi-row INSERT (well under SQLite's bound-parameter limit)


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
