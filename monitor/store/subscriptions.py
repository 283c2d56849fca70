"""Subscriptions: the lease while a digest is planned, and the addresses that left."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.models import Subscription, Unsubscribe
from monitor.store._sql import _insert


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


def claim_subscriptions(session: Session, sub_ids: Sequence[int], *, now: datetime, lease_seconds: int) -> set[int]:
    """:func:`claim_subscription` for several rows in one statement; returns the ids this call claimed."""
    if not sub_ids:
        return set()
    free = sa.or_(col(Subscription.lease_until).is_(None), col(Subscription.lease_until) < now)
    table = Subscription.__table__  # type: ignore[attr-defined]
    return set(session.scalars(
        sa.update(table).where(table.c.id.in_(list(sub_ids)), free)
        .values(lease_until=now + timedelta(seconds=lease_seconds)).returning(table.c.id)
    ))


def release_subscriptions(session: Session, sub_ids: Sequence[int]) -> None:
    """Give back planning leases without advancing (planning failed; the next cycle tries again)."""
    if sub_ids:
        table = Subscription.__table__  # type: ignore[attr-defined]
        session.execute(sa.update(table).where(table.c.id.in_(list(sub_ids))).values(lease_until=None))


def finish_subscription_plans(session: Session, plans: Sequence[tuple[int, datetime | None]], *,
                              now: datetime) -> None:
    """:func:`finish_subscription_plan` for several ``(id, next_due_at)``: one statement, compiled once."""
    if not plans:
        return
    table = Subscription.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(table).where(table.c.id == sa.bindparam("sub_id"))
        .values(lease_until=None, last_planned_at=now, next_due_at=sa.bindparam("next_due")),
        [{"sub_id": sub_id, "next_due": next_due} for sub_id, next_due in plans],
    )


def finish_subscription_plan(session: Session, sub_id: int, *, now: datetime, next_due_at: datetime | None) -> None:
    session.execute(
        sa.update(Subscription).where(col(Subscription.id) == sub_id)
        .values(lease_until=None, last_planned_at=now, next_due_at=next_due_at)
    )


def record_unsubscribe(session: Session, subscription: str, address: str, *, now: datetime) -> bool:
    """Store that ``address`` left ``subscription`` (insert-if-absent); False when it had already."""
    table = Unsubscribe.__table__  # type: ignore[attr-defined]
    result = session.execute(_insert(session, table).values(
        subscription=subscription, address=address.strip().lower(), created_at=now,
    ).on_conflict_do_nothing(index_elements=["subscription", "address"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unsubscribed_by_subscription(session: Session, subscriptions: Sequence[str]) -> dict[str, set[str]]:
    """:func:`unsubscribed_addresses` for several subscriptions in one query (absent: nobody left)."""
    gone: dict[str, set[str]] = {}
    query = sa.select(Unsubscribe.subscription, Unsubscribe.address)  # type: ignore[call-overload]
    for start in range(0, len(subscriptions), 500):
        names = list(subscriptions[start:start + 500])
        for name, address in session.execute(query.where(col(Unsubscribe.subscription).in_(names))):
            gone.setdefault(name, set()).add(address)
    return gone


def unsubscribed_addresses(session: Session, subscription: str) -> set[str]:
    """Lower-cased addresses that left ``subscription``: the planner sends them nothing more."""
    return set(session.scalars(sa.select(Unsubscribe.address).where(  # type: ignore[call-overload]
        col(Unsubscribe.subscription) == subscription)))
