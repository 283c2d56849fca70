"""fetch_feed / guarded_request against a real loopback server (tests/helpers/feed_server.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from monitor.errors import BlockedAddressError, FetchError, HTTPStatusError, TooLargeError
from monitor.ingest.fetch import (
    FeedState,
    FetchPolicy,
    FetchResult,
    build_client,
    check_url,
    fetch_feed,
    guarded_request,
    parse_retry_after,
)
from monitor.ingest.parse import parse_feed
from tests.helpers.feed_server import ETAG, LAST_MODIFIED, SMALL_RSS, FeedServer, feed_server

T = TypeVar("T")
# Loopback is allowed through an explicit network allowance, so every other
# private address (10/8, 169.254/16, ...) stays blocked in these tests.
LOOPBACK = FetchPolicy(timeout=5.0, deadline=10.0, allowed_networks=("127.0.0.0/8",))


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        yield s


def run_with_client(policy: FetchPolicy, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with build_client(policy) as client:
            return await body(client)

    return asyncio.run(main())


def fetch(url: str, policy: FetchPolicy = LOOPBACK, **state: str) -> FetchResult:
    return run_with_client(policy, lambda c: fetch_feed(c, FeedState(url, **state), policy))


def test_not_modified_answers_keep_the_connection_for_the_next_feed(server: FeedServer) -> None:
    # An all-304 cycle is most of a steady day: each 304 leaves its keep-alive connection in the pool,
    # so the next request reuses it instead of opening a new TCP (or TLS) connection.
    async def three_polls(client: httpx.AsyncClient) -> list[FetchResult]:
        return [await fetch_feed(client, FeedState(server.url("/etag"), etag=ETAG), LOOPBACK) for _ in range(3)]

    results = run_with_client(LOOPBACK, three_polls)
    assert [r.status for r in results] == [304, 304, 304]
    assert len({r.peer for r in server.requests_to("/etag")}) == 1


def test_plain_fetch_returns_body_validators_and_sends_user_agent(server: FeedServer) -> None:
    result = fetch(server.url("/feed.xml"))
    assert result.status == 200 and not result.not_modified
    assert result.content == SMALL_RSS
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.final_url == result.url == server.url("/feed.xml")
    assert result.permanent_redirect is None
    (request,) = server.requests_to("/feed.xml")
    assert request.headers["user-agent"] == LOOPBACK.user_agent
    assert "if-none-match" not in request.headers


def test_a_cookie_one_answer_sets_is_not_sent_with_the_next_request(server: FeedServer) -> None:
    # One client fetches every feed of a cycle: a cookie a server sets must not follow the poller
    # to its next requests (a feed needs none, and it would link one poll to the next).
    server.set_route("/cookie.xml", body=SMALL_RSS, headers={"Content-Type": "application/rss+xml",
                                                             "Set-Cookie": "visitor=abc123; Path=/"})

    async def twice(client: httpx.AsyncClient) -> None:
        for _ in range(2):
            await fetch_feed(client, FeedState(server.url("/cookie.xml")), LOOPBACK)

    run_with_client(LOOPBACK, twice)
    requests = server.requests_to("/cookie.xml")
    assert len(requests) == 2 and all("cookie" not in r.headers for r in requests)


def test_etag_round_trip_gives_not_modified(server: FeedServer) -> None:
    first = fetch(server.url("/etag"))
    assert first.etag == ETAG and first.max_age == 300
    second = fetch(server.url("/etag"), etag=first.etag or "")
    assert second.not_modified and second.status == 304 and second.content is None
    assert second.etag == ETAG
    assert server.requests_to("/etag")[1].headers["if-none-match"] == ETAG


def test_last_modified_round_trip_gives_not_modified(server: FeedServer) -> None:
    first = fetch(server.url("/last-modified"))
    assert first.last_modified == LAST_MODIFIED
    second = fetch(server.url("/last-modified"), last_modified=LAST_MODIFIED)
    assert second.not_modified
    assert server.requests_to("/last-modified")[1].headers["if-modified-since"] == LAST_MODIFIED


@pytest.mark.parametrize(
    ("path", "permanent"),
    [
        ("/moved-301", "/feed.xml"),
        ("/moved-308", "/feed.xml"),
        ("/found-302", None),
        ("/temp-307", None),
        ("/chain-301-302", "/found-302"),  # moved for good to a URL that redirects temporarily
        ("/chain-302-301", None),  # the feed's own URL only redirects temporarily
    ],
)
def test_redirects_followed_and_permanent_ones_reported(
    server: FeedServer, path: str, permanent: str | None
) -> None:
    result = fetch(server.url(path))
    assert result.content == SMALL_RSS
    assert result.final_url == server.url("/feed.xml")
    assert result.permanent_redirect == (server.url(permanent) if permanent else None)


def test_redirect_loop_stops_at_max_redirects(server: FeedServer) -> None:
    with pytest.raises(FetchError, match="redirects") as info:
        fetch(server.url("/loop"), replace(LOOPBACK, max_redirects=3))
    assert info.value.url == server.url("/loop")
    assert len(server.requests_to("/loop")) == 4


@pytest.mark.parametrize(("path", "target"), [("/redirect-metadata", "169.254.169.254"),
                                              ("/redirect-private", "10.0.0.1")])
def test_redirect_to_private_address_is_refused_before_connecting(
    server: FeedServer, path: str, target: str
) -> None:
    with pytest.raises(BlockedAddressError) as info:
        fetch(server.url(path))
    assert info.value.url == server.url(path)
    assert target in str(info.value)


def test_loopback_blocked_by_default_naming_the_url(server: FeedServer) -> None:
    url = server.url("/feed.xml")
    with pytest.raises(BlockedAddressError) as info:
        fetch(url, FetchPolicy())
    assert info.value.url == url and url in str(info.value)
    assert server.requests == []


def test_hostname_resolving_to_loopback_is_blocked_at_connect(server: FeedServer) -> None:
    url = f"http://localhost:{server.port}/feed.xml"
    with pytest.raises(BlockedAddressError) as info:
        fetch(url, FetchPolicy())
    assert info.value.url == url and "localhost" in str(info.value)
    assert server.requests == []


def test_unguarded_client_still_gets_resolve_and_check(server: FeedServer) -> None:
    url = f"http://localhost:{server.port}/feed.xml"

    async def main() -> FetchResult:
        async with httpx.AsyncClient() as client:
            return await fetch_feed(client, FeedState(url), FetchPolicy())

    with pytest.raises(BlockedAddressError):
        asyncio.run(main())
    assert server.requests == []


def test_allow_private_networks_allows_loopback(server: FeedServer) -> None:
    result = fetch(f"http://localhost:{server.port}/feed.xml", FetchPolicy(allow_private_networks=True))
    assert result.content == SMALL_RSS


def test_429_carries_retry_after_seconds(server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/rate-limited"))
    assert info.value.status == 429 and info.value.retry_after == 120.0
    assert info.value.url == server.url("/rate-limited")


def test_503_carries_retry_after_from_http_date(server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url("/unavailable"))
    assert info.value.status == 503
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 91


@pytest.mark.parametrize(("path", "status"), [("/gone", 410), ("/server-error", 500), ("/missing", 404)])
def test_error_statuses_raise_http_status_error(server: FeedServer, path: str, status: int) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch(server.url(path))
    assert info.value.status == status and info.value.retry_after is None


def test_slow_drip_hits_the_deadline(server: FeedServer) -> None:
    with pytest.raises(FetchError, match="deadline"):
        fetch(server.url("/slow"), replace(LOOPBACK, timeout=2.0, deadline=0.5))


@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
def test_huge_body_stops_at_the_cap(server: FeedServer, path: str) -> None:
    with pytest.raises(TooLargeError) as info:
        fetch(server.url(path), replace(LOOPBACK, max_bytes=2**20))
    assert info.value.url == server.url(path)


def test_gzip_bomb_stops_at_the_decoded_cap(server: FeedServer) -> None:
    with pytest.raises(TooLargeError, match="after decoding"):
        fetch(server.url("/gzip-bomb"), replace(LOOPBACK, max_bytes=2**20))


def test_gzip_feed_is_decoded(server: FeedServer) -> None:
    result = fetch(server.url("/gzip-feed"))
    assert result.content == SMALL_RSS
    assert server.requests_to("/gzip-feed")[0].headers["accept-encoding"] == "gzip, deflate"


def test_billion_laughs_fetched_then_refused_by_parse(server: FeedServer) -> None:
    from monitor.errors import ParseError

    result = fetch(server.url("/billion-laughs"))
    assert result.content is not None
    with pytest.raises(ParseError, match="entities"):
        parse_feed(result.content, url=result.url, content_type=result.content_type)


def test_html_page_fetches_but_is_not_a_feed(server: FeedServer) -> None:
    from monitor.errors import ParseError

    result = fetch(server.url("/html"))
    assert result.content is not None
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(result.content, url=result.url, content_type=result.content_type)


def test_wrong_content_type_still_parses(server: FeedServer) -> None:
    result = fetch(server.url("/wrong-type"))
    assert result.content is not None
    feed = parse_feed(result.content, url=result.final_url, content_type=result.content_type)
    # relative link: resolved against the channel's <link> (http://127.0.0.1/), which comes before the feed URL
    assert [e.link for e in feed.entries][1] == "http://127.0.0.1/news/2"


def test_set_route_overrides_and_logs_requests(server: FeedServer) -> None:
    server.set_route("/custom", status=200, body=b"<rss/>", headers={"Content-Type": "text/xml"})
    assert fetch(server.url("/custom?x=1")).content == b"<rss/>"
    assert server.requests_to("/custom")[0].method == "GET"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/feed", "javascript:alert(1)", "file:///etc/passwd", "http:///nohost",
     "http://127.0.0.1/", "http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/",
     "http://224.0.0.1/", "http://100.64.0.1/"],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(FetchError) as info:
        check_url(url, FetchPolicy())
    assert info.value.url == url


def _accepted(url: str, policy: FetchPolicy) -> bool:
    try:
        check_url(url, policy)
    except FetchError:
        return False
    return True


def test_check_url_accepts_public_and_file_when_allowed() -> None:
    # Public addresses and names pass the default policy ...
    assert _accepted("https://example.org/feed.xml", FetchPolicy())
    assert _accepted("http://93.184.216.34/feed", FetchPolicy())
    # ... and each allowance lets through exactly what the default refuses.
    for url, allowing in [("file:///srv/sample.xml", FetchPolicy(allow_file_urls=True)),
                          ("http://10.1.2.3/", FetchPolicy(allow_private_networks=True)),
                          ("http://10.1.2.3/", FetchPolicy(allowed_networks=("10.0.0.0/8",)))]:
        assert not _accepted(url, FetchPolicy()), url
        assert _accepted(url, allowing), (url, allowing)
    # An allowed network opens only itself.
    assert not _accepted("http://192.168.1.1/", FetchPolicy(allowed_networks=("10.0.0.0/8",)))


def test_file_url_reads_and_emulates_conditional_get(tmp_path: Path) -> None:
    path = tmp_path / "sample.xml"
    path.write_bytes(SMALL_RSS)
    policy = FetchPolicy(allow_file_urls=True)
    url = path.as_uri()
    first = fetch(url, policy)
    assert first.content == SMALL_RSS and first.etag
    second = fetch(url, policy, etag=first.etag or "")
    assert second.not_modified and second.content is None
    later = datetime.now(UTC) + timedelta(seconds=5)
    path.write_bytes(SMALL_RSS + b"\n")
    os.utime(path, (later.timestamp(), later.timestamp()))
    third = fetch(url, policy, etag=first.etag or "")
    assert not third.not_modified and third.content == SMALL_RSS + b"\n"


def test_file_url_refused_unless_allowed_and_capped(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(FetchError, match="file: URLs are not allowed"):
        fetch(path.as_uri(), FetchPolicy())
    with pytest.raises(TooLargeError):
        fetch(path.as_uri(), FetchPolicy(allow_file_urls=True, max_bytes=1024))
    with pytest.raises(FetchError, match="cannot read"):
        fetch((tmp_path / "missing.xml").as_uri(), FetchPolicy(allow_file_urls=True))


def test_guarded_request_posts_and_returns_capped_response(server: FeedServer) -> None:
    server.set_route("/hook", status=202, body=b"y" * 5000, headers={"Content-Type": "text/plain"})
    policy = replace(LOOPBACK, max_bytes=1000)
    response = run_with_client(policy, lambda c: guarded_request(
        c, "POST", server.url("/hook"), policy, headers={"Content-Type": "application/json"}, content=b"{}"))
    assert response.status_code == 202 and response.content == b"y" * 1000
    (request,) = server.requests_to("/hook")
    assert request.method == "POST" and request.body == b"{}"


def test_guarded_request_does_not_follow_redirects(server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError) as info:
        run_with_client(LOOPBACK, lambda c: guarded_request(c, "POST", server.url("/found-302"), LOOPBACK,
                                                            content=b"{}"))
    assert info.value.status == 302
    assert server.requests_to("/feed.xml") == []


def test_guarded_request_returns_error_statuses_for_the_caller(server: FeedServer) -> None:
    response = run_with_client(LOOPBACK, lambda c: guarded_request(c, "POST", server.url("/rate-limited"),
                                                                   LOOPBACK, content=b"{}"))
    assert response.status_code == 429 and response.headers["retry-after"] == "120"


def test_guarded_request_blocks_private_urls() -> None:
    with pytest.raises(BlockedAddressError):
        run_with_client(FetchPolicy(), lambda c: guarded_request(
            c, "POST", "http://169.254.169.254/latest", FetchPolicy(), content=b"{}"))


def test_parse_retry_after() -> None:
    now = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert parse_retry_after("30", now=now) == 30.0
    assert parse_retry_after("Tue, 10 Jun 2025 08:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Tue, 10 Jun 2025 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_a_not_modified_answer_with_a_stray_body_does_not_spoil_the_next_request(server: FeedServer) -> None:
    # A misconfigured server sends a body with its 304: the connection is dropped rather than reused,
    # so the stray bytes are never read as the next feed's answer.
    server.set_route("/stray-304", status=304, body=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad",
                     headers={"ETag": '"s"'})

    async def polls(client: httpx.AsyncClient) -> list[FetchResult]:
        first = await fetch_feed(client, FeedState(server.url("/stray-304"), etag='"s"'), LOOPBACK)
        return [first, await fetch_feed(client, FeedState(server.url("/feed.xml")), LOOPBACK)]

    not_modified, feed = run_with_client(LOOPBACK, polls)
    assert not_modified.status == 304 and feed.status == 200 and feed.content == SMALL_RSS
