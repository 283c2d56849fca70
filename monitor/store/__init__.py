"""All SQL: feeds' poll state, new items, hits, stories, subscriptions' progress, the outbox.

The store tells the caller what was new — ``insert_new_items`` is an
``INSERT … ON CONFLICT DO NOTHING RETURNING`` — so "an item is new once" holds
with any number of workers; nothing here checks and then inserts. Work is
claimed with a lease by compare-and-set (a conditional ``UPDATE`` whose row
count says whether this process won), which serves SQLite and PostgreSQL alike.

One module per aggregate; callers use ``from monitor import store`` and ``store.<name>``, so every
public name is re-exported here, imported on first use (a reading command loads only the aggregates
it reads). The store reads no settings: ``sync_config`` takes plain values.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.models import Delivery, DeliveryHit, Feed, Hit, MatchSet, StoryKey, Subscription, Unsubscribe, Worker
    from monitor.store.config_sync import FeedSpec, SubscriptionSpec, sync_config
    from monitor.store.feeds import (
        MOVE_HOLD_SECONDS,
        SILENT_FACTOR,
        SILENT_MIN_SECONDS,
        ClaimedFeed,
        PollState,
        add_feed,
        add_imported_feeds,
        claim_due_feeds,
        feed_problem,
        get_feed,
        list_feeds,
        problem_feeds,
        record_poll_failure,
        record_poll_states,
        record_poll_success,
        release_feed_leases,
        remove_feed,
        renew_feed_leases,
        reset_feeds,
        set_feed_paused,
    )
    from monitor.store.hits import (
        count_undelivered_hits,
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
        index_for_search,
        insert_new_items,
        items_to_rematch,
        iter_items,
        known_fingerprints,
        nth_newest_item_id,
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
    from monitor.store.preferences import (
        OwnRow,
        all_preferences,
        ensure_own_rows,
        get_preference,
        save_preference,
        unsubscribed_pairs,
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

# Which module defines each public name. The names load on first use (PEP 562), so a command that
# reads the workers' heartbeats does not import the story clustering or the schedule parser.
_SOURCES: dict[str, tuple[str, ...]] = {
    "monitor.models": (
        "Delivery", "DeliveryHit", "Feed", "Hit", "MatchSet", "StoryKey", "Subscription", "Unsubscribe", "Worker",
    ),
    "monitor.store.config_sync": ("FeedSpec", "SubscriptionSpec", "sync_config"),
    "monitor.store.feeds": (
        "MOVE_HOLD_SECONDS", "SILENT_FACTOR", "SILENT_MIN_SECONDS", "ClaimedFeed", "PollState", "add_feed",
        "add_imported_feeds", "claim_due_feeds", "feed_problem", "get_feed", "list_feeds", "problem_feeds",
        "record_poll_failure", "record_poll_states", "record_poll_success", "release_feed_leases", "remove_feed",
        "renew_feed_leases", "reset_feeds", "set_feed_paused",
    ),
    "monitor.store.hits": (
        "count_undelivered_hits", "insert_hits", "insert_hits_reporting", "known_hit_watchlists", "list_hits",
        "stored_hit_items", "undelivered_hits", "undelivered_hits_for",
    ),
    "monitor.store.items": (
        "ArchivedItem", "StoredItem", "index_for_search", "insert_new_items", "items_to_rematch", "iter_items",
        "known_fingerprints", "nth_newest_item_id",
    ),
    "monitor.store.match_sets": ("ensure_match_set", "mark_matched", "match_set_key", "match_sets"),
    "monitor.store.outbox": (
        "NewDelivery", "claim_due_deliveries", "enqueue_deliveries", "enqueue_delivery", "list_deliveries",
        "record_delivery_failure", "record_delivery_sent", "release_deliveries", "retry_deliveries",
    ),
    "monitor.store.preferences": (
        "OwnRow", "all_preferences", "ensure_own_rows", "get_preference", "save_preference", "unsubscribed_pairs",
    ),
    "monitor.store.retention": ("Retention", "prune"),
    "monitor.store.stories": ("assign_stories", "prune_story_keys"),
    "monitor.store.subscriptions": (
        "claim_subscription", "claim_subscriptions", "finish_subscription_plan", "finish_subscription_plans",
        "get_subscriptions", "record_unsubscribe", "release_subscriptions", "unsubscribed_addresses",
        "unsubscribed_by_subscription",
    ),
    "monitor.store.workers": ("health_counts", "heartbeat", "list_workers", "remove_worker"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    source = importlib.import_module(module)
    for exported in _SOURCES[module]:  # the whole module's names at once: one import, later lookups are plain
        globals()[exported] = getattr(source, exported)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


class _Store(ModuleType):
    """The package, keeping a re-exported name when a submodule of the same name is imported.

    Importing ``monitor.store.match_sets`` binds the submodule as the package's ``match_sets``
    attribute; the public name is the function of that module, as it was when everything was
    imported eagerly.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _MODULE_OF:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Store

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
    "OwnRow",
    "PollState",
    "Retention",
    "StoredItem",
    "StoryKey",
    "Subscription",
    "SubscriptionSpec",
    "Unsubscribe",
    "Worker",
    "add_feed",
    "add_imported_feeds",
    "all_preferences",
    "assign_stories",
    "claim_due_deliveries",
    "claim_due_feeds",
    "claim_subscription",
    "claim_subscriptions",
    "count_undelivered_hits",
    "enqueue_deliveries",
    "enqueue_delivery",
    "ensure_match_set",
    "ensure_own_rows",
    "feed_problem",
    "finish_subscription_plan",
    "finish_subscription_plans",
    "get_feed",
    "get_preference",
    "get_subscriptions",
    "health_counts",
    "heartbeat",
    "index_for_search",
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
    "nth_newest_item_id",
    "problem_feeds",
    "prune",
    "prune_story_keys",
    "record_delivery_failure",
    "record_delivery_sent",
    "record_poll_failure",
    "record_poll_states",
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
    "save_preference",
    "set_feed_paused",
    "stored_hit_items",
    "sync_config",
    "undelivered_hits",
    "undelivered_hits_for",
    "unsubscribed_addresses",
    "unsubscribed_by_subscription",
    "unsubscribed_pairs",
]
