"""The subscriber preferences page on a real uvicorn (SQLite and PostgreSQL), and a digest's link into it."""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor import store
from monitor.config import FeedConfig, SmtpConfig, SubscriptionConfig
from monitor.db import session_scope
from monitor.deliver.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from monitor.pipeline import delivery_cycle, open_context, utcnow
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, UNSUBSCRIBE_SECRET, Story, Web, web_server, web_settings

FEED = "https://wire.example.org/rss"
HOSTILE = "<script>alert(1)</script>"
DESK = SubscriptionConfig(name="desk", watchlists=["delegation_visits", "anniversaries", HOSTILE],
                          email=["a@example.org", "b@example.org"], schedule="immediate")


@pytest.fixture
def site(db_url: str) -> Iterator[Web]:
    yield from web_server(web_settings(db_url, subscriptions=[DESK]))


def link(address: str = "a@example.org", *, purpose: str = PREFERENCES, subscription: str = "desk",
         made: Any = None) -> str:
    token = make_token(UNSUBSCRIBE_SECRET.encode(), subscription, address, purpose=purpose, now=made or utcnow())
    return f"/preferences/{token}"


def form_value(html: str) -> str:
    found = re.search(r'name="form" value="([^"]+)"', html)
    assert found, "no form value on the page"
    return found.group(1)


def stored(site: Web, address: str = "a@example.org") -> Any:
    with session_scope(site.engine) as session:
        return store.get_preference(session, "desk", address)


def test_the_page_shows_this_address_and_its_granted_lists_escaped(site: Web) -> None:
    page = site.client().get(link())
    assert page.status_code == 200 and "a@example.org" in page.text
    assert "b@example.org" not in page.text  # no other subscriber's data
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert UNSUBSCRIBE_SECRET not in page.text


def test_saving_stores_the_choices_for_this_address_only(site: Web) -> None:
    client, url = site.client(), link()
    page = client.get(url)
    saved = client.post(url, data={
        "form": form_value(page.text), "watchlist": ["anniversaries", "not_granted"], "cadence": "weekly",
        "day": "tue", "at": "07:30", "timezone": "Asia/Seoul", "quiet_from": "23:00", "quiet_to": "06:00"})
    assert saved.status_code == 200 and "Saved" in saved.text
    row = stored(site)
    assert (row.watchlists, row.schedule, row.timezone, row.quiet_hours) == (
        '["anniversaries"]', "weekly tue 07:30", "Asia/Seoul", "23:00-06:00")  # a list not granted is ignored
    assert stored(site, "b@example.org") is None
    again = client.get(link())
    assert re.search(r'value="anniversaries" checked', again.text)
    assert not re.search(r'value="delegation_visits" checked', again.text)
    assert re.search(r'<option value="Asia/Seoul" selected>', again.text)


def test_refused_links_and_forms_change_nothing(site: Web) -> None:
    client, url = site.client(), link()
    good = client.get(url).text
    refused = {
        "an unsubscribe link": link(purpose=UNSUBSCRIBE),
        "an expired link": link(made=utcnow() - timedelta(days=61)),
        "an address the subscription does not list": link("c@example.org"),
        "an unknown subscription": link(subscription="other"),
        "a forged link": link().replace("v2.", "v2.A"),
        "the first unsubscribe shape": "/preferences/" + make_token(UNSUBSCRIBE_SECRET.encode(), "desk",
                                                                    "a@example.org"),
    }
    for why, bad in refused.items():
        assert client.get(bad).status_code == 404, why
        assert client.post(bad, data={"form": form_value(good), "watchlist": "anniversaries"}).status_code == 404, why
    no_form = client.post(url, data={"watchlist": "anniversaries"})
    other_form = client.post(url, data={"form": form_value(client.get(link("b@example.org")).text),
                                           "watchlist": "anniversaries"})
    assert (no_form.status_code, other_form.status_code) == (403, 403)
    assert stored(site) is None


@pytest.mark.parametrize("values", [
    {"watchlist": []},
    {"watchlist": ["not_granted"]},
    {"cadence": "daily", "at": "25:00"},
    {"cadence": "every minute"},
    {"timezone": "Mars/Olympus"},
    {"quiet_from": "22:00", "quiet_to": ""},
])
def test_bad_input_is_one_clear_message_and_nothing_is_saved(site: Web, values: dict[str, Any]) -> None:
    client, url = site.client(), link()
    data = {"form": form_value(client.get(url).text), "watchlist": ["anniversaries"], **values}
    answer = client.post(url, data=data)
    assert answer.status_code == 400 and answer.text.count('class="error"') == 1
    assert stored(site) is None


def test_a_digest_link_changes_what_the_next_cycles_send_to_that_address_only(
    site: Web, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = web_settings(
        site.settings.database_url, outbox_dir=tmp_path / "outbox", base_url=site.url,
        feeds=[FeedConfig(url=FEED, name="Wire")],
        subscriptions=[DESK.model_copy(update={"watchlists": ["delegation_visits", "anniversaries"]})],
        smtp=SmtpConfig.model_validate({"host": smtp_server.host, "port": smtp_server.port,
                                        "from": "monitor@example.org", "security": "none"}),
    )
    ctx = open_context(settings, now=NOW - timedelta(days=1))
    site.seed([Story(title="Zhao Leji arrives in Pyongyang", feed=FEED)])
    assert delivery_cycle(ctx, now=utcnow()).sent == 2  # one message per address, each with its own links
    first = {tuple(m.rcpt_tos): email.message_from_bytes(m.content, policy=default) for m in smtp_server.messages}
    assert set(first) == {("a@example.org",), ("b@example.org",)}
    mine = first[("a@example.org",)]
    text = mine.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"(http://\S+/preferences/\S+)", text)
    assert found and found.group(1).startswith(site.url)
    html = mine.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert found.group(1) in html
    assert "/unsubscribe/" in str(mine["List-Unsubscribe"])

    client = site.client()
    page = client.get(found.group(1))
    assert page.status_code == 200 and "a@example.org" in page.text
    saved = client.post(found.group(1), data={"form": form_value(page.text), "watchlist": "anniversaries",
                                               "cadence": "weekly", "day": "mon", "at": "08:00",
                                               "timezone": "Asia/Seoul"})
    assert saved.status_code == 200

    site.seed([Story(title="Choe Son Hui arrives in Moscow", feed=FEED),
               Story(title="Pyongyang marks the anniversary of the friendship treaty", feed=FEED,
                     watchlist="anniversaries")])
    assert delivery_cycle(ctx, now=utcnow()).sent == 1  # b at once as before; a waits for Monday 08:00 KST
    b_message = smtp_server.messages[-1]
    assert b_message.rcpt_tos == ["b@example.org"]
    assert b"Choe Son Hui" in b_message.content and b"friendship treaty" in b_message.content

    assert delivery_cycle(ctx, now=utcnow(), flush=True).sent == 1  # a's digest, its chosen list only
    a_message = smtp_server.messages[-1]
    assert a_message.rcpt_tos == ["a@example.org"]
    assert b"friendship treaty" in a_message.content and b"Choe Son Hui" not in a_message.content
    assert len(smtp_server.messages) == 4
    ctx.close()


def test_requests_are_rate_limited(site: Web) -> None:
    client = httpx.Client(base_url=site.url, timeout=30)
    site.clients.append(client)
    codes = [client.get(link("c@example.org")).status_code for _ in range(31)]
    assert codes[:30] == [404] * 30 and codes[30] == 429


def test_the_link_token_stays_out_of_the_request_log(site: Web, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor.web")
    url = link()
    assert site.client().get(url).status_code == 200
    assert "GET /preferences/… 200" in caplog.text
    assert url.rsplit("/", 1)[1] not in caplog.text
