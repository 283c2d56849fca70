"""The pages in a real browser (Playwright driving Debian's Chromium, headless) against a real server.

Skips with the reason when Chromium or Playwright is missing, except under CI=true where they are required
(``make test`` installs both). ``MONITOR_SCREENSHOTS=1`` also writes the screenshots in docs/screenshots/.
"""

from __future__ import annotations

import email
import os
import re
import shutil
from collections.abc import Iterator
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from monitor.config import FeedConfig, SmtpConfig, SubscriptionConfig
from monitor.db import make_engine, session_scope, upgrade
from monitor.pipeline import delivery_cycle, open_context, utcnow
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, PASSWORD, Story, Web, web_settings
from tests.web.test_api import _dead_delivery

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"


def _require_browser() -> Any:
    required = os.environ.get("CI") == "true"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("Playwright is required under CI=true: pip install -e '.[dev]'")
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if required:
            pytest.fail(f"Chromium is required under CI=true but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Browser tests run on SQLite only: the API and page tests cover PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, web: Web) -> Iterator[Any]:
    """A browser page on ``web``'s server that fails the test on any console error or page error."""
    context = browser.new_context(base_url=web.url, viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    # No script runs and nothing is blocked by either Content-Security-Policy (the pages' or the preview's):
    # the pages need neither.
    assert problems == []


@pytest.fixture
def page(browser: Any, web: Web) -> Iterator[Any]:
    yield from open_page(browser, web)


def shot(page: Any, name: str) -> None:
    if os.environ.get("MONITOR_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, web: Web) -> None:
    web.operator()
    page.goto("/")
    assert page.url.endswith("/login?next=%2F")
    shot(page, "login")
    page.get_by_label("Name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


STORIES = [
    Story(title="Zhao Leji arrives in Pyongyang for talks with Kim Jong Un",
          summary="The Chinese delegation was greeted at the airport by Choe Ryong Hae.",
          link="https://wire.example.org/zhao", feed="https://wire.example.org/rss", story_of=1,
          evidence=[{"kind": "actor", "field": "title", "start": 0, "end": 9, "text": "Zhao Leji", "actor": "zhao"},
                    {"kind": "cue", "field": "title", "start": 10, "end": 17, "text": "arrives", "cue": "arrival"}]),
    Story(title="Zhao Leji lands in Pyongyang", link="https://other.example.org/zhao",
          feed="https://other.example.org/rss"),
    Story(title="김정은 위원장, 평양에서 중국 대표단 접견", link="https://kr.example.org/1",
          feed="https://kr.example.org/rss",
          evidence=[{"kind": "actor", "field": "title", "start": 0, "end": 3, "text": "김정은", "actor": "kim"}]),
    Story(title="Пхеньян и Москва отметили годовщину договора", watchlist="anniversaries",
          link="https://ru.example.org/1", feed="https://ru.example.org/rss",
          evidence=[{"kind": "anniversary", "field": "title", "start": 26, "end": 35, "text": "годовщину",
                     "event_name": "Treaty of Comprehensive Strategic Partnership", "ordinal": 1,
                     "expected_ordinal": 1, "ordinal_ok": True}]),
    Story(title='<script>alert("x")</script> headline with markup', link="javascript:alert(1)",
          feed="https://wire.example.org/rss"),
]


def test_an_operator_logs_in_filters_hits_and_searches(page: Any, web: Web) -> None:
    web.seed(STORIES)
    log_in(page, web)
    assert page.locator("article.hit").count() == 5
    assert page.locator("article.hit mark").first.inner_text() == "Zhao Leji"
    assert "Also reported by: other.example.org" in page.locator("article.hit").first.inner_text()
    assert page.locator("script").count() == 0  # the hostile title is text
    assert page.get_by_text('<script>alert("x")</script> headline with markup').count() == 1
    shot(page, "hits")

    page.get_by_label("Language").select_option("ko")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"lang=ko"))
    assert page.locator("article.hit h2").all_inner_texts() == ["김정은 위원장, 평양에서 중국 대표단 접견"]

    page.get_by_role("link", name="Search").click()
    for term, expected in (("평양", "김정은 위원장, 평양에서 중국 대표단 접견"),
                           ("пхеньян", "Пхеньян и Москва отметили годовщину договора")):
        page.get_by_label("Words").fill(term)
        page.get_by_role("button", name="Search").click()
        page.wait_for_load_state()
        assert page.locator("article.hit h2").all_inner_texts() == [expected]
    shot(page, "search")


def test_an_operator_adds_a_feed_and_retries_a_dead_delivery(page: Any, web: Web) -> None:
    web.seed(STORIES[:2])
    dead = _dead_delivery(web)
    log_in(page, web)
    page.get_by_role("link", name="Feeds").click()
    page.get_by_label("URL").fill("https://news.example.org/rss")
    page.get_by_label("Name").fill("Example news")
    page.get_by_role("button", name="Add feed").click()
    page.wait_for_url(re.compile(r"/feeds\?done=feed-added"))
    assert "Feed added" in page.locator(".notice").inner_text()
    assert page.get_by_text("https://news.example.org/rss").count() == 1
    shot(page, "feeds")

    page.get_by_role("link", name="Deliveries").click()
    row = page.locator("tr.dead")
    assert "550 mailbox unavailable" in row.inner_text()
    shot(page, "deliveries")
    row.get_by_role("button", name="Retry now").click()
    page.wait_for_url(re.compile(r"done=retried"))
    with session_scope(web.engine) as session:
        from monitor.models import Delivery

        delivery = session.get(Delivery, dead)
        assert delivery is not None and delivery.status == "pending"


def deliver(ctx: Any) -> int:
    """One delivery cycle, in its own thread: Playwright's event loop runs in this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return int(pool.submit(delivery_cycle, ctx, now=utcnow(), flush=True).result().sent)


def test_a_subscriber_unsubscribes_from_the_link_in_a_sent_email(page: Any, web: Web, smtp_server: SmtpServer,
                                                                 tmp_path: Path) -> None:
    settings = web_settings(
        web.settings.database_url, outbox_dir=tmp_path / "outbox", base_url=web.url,
        feeds=[FeedConfig(url="https://wire.example.org/rss", name="Wire")],
        subscriptions=[SubscriptionConfig(name="desk", watchlists=["delegation_visits"], email=["desk@example.org"])],
        smtp=SmtpConfig.model_validate({"host": smtp_server.host, "port": smtp_server.port,
                                        "from": "monitor@example.org", "security": "none"}),
    )
    from datetime import timedelta

    ctx = open_context(settings, now=NOW - timedelta(days=1))
    web.seed([Story(title="Zhao Leji arrives in Pyongyang", feed="https://wire.example.org/rss")])
    assert deliver(ctx) == 1
    message = email.message_from_bytes(smtp_server.messages[0].content, policy=default)
    link = str(message["List-Unsubscribe"]).strip("<>")
    page.goto(link)
    assert "desk@example.org" in page.locator("main").inner_text()
    shot(page, "unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Unsubscribed"

    web.seed([Story(title="Choe Son Hui arrives in Moscow", feed="https://wire.example.org/rss")])
    assert deliver(ctx) == 0
    assert len(smtp_server.messages) == 1
    ctx.close()
