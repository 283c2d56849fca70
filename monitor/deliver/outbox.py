"""The outbox's retry policy: when a failed delivery is tried again, and when it is dead.

Pure: attempts, times and the random draw are parameters. The first retries come
within about a minute, later ones spread out to hours; past the horizon a
delivery is ``dead`` (visible and replayable), never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.rhythm import backoff_delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay: float = 30.0  # seconds before the first retry
    factor: float = 2.0
    max_delay: float = 6 * 3600.0
    horizon: float = 3 * 86400.0  # give up this long after the delivery was created
    jitter: float = 0.2  # ± fraction of the delay, so retries of one outage spread out


def next_attempt_at(
    policy: RetryPolicy,
    *,
    attempts: int,
    created_at: datetime,
    now: datetime,
    rand: float,
    retry_after: float | None = None,
    permanent: bool = False,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None means dead.

    ``rand`` is a uniform draw in [0, 1); ``retry_after`` (seconds, from a 429 or
    503) is honoured when it is longer than the computed delay, up to the
    horizon: a receiver's answer is a hint, and no value it sends (infinite,
    negative, thirty nines) can overflow the date arithmetic.
    """
    if permanent:
        return None
    delay = backoff_delay(policy.first_delay, attempts - 1, cap=policy.max_delay, rand=rand, factor=policy.factor,
                          jitter=policy.jitter)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, policy.horizon + 1))
    when = now + timedelta(seconds=delay)
    if when > created_at + timedelta(seconds=policy.horizon):
        return None
    return when
