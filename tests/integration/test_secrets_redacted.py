"""Credentials inside feed and webhook URLs never reach subscribers, logs, the CLI or error messages."""

from __future__ import annotations

import email
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig, WebhookConfig
from monitor.db import session_scope
from monitor.domain import Item, Match
from monitor.logs import KeyValueFormatter
from monitor.pipeline import delivery_cycle, open_context, poll_cycle
from tests.e2e.conftest import Cli, write_config
from tests.helpers.feed_server import FeedServer, feed_server
from tests.helpers.hostile_receiver import hostile_receiver

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SECRETS = ("s3cret-pass", "TOPSECRETKEY", "bare-token-123", "tok-abc", "XXXXslackXXXXsecretXXXX")


def secret_feeds(server: FeedServer) -> list[str]:
    host = server.base_url.removeprefix("http://")
    return [
        f"http://reader:s3cret-pass@{host}/private.xml?lang=en",
        f"http://{host}/keyed.xml?api_key=TOPSECRETKEY&lang=en",
        f"http://bare-token-123@{host}/token.xml",
        f"http://{host}/sig.xml?access_token=tok-abc",
    ]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as s:
        for path in ("/private.xml", "/keyed.xml", "/token.xml", "/sig.xml"):
            s.set_route(path, 500, b"down")
        yield s


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything monitor logs, formatted exactly as the daemon writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(KeyValueFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("monitor")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def assert_clean(text: str, where: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert leaked == [], f"{where} shows {leaked}:\n{text}"


def test_failing_feeds_with_credentials_are_shown_by_name_or_host_and_logged_redacted(
    tmp_path: Path, server: FeedServer, log_lines: io.StringIO
) -> None:
    urls = secret_feeds(server)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
        outbox_dir=tmp_path / "outbox", allowed_networks=["127.0.0.0/8"], parse_processes=0,
        feeds=[FeedConfig(url=urls[0], name="Private wire"), *(FeedConfig(url=u) for u in urls[1:])],
        subscriptions=[SubscriptionConfig(name="desk", watchlists=["delegation_visits"], email=["d@example.org"])],
    )
    ctx = open_context(settings, now=T0)
    later = T0 + timedelta(hours=7)
    polled = poll_cycle(ctx, now=later)
    assert polled.feeds_failed == 4
    assert_clean("\n".join(polled.errors), "the poll summary")
    with session_scope(ctx.engine) as session:
        feed_id = store.list_feeds(session)[0].id
        assert feed_id is not None
        assert_clean("\n".join(f.last_error or "" for f in store.list_feeds(session)), "the stored errors")
        item = Item(fingerprint="link:1", title="Story", link="https://example.org/s/1", guid=None, summary="",
                    content="", published_at=later, author=None, feed_url=urls[0], fetched_at=later)
        [(item_id, _, _)] = store.insert_new_items(session, feed_id, [item], alertable=[True])
        store.insert_hits(session, [(item_id, Match("delegation_visits", "1", 2.0))], now=later)

    assert delivery_cycle(ctx, now=later + timedelta(minutes=1)).sent == 1

    [path] = (tmp_path / "outbox").rglob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Sources with problems" in text
    assert "Private wire" in text and "127.0.0.1" in text and "HTTP 500" in text
    assert_clean(text, "the digest's text")
    assert_clean(html, "the digest's HTML")
    assert "WARNING" in log_lines.getvalue()
    assert_clean(log_lines.getvalue(), "the log")


def test_feeds_list_redacts_urls_and_errors(tmp_path: Path, server: FeedServer) -> None:
    urls = secret_feeds(server)
    cli = Cli(write_config(tmp_path / "monitor.yaml", feeds=[{"url": u} for u in urls]))
    cli("poll", "--once", check=False)
    for fmt in ("table", "jsonl"):
        listing = cli("feeds", "list", "--format", fmt)
        assert listing.stdout.count("127.0.0.1") >= 4
        assert_clean(listing.stdout + listing.stderr, f"feeds list --format {fmt}")


def test_a_failing_chat_webhook_does_not_log_or_store_its_secret_path(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    with hostile_receiver() as receiver:
        url = receiver.url("/services/T000/B000/XXXXslackXXXXsecretXXXX")  # answered 404: dead at once
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=ROOT / "watchlists",
            outbox_dir=tmp_path / "outbox", allow_private_networks=True,
            subscriptions=[SubscriptionConfig(name="chat", watchlists=["delegation_visits"],
                                              webhook=WebhookConfig(url=url, format="slack"))],
        )
        ctx = open_context(settings, now=T0 - timedelta(days=1))
        with session_scope(ctx.engine) as session:
            feed_id = store.add_imported_feeds(session, [("https://example.org/rss", None, None)], now=T0,
                                               interval=900, alert_window=86400)
            assert feed_id == 1
            item = Item(fingerprint="link:1", title="Story", link="https://example.org/s/1", guid=None,
                        summary="", content="", published_at=T0, author=None, feed_url="https://example.org/rss",
                        fetched_at=T0)
            [(item_id, _, _)] = store.insert_new_items(session, 1, [item], alertable=[True])
            store.insert_hits(session, [(item_id, Match("delegation_visits", "1", 2.0))], now=T0)
        summary = delivery_cycle(ctx, now=T0)
        assert summary.dead == 1 and receiver.count("/services/T000/B000/XXXXslackXXXXsecretXXXX") == 1
    with session_scope(ctx.engine) as session:
        [row] = store.list_deliveries(session)
    assert "HTTP 404" in (row.last_error or "")
    assert_clean(row.last_error or "", "the delivery's last error")
    assert_clean("\n".join(summary.errors), "the delivery summary")
    assert_clean(log_lines.getvalue(), "the log")
