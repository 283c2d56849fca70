"""Subscribers' stored preferences, and the rows of addresses planned on their own.

An address planned on its own gets an ordinary ``subscriptions`` row, so the planner's claim, due time and
"what was sent" record work for it unchanged. When that row is made, everything the shared row had already
sent or queued counts as sent to it as well (one record delivery links those hits), so moving an address to
its own row never sends it a hit twice and never skips a hit the shared row had not sent yet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.models import Delivery, DeliveryHit, SubscriberPreference, Subscription, Unsubscribe
from monitor.schedules import parse_schedule
from monitor.store._sql import _insert

EARLIER_SUBJECT = "(record) hits the subscription had sent or queued before this address was planned on its own"


@dataclass(frozen=True, slots=True)
class OwnRow:
    """The row one address is planned on: its name, the shared row it came from, its schedule."""

    name: str
    parent: str
    address: str
    schedule: str
    timezone: str
    key: str  # stored in the row's ``schedule``: a change gives it a new due time
    as_parent: bool = False  # same schedule and zone as the shared row: a new row keeps its due time


def all_preferences(session: Session) -> list[SubscriberPreference]:
    return list(session.exec(select(SubscriberPreference)))


def get_preference(session: Session, subscription: str, address: str) -> SubscriberPreference | None:
    return session.get(SubscriberPreference, (subscription, address.strip().lower()))


def save_preference(session: Session, subscription: str, address: str, *, watchlists: Sequence[str] | None,
                    schedule: str | None, timezone: str | None, quiet_hours: str | None, now: datetime) -> None:
    """Insert or replace one address's choices (the caller has checked them)."""
    values = dict(watchlists=json.dumps(list(watchlists)) if watchlists is not None else None,
                  schedule=schedule, timezone=timezone, quiet_hours=quiet_hours, updated_at=now)
    table = SubscriberPreference.__table__  # type: ignore[attr-defined]
    session.execute(_insert(session, table).values(
        subscription=subscription, address=address.strip().lower(), created_at=now, **values,
    ).on_conflict_do_update(index_elements=["subscription", "address"], set_=values))


def unsubscribed_pairs(session: Session) -> set[tuple[str, str]]:
    """Every ``(subscription, address)`` that left, lower-cased addresses."""
    return {(s, a) for s, a in session.execute(sa.select(Unsubscribe.subscription, Unsubscribe.address))}  # type: ignore[call-overload]


def ensure_own_rows(session: Session, wanted: Sequence[OwnRow], *, now: datetime) -> None:
    """Make the rows these addresses are planned on; give a row whose schedule changed its next due time."""
    if not wanted:
        return
    rows = {row.name: row for row in session.exec(select(Subscription))}
    for own in wanted:
        row = rows.get(own.name)
        if row is None:
            _create_own_row(session, own, rows.get(own.parent), now=now)
        elif row.schedule != own.key:
            row.schedule = own.key
            row.next_due_at = parse_schedule(own.schedule, own.timezone).next_due(now)
            session.add(row)
    session.flush()


def _create_own_row(session: Session, own: OwnRow, parent: Subscription | None, *, now: datetime) -> None:
    schedule = parse_schedule(own.schedule, own.timezone)
    next_due = schedule.next_due(now)
    if own.as_parent and parent is not None and parent.next_due_at is not None:
        next_due = parent.next_due_at
    table = Subscription.__table__  # type: ignore[attr-defined]
    # Hits created since the shared row began count, as they would have there; what it sent is excluded below.
    created = parent.created_at if parent is not None and parent.created_at is not None else now
    inserted = session.execute(_insert(session, table).values(
        name=own.name, schedule=own.key, created_at=created, next_due_at=next_due,
    ).on_conflict_do_nothing(index_elements=["name"]).returning(table.c.id)).first()
    if inserted is None or parent is None or parent.id is None:
        return  # another worker made it (and copied the record), or there is no history to copy
    own_id = inserted[0]
    sent = sa.select(DeliveryHit.hit_id).where(col(DeliveryHit.subscription_id) == parent.id)  # type: ignore[call-overload]
    count = session.scalar(sa.select(sa.func.count()).select_from(sent.subquery())) or 0
    if not count:
        return
    record = Delivery(subscription_id=own_id, key=f"record_{uuid.uuid4().hex}", transport="email", status="sent",
                      subject=EARLIER_SUBJECT, payload=b"", recipients=json.dumps([own.address]), hit_count=count,
                      sent_at=now, created_at=now, target="(a record, not a message)")
    session.add(record)
    session.flush()
    links = DeliveryHit.__table__  # type: ignore[attr-defined]
    session.execute(links.insert().from_select(
        ["delivery_id", "hit_id", "subscription_id"],
        sa.select(sa.literal(record.id), col(DeliveryHit.hit_id), sa.literal(own_id))
        .where(col(DeliveryHit.subscription_id) == parent.id),
    ))
