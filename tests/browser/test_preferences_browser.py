"""A subscriber changes preferences in a real browser, from the link in a sent digest (Playwright, Chromium)."""

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
from monitor.db import make_engine, session_scope
from monitor.pipeline import open_context
from tests.browser.test_browser import browser, db_url, deliver, shot  # noqa: F401  (fixtures)
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, Story, Web, serve, web_settings

FEED = "https://wire.example.org/rss"
DESK = SubscriptionConfig(name="desk", watchlists=["delegation_visits", "anniversaries", "defense_treaties"],
                          email=["a@example.org", "b@example.org"], schedule="daily 08:00", timezone="Europe/London")


@pytest.fixture
def site(db_url: str) -> Iterator[Web]:  # noqa: F811
    from monitor.web.app import create_app

    settings = web_settings(db_url, subscriptions=[DESK])
    engine = make_engine(db_url)
    server, thread, url = serve(create_app(settings, engine))
    try:
        yield Web(url=url, engine=engine, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def test_a_subscriber_changes_preferences_from_the_link_in_a_digest(
    browser: Any, site: Web, smtp_server: SmtpServer, tmp_path: Path  # noqa: F811
) -> None:
    settings = web_settings(
        site.settings.database_url, outbox_dir=tmp_path / "outbox", base_url=site.url,
        feeds=[FeedConfig(url=FEED, name="Wire")], subscriptions=[DESK],
        smtp=SmtpConfig.model_validate({"host": smtp_server.host, "port": smtp_server.port,
                                        "from": "monitor@example.org", "security": "none"}),
    )
    ctx = open_context(settings, now=NOW - timedelta(days=1))
    site.seed([Story(title="Zhao Leji arrives in Pyongyang", feed=FEED)])
    assert deliver(ctx) == 2
    mine = next(email.message_from_bytes(m.content, policy=default) for m in smtp_server.messages
                if m.rcpt_tos == ["a@example.org"])
    found = re.search(r'href="([^"]+/preferences/[^"]+)"', mine.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert found

    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(found.group(1).replace("&amp;", "&"))
    assert "a@example.org" in page.locator("main").inner_text()
    assert "b@example.org" not in page.content()
    page.get_by_label("delegation visits").uncheck()
    page.get_by_label("defense treaties").uncheck()
    page.get_by_label("Cadence").select_option("weekly")
    page.get_by_label("Day").select_option("fri")
    page.get_by_label("Time", exact=True).fill("09:30")
    page.get_by_label("Time zone").select_option("Asia/Seoul")
    page.get_by_label("From").fill("23:00")
    page.get_by_label("To").fill("06:30")
    shot(page, "preferences")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "Saved" in page.locator("main").inner_text()
    assert page.get_by_label("anniversaries").is_checked()
    assert not page.get_by_label("delegation visits").is_checked()
    assert page.get_by_label("Cadence").input_value() == "weekly"
    context.close()
    assert problems == []

    with session_scope(site.engine) as session:
        row = store.get_preference(session, "desk", "a@example.org")
        assert row is not None
        assert (row.watchlists, row.schedule, row.timezone, row.quiet_hours) == (
            '["anniversaries"]', "weekly fri 09:30", "Asia/Seoul", "23:00-06:30")
        assert store.get_preference(session, "desk", "b@example.org") is None
    ctx.close()
