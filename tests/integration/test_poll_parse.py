"""A poll cycle over real HTTP for the parse side: what a bad entry, a wrong charset, a feed's
settings and a date-less item do to the stored items and the feed row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings
from monitor.db import session_scope
from monitor.models import Feed
from monitor.pipeline import Context, open_context, poll_cycle
from tests.helpers.feed_server import FeedServer

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def context(tmp_path: Path, feeds: list[FeedConfig]) -> Context:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", feeds=feeds, allowed_networks=["127.0.0.0/8"],  # type: ignore[arg-type]
    )
    return open_context(settings, now=NOW)


def feed_row(ctx: Context, url: str) -> Feed:
    with session_scope(ctx.engine) as session:
        return next(f for f in store.list_feeds(session) if f.url == url)


def stored(ctx: Context) -> dict[str, store.ArchivedItem]:
    with session_scope(ctx.engine) as session:
        return {item.title: item for item in store.iter_items(session, since=None)}


def test_one_bad_entry_costs_only_itself_and_the_feed_row_says_so(tmp_path: Path, server: FeedServer) -> None:
    items = [{"id": "1", "url": "https://j.example.org/1", "title": "Good first",
              "date_published": "2025-06-10T08:00:00Z"},
             {"id": "2", "url": "https://j.example.org/2", "title": "Deep", "_x": "DEEP"},
             {"id": "3", "url": "https://j.example.org/3", "title": "Good last", "content_html": "<![foo[ <p>x"}]
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "title": "J", "items": items})
    body = body.replace('"DEEP"', "[" * 50_000 + "]" * 50_000)
    server.set_route("/feed.json", body=body.encode(), headers={"Content-Type": "application/feed+json"})
    url = server.url("/feed.json")
    ctx = context(tmp_path, [FeedConfig(url=url)])
    summary = poll_cycle(ctx, now=NOW, all_feeds=True)
    assert summary.feeds_failed == 0 and summary.new_items == 2
    assert set(stored(ctx)) == {"Good first", "Good last"}
    row = feed_row(ctx, url)
    assert row.error_count == 0
    assert row.last_error == "1 entry skipped: entry 2: nested too deeply to read"


def test_feed_settings_decode_and_date_a_mislabelled_feed(tmp_path: Path, server: FeedServer) -> None:
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Лента</title>'
            "<item><title>Визит в Пхеньян</title><link>https://r.example.org/1</link>"
            "<pubDate>10.06.2025 09:00</pubDate></item>"
            "<item><title>Без даты</title><link>https://r.example.org/2</link></item>"
            "</channel></rss>").encode("cp1251")
    server.set_route("/ru.xml", body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    url = server.url("/ru.xml")
    ctx = context(tmp_path, [FeedConfig(url=url, encoding="windows-1251", timezone="Asia/Vladivostok")])
    poll_cycle(ctx, now=NOW, all_feeds=True)
    items = stored(ctx)
    assert set(items) == {"Визит в Пхеньян", "Без даты"}
    assert items["Визит в Пхеньян"].published_at is not None
    assert items["Визит в Пхеньян"].published_at.replace(tzinfo=UTC) == datetime(2025, 6, 9, 23, 0, tzinfo=UTC)
    # No date in the feed: dated when first seen.
    undated = items["Без даты"].published_at
    assert undated is not None and undated.replace(tzinfo=UTC) == NOW
    assert feed_row(ctx, url).last_error is None


def test_a_web_page_given_as_feed_url_names_the_feed_to_use(tmp_path: Path, server: FeedServer) -> None:
    page = (b'<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/news/rss.xml">'
            b"</head><body>News</body></html>")
    server.set_route("/news/", body=page, headers={"Content-Type": "text/html; charset=utf-8"})
    url = server.url("/news/")
    ctx = context(tmp_path, [FeedConfig(url=url)])
    summary = poll_cycle(ctx, now=NOW, all_feeds=True)
    assert summary.feeds_failed == 1
    error = feed_row(ctx, url).last_error or ""
    assert f"its feed at {server.url('/news/rss.xml')}: use that URL" in error


def test_feed_settings_are_checked_at_load() -> None:
    with pytest.raises(ValueError, match="not a character encoding"):
        FeedConfig(url="https://x.example/feed", encoding="klingon-8")
    with pytest.raises(ValueError, match="not a time zone name"):
        FeedConfig(url="https://x.example/feed", timezone="Mars/Olympus")
