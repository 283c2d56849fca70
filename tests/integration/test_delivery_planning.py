"""Delivery planning through the pipeline with an injected clock: schedules, quiet hours, splitting, scores."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path
from typing import Any

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.pipeline import Context, delivery_cycle, open_context

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


def context(tmp_path: Path, **sub: Any) -> Context:
    values: dict[str, Any] = dict(name="desk", watchlists=["delegation_visits", "anniversaries"],
                                  email=["desk@example.org"])
    values.update(sub)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url="https://example.org/rss", name="Wire")],
        subscriptions=[SubscriptionConfig(**values)],
    )
    return open_context(settings, now=T0)


def add_hits(ctx: Context, count: int, *, now: datetime, score: float = 2.0, watchlist: str = "delegation_visits",
             start: int = 0) -> list[str]:
    links = [f"https://example.org/story/{start + i}.html" for i in range(count)]
    items = [Item(fingerprint=f"link:{start + i}", title=f"Story {start + i}", link=link, guid=None, summary="s",
                  content="", published_at=now, author=None, feed_url="https://example.org/rss", fetched_at=now)
             for i, link in enumerate(links)]
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        new = store.insert_new_items(session, feed_id, items, alertable=[True] * count)
        store.insert_hits(session, [(item_id, Match(watchlist, "1", score)) for item_id, _, _ in new], now=now)
    return links


def sent_messages(tmp_path: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=default)  # type: ignore[misc]
            for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def body(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def test_daily_digest_waits_for_its_time_across_a_dst_change(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="daily 07:00 Europe/Berlin", timezone="Europe/Berlin")
    links = add_hits(ctx, 2, now=T0 + timedelta(minutes=1))
    assert delivery_cycle(ctx, now=T0 + timedelta(hours=1)).planned == 0
    # Berlin moves to summer time in the night of 28/29 March: 07:00 local is 05:00 UTC on the 29th.
    assert delivery_cycle(ctx, now=datetime(2026, 3, 28, 6, 1, tzinfo=UTC)).sent == 1
    later = add_hits(ctx, 1, now=datetime(2026, 3, 28, 7, 0, tzinfo=UTC), start=10)
    assert delivery_cycle(ctx, now=datetime(2026, 3, 29, 4, 59, tzinfo=UTC)).planned == 0
    assert delivery_cycle(ctx, now=datetime(2026, 3, 29, 5, 0, tzinfo=UTC)).sent == 1
    first, second = sent_messages(tmp_path)
    assert all(link in body(first) for link in links)
    assert later[0] in body(second) and links[0] not in body(second)
    assert "08:01" in body(first) or "2026-03-27" in body(first)  # shown in Berlin time


def test_quiet_hours_hold_messages_until_they_end(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate", quiet_hours="22:00-07:00", timezone="Asia/Seoul")
    add_hits(ctx, 1, now=T0)
    night = datetime(2026, 3, 27, 14, 0, tzinfo=UTC)  # 23:00 in Seoul
    assert delivery_cycle(ctx, now=night).planned == 0
    morning = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # 07:00 in Seoul
    assert delivery_cycle(ctx, now=morning).sent == 1


def test_many_hits_are_split_over_messages_naming_each_link_once(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate", max_items=10)
    links = add_hits(ctx, 25, now=T0)
    summary = delivery_cycle(ctx, now=T0 + timedelta(minutes=1))
    assert summary.sent == 3
    messages = sent_messages(tmp_path)
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert [s.endswith(f"(part {i}/3)") for i, s in enumerate(subjects, 1)] == [True] * 3
    text = "".join(body(m) for m in messages)
    assert all(text.count(link) == 1 for link in links)
    assert delivery_cycle(ctx, now=T0 + timedelta(minutes=2)).planned == 0


def test_hits_below_the_subscriptions_minimum_score_are_not_sent(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate", min_score=3.0)
    weak = add_hits(ctx, 1, now=T0, score=1.0)
    strong = add_hits(ctx, 1, now=T0, score=5.0, start=50)
    assert delivery_cycle(ctx, now=T0 + timedelta(minutes=1)).sent == 1
    [message] = sent_messages(tmp_path)
    assert strong[0] in body(message) and weak[0] not in body(message)


def test_only_the_subscriptions_watchlists_are_sent(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate", watchlists=["anniversaries"])
    add_hits(ctx, 1, now=T0, watchlist="delegation_visits")
    wanted = add_hits(ctx, 1, now=T0, watchlist="anniversaries", start=70)
    delivery_cycle(ctx, now=T0 + timedelta(minutes=1))
    [message] = sent_messages(tmp_path)
    assert wanted[0] in body(message) and "story/0" not in body(message)


def test_failing_sources_are_listed_in_the_digest(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate")
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        store.record_poll_failure(session, feed_id, now=T0 + timedelta(hours=7), status=503,
                                  error="HTTP 503 Service Unavailable", next_poll_at=T0 + timedelta(hours=8))
    add_hits(ctx, 1, now=T0 + timedelta(hours=7))
    delivery_cycle(ctx, now=T0 + timedelta(hours=7, minutes=1))
    [message] = sent_messages(tmp_path)
    assert "Sources with problems" in body(message)
    assert "HTTP 503 Service Unavailable" in body(message)


def test_one_click_unsubscribe_header_is_signed(tmp_path: Path) -> None:
    from monitor.deliver.tokens import verify_token

    ctx = context(tmp_path, schedule="immediate")
    ctx.settings = ctx.settings.model_copy(update={"base_url": "https://monitor.example.org",
                                                   "unsubscribe_secret": _secret("s3cret")})
    add_hits(ctx, 1, now=T0)
    delivery_cycle(ctx, now=T0 + timedelta(minutes=1))
    [message] = sent_messages(tmp_path)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url.startswith("https://monitor.example.org/unsubscribe/")
    unsub = verify_token(b"s3cret", url.rsplit("/", 1)[1], now=T0 + timedelta(minutes=1))
    assert unsub is not None and (unsub.subscription, unsub.address) == ("desk", "desk@example.org")


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)
