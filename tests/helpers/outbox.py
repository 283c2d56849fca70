"""A delivery-ready database: subscriptions from a list, one stored hit they all want."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.models import Delivery
from monitor.pipeline import Context, open_context

ROOT = Path(__file__).resolve().parents[2]
WATCHLIST = "delegation_visits"


def context_with_hit(tmp_path: Path, subs: list[SubscriptionConfig], *, now: datetime, **extra: object) -> Context:
    """A context on a fresh SQLite file whose subscriptions (all older than the hit) each have one hit to send."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url="https://example.org/rss")], subscriptions=subs,
        allow_private_networks=True, **extra,  # type: ignore[arg-type]
    )
    ctx = open_context(settings, now=now - timedelta(days=1))
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        item = Item(fingerprint="link:1", title="Story", link="https://example.org/s/1", guid=None, summary="",
                    content="", published_at=now, author=None, feed_url="https://example.org/rss", fetched_at=now)
        [(item_id, _, _)] = store.insert_new_items(session, feed_id, [item], alertable=[True])
        store.insert_hits(session, [(item_id, Match(WATCHLIST, "1", 2.0))], now=now)
    return ctx


def deliveries(ctx: Context) -> list[Delivery]:
    with session_scope(ctx.engine) as session:
        return store.list_deliveries(session)


def by_subscription(ctx: Context) -> dict[str, Delivery]:
    """Each subscription's delivery (these tests plan one per subscription)."""
    with session_scope(ctx.engine) as session:
        names = {row.id: name for name, row in store.get_subscriptions(session).items()}
        rows = store.list_deliveries(session)
    out: dict[str, Delivery] = {}
    for row in rows:
        name = names[row.subscription_id]
        assert name not in out, f"{name} has more than one delivery"
        out[name] = row
    return out
