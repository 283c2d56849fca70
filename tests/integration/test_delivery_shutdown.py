"""Shutdown during a slow webhook: the cycle stops without waiting for the answer, and nothing is lost.

The receiver holds the first request unanswered until the test lets it go; the shutdown flag is
set while that request is in flight, as SIGTERM would set it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import SubscriptionConfig, WebhookConfig
from monitor.pipeline import CycleStopped, delivery_cycle
from tests.conftest import Received, WebhookReceiver
from tests.helpers.outbox import WATCHLIST, context_with_hit, deliveries

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_a_shutdown_cancels_a_slow_send_and_leaves_every_delivery_pending_for_the_next_cycle(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    subs = [SubscriptionConfig(name=f"team{i}", watchlists=[WATCHLIST], webhook=WebhookConfig(url=webhook_receiver.url))
            for i in range(3)]
    ctx = context_with_hit(tmp_path, subs, now=T0, delivery_concurrency=1)
    answer, holding = threading.Event(), threading.Event()

    def shutdown_then_hold(request: Received) -> None:
        if len(webhook_receiver.requests) > 1:
            return
        holding.set()
        ctx.stopping.set()  # SIGTERM arrives while this request waits for its answer
        answer.wait(60)
        holding.clear()

    webhook_receiver.on_request = shutdown_then_hold
    try:
        with pytest.raises(CycleStopped):
            delivery_cycle(ctx, now=T0)
        # The cycle returned while the request was still unanswered: it did not wait for it.
        assert holding.is_set()
        assert len(webhook_receiver.requests) == 1
    finally:
        answer.set()

    # Nothing was recorded as sent, and no lease is left behind: the next cycle sends all three now.
    assert [(d.status, d.lease_until) for d in deliveries(ctx)] == [("pending", None)] * 3
    ctx.stopping.clear()
    assert delivery_cycle(ctx, now=T0).sent == 3
    ids = [r.headers["webhook-id"] for r in webhook_receiver.requests]
    # The request cut off in flight goes out again with the same key; the others once each.
    assert len(ids) == 4 and len(set(ids)) == 3 and ids[0] in ids[1:]
    assert {d.status for d in deliveries(ctx)} == {"sent"}
