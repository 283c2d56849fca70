"""Feed leases hold for as long as a poll batch runs, and a batch never piles up on one host.

Another worker may claim a feed only once its lease has run out; a worker still fetching it
keeps renewing the lease, so a slow batch is never polled twice at once. A worker that dies
stops renewing, and its leases run out by themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings
from monitor.pipeline import POLL_BATCH, batch_limits, open_context, poll_cycle
from tests.helpers.feed_server import SMALL_RSS, FeedServer, RecordedRequest, Route

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2  # seconds: short, so that a slow fetch outlives it


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def settings_for(tmp_path: Path, urls: list[str], **extra: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url=u) for u in urls],
        allowed_networks=["127.0.0.0/8"], parse_processes=0, **extra,  # type: ignore[arg-type]
    )


def test_a_feed_still_being_fetched_is_not_claimed_by_another_worker(tmp_path: Path, server: FeedServer) -> None:
    arrived, gate = threading.Event(), threading.Event()

    def slow(_request: RecordedRequest) -> Route:
        arrived.set()
        gate.wait(60)
        return Route(200, SMALL_RSS, {"content-type": "application/rss+xml"})

    server.set_handler("/slow.xml", slow)
    ctx = open_context(settings_for(tmp_path, [server.url("/slow.xml")], feed_lease_seconds=LEASE),
                       now=datetime.now(UTC))
    polling = threading.Thread(target=poll_cycle, args=(ctx,), kwargs={"now": datetime.now(UTC)})
    try:
        polling.start()
        assert arrived.wait(30), "the feed was never fetched"
        # Well past the first lease, the fetch is still running: the feed is not free for another worker.
        for _ in range(3 * LEASE):
            time.sleep(1)
            taken = store.claim_due_feeds(ctx.engine, now=datetime.now(UTC), owner="other", lease_seconds=LEASE,
                                          limit=10)
            assert taken == [], "another worker claimed a feed that is still being fetched"
    finally:
        gate.set()
        polling.join(60)
    # Done: the lease is given back, nothing is left held.
    assert store.claim_due_feeds(ctx.engine, now=datetime.now(UTC) + timedelta(days=2), owner="other",
                                 lease_seconds=LEASE, limit=10) != []
    ctx.close()


def test_a_claim_takes_at_most_per_host_feeds_of_one_host(tmp_path: Path) -> None:
    urls = [f"http://busy.example/{n}.xml" for n in range(10)] + [f"http://quiet.example/{n}.xml" for n in range(3)]
    ctx = open_context(settings_for(tmp_path, urls), now=datetime.now(UTC))
    claimed = store.claim_due_feeds(ctx.engine, now=datetime.now(UTC), owner="a", lease_seconds=60, limit=100,
                                    per_host=2)
    hosts = sorted(f.url.split("/")[2] for f in claimed)
    assert hosts == ["busy.example", "busy.example", "quiet.example", "quiet.example"]
    # The next claim takes the next ones; every feed is claimed once.
    seen = {f.id for f in claimed}
    while more := store.claim_due_feeds(ctx.engine, now=datetime.now(UTC), owner="a", lease_seconds=60, limit=100,
                                        per_host=2):
        assert not seen & {f.id for f in more}
        seen |= {f.id for f in more}
    assert len(seen) == len(urls)
    ctx.close()


@pytest.mark.parametrize(("concurrency", "per_host_limit", "deadline", "lease"), [
    (20, 2, 60.0, 300), (500, 2, 60.0, 300), (1, 1, 5.0, 3600), (20, 2, 20.0, 300),
])
def test_a_batch_finishes_inside_its_lease_in_the_worst_case(
    concurrency: int, per_host_limit: int, deadline: float, lease: int
) -> None:
    batch, per_host = batch_limits(concurrency, per_host_limit, deadline, lease)
    # Every fetch runs into its deadline: rounds of ``concurrency``, and rounds of ``per_host_limit`` for one host.
    rounds = max(-(-batch // concurrency), -(-per_host // per_host_limit))
    assert rounds * deadline < lease
    assert batch >= min(concurrency, POLL_BATCH)  # and a batch still keeps every fetch slot busy
