"""/metrics in the Prometheus text format, read from the database at each scrape.

Every figure comes from the shared database, so any web process reports the
whole installation (all workers), and nothing is lost when a process restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.operations import Figures


class _FiguresCollector(Collector):
    def __init__(self, figures: Figures) -> None:
        self.f = figures

    def collect(self) -> Iterator[Metric]:
        f = self.f
        feeds = GaugeMetricFamily("monitor_feeds", "Feeds by state (ok, failing, paused, gone).", labels=["state"])
        for state, n in sorted(f.feeds.items()):
            feeds.add_metric([state], n)
        yield feeds
        items = GaugeMetricFamily("monitor_items", "Stored items, by where their feed came from.", labels=["origin"])
        for origin, n in sorted(f.items_per_feed_origin.items()):
            items.add_metric([origin], n)
        yield items
        hits = CounterMetricFamily("monitor_hits", "Stored hits per watchlist.", labels=["watchlist"])
        for name, n in sorted(f.hits_per_watchlist.items()):
            hits.add_metric([name], n)
        yield hits
        deliveries = GaugeMetricFamily("monitor_deliveries", "Deliveries by status.", labels=["status"])
        for status, n in sorted(f.deliveries.items()):
            deliveries.add_metric([status], n)
        yield deliveries
        yield GaugeMetricFamily("monitor_deliveries_retrying", "Pending deliveries that failed at least once.",
                                value=f.retrying)
        yield GaugeMetricFamily("monitor_outbox_oldest_pending_seconds",
                                "Age of the oldest pending delivery (0 when none is pending).",
                                value=f.oldest_pending_age)
        yield GaugeMetricFamily("monitor_workers_alive", "Workers with a fresh heartbeat.", value=f.workers_alive)
        ages = GaugeMetricFamily("monitor_worker_heartbeat_age_seconds", "Seconds since each worker's heartbeat.",
                                 labels=["worker"])
        for owner, age in sorted(f.heartbeat_ages.items()):
            ages.add_metric([owner], age)
        yield ages
        polled = GaugeMetricFamily("monitor_last_poll_cycle", "Each worker's last poll cycle, by figure.",
                                   labels=["worker", "figure"])
        for owner, info in sorted(f.last_cycle.items()):
            poll = info.get("poll")
            if not isinstance(poll, dict):
                continue
            for figure in ("feeds_polled", "feeds_failed", "not_modified", "new_items"):
                value = poll.get(figure)
                if isinstance(value, int | float):
                    polled.add_metric([owner, figure], float(value))
        yield polled


def render(figures: Figures) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FiguresCollector(figures))
    return generate_latest(registry)
