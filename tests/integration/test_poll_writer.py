"""Storing polled feeds in groups (SQLite and PostgreSQL): one bad write costs one feed, and the row says so."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from monitor import store
from monitor.config import FeedConfig, Settings
from monitor.config_specs import config_specs
from monitor.db import make_engine, session_scope
from monitor.domain import Item, Match
from monitor.models import Feed
from monitor.models import Item as ItemRow
from monitor.operations import search_items
from monitor.pipeline.writer import FeedWrite, GroupBatch, GroupWriter, Written

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
URLS = [f"https://feeds.example.org/{n}" for n in range(3)]


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        store.sync_config(session, *config_specs(Settings(feeds=[FeedConfig(url=u) for u in URLS])), NOW)
    yield engine
    engine.dispose()


def claimed(engine: sa.Engine) -> list[store.ClaimedFeed]:
    feeds = store.claim_due_feeds(engine, now=NOW, owner="w1", lease_seconds=300, limit=10)
    assert [f.url for f in feeds] == URLS
    return feeds


def item(feed: int, n: int) -> Item:
    return Item(fingerprint=f"link:{feed}-{n}", title=f"Item {feed}.{n}", link=f"https://example.org/{feed}/{n}",
                guid=None, summary="s", content="", published_at=NOW, author=None, feed_url=URLS[feed],
                fetched_at=NOW)


def success(feed: store.ClaimedFeed) -> store.PollState:
    return store.PollState(feed.id, now=NOW, status=200, next_poll_at=NOW + timedelta(minutes=15),
                           etag=f'"{feed.id}"', new_items=2)


def storing(feed: store.ClaimedFeed, index: int, *, broken: bool = False) -> FeedWrite:
    """A feed bringing two items; ``broken``: its write also inserts a hit on an item that does not exist."""
    def apply(session: Session, _batch: GroupBatch) -> Written:
        new = store.insert_new_items(session, feed.id, [item(index, 1), item(index, 2)], alertable=[True, True])
        store.insert_hits(session, [(item_id, Match("w", "1", 1.0)) for item_id, _item, _ok in new], now=NOW)
        if broken:  # a foreign key the database refuses, as a bug in a write would be
            store.insert_hits(session, [(10**9, Match("w", "1", 1.0))], now=NOW)
        return success(feed), lambda: None

    def failed(exc: Exception) -> Written:
        state = store.PollState(feed.id, now=NOW, status=None, next_poll_at=NOW + timedelta(minutes=30),
                                error=f"internal error: {type(exc).__name__}")
        return state, lambda: None
    return FeedWrite(feed, started=0.0, apply=apply, failed=failed)


def test_a_failing_write_in_a_group_costs_that_feed_only_and_names_it(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture,
) -> None:
    feeds = claimed(engine)
    writer = GroupWriter(engine, monotonic=lambda: 0.25)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            reports = writer.write_group([storing(feeds[0], 0), storing(feeds[1], 1, broken=True),
                                          storing(feeds[2], 2)])
    finally:
        writer.close()
    assert len(reports) == 3
    with session_scope(engine) as session:
        stored = {fp for (fp,) in session.execute(sa.select(ItemRow.fingerprint))}  # type: ignore[call-overload]
        rows = {f.url: f for f in session.scalars(sa.select(Feed))}
    assert stored == {"link:0-1", "link:0-2", "link:2-1", "link:2-2"}  # the broken feed's items rolled back
    good, bad = rows[URLS[0]], rows[URLS[1]]
    assert (good.last_status, good.error_count, good.etag, good.lease_owner) == (200, 0, f'"{feeds[0].id}"', None)
    assert rows[URLS[2]].last_status == 200 and rows[URLS[2]].error_count == 0
    assert good.last_poll_ms == 250 and bad.last_poll_ms == 250  # fetch start (0.0) to stored (0.25 s)
    assert bad.error_count == 1 and bad.last_error == "internal error: IntegrityError" and bad.lease_owner is None
    culprit = [r for r in caplog.records if r.getMessage() == "feed processing failed"]
    assert [getattr(r, "feed_url", None) for r in culprit] == [URLS[1]]


def test_poll_states_written_together_keep_each_feeds_own_outcome(engine: sa.Engine) -> None:
    one, two, three = claimed(engine)
    later = NOW + timedelta(hours=1)
    with session_scope(engine) as session:  # a first poll: validators, a redirect, a healthy row
        store.record_poll_states(session, [
            store.PollState(one.id, now=NOW, status=200, next_poll_at=NOW, etag='"a"', last_modified="Mon",
                            new_items=3, entry_gap_seconds=60.0),
            store.PollState(two.id, now=NOW, status=200, next_poll_at=NOW, moved_to="https://new.example.org/2"),
            store.PollState(three.id, now=NOW, status=200, next_poll_at=NOW),
        ])
    with session_scope(engine) as session:  # then a 304, the same redirect again, and a 410
        store.record_poll_states(session, [
            store.PollState(one.id, now=later, status=304, next_poll_at=later, not_modified=True, poll_ms=7),
            store.PollState(two.id, now=later, status=200, next_poll_at=later, moved_to="https://new.example.org/2"),
            store.PollState(three.id, now=later, status=410, next_poll_at=later, error="gone", disable=True),
        ])
    with session_scope(engine) as session:
        rows = {f.id: f for f in session.scalars(sa.select(Feed))}
    a, b, c = rows[one.id], rows[two.id], rows[three.id]
    assert (a.etag, a.last_modified, a.last_status, a.last_poll_ms) == ('"a"', "Mon", 304, 7)  # 304 keeps validators
    assert (a.first_polled_at, a.last_polled_at, a.last_entry_at, a.entry_gap_seconds) == (NOW, later, NOW, 60.0)
    assert (b.moved_to, b.moved_since) == ("https://new.example.org/2", NOW)  # the move holds since it was first seen
    assert (c.active, c.error_count, c.last_error, c.last_status, c.first_polled_at) == (False, 1, "gone", 410, NOW)
    with session_scope(engine) as session:  # the redirect is gone: the move is forgotten
        store.record_poll_states(session, [store.PollState(two.id, now=later, status=200, next_poll_at=later)])
    with session_scope(engine) as session:
        row = session.get(Feed, two.id)
        assert row is not None and (row.moved_to, row.moved_since) == (None, None)


def _finish(session: Session, batch: GroupBatch) -> None:
    store.index_for_search(session, batch.new_items)
    store.assign_stories(session, [(item_id, it) for item_id, it, _sig in batch.stories], now=NOW,
                         window=timedelta(hours=48), threshold=0.5)


def reporting(feed: store.ClaimedFeed, index: int, *, broken: bool = False) -> FeedWrite:
    """A feed carrying the same wire story as the others (one item that hit), and one item of its own."""
    same = Item(fingerprint=f"link:{index}-wire", title="Chinese delegation led by Zhao Leji arrives in Pyongyang",
                link=f"https://example.org/{index}/wire", guid=None, published_at=NOW, author=None,
                summary="The delegation was greeted at the airport and held talks on friendship and cooperation.",
                content="", feed_url=URLS[index], fetched_at=NOW)

    def apply(session: Session, batch: GroupBatch) -> Written:
        new = store.insert_new_items(session, feed.id, [same, item(index, 1)], alertable=[True, True], index=False)
        if broken:
            store.insert_hits(session, [(10**9, Match("w", "1", 1.0))], now=NOW)
        batch.new_items.extend(item_id for item_id, _it, _ok in new)
        batch.stories.extend((item_id, it, None) for item_id, it, _ok in new if it is same)
        return success(feed), lambda: None

    def failed(exc: Exception) -> Written:
        return store.PollState(feed.id, now=NOW, status=None, next_poll_at=NOW, error="internal error"), lambda: None
    return FeedWrite(feed, started=0.0, apply=apply, failed=failed)


@pytest.mark.parametrize("broken", [None, 1])
def test_a_story_reported_by_several_feeds_of_a_group_is_one_story(engine: sa.Engine, broken: int | None) -> None:
    # The group's items are assigned stories together; when the group falls back to feed by feed
    # (one write fails), each feed assigns its own, and the rest still form one story.
    feeds = claimed(engine)
    writer = GroupWriter(engine, monotonic=lambda: 0.0, finish=_finish)
    try:
        writer.write_group([reporting(f, n, broken=n == broken) for n, f in enumerate(feeds)])
    finally:
        writer.close()
    with session_scope(engine) as session:
        rows = {fp: story for fp, story in session.execute(
            sa.select(ItemRow.fingerprint, ItemRow.story_id))}  # type: ignore[call-overload]
    wire = {fp: story for fp, story in rows.items() if fp.endswith("-wire")}
    assert len(wire) == (2 if broken else 3)
    assert len(set(wire.values())) == 1 and None not in wire.values()
    assert all(story is None for fp, story in rows.items() if not fp.endswith("-wire"))  # no hit, no story
    # The group's items are in the search index once each (SQLite's FTS5 checks its index against
    # the table), the rolled-back feed's are not, and search finds them.
    with session_scope(engine) as session:
        if engine.dialect.name == "sqlite":
            session.execute(sa.text("INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)"))
        found, _cursor = search_items(session, "Zhao Leji")
    assert sorted(view.link or "" for view in found) == sorted(
        f"https://example.org/{n}/wire" for n in range(3) if n != broken)
