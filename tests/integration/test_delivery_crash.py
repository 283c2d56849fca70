"""A crash between sending and recording: the resend carries the same idempotency key."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig, WebhookConfig
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.pipeline import DELIVERY_LEASE_SECONDS, Context, delivery_cycle, open_context
from tests.conftest import SmtpServer, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def make_context(tmp_path: Path, sub: SubscriptionConfig, **extra: object) -> Context:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url="https://example.org/rss")], subscriptions=[sub],
        allow_private_networks=True, **extra,  # type: ignore[arg-type]
    )
    ctx = open_context(settings, now=T0)
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        item = Item(fingerprint="link:1", title="Story", link="https://example.org/s/1", guid=None, summary="",
                    content="", published_at=T0, author=None, feed_url="https://example.org/rss", fetched_at=T0)
        [(item_id, _, _)] = store.insert_new_items(session, feed_id, [item], alertable=[True])
        store.insert_hits(session, [(item_id, Match("delegation_visits", "1", 2.0))], now=T0)
    return ctx


def crash_on_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def failed_commit(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died before the commit")

    monkeypatch.setattr(store, "record_delivery_sent", failed_commit)


def test_webhook_resent_after_a_crash_has_the_same_webhook_id(
    tmp_path: Path, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = SubscriptionConfig(name="team", watchlists=["delegation_visits"],
                             webhook=WebhookConfig(url=webhook_receiver.url))
    ctx = make_context(tmp_path, sub)
    with monkeypatch.context() as patch:
        crash_on_record(patch)
        delivery_cycle(ctx, now=T0)
    assert len(webhook_receiver.requests) == 1
    # Nothing happens while the dead process's lease holds.
    delivery_cycle(ctx, now=T0 + timedelta(seconds=DELIVERY_LEASE_SECONDS - 1))
    assert len(webhook_receiver.requests) == 1
    assert delivery_cycle(ctx, now=T0 + timedelta(seconds=DELIVERY_LEASE_SECONDS + 1)).sent == 1
    first, second = webhook_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert delivery_cycle(ctx, now=T0 + timedelta(hours=1)).sent == 0
    assert len(webhook_receiver.requests) == 2


def test_email_resent_after_a_crash_has_the_same_message_id(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = SubscriptionConfig(name="desk", watchlists=["delegation_visits"], email=["desk@example.org"])
    ctx = make_context(tmp_path, sub, smtp={"host": smtp_server.host, "port": smtp_server.port,
                                             "from": "monitor@example.org", "security": "none"})
    with monkeypatch.context() as patch:
        crash_on_record(patch)
        delivery_cycle(ctx, now=T0)
    delivery_cycle(ctx, now=T0 + timedelta(seconds=DELIVERY_LEASE_SECONDS + 1))
    delivery_cycle(ctx, now=T0 + timedelta(hours=1))
    ids = [email.message_from_bytes(m.original_content, policy=default)["Message-ID"]
           for m in smtp_server.messages]
    assert len(ids) == 2 and ids[0] == ids[1]


class ProcessDied(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def test_a_crash_mid_batch_never_re_sends_what_was_already_sent(
    tmp_path: Path, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.deliver.webhook import WebhookTransport
    from tests.helpers.outbox import WATCHLIST, context_with_hit, deliveries

    subs = [SubscriptionConfig(name=f"team{i}", watchlists=[WATCHLIST], webhook=WebhookConfig(url=webhook_receiver.url))
            for i in range(5)]
    ctx = context_with_hit(tmp_path, subs, now=T0, delivery_concurrency=1)
    send = WebhookTransport.send
    calls = 0

    async def dies_before_the_third_send(self: WebhookTransport, message: object, *, now: datetime) -> str:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ProcessDied
        return await send(self, message, now=now)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(WebhookTransport, "send", dies_before_the_third_send)
        with pytest.raises(ProcessDied):
            delivery_cycle(ctx, now=T0)
    assert len(webhook_receiver.requests) == 2
    assert sorted(d.status for d in deliveries(ctx)) == ["pending", "pending", "pending", "sent", "sent"]

    delivery_cycle(ctx, now=T0 + timedelta(seconds=DELIVERY_LEASE_SECONDS + 1))

    ids = [r.headers["webhook-id"] for r in webhook_receiver.requests]
    assert len(ids) == len(set(ids)) == 5
    assert {d.status for d in deliveries(ctx)} == {"sent"}
