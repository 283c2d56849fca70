"""Read views the JSON API serves beside hits and items: stories (one event, several reports) and
subscriptions (their definition from the config, their progress from the database).

Each page is a fixed number of queries whatever its size: the stories of a page, their reports,
counts and watchlists come in one query each, never one per story.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor import store
from monitor.models import Delivery, Feed, Hit, Item
from monitor.operations import MAX_PAGE, OperationError

if TYPE_CHECKING:
    from monitor.config import SubscriptionConfig

REPORTS_PER_STORY = 20  # a story page names at most this many reports per story; the count says how many in all
REPORTS_IN_DETAIL = 200
PENDING_CAP = 1000  # pending hits are counted up to this many (a count past it would cost a scan)


# --- stories ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportView:
    """One item that told the story: which feed carried it, and where."""

    item_id: int
    title: str
    link: str | None
    feed: str
    lang: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoryView:
    """A story is named after its first item (``story_id`` is that item's id)."""

    story_id: int
    title: str
    link: str | None
    feed: str
    lang: str | None
    published_at: datetime | None
    report_count: int
    also_reported_by: list[ReportView] = field(default_factory=list)
    watchlists: list[str] = field(default_factory=list)


_REPORT_COLUMNS = (Item.id, Item.story_id, Item.title, Item.link, Item.lang, Item.published_at, Feed.name, Feed.url)


def _leads() -> Any:
    """Items that lead a story: their own story, or no story recorded (an item stored before grouping)."""
    return (sa.select(*_REPORT_COLUMNS)  # type: ignore[call-overload]
            .join(Feed, col(Feed.id) == col(Item.feed_id))
            .where(sa.or_(col(Item.story_id) == col(Item.id), col(Item.story_id).is_(None))))


def stories_page(session: Session, *, before: int | None = None, limit: int = 50,
                 per_story: int = REPORTS_PER_STORY) -> tuple[list[StoryView], int | None]:
    """Stories newest first (by their first item), older than story id ``before``; keyset by story id."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _leads().order_by(col(Item.id).desc()).limit(limit + 1)
    if before is not None:
        query = query.where(col(Item.id) < before)
    rows = session.execute(query).all()
    more = len(rows) > limit
    stories = _stories(session, rows[:limit], per_story=per_story)
    return stories, (stories[-1].story_id if more and stories else None)


def get_story(session: Session, story_id: int) -> StoryView:
    """One story with up to REPORTS_IN_DETAIL of its reports. An item that joined another story is not a story
    of its own: it is refused, and listed under that story."""
    row = session.execute(_leads().where(col(Item.id) == story_id)).first()
    if row is None:
        raise OperationError(f"no story with id {story_id}")
    return _stories(session, [row], per_story=REPORTS_IN_DETAIL)[0]


def _stories(session: Session, leads: Sequence[Any], *, per_story: int) -> list[StoryView]:
    ids = [row[0] for row in leads]
    if not ids:
        return []
    grouped = [row[0] for row in leads if row[1] is not None]  # leads with a story: others may have joined it
    reports: dict[int, list[ReportView]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    if grouped:
        rank = sa.func.row_number().over(partition_by=col(Item.story_id), order_by=col(Item.id)).label("rank")
        members = (sa.select(*_REPORT_COLUMNS, rank)  # type: ignore[call-overload]
                   .join(Feed, col(Feed.id) == col(Item.feed_id))
                   .where(col(Item.story_id).in_(grouped), col(Item.id) != col(Item.story_id))
                   .subquery())
        for item_id, story, title, link, lang, published, name, url, _rank in session.execute(
                sa.select(members).where(members.c.rank <= per_story).order_by(members.c.story_id, members.c.id)):
            reports[story].append(ReportView(item_id=item_id, title=title, link=link, feed=name or url, lang=lang,
                                             published_at=published))
        for story, count in session.execute(
                sa.select(Item.story_id, sa.func.count()).where(  # type: ignore[call-overload]
                    col(Item.story_id).in_(grouped), col(Item.id) != col(Item.story_id))
                .group_by(Item.story_id)):
            counts[story] = int(count)
    lists: dict[int, set[str]] = defaultdict(set)
    story_of = sa.func.coalesce(col(Item.story_id), col(Item.id))
    for story, watchlist in session.execute(
            sa.select(story_of, Hit.watchlist).distinct()  # type: ignore[call-overload]
            .join(Item, col(Item.id) == col(Hit.item_id))
            .where(sa.or_(col(Item.story_id).in_(grouped or [-1]), col(Item.id).in_(ids)))):
        lists[story].add(watchlist)
    return [
        StoryView(story_id=row[0], title=row[2], link=row[3], lang=row[4], published_at=row[5], feed=row[6] or row[7],
                  report_count=1 + counts[row[0]], also_reported_by=reports[row[0]],
                  watchlists=sorted(lists[row[0]]))
        for row in leads
    ]


# --- subscriptions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What a subscription sends, to whom, and what is waiting for it."""

    name: str
    channel: str  # email | webhook | ntfy
    schedule: str
    timezone: str
    quiet_hours: str | None
    watchlists: list[str]
    min_score: float
    recipients: list[str]  # email addresses; a webhook's or ntfy topic's URL with its secrets redacted
    unsubscribed: int  # addresses that left through an unsubscribe link
    pending_hits: int | None  # hits waiting for the next message (None: not in the database yet)
    pending_hits_capped: bool  # pending_hits stopped counting at PENDING_CAP
    pending_deliveries: int  # rendered messages in the outbox, not yet sent
    dead_deliveries: int
    next_digest_at: datetime | None  # None: immediate (the next delivery cycle), or not planned yet
    last_planned_at: datetime | None


def _channel(cfg: SubscriptionConfig) -> tuple[str, list[str]]:
    from monitor.redact import redact

    if cfg.webhook is not None:
        return "webhook", [redact(cfg.webhook.url)]
    if cfg.ntfy is not None:
        return "ntfy", [redact(cfg.ntfy.url)]
    return "email", list(cfg.email or [])


def subscription_views(session: Session, configs: Sequence[SubscriptionConfig], *,
                       now: datetime) -> list[SubscriptionView]:
    """Every configured subscription, in config order, with its progress read from the database."""
    from monitor.schedules import parse_schedule

    rows = store.get_subscriptions(session)
    outbox: dict[tuple[int, str], int] = {}
    for sub_id, status, count in session.execute(
            sa.select(Delivery.subscription_id, Delivery.status, sa.func.count())  # type: ignore[call-overload]
            .where(col(Delivery.status).in_(["pending", "dead"]))
            .group_by(Delivery.subscription_id, Delivery.status)):
        outbox[(sub_id, status)] = int(count)
    views = []
    for cfg in configs:
        row = rows.get(cfg.name)
        channel, recipients = _channel(cfg)
        gone = store.unsubscribed_addresses(session, cfg.name) if channel == "email" else set()
        pending: int | None = None
        if row is not None and row.id is not None:
            pending = store.count_undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                                   min_score=cfg.min_score, cap=PENDING_CAP + 1)
        schedule = parse_schedule(cfg.schedule, cfg.timezone)
        next_at = None
        if not schedule.immediate:
            next_at = row.next_due_at if row is not None and row.next_due_at is not None else schedule.next_due(now)
        sub_id = row.id if row is not None else None
        views.append(SubscriptionView(
            name=cfg.name, channel=channel, schedule=cfg.schedule, timezone=cfg.timezone,
            quiet_hours=cfg.quiet_hours, watchlists=list(cfg.watchlists), min_score=cfg.min_score,
            recipients=recipients, unsubscribed=sum(1 for a in recipients if a.lower() in gone),
            pending_hits=min(pending, PENDING_CAP) if pending is not None else None,
            pending_hits_capped=pending is not None and pending > PENDING_CAP,
            pending_deliveries=outbox.get((sub_id or -1, "pending"), 0),
            dead_deliveries=outbox.get((sub_id or -1, "dead"), 0),
            next_digest_at=next_at, last_planned_at=row.last_planned_at if row is not None else None,
        ))
    return views


def subscription_view(session: Session, configs: Sequence[SubscriptionConfig], name: str, *,
                      now: datetime) -> SubscriptionView:
    chosen = [cfg for cfg in configs if cfg.name == name]
    if not chosen:
        raise OperationError(f"no subscription named {name!r} in the config")
    return subscription_views(session, chosen, now=now)[0]
