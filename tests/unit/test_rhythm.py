"""The feed rhythm with a fixed clock and a fixed random draw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from monitor.deliver.outbox import RetryPolicy, next_attempt_at
from monitor.rhythm import (
    MAX_BACKOFF_SECONDS,
    PollOutcome,
    RhythmPolicy,
    backoff_delay,
    feed_problem,
    move_has_held,
    next_poll_at,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RhythmPolicy(max_poll_interval=86400)


@dataclass
class State:
    interval_seconds: int = 900
    error_count: int = 0
    first_poll: bool = False
    last_entry_at: datetime | None = None
    entry_gap_seconds: float | None = None


def never() -> float:
    raise AssertionError("a successful poll draws no random number")


def seconds_until(when: datetime) -> float:
    return (when - NOW).total_seconds()


def test_a_healthy_feed_is_polled_at_its_interval() -> None:
    assert seconds_until(next_poll_at(PollOutcome(), State(), POLICY, NOW, never).at) == 900


def test_a_feed_that_publishes_rarely_or_asks_for_it_is_polled_less_often_up_to_the_maximum() -> None:
    rare = State(entry_gap_seconds=4 * 3600)
    assert seconds_until(next_poll_at(PollOutcome(), rare, POLICY, NOW, never).at) == 2 * 3600
    assert seconds_until(next_poll_at(PollOutcome(hints=(None, 3600)), State(), POLICY, NOW, never).at) == 3600
    assert seconds_until(next_poll_at(PollOutcome(hints=(10**7,)), State(), POLICY, NOW, never).at) == 86400


def test_the_gap_between_items_is_a_moving_average_that_ignores_a_first_polls_backlog() -> None:
    state = State(last_entry_at=NOW - timedelta(hours=10), entry_gap_seconds=3600)
    assert next_poll_at(PollOutcome(new_items=2), state, POLICY, NOW, never).entry_gap_seconds == pytest.approx(
        0.7 * 3600 + 0.3 * 5 * 3600)
    first = State(first_poll=True, last_entry_at=NOW - timedelta(hours=10))
    assert next_poll_at(PollOutcome(new_items=50), first, POLICY, NOW, never).entry_gap_seconds is None


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_a_failing_feed_backs_off_exponentially_with_jitter(rand: float, factor: float) -> None:
    outcome = PollOutcome(failed=True)
    at = next_poll_at(outcome, State(error_count=3), POLICY, NOW, lambda: rand).at
    assert seconds_until(at) == pytest.approx(900 * 8 * factor, rel=1e-5)
    capped = next_poll_at(outcome, State(error_count=500), POLICY, NOW, lambda: 0.5).at
    assert seconds_until(capped) == MAX_BACKOFF_SECONDS


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    asks = PollOutcome(failed=True, retry_after=7200)
    assert seconds_until(next_poll_at(asks, State(), POLICY, NOW, lambda: 0.5).at) == 7200
    greedy = PollOutcome(failed=True, retry_after=10.0**9)
    assert seconds_until(next_poll_at(greedy, State(), POLICY, NOW, lambda: 0.0).at) == MAX_BACKOFF_SECONDS


def test_feeds_and_deliveries_share_one_backoff() -> None:
    policy = RetryPolicy()
    for attempts in (1, 2, 5, 40):
        for rand in (0.0, 0.3, 0.99):
            at = next_attempt_at(policy, attempts=attempts, created_at=NOW, now=NOW, rand=rand)
            assert at is not None
            expected = backoff_delay(policy.first_delay, attempts - 1, cap=policy.max_delay, rand=rand)
            assert seconds_until(at) == pytest.approx(expected)


def test_a_move_holds_after_a_week() -> None:
    assert not move_has_held(None, NOW)
    assert not move_has_held(NOW - timedelta(days=6), NOW)
    assert move_has_held(NOW - timedelta(days=7), NOW)


@dataclass
class Row:
    active: bool = True
    last_status: int | None = 200
    last_error: str | None = None
    error_count: int = 0
    last_success_at: datetime | None = None
    created_at: datetime | None = None
    entry_gap_seconds: float | None = None
    last_entry_at: datetime | None = None


def test_feed_problems_name_what_to_look_at() -> None:
    assert feed_problem(Row(), now=NOW, failing_for=3600) is None
    assert feed_problem(Row(active=False, last_status=410, last_error="gone"), now=NOW, failing_for=0) == \
        "disabled: gone"
    failing = Row(error_count=3, last_error="timed out", last_success_at=NOW - timedelta(hours=2))
    assert feed_problem(failing, now=NOW, failing_for=3600) == "timed out (3 failed polls)"
    assert feed_problem(failing, now=NOW, failing_for=3 * 3600) is None
    silent = Row(entry_gap_seconds=3600, last_entry_at=NOW - timedelta(days=3))
    assert feed_problem(silent, now=NOW, failing_for=0) == "silent: no new item for 3.0 days (usually every 1.0 h)"
