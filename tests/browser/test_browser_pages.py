"""The watchlists, subscriptions, anniversaries and OPML import pages in a real browser against a real server.

Same set-up as ``test_browser`` (Playwright driving Debian's Chromium; ``MONITOR_SCREENSHOTS=1`` writes the
screenshots in docs/screenshots/).
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.config import FeedConfig, SmtpConfig, SubscriptionConfig
from monitor.config_specs import config_specs
from monitor.db import session_scope
from tests.browser.test_browser import STORIES, browser, db_url, log_in, open_page, shot
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, Story, Web
from tests.web.pages_support import custom_web

__all__ = ["browser", "db_url"]


@pytest.fixture
def page(browser: Any, web: Web) -> Iterator[Any]:
    yield from open_page(browser, web)


@pytest.fixture
def desk(db_url: str, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Web]:
    """A server whose configuration has an email subscription (to aiosmtpd) and a chat one."""
    settings = dict(
        outbox_dir=tmp_path / "outbox",
        feeds=[FeedConfig(url="https://wire.example.org/rss", name="Wire")],
        subscriptions=[SubscriptionConfig(name="desk", watchlists=["delegation_visits", "anniversaries"],
                                          email=["desk@example.org"], schedule="daily 08:00 Europe/Berlin")],
        smtp=SmtpConfig.model_validate({"host": smtp_server.host, "port": smtp_server.port,
                                        "from": "monitor@example.org", "security": "none"}),
    )
    with custom_web(db_url, **settings) as web:
        with session_scope(web.engine) as session:
            store.sync_config(session, *config_specs(web.settings), NOW - timedelta(days=1))
        yield web


def test_an_operator_checks_the_watchlists_and_backtests_a_draft(page: Any, web: Web) -> None:
    web.seed(STORIES)
    log_in(page, web)
    page.get_by_role("link", name="Watchlists").click()
    page.wait_for_url(re.compile(r"/watchlists$"))
    assert page.locator("tbody tr").count() == 3
    assert "all 25 pass" in page.locator("tbody").inner_text()
    shot(page, "watchlists")

    page.get_by_role("link", name="delegation_visits").click()
    page.wait_for_url(re.compile(r"/watchlists/delegation_visits$"))
    draft = page.get_by_label("Draft (watchlist YAML)")
    assert "name: delegation_visits" in draft.input_value()
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_load_state()
    result = page.locator(".result")
    assert re.search(r"delegation_visits \(version 1\): \d+ hits in 5 stored items", result.inner_text())
    assert "Hits per feed" in result.inner_text()
    shot(page, "watchlist-backtest")

    draft = page.get_by_label("Draft (watchlist YAML)")
    draft.fill(draft.input_value().replace("severity: high", "severity: urgent"))
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_load_state()
    assert "The draft is not valid" in page.get_by_role("alert").inner_text()
    assert "draft (delegation_visits.yaml):5:" in page.get_by_role("alert").inner_text()


def test_an_operator_previews_the_next_digest_and_sends_a_test_message(browser: Any, desk: Web,
                                                                         smtp_server: SmtpServer) -> None:
    desk.seed([Story(title="Zhao Leji arrives in Pyongyang for talks with Kim Jong Un",
                     link="https://wire.example.org/zhao", feed="https://wire.example.org/rss",
                     evidence=[{"kind": "actor", "field": "title", "start": 0, "end": 9, "text": "Zhao Leji"}]),
               Story(title='<script>alert("x")</script> headline with markup', feed="https://wire.example.org/rss")])
    for page in open_page(browser, desk):
        log_in(page, desk)
        page.get_by_role("link", name="Subscriptions").click()
        page.wait_for_url(re.compile(r"/subscriptions$"))
        row = page.locator("tbody tr").first
        assert "desk@example.org" in row.inner_text() and "daily 08:00 Europe/Berlin" in row.inner_text()
        shot(page, "subscriptions")

        row.get_by_role("link", name="Preview").click()
        page.wait_for_url(re.compile(r"/subscriptions/desk/preview$"))
        frame = page.frame_locator("iframe.email")
        frame.locator("body").wait_for()
        body = frame.locator("body").inner_text()
        assert "Zhao Leji arrives in Pyongyang" in body
        assert '<script>alert("x")</script> headline with markup' in body  # shown as text inside the email
        shot(page, "subscription-preview")

        page.get_by_role("link", name="← Subscriptions").click()
        page.get_by_role("button", name="Send a test message").click()
        page.wait_for_load_state()
        assert "Test message for desk sent" in page.get_by_role("status").inner_text()
        [sent] = smtp_server.messages
        message = email.message_from_bytes(sent.content, policy=default)
        assert "desk@example.org" in str(message["To"]) and "test" in str(message["Subject"]).lower()


def test_an_operator_imports_an_opml_file_and_reads_the_anniversaries(page: Any, web: Web,
                                                                      tmp_path: Path) -> None:
    opml = tmp_path / "desk.opml"
    opml.write_text('<?xml version="1.0"?><opml version="2.0"><head/><body>'
                    '<outline type="rss" text="KCNA Watch" xmlUrl="https://kcna.example.org/rss"/>'
                    '<outline type="rss" text="Loopback" xmlUrl="http://127.0.0.1/feed"/>'
                    '</body></opml>', encoding="utf-8")
    log_in(page, web)
    page.get_by_role("link", name="Feeds", exact=True).click()
    page.get_by_label("OPML file").set_input_files(str(opml))
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    status = page.locator(".import").inner_text()
    assert "Imported 1 feed; 0 already present, 1 refused" in status
    assert "http://127.0.0.1/feed" in status
    assert page.get_by_text("https://kcna.example.org/rss").count() >= 1
    shot(page, "feeds-import")

    page.get_by_role("link", name="Anniversaries").click()
    page.wait_for_url(re.compile(r"/anniversaries$"))
    assert page.locator("h1").inner_text() == "Upcoming anniversaries"
    shot(page, "anniversaries")
