"""All SQL: feeds' poll state, new items, hits, stories, subscriptions' progress, the outbox.

The store tells the caller what was new — ``insert_new_items`` is an
``INSERT … ON CONFLICT DO NOTHING RETURNING`` — so "an item is new once" holds
with any number of workers; nothing here checks and then inserts. Work is
claimed with a lease by compare-and-set (a conditional ``UPDATE`` whose row
count says whether this process won), which serves SQLite and PostgreSQL alike.

One module per aggregate; callers use ``from monitor import store`` and ``store.<name>``, so every
public name is re-exported here. The store reads no settings: ``sync_config`` takes plain values.
"""

from __future__ import annotations

from monitor.models import Delivery, DeliveryHit, Feed, Hit, MatchSet, StoryKey, Subscription, Unsubscribe, Worker
from monitor.store.config_sync import FeedSpec, SubscriptionSpec, sync_config
from monitor.store.feeds import (
    MOVE_HOLD_SECONDS,
    SILENT_FACTOR,
    SILENT_MIN_SECONDS,
    ClaimedFeed,
    add_feed,
    add_imported_feeds,
    claim_due_feeds,
    feed_problem,
    get_feed,
    list_feeds,
    problem_feeds,
    record_poll_failure,
    record_poll_success,
    release_feed_leases,
    remove_feed,
    renew_feed_leases,
    reset_feeds,
    set_feed_paused,
)
from monitor.store.hits import (
    insert_hits,
    insert_hits_reporting,
    known_hit_watchlists,
    list_hits,
    stored_hit_items,
    undelivered_hits,
    undelivered_hits_for,
)
from monitor.store.items import (
    ArchivedItem,
    StoredItem,
    insert_new_items,
    items_to_rematch,
    iter_items,
    known_fingerprints,
)
from monitor.store.match_sets import ensure_match_set, mark_matched, match_set_key, match_sets
from monitor.store.outbox import (
    NewDelivery,
    claim_due_deliveries,
    enqueue_deliveries,
    enqueue_delivery,
    list_deliveries,
    record_delivery_failure,
    record_delivery_sent,
    release_deliveries,
    retry_deliveries,
)
from monitor.store.retention import Retention, prune
from monitor.store.stories import assign_stories, prune_story_keys
from monitor.store.subscriptions import (
    claim_subscription,
    claim_subscriptions,
    finish_subscription_plan,
    finish_subscription_plans,
    get_subscriptions,
    record_unsubscribe,
    release_subscriptions,
    unsubscribed_addresses,
    unsubscribed_by_subscription,
)
from monitor.store.workers import health_counts, heartbeat, list_workers, remove_worker

__all__ = [
    "MOVE_HOLD_SECONDS",
    "SILENT_FACTOR",
    "SILENT_MIN_SECONDS",
    "ArchivedItem",
    "ClaimedFeed",
    "Delivery",
    "DeliveryHit",
    "Feed",
    "FeedSpec",
    "Hit",
    "MatchSet",
    "NewDelivery",
    "Retention",
    "StoredItem",
    "StoryKey",
    "Subscription",
    "SubscriptionSpec",
    "Unsubscribe",
    "Worker",
    "add_feed",
    "add_imported_feeds",
    "assign_stories",
    "claim_due_deliveries",
    "claim_due_feeds",
    "claim_subscription",
    "claim_subscriptions",
    "enqueue_deliveries",
    "enqueue_delivery",
    "ensure_match_set",
    "feed_problem",
    "finish_subscription_plan",
    "finish_subscription_plans",
    "get_feed",
    "get_subscriptions",
    "health_counts",
    "heartbeat",
    "insert_hits",
    "insert_hits_reporting",
    "insert_new_items",
    "items_to_rematch",
    "iter_items",
    "known_fingerprints",
    "known_hit_watchlists",
    "list_deliveries",
    "list_feeds",
    "list_hits",
    "list_workers",
    "mark_matched",
    "match_set_key",
    "match_sets",
    "problem_feeds",
    "prune",
    "prune_story_keys",
    "record_delivery_failure",
    "record_delivery_sent",
    "record_poll_failure",
    "record_poll_success",
    "record_unsubscribe",
    "release_deliveries",
    "release_feed_leases",
    "release_subscriptions",
    "remove_feed",
    "remove_worker",
    "renew_feed_leases",
    "reset_feeds",
    "retry_deliveries",
    "set_feed_paused",
    "stored_hit_items",
    "sync_config",
    "undelivered_hits",
    "undelivered_hits_for",
    "unsubscribed_addresses",
    "unsubscribed_by_subscription",
]
