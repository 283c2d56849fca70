"""Webhook receivers that fail in the ways real endpoints do; each outcome lands on the delivery row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import store
from monitor.config import SubscriptionConfig, WebhookConfig
from monitor.config_specs import config_specs
from monitor.db import session_scope
from monitor.pipeline import Context, delivery_cycle
from tests.conftest import WebhookReceiver
from tests.integration.test_delivery_crash import T0, make_context


def team(url: str) -> SubscriptionConfig:
    return SubscriptionConfig(name="team", watchlists=["delegation_visits"], webhook=WebhookConfig(url=url))


def deliveries(ctx: Context) -> list[store.Delivery]:
    with session_scope(ctx.engine) as session:
        return store.list_deliveries(session)


def test_429_waits_for_retry_after(tmp_path: Path, webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [(429, {"Retry-After": "600"})]
    ctx = make_context(tmp_path, team(webhook_receiver.url))
    assert delivery_cycle(ctx, now=T0).failed == 1
    [row] = deliveries(ctx)
    assert row.status == "pending" and row.next_attempt_at is not None
    assert row.next_attempt_at >= T0 + timedelta(seconds=600)
    assert "HTTP 429" in (row.last_error or "")
    assert delivery_cycle(ctx, now=T0 + timedelta(seconds=599)).sent == 0
    assert delivery_cycle(ctx, now=T0 + timedelta(seconds=601)).sent == 1
    assert len(webhook_receiver.requests) == 2


def test_410_is_permanent_and_dead_at_once(tmp_path: Path, webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.script = [(410, {})]
    ctx = make_context(tmp_path, team(webhook_receiver.url))
    assert delivery_cycle(ctx, now=T0).dead == 1
    [row] = deliveries(ctx)
    assert row.status == "dead" and "HTTP 410" in (row.last_error or "")
    assert delivery_cycle(ctx, now=T0 + timedelta(days=1)).sent == 0
    assert len(webhook_receiver.requests) == 1


def test_unreachable_endpoint_is_retried_and_others_still_get_theirs(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    dead_end = SubscriptionConfig(name="broken", watchlists=["delegation_visits"],
                                  webhook=WebhookConfig(url="http://127.0.0.1:9/hook"))
    ctx = make_context(tmp_path, team(webhook_receiver.url))
    ctx.settings = ctx.settings.model_copy(update={"subscriptions": [*ctx.settings.subscriptions, dead_end]})
    with session_scope(ctx.engine) as session:
        store.sync_config(session, *config_specs(ctx.settings), T0 - timedelta(hours=1))
        # The hit predates the new subscription's creation; make it count for both.
        for sub in store.get_subscriptions(session).values():
            sub.created_at = T0 - timedelta(days=1)
            session.add(sub)
    summary = delivery_cycle(ctx, now=T0)
    assert summary.sent == 1 and summary.failed == 1
    by_sub = {d.subscription_id: d for d in deliveries(ctx)}
    assert sorted(d.status for d in by_sub.values()) == ["pending", "sent"]
    assert any("127.0.0.1:9" in (d.last_error or "") for d in by_sub.values())


def test_webhook_to_a_private_address_is_refused_when_not_allowed(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    ctx = make_context(tmp_path, team(webhook_receiver.url))
    ctx.settings = ctx.settings.model_copy(update={"allow_private_networks": False})
    assert delivery_cycle(ctx, now=datetime.now(UTC)).dead == 1
    [row] = deliveries(ctx)
    assert "127.0.0.1" in (row.last_error or "")
    assert webhook_receiver.requests == []
