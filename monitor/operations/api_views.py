"""Read views the JSON API serves beside hits and items: stories (one event, several reports).
Subscriptions come from ``operations.subscriptions``, as on the web page.

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

from monitor.models import Feed, Hit, Item
from monitor.operations import MAX_PAGE, OperationError

if TYPE_CHECKING:
    pass

REPORTS_PER_STORY = 20  # a story page names at most this many reports per story; the count says how many in all
REPORTS_IN_DETAIL = 200


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
