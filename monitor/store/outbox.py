"""The outbox: rendered deliveries, claimed with a lease, sent once, retried or dead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.models import Delivery, DeliveryHit
from monitor.store._sql import _claimable_ids


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A rendered message for the outbox, before it has a row."""

    subscription_id: int
    key: str
    transport: str
    subject: str
    payload: bytes
    recipients: str
    hit_ids: Sequence[int]


def enqueue_delivery(
    session: Session, *, subscription_id: int, key: str, transport: str, subject: str, payload: bytes,
    recipients: str, hit_ids: Sequence[int], now: datetime,
) -> int:
    """Add a rendered delivery and link its hits; the unique (subscription, hit) key forbids a second send."""
    [delivery_id] = enqueue_deliveries(session, [NewDelivery(
        subscription_id=subscription_id, key=key, transport=transport, subject=subject, payload=payload,
        recipients=recipients, hit_ids=hit_ids)], now=now)
    return delivery_id


def enqueue_deliveries(session: Session, deliveries: Sequence[NewDelivery], *, now: datetime) -> list[int]:
    """Add rendered deliveries and link their hits: two statements, each compiled once however many rows.

    Returns the new ids in the order given. A (subscription, hit) pair linked before fails the whole
    call (the unique key), so a hit is never enqueued twice for one subscription.
    """
    if not deliveries:
        return []
    table, links = Delivery.__table__, DeliveryHit.__table__  # type: ignore[attr-defined]
    ids = [row.id for row in session.execute(
        sa.insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [dict(subscription_id=d.subscription_id, key=d.key, transport=d.transport, status="pending",
              subject=d.subject, payload=d.payload, recipients=d.recipients, hit_count=len(d.hit_ids), attempts=0,
              next_attempt_at=now, created_at=now) for d in deliveries],
    )]
    rows = [dict(delivery_id=delivery_id, hit_id=h, subscription_id=d.subscription_id)
            for delivery_id, d in zip(ids, deliveries, strict=True) for h in d.hit_ids]
    if rows:
        session.execute(sa.insert(links), rows)
    return ids


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
    table = Delivery.__table__  # type: ignore[attr-defined]
    claimable = [table.c.status == "pending", table.c.next_attempt_at <= due,
                 sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)]
    query = sa.select(table.c.id).where(*claimable)
    if ids is not None:
        query = query.where(table.c.id.in_(list(ids)))
    query = query.order_by(table.c.next_attempt_at, table.c.id).limit(limit)
    with Session(engine) as session:
        candidates = _claimable_ids(session, query, Delivery)
        # The UPDATE re-checks every condition, not only the lease: a row another worker sent
        # and released meanwhile must not be claimed again. Core rows, not ORM loads: a long
        # batch claims thousands of rows, a few at a time.
        rows = session.connection().execute(
            sa.update(table).where(table.c.id.in_(candidates), *claimable).values(lease_until=until)
            .returning(*table.c)
        ).all() if candidates else []
        session.commit()
    claimed = [Delivery(**row._mapping) for row in rows]
    claimed.sort(key=lambda d: (d.next_attempt_at or until, d.id or 0))
    return claimed


@cache
def _sent_statement() -> Any:
    """The UPDATE of a sent delivery, built once: it runs once per delivery sent."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    return sa.update(table).where(table.c.id == sa.bindparam("delivery_id")).values(
        status="sent", sent_at=sa.bindparam("at"), attempts=table.c.attempts + 1, last_error=None, lease_until=None,
        target=sa.bindparam("where"),
    )


@cache
def _failure_statement() -> Any:
    """The UPDATE of a failed attempt (pending again, or dead), built once."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    return sa.update(table).where(table.c.id == sa.bindparam("delivery_id")).values(
        status=sa.bindparam("new_status"), attempts=table.c.attempts + 1, last_error=sa.bindparam("error"),
        next_attempt_at=sa.bindparam("retry_at"), lease_until=None,
    )


def record_delivery_sent(session: Session, delivery_id: int, *, now: datetime, target: str) -> None:
    session.connection().execute(_sent_statement(), {"delivery_id": delivery_id, "at": now, "where": target})


def record_delivery_failure(
    session: Session, delivery_id: int, *, error: str, next_attempt_at: datetime | None
) -> None:
    """A failed attempt: retry at ``next_attempt_at``, or ``dead`` when it is None."""
    session.connection().execute(_failure_statement(), {
        "delivery_id": delivery_id, "new_status": "pending" if next_attempt_at is not None else "dead",
        "error": error[:2000], "retry_at": next_attempt_at,
    })


def release_deliveries(session: Session, delivery_ids: Sequence[int]) -> None:
    """Give back the leases of claimed deliveries that were not sent (a cycle stopped for shutdown).

    They stay pending and due as they were, so the next cycle, here or on another worker, sends them.
    """
    table = Delivery.__table__  # type: ignore[attr-defined]
    for start in range(0, len(delivery_ids), 500):
        session.execute(sa.update(table).where(table.c.id.in_(list(delivery_ids[start:start + 500])),
                                               table.c.status == "pending").values(lease_until=None))


def list_deliveries(session: Session, *, status: str | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(col(Delivery.id))
    if status:
        query = query.where(col(Delivery.status) == status)
    return list(session.exec(query))


def retry_deliveries(session: Session, *, now: datetime, delivery_id: int | None = None) -> int:
    """Put dead deliveries (or one delivery) back in the queue, due now; the payload and key stay the same."""
    query = sa.update(Delivery).values(status="pending", next_attempt_at=now, lease_until=None)
    if delivery_id is not None:
        query = query.where(col(Delivery.id) == delivery_id, col(Delivery.status) != "sent")
    else:
        query = query.where(col(Delivery.status) == "dead")
    return int(session.execute(query).rowcount)  # type: ignore[attr-defined]
