"""Planning many subscriptions together: each still gets exactly its own pending hits, and one that
fails to render costs only itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.models import Subscription
from monitor.pipeline import Context, delivery_cycle, open_context

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
VISITS, DAYS = "delegation_visits", "anniversaries"


def make_context(tmp_path: Path, subs: list[SubscriptionConfig]) -> Context:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url="https://example.org/rss", name="Wire")],
        subscriptions=subs,
    )
    return open_context(settings, now=T0 - timedelta(days=1))


def add_item(ctx: Context, n: int, hits: list[tuple[str, float]], *, now: datetime) -> list[int]:
    """One item with a hit per (watchlist, score); returns the hit ids."""
    item = Item(fingerprint=f"link:{n}", title=f"Story {n}", link=f"https://example.org/story/{n}.html", guid=None,
                summary="s", content="", published_at=now, author=None, feed_url="https://example.org/rss",
                fetched_at=now)
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        [(item_id, _, _)] = store.insert_new_items(session, feed_id, [item], alertable=[True])
        store.insert_hits(session, [(item_id, Match(w, "1", score)) for w, score in hits], now=now)
        return sorted(h.hit_id for h in store.list_hits(session) if h.item_id == item_id)


def test_subscriptions_planned_together_each_get_what_planning_them_alone_gives(tmp_path: Path) -> None:
    subs = [
        SubscriptionConfig(name="visits", watchlists=[VISITS], email=["a@example.org"]),
        SubscriptionConfig(name="strong", watchlists=[VISITS, DAYS], email=["b@example.org"], min_score=3.0),
        SubscriptionConfig(name="days", watchlists=[DAYS], email=["c@example.org"]),
        SubscriptionConfig(name="late", watchlists=[VISITS], email=["d@example.org"]),
        SubscriptionConfig(name="told", watchlists=[VISITS, DAYS], email=["e@example.org"]),
    ]
    ctx = make_context(tmp_path, subs)
    both = add_item(ctx, 1, [(VISITS, 5.0), (DAYS, 5.0)], now=T0)
    add_item(ctx, 2, [(VISITS, 1.0)], now=T0)
    add_item(ctx, 3, [(DAYS, 4.0)], now=T0 + timedelta(hours=2))
    add_item(ctx, 4, [(VISITS, 4.0)], now=T0 + timedelta(hours=3))
    with session_scope(ctx.engine) as session:
        rows = store.get_subscriptions(session)
        # "late" was added after the first items; "told" was already sent item 1 (its VISITS hit).
        session.execute(sa.update(Subscription).where(Subscription.name == "late")  # type: ignore[arg-type]
                        .values(created_at=T0 + timedelta(hours=1)))
        told = rows["told"].id
        assert told is not None
        earlier = store.enqueue_delivery(session, subscription_id=told, key="msg_told", transport="email",
                                         subject="s", payload=b"x", recipients="[]", hit_ids=[both[0]], now=T0)
        store.record_delivery_sent(session, earlier, now=T0, target="earlier")
    now = T0 + timedelta(hours=4)

    with session_scope(ctx.engine) as session:
        rows = store.get_subscriptions(session)
        for limit in (1, 10):
            for cfg in subs:
                row = rows[cfg.name]
                assert row.id is not None
                alone = store.undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                               limit=limit, min_score=cfg.min_score)
                together = store.undelivered_hits_for(
                    session, [r.id for r in rows.values() if r.id is not None], cfg.watchlists, now=now,
                    limit=limit, min_score=cfg.min_score)
                assert together[row.id] == alone, cfg.name
        expected = {cfg.name: [h.link for h in store.undelivered_hits(
            session, rows[cfg.name].id or 0, cfg.watchlists, since=rows[cfg.name].created_at or now, limit=10,
            min_score=cfg.min_score)] for cfg in subs}
    # The shapes this test is about: windows, scores, lists and items already sent all differ.
    assert expected == {
        "visits": ["https://example.org/story/1.html", "https://example.org/story/2.html",
                   "https://example.org/story/4.html"],
        "strong": ["https://example.org/story/1.html", "https://example.org/story/1.html",
                   "https://example.org/story/3.html", "https://example.org/story/4.html"],
        "days": ["https://example.org/story/1.html", "https://example.org/story/3.html"],
        "late": ["https://example.org/story/4.html"],
        "told": ["https://example.org/story/2.html", "https://example.org/story/3.html",
                 "https://example.org/story/4.html"],
    }

    summary = delivery_cycle(ctx, now=now)
    assert summary.planned == summary.sent == 5 and summary.errors == []
    texts = {p.read_text() for p in (tmp_path / "outbox").glob("*.eml")}
    for name, links in expected.items():
        address = next(cfg.email for cfg in subs if cfg.name == name)[0]  # type: ignore[index]
        [text] = [t for t in texts if f"To: {address}" in t]
        for n in range(1, 5):
            link = f"https://example.org/story/{n}.html"
            assert (link in text) == (link in links), (name, link)
    assert delivery_cycle(ctx, now=now + timedelta(minutes=1)).planned == 0


def test_a_subscription_that_fails_to_render_is_left_for_later_and_the_rest_of_its_batch_goes_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.pipeline import deliver

    subs = [SubscriptionConfig(name=f"desk{i}", watchlists=[VISITS], email=[f"desk{i}@example.org"])
            for i in range(3)]
    ctx = make_context(tmp_path, subs)
    add_item(ctx, 1, [(VISITS, 2.0)], now=T0)
    render = deliver.render_email

    def broken_for_desk1(digest: object) -> object:
        if getattr(digest, "subscription", "") == "desk1":
            raise ValueError("a template bug")
        return render(digest)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(deliver, "render_email", broken_for_desk1)
        summary = delivery_cycle(ctx, now=T0 + timedelta(minutes=1))
    assert summary.sent == 2
    assert [e for e in summary.errors if e.startswith("desk1:")] == ["desk1: a template bug"]
    # Its lease was given back and its schedule not advanced: the next cycle plans it.
    again = delivery_cycle(ctx, now=T0 + timedelta(minutes=2))
    assert again.planned == again.sent == 1 and again.errors == []
    assert sorted(p.read_text().count("To: desk1@example.org") for p in (tmp_path / "outbox").glob("*.eml")) \
        == [0, 0, 1]
