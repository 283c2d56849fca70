"""The hostile-receiver matrix: one delivery batch, many subscriptions, each endpoint broken its own way.

Every delivery gets its own outcome (sent, retried later, or dead), an odd answer
never costs another subscription its delivery, and nothing that was sent goes
out again on later cycles.
"""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest

from monitor.config import SubscriptionConfig, WebhookConfig
from monitor.pipeline import delivery_cycle
from tests.helpers.hostile_receiver import HostileReceiver, hostile_receiver
from tests.helpers.outbox import WATCHLIST, by_subscription, context_with_hit

DAY = timedelta(days=1)
# Path -> the delivery's status after the first cycle, and the bounds of its next attempt
# (None: no bound to check). "normal" means the ordinary first back-off (about 30 s).
EXPECTED: dict[str, tuple[str, str]] = {
    "/odd-header": ("sent", "-"),
    "/slow": ("sent", "-"),
    "/ok": ("sent", "-"),
    "/retry-nines": ("pending", "a day"),
    "/retry-year-9999": ("pending", "a day"),
    "/retry-superscript": ("pending", "normal"),
    "/retry-negative": ("pending", "normal"),
    "/retry-nonsense-date": ("pending", "normal"),
    "/server-error": ("pending", "normal"),
    "/reset": ("pending", "normal"),
    "/not-http": ("pending", "normal"),
    "/huge-header": ("pending", "normal"),
    "/not-found": ("dead", "-"),
}


def name_of(path: str) -> str:
    return path.strip("/").replace("-", "_")


@pytest.fixture
def receiver() -> Iterator[HostileReceiver]:
    with hostile_receiver() as r:
        yield r


def test_each_delivery_gets_its_own_outcome_and_nothing_sent_goes_out_twice(
    tmp_path: Path, receiver: HostileReceiver
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    subs = [SubscriptionConfig(name=name_of(p), watchlists=[WATCHLIST], webhook=WebhookConfig(url=receiver.url(p)))
            for p in EXPECTED]
    subs.append(SubscriptionConfig(name="desk", watchlists=[WATCHLIST], email=["desk@example.org"]))
    ctx = context_with_hit(tmp_path, subs, now=t0)

    first = delivery_cycle(ctx, now=t0)

    assert first.planned == len(subs)
    rows = by_subscription(ctx)
    for path, (status, retry) in EXPECTED.items():
        row = rows[name_of(path)]
        assert (path, row.status) == (path, status), row.last_error
        assert receiver.count(path) == 1
        if status != "sent":
            assert row.last_error and receiver.url(path) in row.last_error
            assert "Traceback" not in row.last_error and "Error:" not in row.last_error
        if retry == "a day":  # an absurd Retry-After is clamped, not obeyed nor fatal
            assert row.next_attempt_at is not None
            assert t0 + DAY - timedelta(minutes=1) <= row.next_attempt_at <= t0 + DAY + timedelta(minutes=5)
        if retry == "normal":  # an unreadable Retry-After is ignored: the ordinary back-off applies
            assert row.next_attempt_at is not None and row.next_attempt_at <= t0 + timedelta(minutes=2)
    assert rows["desk"].status == "sent"
    assert first.sent == 4 and first.dead == 1 and first.failed == len(EXPECTED) - 4

    # Later cycles retry what failed and never repeat what was sent.
    delivery_cycle(ctx, now=t0 + timedelta(minutes=5))
    delivery_cycle(ctx, now=t0 + 2 * DAY)
    for path, (status, _retry) in EXPECTED.items():
        if status == "sent":
            assert receiver.count(path) == 1, path
        elif status == "dead":
            assert receiver.count(path) == 1, path
        else:
            assert receiver.count(path) >= 2, path
    eml = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(eml) == 1
    assert email.message_from_bytes(eml[0].read_bytes(), policy=default)["To"] == "desk@example.org"
    accepted = [h.headers["webhook-id"] for h in receiver.hits if EXPECTED[h.path][0] == "sent"]
    assert len(accepted) == len(set(accepted)) == 3


def test_a_send_that_raises_an_unexpected_error_is_that_delivery_s_retryable_failure(
    tmp_path: Path, receiver: HostileReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in one transport (here: the file transport) costs its delivery an attempt, nothing else."""
    from monitor.deliver import email as email_transport

    t0 = datetime.now(UTC).replace(microsecond=0)
    subs = [SubscriptionConfig(name="desk", watchlists=[WATCHLIST], email=["desk@example.org"]),
            SubscriptionConfig(name="team", watchlists=[WATCHLIST], webhook=WebhookConfig(url=receiver.url("/ok")))]
    ctx = context_with_hit(tmp_path, subs, now=t0)

    async def broken(self: object, message: object, *, now: datetime) -> str:
        raise RuntimeError("the outbox folder vanished")

    monkeypatch.setattr(email_transport.FileTransport, "send", broken)
    summary = delivery_cycle(ctx, now=t0)
    rows = by_subscription(ctx)
    assert rows["team"].status == "sent" and receiver.count("/ok") == 1
    assert rows["desk"].status == "pending" and rows["desk"].attempts == 1
    assert "the outbox folder vanished" in (rows["desk"].last_error or "")
    assert summary.sent == 1 and summary.failed == 1
