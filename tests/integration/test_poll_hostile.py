"""One poll cycle against feeds that misbehave: what is stored, what the feed row says, what the log names."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings
from monitor.db import session_scope
from monitor.models import Feed
from monitor.pipeline import Context, open_context, poll_cycle
from tests.helpers.feed_server import SMALL_RSS, FeedServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def context(tmp_path: Path, urls: list[str], **extra: object) -> Context:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=[FeedConfig(url=u) for u in urls],
        # Loopback is where the test server lives; every other private range stays blocked.
        allowed_networks=["127.0.0.0/8"], **extra,  # type: ignore[arg-type]
    )
    return open_context(settings, now=datetime.now(UTC))


def feed_row(ctx: Context, url: str) -> Feed:
    with session_scope(ctx.engine) as session:
        return next(f for f in store.list_feeds(session) if f.url == url)


def test_etag_304_costs_no_parse_and_no_new_items(tmp_path: Path, server: FeedServer) -> None:
    url = server.url("/etag")
    ctx = context(tmp_path, [url])
    now = datetime.now(UTC)
    first = poll_cycle(ctx, now=now, all_feeds=True)
    assert first.new_items > 0 and first.not_modified == 0
    second = poll_cycle(ctx, now=now + timedelta(hours=1), all_feeds=True)
    assert second.not_modified == 1 and second.new_items == 0
    assert server.requests_to("/etag")[-1].headers.get("if-none-match") == '"v1"'
    row = feed_row(ctx, url)
    assert row.last_status == 304 and row.error_count == 0 and row.etag == '"v1"'


def test_429_backs_off_at_least_as_long_as_retry_after(tmp_path: Path, server: FeedServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    url = server.url("/rate-limited")
    ctx = context(tmp_path, [url])
    now = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        summary = poll_cycle(ctx, now=now, all_feeds=True)
    assert summary.feeds_failed == 1
    row = feed_row(ctx, url)
    assert row.last_status == 429 and row.error_count == 1
    assert row.next_poll_at is not None and row.next_poll_at >= now + timedelta(seconds=120)
    assert any(getattr(r, "feed_url", None) == url for r in caplog.records)


def test_errors_back_off_and_recover_by_themselves(tmp_path: Path, server: FeedServer) -> None:
    server.set_route("/flaky.xml", status=500, body=b"oops")
    url = server.url("/flaky.xml")
    ctx = context(tmp_path, [url])
    now = datetime.now(UTC)
    delays = []
    for i in range(4):
        at = now + timedelta(seconds=i)
        poll_cycle(ctx, now=at, all_feeds=True)
        row = feed_row(ctx, url)
        assert row.next_poll_at is not None
        delays.append((row.next_poll_at - at).total_seconds())
    assert delays[-1] > delays[0] and row.error_count == 4 and row.active
    server.set_route("/flaky.xml", body=SMALL_RSS, headers={"Content-Type": "application/rss+xml"})
    poll_cycle(ctx, now=now + timedelta(seconds=10), all_feeds=True)
    row = feed_row(ctx, url)
    assert row.error_count == 0 and row.last_error is None and row.last_status == 200


def test_410_disables_the_feed_with_a_reason(tmp_path: Path, server: FeedServer) -> None:
    url = server.url("/gone")
    ctx = context(tmp_path, [url])
    poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
    row = feed_row(ctx, url)
    assert not row.active and row.last_status == 410 and "410 Gone: feed disabled" in (row.last_error or "")


@pytest.mark.parametrize(("path", "fragment"), [
    ("/gzip-bomb", "byte cap"),
    ("/huge", "byte cap"),
    ("/billion-laughs", "entities"),
    ("/html", "not a feed"),
    ("/redirect-private", "10.0.0.1"),
    ("/redirect-metadata", "169.254.169.254"),
])
def test_hostile_feeds_are_refused_and_recorded(tmp_path: Path, server: FeedServer, path: str,
                                                fragment: str) -> None:
    url = server.url(path)
    ctx = context(tmp_path, [url], max_feed_bytes=2 * 2**20)
    summary = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
    assert summary.feeds_failed == 1 and summary.new_items == 0
    row = feed_row(ctx, url)
    assert fragment in (row.last_error or ""), row.last_error
    assert row.error_count == 1


def test_slow_drip_hits_the_total_deadline(tmp_path: Path, server: FeedServer) -> None:
    url = server.url("/slow")
    ctx = context(tmp_path, [url], fetch_deadline=1.0, fetch_timeout=5.0)
    poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
    row = feed_row(ctx, url)
    assert row.error_count == 1 and "deadline" in (row.last_error or "").lower()


def test_permanent_redirect_is_recorded_and_followed_once_it_has_held(tmp_path: Path, server: FeedServer) -> None:
    url = server.url("/moved-301")
    ctx = context(tmp_path, [url])
    now = datetime.now(UTC)
    poll_cycle(ctx, now=now, all_feeds=True)
    row = feed_row(ctx, url)
    assert row.moved_to == server.url("/feed.xml") and row.error_count == 0
    before = len(server.requests_to("/moved-301"))
    poll_cycle(ctx, now=now + timedelta(days=8), all_feeds=True)
    assert len(server.requests_to("/moved-301")) == before  # polled at the new URL directly
    assert feed_row(ctx, url).moved_to == server.url("/feed.xml")


def test_a_cycle_larger_than_one_batch_polls_every_feed_once(tmp_path: Path, server: FeedServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.pipeline as pipeline

    monkeypatch.setattr(pipeline.poll, "POLL_BATCH", 2)
    for n in range(5):
        server.set_route(f"/f{n}.xml", body=SMALL_RSS, headers={"Content-Type": "application/rss+xml"})
    ctx = context(tmp_path, [server.url(f"/f{n}.xml") for n in range(5)])
    now = datetime.now(UTC)
    assert poll_cycle(ctx, now=now, all_feeds=True).feeds_polled == 5
    assert all(len(server.requests_to(f"/f{n}.xml")) == 1 for n in range(5))
    assert poll_cycle(ctx, now=now + timedelta(seconds=1)).feeds_polled == 0  # none due yet
