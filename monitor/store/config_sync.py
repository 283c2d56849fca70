"""Make the feeds and subscriptions tables agree with the config file, given as plain values.

The store never reads the settings object: the caller turns the config's feeds and subscriptions into
:class:`FeedSpec` and :class:`SubscriptionSpec` (see ``monitor.config_specs``), so this package stays a
layer below the configuration and its tests need no settings file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from monitor.models import Feed, Subscription
from monitor.schedules import parse_schedule
from monitor.store._sql import _insert


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A feed as the config file declares it, with the poll interval and alert window already resolved."""

    url: str
    name: str | None
    interval_seconds: int
    alert_window_seconds: int


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """What the store keeps of a configured subscription: its name and when it is due."""

    name: str
    schedule: str
    timezone: str


def sync_config(session: Session, feeds: Sequence[FeedSpec], subscriptions: Sequence[SubscriptionSpec],
                now: datetime) -> None:
    """Make the feeds and subscriptions tables agree with the config file.

    New feeds are due at once; config feeds gone from the config are deactivated
    (their items and hits stay); imported (OPML) feeds are left alone. A
    subscription whose schedule changed gets a new due time.
    """
    configured = {f.url: f for f in feeds}
    existing = {row.url: row for row in session.exec(select(Feed))}
    new_feeds: list[dict[str, object]] = []
    for url, cfg in configured.items():
        row = existing.get(url)
        interval = cfg.interval_seconds
        window = cfg.alert_window_seconds
        if row is None:
            new_feeds.append(dict(url=url, name=cfg.name, interval_seconds=interval, alert_window_seconds=window,
                                  active=True, next_poll_at=now, created_at=now, origin="config", error_count=0))
        else:
            row.name, row.interval_seconds, row.alert_window_seconds = cfg.name, interval, window
            row.origin, row.paused, row.removed_at = "config", False, None
            if not row.active and row.last_status != 410:
                row.active, row.next_poll_at = True, now
            session.add(row)
    if new_feeds:
        # Several workers may start at once on a new database: insert-if-absent, never check-then-insert.
        # One statement for all of them (a first start with a large config inserts thousands).
        session.execute(_insert(session, Feed.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["url"]), new_feeds)
    for url, row in existing.items():
        if url not in configured and row.active and row.origin == "config":
            row.active = False
            session.add(row)

    subs = {row.name: row for row in session.exec(select(Subscription))}
    for sub in subscriptions:
        schedule = parse_schedule(sub.schedule, sub.timezone)
        sub_row = subs.get(sub.name)
        if sub_row is None:
            session.execute(_insert(session, Subscription.__table__).values(  # type: ignore[attr-defined]
                name=sub.name, schedule=sub.schedule, created_at=now, next_due_at=schedule.next_due(now),
            ).on_conflict_do_nothing(index_elements=["name"]))
        elif sub_row.schedule != sub.schedule:
            sub_row.schedule, sub_row.next_due_at = sub.schedule, schedule.next_due(now)
            session.add(sub_row)
    session.flush()
