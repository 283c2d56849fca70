"""Workers' heartbeats and the health figures an operator checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.models import Delivery, Feed, Worker
from monitor.store._sql import _insert


def heartbeat(session: Session, *, owner: str, hostname: str, pid: int, started_at: datetime, now: datetime,
              info: dict[str, Any] | None = None) -> None:
    """Record that ``owner`` is alive (upsert), with its last cycles' summaries."""
    values = dict(owner=owner, hostname=hostname, pid=pid, started_at=started_at, heartbeat_at=now,
                  info=json.dumps(info or {}))
    table = Worker.__table__  # type: ignore[attr-defined]
    update = {"heartbeat_at": now} | ({"info": values["info"]} if info is not None else {})
    session.execute(_insert(session, table).values(values)
                    .on_conflict_do_update(index_elements=["owner"], set_=update))


def remove_worker(session: Session, owner: str) -> None:
    session.execute(sa.delete(Worker).where(col(Worker.owner) == owner))


def list_workers(session: Session) -> list[Worker]:
    return list(session.exec(select(Worker).order_by(col(Worker.started_at))))


def health_counts(session: Session, *, now: datetime, overdue_after: int) -> dict[str, int]:
    """Numbers an operator checks: overdue feeds, failing feeds, deliveries by status."""
    overdue = now - timedelta(seconds=overdue_after)

    def count(query: Any) -> int:
        return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)

    active = select(Feed.id).where(col(Feed.active).is_(True))
    counts = {
        "feeds_active": count(active),
        "feeds_overdue": count(active.where(col(Feed.next_poll_at) < overdue)),
        "feeds_failing": count(active.where(col(Feed.error_count) > 0)),
    }
    for status in ("pending", "dead"):
        counts[f"deliveries_{status}"] = count(
            select(Delivery.id).where(col(Delivery.status) == status))
    counts["deliveries_retrying"] = count(select(Delivery.id).where(
        col(Delivery.status) == "pending", col(Delivery.attempts) > 0))
    return counts
