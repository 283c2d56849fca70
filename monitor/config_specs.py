"""The config file's feeds and subscriptions as the plain values ``store.sync_config`` takes.

The store does not read settings (it sits below the configuration); this is the one place that resolves a
feed's interval and alert window from the settings' defaults and bounds before they are stored.
"""

from __future__ import annotations

from monitor.config import Settings
from monitor.store.config_sync import FeedSpec, SubscriptionSpec


def config_specs(settings: Settings) -> tuple[list[FeedSpec], list[SubscriptionSpec]]:
    """``(feeds, subscriptions)`` of ``settings``, ready for ``store.sync_config(session, *specs, now)``."""
    feeds = [
        FeedSpec(
            url=f.url, name=f.name, interval_seconds=settings.feed_interval(f),
            alert_window_seconds=f.alert_window if f.alert_window is not None else settings.new_feed_alert_window,
        )
        for f in settings.feeds
    ]
    subscriptions = [SubscriptionSpec(name=s.name, schedule=s.schedule, timezone=s.timezone)
                     for s in settings.subscriptions]
    return feeds, subscriptions
