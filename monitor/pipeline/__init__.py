"""Cycles and the operations around them, one module per responsibility.

``context`` opens what every cycle runs in (database, watchlists, config sync); ``poll`` and ``deliver``
are the two cycles; ``rematch`` matches stored items again when the watchlists change. The daemon's
jobs and the one-shot commands call exactly these functions; the time is always a parameter.
"""

from __future__ import annotations

from monitor.ingest.prepare import PARSE_BUDGET_SECONDS, Prepared, prepare_feed
from monitor.pipeline.context import (
    STORY_THRESHOLD,
    STORY_WINDOW,
    Context,
    CycleStopped,
    WatchlistSource,
    beat,
    check_subscribed_watchlists,
    open_context,
    prune_cycle,
    utcnow,
)
from monitor.pipeline.deliver import (
    DELIVERY_LEASE_SECONDS,
    MAX_HITS_PER_PLAN,
    DeliverySummary,
    build_subscription_digest,
    delivery_cycle,
    example_for,
    plan_deliveries,
    send_due,
    send_test_message,
    watchlist_titles,
)
from monitor.pipeline.poll import (
    FEED_LEASE_SECONDS,
    MAX_BACKOFF_SECONDS,
    PARALLEL_MIN_FEEDS,
    POLL_BATCH,
    STOP_CHECK_SECONDS,
    PollSummary,
    batch_limits,
    feed_options,
    poll_cycle,
)
from monitor.pipeline.rematch import (
    RematchSummary,
    catch_up,
    rematch_stored,
)

__all__ = [
    "DELIVERY_LEASE_SECONDS",
    "FEED_LEASE_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "MAX_HITS_PER_PLAN",
    "PARALLEL_MIN_FEEDS",
    "PARSE_BUDGET_SECONDS",
    "POLL_BATCH",
    "STOP_CHECK_SECONDS",
    "STORY_THRESHOLD",
    "STORY_WINDOW",
    "Context",
    "CycleStopped",
    "DeliverySummary",
    "PollSummary",
    "Prepared",
    "RematchSummary",
    "WatchlistSource",
    "batch_limits",
    "beat",
    "build_subscription_digest",
    "catch_up",
    "check_subscribed_watchlists",
    "delivery_cycle",
    "example_for",
    "feed_options",
    "open_context",
    "plan_deliveries",
    "poll_cycle",
    "prepare_feed",
    "prune_cycle",
    "rematch_stored",
    "send_due",
    "send_test_message",
    "utcnow",
    "watchlist_titles",
]
