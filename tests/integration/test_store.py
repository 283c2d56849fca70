"""The store on SQLite and PostgreSQL: new-once items, unique hits, at-most-once links, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig
from monitor.config_specs import config_specs
from monitor.db import make_engine, session_scope
from monitor.domain import Item, Match
from monitor.ingest.cluster import BANDS
from monitor.store.items import id_runs

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def item(n: int, **kw: object) -> Item:
    values: dict[str, object] = dict(
        fingerprint=f"link:{n:064x}", title=f"Item {n}", link=f"https://example.org/{n}", guid=None,
        summary="s", content="", published_at=NOW, author=None, feed_url="https://example.org/rss",
        fetched_at=NOW,
    )
    values.update(kw)
    return Item(**values)  # type: ignore[arg-type]


def settings(**kw: object) -> Settings:
    base: dict[str, object] = dict(
        feeds=[FeedConfig(url="https://example.org/rss"), FeedConfig(url="https://example.org/other")],
        subscriptions=[SubscriptionConfig(name="team", watchlists=["w"], email=["a@example.org"])],
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        store.sync_config(session, *config_specs(settings()), NOW)
    yield engine
    engine.dispose()


def feed_id(engine: sa.Engine, url: str = "https://example.org/rss") -> int:
    with session_scope(engine) as session:
        return next(f.id for f in store.list_feeds(session) if f.url == url)  # type: ignore[return-value]


def test_an_item_is_new_once_even_across_feeds(engine: sa.Engine) -> None:
    first, second = feed_id(engine), feed_id(engine, "https://example.org/other")
    with session_scope(engine) as session:
        new = store.insert_new_items(session, first, [item(1), item(2)], alertable=[True, True])
    assert [it.fingerprint for _, it, _ in new] == [item(1).fingerprint, item(2).fingerprint]
    with session_scope(engine) as session:
        again = store.insert_new_items(session, second, [item(2), item(3)], alertable=[True, True])
    assert [it.fingerprint for _, it, _ in again] == [item(3).fingerprint]


def test_a_feed_repeating_an_entry_stores_it_once(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        new = store.insert_new_items(session, feed_id(engine), [item(5), item(5)], alertable=[True, False])
    assert len(new) == 1 and new[0][2] is True


def test_hits_are_unique_per_item_and_watchlist(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        [(item_id, _, _)] = store.insert_new_items(session, feed_id(engine), [item(9)], alertable=[True])
        match = Match(watchlist="w", version="1", score=2.0, evidence=({"kind": "cue", "text": "visit"},))
        assert store.insert_hits(session, [(item_id, match)], now=NOW) == 1
    with session_scope(engine) as session:
        assert store.insert_hits(session, [(item_id, match)], now=NOW) == 0
        hits = store.list_hits(session)
    assert [(h.item_id, h.watchlist, h.evidence) for h in hits] == [(item_id, "w", [{"kind": "cue", "text": "visit"}])]


def test_a_hit_is_linked_to_a_subscription_at_most_once(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        [(item_id, _, _)] = store.insert_new_items(session, feed_id(engine), [item(11)], alertable=[True])
        store.insert_hits(session, [(item_id, Match("w", "1", 1.0))], now=NOW)
        sub = store.get_subscriptions(session)["team"]
    assert sub.id is not None
    with session_scope(engine) as session:
        pending = store.undelivered_hits(session, sub.id, ["w"], since=NOW - timedelta(days=1), limit=10)
        assert len(pending) == 1
        store.enqueue_delivery(session, subscription_id=sub.id, key="msg_1", transport="email", subject="s",
                               payload=b"x", recipients="[]", hit_ids=[pending[0].hit_id], now=NOW)
    with session_scope(engine) as session:
        assert store.undelivered_hits(session, sub.id, ["w"], since=NOW - timedelta(days=1), limit=10) == []
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as session:
        store.enqueue_delivery(session, subscription_id=sub.id, key="msg_2", transport="email", subject="s",
                               payload=b"x", recipients="[]", hit_ids=[pending[0].hit_id], now=NOW)


def test_a_claimed_feed_is_not_claimed_again_until_its_lease_expires(engine: sa.Engine) -> None:
    first = store.claim_due_feeds(engine, now=NOW, owner="a", lease_seconds=60, limit=10)
    assert {f.url for f in first} == {"https://example.org/rss", "https://example.org/other"}
    assert store.claim_due_feeds(engine, now=NOW, owner="b", lease_seconds=60, limit=10, include_not_due=True) == []
    later = store.claim_due_feeds(engine, now=NOW + timedelta(seconds=61), owner="b", lease_seconds=60, limit=10)
    assert len(later) == 2


def test_delivery_claim_and_failure_bookkeeping(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        sub = store.get_subscriptions(session)["team"]
        assert sub.id is not None
        delivery_id = store.enqueue_delivery(session, subscription_id=sub.id, key="msg_9", transport="email",
                                             subject="s", payload=b"x", recipients="[]", hit_ids=[], now=NOW)
    [claimed] = store.claim_due_deliveries(engine, now=NOW, lease_seconds=60, limit=10)
    assert claimed.id == delivery_id
    assert store.claim_due_deliveries(engine, now=NOW, lease_seconds=60, limit=10) == []
    with session_scope(engine) as session:
        retry_at = NOW + timedelta(minutes=1)
        store.record_delivery_failure(session, delivery_id, error="SMTP down", next_attempt_at=retry_at)
    assert store.claim_due_deliveries(engine, now=NOW, lease_seconds=60, limit=10) == []
    [again] = store.claim_due_deliveries(engine, now=NOW + timedelta(minutes=2), lease_seconds=60, limit=10)
    assert again.attempts == 1 and again.last_error == "SMTP down" and again.key == "msg_9"
    with session_scope(engine) as session:
        store.record_delivery_failure(session, delivery_id, error="gone", next_attempt_at=None)
        [dead] = store.list_deliveries(session, status="dead")
    assert dead.attempts == 2


def test_feeds_removed_from_config_are_deactivated(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        store.sync_config(session, *config_specs(settings(feeds=[FeedConfig(url="https://example.org/rss")])), NOW)
    with session_scope(engine) as session:
        active = {f.url: f.active for f in store.list_feeds(session)}
    assert active == {"https://example.org/rss": True, "https://example.org/other": False}


def test_timestamps_come_back_timezone_aware(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        [feed] = [f for f in store.list_feeds(session) if f.url.endswith("/rss")]
    assert feed.next_poll_at == NOW and feed.next_poll_at.tzinfo is not None


def test_dead_delivery_can_be_queued_again_with_the_same_key(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        sub = store.get_subscriptions(session)["team"]
        assert sub.id is not None
        delivery_id = store.enqueue_delivery(session, subscription_id=sub.id, key="msg_dead", transport="email",
                                             subject="s", payload=b"x", recipients="[]", hit_ids=[], now=NOW)
        store.record_delivery_failure(session, delivery_id, error="550 no such user", next_attempt_at=None)
    later = NOW + timedelta(hours=1)
    with session_scope(engine) as session:
        assert store.retry_deliveries(session, now=later) == 1
    [claimed] = store.claim_due_deliveries(engine, now=later, lease_seconds=60, limit=10)
    assert claimed.key == "msg_dead" and claimed.payload == b"x" and claimed.status == "pending"


def test_reset_clears_feed_errors_and_makes_it_due(engine: sa.Engine) -> None:
    fid = feed_id(engine)
    with session_scope(engine) as session:
        store.record_poll_failure(session, fid, now=NOW, status=410, error="gone", next_poll_at=NOW + timedelta(days=1),
                                  disable=True)
    assert store.claim_due_feeds(engine, now=NOW + timedelta(hours=2), owner="a", lease_seconds=1, limit=10,
                                 include_not_due=True)[0].url != "https://example.org/rss"
    with session_scope(engine) as session:
        assert store.reset_feeds(session, now=NOW) == 1
        [row] = [f for f in store.list_feeds(session) if f.id == fid]
    assert row.active and row.error_count == 0 and row.last_error is None and row.next_poll_at == NOW


WIRE = ("Chinese delegation led by Zhao Leji arrives in Pyongyang",
        "A Chinese party and government delegation led by Zhao Leji, chairman of the NPC Standing Committee, "
        "arrived in Pyongyang on Thursday for talks with Kim Jong Un, state media said.")
REWRITE = ("China's top legislator Zhao Leji lands in Pyongyang",
           "A Chinese party and government delegation led by Zhao Leji, chairman of the NPC Standing Committee, "
           "arrived in Pyongyang on Thursday for talks with Kim Jong Un, state media reported.")
OTHER = ("Russia ratifies treaty with North Korea",
         "The State Duma voted to ratify the comprehensive strategic partnership treaty on Wednesday.")


def test_stories_group_rewrites_within_the_window_only(engine: sa.Engine) -> None:
    fid = feed_id(engine)
    window = timedelta(hours=48)

    def add(n: int, text: tuple[str, str], when: datetime) -> dict[int, tuple[int, bool]]:
        with session_scope(engine) as session:
            new = store.insert_new_items(session, fid, [item(n, title=text[0], summary=text[1], published_at=when)],
                                         alertable=[True])
            return store.assign_stories(session, [(i, it) for i, it, _ in new], now=when, window=window,
                                        threshold=0.2)

    [(first, (story, joined))] = add(1, WIRE, NOW).items()
    assert story == first and not joined
    [(_, (same, joined))] = add(2, REWRITE, NOW + timedelta(hours=3)).items()
    assert same == story and joined
    [(third, (other, joined))] = add(3, OTHER, NOW + timedelta(hours=4)).items()
    assert other == third and not joined
    [(late, (later, joined))] = add(4, REWRITE, NOW + timedelta(days=5)).items()
    assert later == late and not joined  # outside the window: a new story
    with session_scope(engine) as session:
        assert store.prune_story_keys(session, before=NOW + timedelta(days=1)) == 2 * BANDS  # items 1 and 3


def test_long_in_lists_of_every_length_run_as_a_few_statements(engine: sa.Engine) -> None:
    # An expanding IN renders one SQL text per list length and the driver keeps a prepared statement
    # per text: a poll's groups (search index, known fingerprints, story candidates) bring lists of
    # ever-new lengths, which filled SQLite's statement cache with large statements (tens of MB).
    # Padded to powers of two, every length from 1 to 3,000 runs as ten texts at most, with the same rows.
    fid = feed_id(engine)
    with session_scope(engine) as session:
        new = store.insert_new_items(session, fid, [item(n) for n in range(40)], alertable=[True] * 40)
    ids = sorted(item_id for item_id, _it, _ok in new)
    fingerprints = [item(n).fingerprint for n in range(3000)]  # the first 40 are stored
    texts: dict[str, set[str]] = {"index": set(), "known": set()}

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "items_fts" in statement:
            texts["index"].add(statement)
        elif "IN (" in statement:
            texts["known"].add(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(engine) as session:
            for n in range(1, 3001, 7):
                assert store.known_fingerprints(session, fingerprints[:n]) == set(fingerprints[:min(n, 40)])
                store.index_for_search(session, list(range(10**6, 10**6 + n)))  # ids of no item: indexes none
            session.rollback()
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert 0 < len(texts["known"]) <= 6  # chunks of 200: 8 ... 256
    if engine.dialect.name == "sqlite":  # PostgreSQL's trigram index follows the table by itself
        assert len(texts["index"]) == 1  # a range of ids, whatever their number
    assert len(ids) == 40


def test_the_search_index_takes_exactly_the_ids_it_is_given(engine: sa.Engine) -> None:
    # Items are indexed by ranges of consecutive ids: ids with gaps, out of order or repeated index
    # those items once each, and no item between them.
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's trigram index follows the table by itself")
    fid = feed_id(engine)
    with session_scope(engine) as session:
        new = store.insert_new_items(session, fid, [item(n) for n in range(12)], alertable=[True] * 12, index=False)
    ids = sorted(item_id for item_id, _it, _ok in new)
    chosen = [ids[9], ids[0], ids[1], ids[2], ids[6], ids[7], ids[2], ids[11]]
    assert id_runs(chosen) == [(ids[0], ids[2]), (ids[6], ids[7]), (ids[9], ids[9]), (ids[11], ids[11])]
    with session_scope(engine) as session:
        store.index_for_search(session, chosen)
    with session_scope(engine) as session:
        # "Item" is in every title: the index answers with the items it holds (the table holds all twelve)
        indexed = session.execute(sa.text("SELECT rowid FROM items_fts WHERE items_fts MATCH 'Item' "
                                          "ORDER BY rowid")).scalars().all()
    assert indexed == sorted(set(chosen))
