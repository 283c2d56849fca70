"""Answers that are odd but not wrong, and waits that are not the server's fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from monitor.errors import FetchError
from monitor.ingest.fetch import (
    MAX_RETRY_AFTER,
    FeedState,
    FetchPolicy,
    FetchResult,
    build_client,
    fetch_feed,
    guarded_request,
    parse_retry_after,
)
from tests.helpers.feed_server import SMALL_RSS, FeedServer, RecordedRequest, Route, feed_server
from tests.helpers.hostile_receiver import hostile_receiver

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        yield s


def test_a_webhook_answer_with_non_ascii_header_values_is_returned_not_raised() -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8",))

    async def post(url: str) -> int:
        async with build_client(policy) as client:
            response = await guarded_request(client, "POST", url, policy, content=b"{}")
            assert "x-note" in response.headers
            return response.status_code

    with hostile_receiver() as receiver:
        assert asyncio.run(post(receiver.url("/odd-header"))) == 200


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0),
    ("9" * 30, MAX_RETRY_AFTER),
    ("99999999999", MAX_RETRY_AFTER),
    ("²", None),
    ("١٢٠", None),  # Arabic-Indic digits: str.isdigit() says yes, HTTP says no
    ("-5", None),
    ("1e9", None),
    ("inf", None),
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
    ("Mon, 99 Foo 99999 99:99:99 GMT", None),
    ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ("Wed, 25 Nov 2026 12:01:30 GMT", 90.0),
    ("", None),
])
def test_retry_after_is_clamped_or_ignored_never_raised(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_fast_feeds_queued_behind_slow_ones_on_the_same_host_are_not_too_slow(server: FeedServer) -> None:
    """Two slow feeds hold the host's only slot for longer than the deadline between them; the
    fast feeds behind them wait, but the wait is not theirs to pay: each is fetched and succeeds."""

    def slow(request: RecordedRequest) -> Route:
        time.sleep(1.5)
        return Route(200, SMALL_RSS, {"Content-Type": "application/rss+xml"})

    server.set_handler("/slow-a", slow)
    server.set_handler("/slow-b", slow)
    fast = [f"/fast-{i}" for i in range(4)]
    for path in fast:
        server.set_route(path, 200, SMALL_RSS, {"Content-Type": "application/rss+xml"})
    policy = FetchPolicy(timeout=5.0, deadline=2.5, per_host_limit=1, allowed_networks=("127.0.0.0/8",))

    async def poll() -> list[FetchResult | BaseException]:
        async with build_client(policy) as client:
            paths = ["/slow-a", "/slow-b", *fast]  # the slow ones take the slot first
            return await asyncio.gather(*(fetch_feed(client, FeedState(server.url(p)), policy) for p in paths),
                                        return_exceptions=True)

    results = asyncio.run(poll())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert all(isinstance(r, FetchResult) and r.status == 200 for r in results)
    assert {r.path for r in server.requests} >= set(fast)


def test_a_feed_slower_than_the_deadline_is_still_refused(server: FeedServer) -> None:
    def slow(request: RecordedRequest) -> Route:
        time.sleep(2.0)
        return Route(200, SMALL_RSS)

    server.set_handler("/too-slow", slow)
    policy = FetchPolicy(timeout=5.0, deadline=0.5, allowed_networks=("127.0.0.0/8",))

    async def one() -> FetchResult:
        async with build_client(policy) as client:
            return await fetch_feed(client, FeedState(server.url("/too-slow")), policy)

    with pytest.raises(FetchError, match="deadline"):
        asyncio.run(one())
