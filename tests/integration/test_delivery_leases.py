"""Long delivery batches: fresh signatures on every send, and leases that hold while a batch runs.

Time is virtual: the receiver advances a shared clock by 20 s per request (a
slow endpoint, without the wait), and both delivery processes read that clock,
as two workers on one host read the same wall clock.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks as standard
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor import store
from monitor.config import SubscriptionConfig, WebhookConfig
from monitor.db import session_scope
from monitor.pipeline import Context, delivery_cycle, open_context
from tests.conftest import WebhookReceiver
from tests.helpers.outbox import WATCHLIST, by_subscription, context_with_hit, deliveries

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-tests!!").decode()
SECONDS_PER_REQUEST = 20.0
BATCH = 25  # 25 x 20 s: the batch outlasts a 300 s lease by far


class VirtualTime:
    def __init__(self, start: datetime) -> None:
        self.start, self.seconds, self.lock = start, 0.0, threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.seconds

    def advance(self, seconds: float) -> float:
        with self.lock:
            self.seconds += seconds
            return self.seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())


def enqueue_batch(ctx: Context, url: str, now: datetime) -> None:
    with session_scope(ctx.engine) as session:
        sub = store.get_subscriptions(session)["team"]
        assert sub.id is not None
        for i in range(BATCH):
            store.enqueue_delivery(session, subscription_id=sub.id, key=f"msg_{i:03d}", transport="webhook",
                                   subject="1 hits", payload=b'{"n":%d}' % i, recipients=url, hit_ids=[],
                                   now=now)


def test_a_long_batch_is_signed_at_send_time_and_never_sent_twice(
    tmp_path: Path, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = VirtualTime(t0)

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> VirtualDatetime:  # the verifier's idea of "now"
            return cls.fromtimestamp(clock.now().timestamp(), tz)

    monkeypatch.setattr(standard, "datetime", VirtualDatetime)
    sub = SubscriptionConfig(name="team", watchlists=[WATCHLIST],
                             webhook=WebhookConfig(url=webhook_receiver.url, secret=SECRET))
    first = context_with_hit(tmp_path, [sub], now=t0, delivery_concurrency=1)
    first.monotonic = clock.monotonic
    enqueue_batch(first, webhook_receiver.url, t0)

    second = open_context(first.settings, now=t0)
    second.monotonic = clock.monotonic
    verifier = Webhook(SECRET)
    rejected: list[str] = []
    runs: list[threading.Thread] = []

    def verify_then_wait(request: Any) -> None:
        try:
            verifier.verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            rejected.append(f"{request.headers['webhook-id']}: {exc}")
        if clock.advance(SECONDS_PER_REQUEST) >= 400 and not runs:
            # A second `deliver --once` runs 400 s into the batch, while the first waits for this answer.
            runs.append(threading.Thread(target=delivery_cycle, args=(second,), kwargs={"now": clock.now()}))
            runs[0].start()
            runs[0].join(timeout=60)

    webhook_receiver.on_request = verify_then_wait
    delivery_cycle(first, now=t0)
    assert runs, "the batch ended before the second worker started"

    ids = [r.headers["webhook-id"] for r in webhook_receiver.requests]
    # The batch, and the digest of the stored hit planned by the first cycle: each exactly once.
    assert len(ids) == len(set(ids)) == BATCH + 1
    assert {f"msg_{i:03d}" for i in range(BATCH)} <= set(ids)
    assert rejected == []
    assert {d.status for d in deliveries(first)} == {"sent"}
    stamps = [int(r.headers["webhook-timestamp"]) for r in webhook_receiver.requests]
    assert max(stamps) - min(stamps) >= 300  # signed when sent, not when the batch began


def test_a_delivery_of_a_removed_subscription_is_dead_lettered_never_sent_unsigned(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    webhook_receiver.script = [(500, {})]
    signed = SubscriptionConfig(name="team", watchlists=[WATCHLIST],
                                webhook=WebhookConfig(url=webhook_receiver.url, secret=SECRET))
    ctx = context_with_hit(tmp_path, [signed], now=t0)
    assert delivery_cycle(ctx, now=t0).failed == 1  # pending, to be retried
    renamed = signed.model_copy(update={"name": "team_renamed"})
    ctx.settings = ctx.settings.model_copy(update={"subscriptions": [renamed]})

    summary = delivery_cycle(ctx, now=t0 + timedelta(hours=1))

    row = by_subscription(ctx)["team"]
    assert row.status == "dead"
    assert "'team' is no longer" in (row.last_error or "") and "removed or renamed" in (row.last_error or "")
    assert summary.dead == 1
    assert len(webhook_receiver.requests) == 1
    assert all("webhook-signature" in r.headers for r in webhook_receiver.requests)
