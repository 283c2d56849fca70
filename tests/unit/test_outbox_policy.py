from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.deliver.outbox import RetryPolicy, next_attempt_at

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def delays(rand: float) -> list[float]:
    out = []
    now = T0
    attempts = 1
    while (when := next_attempt_at(POLICY, attempts=attempts, created_at=T0, now=now, rand=rand)) is not None:
        out.append((when - now).total_seconds())
        now, attempts = when, attempts + 1
    return out


def test_first_retry_comes_within_a_minute_and_later_ones_spread_out() -> None:
    steps = delays(0.5)
    assert steps[0] <= 60
    assert steps == sorted(steps)
    assert max(steps) >= 3600


def test_gives_up_after_the_horizon() -> None:
    steps = delays(0.99)
    assert sum(steps) <= POLICY.horizon
    assert next_attempt_at(POLICY, attempts=3, created_at=T0, now=T0 + timedelta(days=3), rand=0.0) is None


def test_retry_after_is_honoured() -> None:
    when = next_attempt_at(POLICY, attempts=1, created_at=T0, now=T0, rand=0.5, retry_after=600)
    assert when == T0 + timedelta(seconds=600)


def test_permanent_errors_are_dead_at_once() -> None:
    assert next_attempt_at(POLICY, attempts=1, created_at=T0, now=T0, rand=0.5, permanent=True) is None


def test_jitter_spreads_retries_of_one_outage() -> None:
    early = next_attempt_at(POLICY, attempts=2, created_at=T0, now=T0, rand=0.0)
    late = next_attempt_at(POLICY, attempts=2, created_at=T0, now=T0, rand=0.999)
    assert early is not None and late is not None and early < late


def test_absurd_retry_after_and_attempt_counts_never_overflow() -> None:
    """A receiver's Retry-After is a hint: infinite or huge values are bounded by the horizon, negative ones
    ignored, and a delivery retried thousands of times still gets a date."""
    for retry_after in (float("inf"), float("nan"), 1e30, -5.0, 0.0):
        when = next_attempt_at(POLICY, attempts=1, created_at=T0, now=T0, rand=0.5, retry_after=retry_after)
        assert when is None or T0 < when <= T0 + timedelta(seconds=POLICY.horizon + 1)
    assert next_attempt_at(POLICY, attempts=1, created_at=T0, now=T0, rand=0.5, retry_after=1e30) is None
    assert next_attempt_at(POLICY, attempts=10_000, created_at=T0, now=T0, rand=0.5) is not None
