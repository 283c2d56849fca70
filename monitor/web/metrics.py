"""/metrics in the Prometheus text format, read from the database at each scrape.

Every figure comes from the shared database, so any web process reports the
whole installation (all workers), and nothing is lost when a process restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.operations import Figures

# Upper bounds (seconds) of the poll-duration buckets: a loopback or nearby feed takes tens of
# milliseconds, a slow server seconds, and the fetch deadline caps the rest.
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        yield poll_histogram(f.poll_seconds)


def poll_histogram(durations: tuple[float, ...]) -> HistogramMetricFamily:
    """Feeds by how long their last poll took (fetch start to stored), from the durations stored per feed.

    Built from each feed's last duration rather than counted in the process, so any web process
    reports every worker's feeds and the figures survive restarts; it describes the feeds as they
    are now, not every poll ever made.
    """
    buckets: list[tuple[str, float]] = []
    for bound in POLL_BUCKETS:
        buckets.append((floatToGoString(bound), sum(1 for d in durations if d <= bound)))
    buckets.append(("+Inf", len(durations)))
    return HistogramMetricFamily("monitor_feed_poll_duration_seconds",
                                 "Feeds by the duration of their last poll, from the start of the fetch to stored.",
                                 buckets=buckets, sum_value=sum(durations))


def render(figures: Figures) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FiguresCollector(figures))
    return generate_latest(registry)
