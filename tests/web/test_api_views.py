"""Stories, backtests and subscriptions in the JSON API, and a subscription's Atom feed, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import feedparser
import pytest

from monitor import store
from monitor.config_specs import config_specs
from monitor.db import session_scope
from tests.web.conftest import NOW, Story, Web, web_server, web_settings

SLACK_SECRET = "T000/B000/XXXXsecretpath"
SUBSCRIPTIONS = [
    {"name": "desk", "watchlists": ["delegation_visits"], "schedule": "daily 08:00 Asia/Seoul",
     "email": ["desk@example.org", "chief@example.org"], "timezone": "Asia/Seoul", "quiet_hours": "22:00-07:00"},
    {"name": "chat", "watchlists": ["anniversaries"], "schedule": "immediate",
     "webhook": {"url": f"https://hooks.slack.com/services/{SLACK_SECRET}", "format": "slack"}},
]
DRAFT = """\
kind: watchlist
name: bridges
title: Bridges
version: "d1"
severity: low
threshold: 0.5
rules:
  - id: bridge
    all:
      - phrase: ["railway bridge"]
"""


@pytest.fixture
def subs(db_url: str) -> Iterator[Web]:
    """A server whose config has an email and a webhook subscription, recorded in the database."""
    settings = web_settings(db_url, subscriptions=SUBSCRIPTIONS)
    for state in web_server(settings):
        feeds, subscriptions = config_specs(settings)
        with session_scope(state.engine) as session:
            store.sync_config(session, feeds, subscriptions, now=NOW)
        yield state


# --- stories ------------------------------------------------------------------------------------


def test_stories_list_each_event_once_with_the_feeds_that_also_reported_it(web: Web) -> None:
    ids = web.seed([
        Story(title="Weather in Seoul", feed="https://c.example.org/rss", watchlist=None),
        Story(title="Zhao Leji arrives in Pyongyang", feed="https://b.example.org/rss", story_of=2, watchlist=None),
        Story(title="Zhao Leji arrives in Pyongyang for talks", feed="https://a.example.org/rss"),
    ])
    client = web.api(read_only=True)
    body = client.get("/api/v1/stories").json()
    assert [s["title"] for s in body["stories"]] == ["Weather in Seoul", "Zhao Leji arrives in Pyongyang for talks"]
    lead = body["stories"][1]
    assert lead["story_id"] == ids[2]
    assert lead["report_count"] == 2
    assert [(r["feed"], r["title"]) for r in lead["also_reported_by"]] == [
        ("b.example.org", "Zhao Leji arrives in Pyongyang")]
    assert lead["watchlists"] == ["delegation_visits"]
    assert body["stories"][0]["report_count"] == 1 and body["stories"][0]["watchlists"] == []

    one = client.get(f"/api/v1/stories/{ids[2]}")
    assert one.status_code == 200 and one.json() == lead
    assert client.get(f"/api/v1/stories/{ids[1]}").status_code == 404  # a report that joined a story
    assert client.get("/api/v1/stories/999999").status_code == 404


def test_stories_page_through_the_archive_by_cursor(web: Web) -> None:
    web.seed([Story(title=f"Report {n}", watchlist=None) for n in range(7)], hours_apart=0.1)
    client = web.api()
    seen, cursor = [], None
    while True:
        body = client.get("/api/v1/stories", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [s["title"] for s in body["stories"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Report {n}" for n in range(7)]
    assert client.get("/api/v1/stories", params={"cursor": "nope"}).status_code == 400


# --- backtests ----------------------------------------------------------------------------------


def test_a_draft_watchlist_is_backtested_over_stored_items_by_a_read_only_token(web: Web) -> None:
    web.seed([Story(title="New railway bridge opens at Tumen", watchlist=None),
              Story(title="Railway bridge talks in Dandong", watchlist=None),
              Story(title="Grain prices rise", watchlist=None)])
    client = web.api(read_only=True)
    response = client.post("/api/v1/watchlists/bridges/backtest", json={"yaml": DRAFT, "samples": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["watchlist"], body["version"], body["draft"]) == ("bridges", "d1", True)
    assert (body["scanned"], body["hits"], body["new"], body["gone"]) == (3, 2, 2, 0)
    assert sorted(body["new_titles"]) == ["New railway bridge opens at Tumen", "Railway bridge talks in Dandong"]
    assert body["per_feed"] == {"wire.example.org": 2}
    assert "railway bridge" in body["samples"][0]["explanation"].lower()
    assert not (web.settings.watchlists_dir / "bridges.yaml").exists()  # nothing saved

    capped = client.post("/api/v1/watchlists/bridges/backtest", json={"yaml": DRAFT, "max_items": 1}).json()
    assert (capped["scanned"], capped["hits"]) == (1, 1)  # the newest item only


def test_a_backtest_names_what_is_wrong_and_refuses_oversized_work(web: Web) -> None:
    client = web.api(read_only=True)
    broken = client.post("/api/v1/watchlists/bridges/backtest", json={"yaml": DRAFT.replace("rules:", "rulez:")})
    assert broken.status_code == 400 and "bridges.yaml" in broken.json()["detail"]
    assert client.post("/api/v1/watchlists/no_such_list/backtest", json={}).status_code == 404
    assert client.post("/api/v1/watchlists/bridges/backtest",
                       json={"yaml": DRAFT, "max_items": 10**6}).status_code == 422
    huge = client.post("/api/v1/watchlists/bridges/backtest", json={"yaml": "#" * 300_000})
    assert huge.status_code == 413
    stored = client.post("/api/v1/watchlists/delegation_visits/backtest", json={})
    assert stored.status_code == 200 and stored.json()["draft"] is False


# --- subscriptions ------------------------------------------------------------------------------


def test_subscriptions_show_schedule_pending_hits_and_redacted_webhooks(subs: Web) -> None:
    subs.seed([Story(title="Choe Son Hui in Moscow"), Story(title="Delegation leaves Beijing"),
               Story(title="Liberation day greetings", watchlist="anniversaries")],
              hours_apart=0)  # hits recorded since the subscription began wait for it
    with session_scope(subs.engine) as session:
        store.record_unsubscribe(session, "desk", "chief@example.org", now=NOW)
    client = subs.api(read_only=True)
    response = client.get("/api/v1/subscriptions")
    assert response.status_code == 200, response.text
    assert SLACK_SECRET not in response.text
    desk, chat = response.json()
    assert (desk["name"], desk["channel"], desk["schedule"], desk["quiet_hours"]) == (
        "desk", "email", "daily 08:00 Asia/Seoul", "22:00-07:00")
    assert desk["recipients"] == ["desk@example.org", "chief@example.org"] and desk["unsubscribed"] == 1
    assert (desk["pending_hits"], desk["pending_hits_capped"], desk["pending_deliveries"]) == (2, False, 0)
    assert desk["next_digest_at"] is not None and desk["next_digest_at"].endswith(("23:00:00Z", "23:00:00+00:00"))
    assert (chat["channel"], chat["pending_hits"], chat["next_digest_at"]) == ("webhook", 1, None)
    assert chat["recipients"][0].startswith("https://hooks.slack.com/")
    assert client.get("/api/v1/subscriptions/chat").json() == chat
    assert client.get("/api/v1/subscriptions/nobody").status_code == 404


# --- a subscription's Atom feed -----------------------------------------------------------------


def test_a_subscription_feed_carries_its_hits_and_reads_back_cleanly(subs: Web) -> None:
    subs.seed([
        Story(title="Choe Son Hui <b>in</b> Moscow & talks", link="https://news.example.org/1",
              evidence=[{"kind": "actor", "field": "title", "start": 0, "end": 12, "text": "Choe Son Hui"}]),
        Story(title="Liberation day greetings", watchlist="anniversaries"),
    ])
    client = subs.api(read_only=True)
    desk = client.get("/api/v1/subscriptions/desk").json()
    url = urlsplit(desk["atom_url"])
    assert url.path == "/feeds/subscriptions/desk.atom" and url.query.startswith("token=sub_")
    reader = subs.client()
    response = reader.get(f"{url.path}?{url.query}")
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert [e.title for e in parsed.entries] == ["Choe Son Hui <b>in</b> Moscow & talks"]  # not the other list
    assert "Choe Son Hui" in parsed.entries[0].content[0].value
    assert parsed.entries[0].link == "https://news.example.org/1"

    chat_token = urlsplit(client.get("/api/v1/subscriptions/chat").json()["atom_url"]).query
    assert reader.get(f"/feeds/subscriptions/desk.atom?{chat_token}").status_code == 401  # one feed per token
    assert reader.get("/feeds/subscriptions/desk.atom").status_code == 401
    assert reader.get("/feeds/subscriptions/desk.atom?token=sub_forged").status_code == 401
    api_token = subs.token("reader", read_only=True)
    assert reader.get("/feeds/subscriptions/desk.atom", params={"token": api_token}).status_code == 200
    assert reader.get("/feeds/subscriptions/nobody.atom", params={"token": api_token}).status_code == 404


def test_the_openapi_document_has_the_new_calls(web: Web) -> None:
    doc = web.client().get("/api/v1/openapi.json").json()
    assert {"/api/v1/stories", "/api/v1/stories/{story_id}", "/api/v1/watchlists/{name}/backtest",
            "/api/v1/subscriptions", "/api/v1/subscriptions/{name}"} <= set(doc["paths"])
    assert not any(p.startswith("/feeds/") for p in doc["paths"])


def test_the_new_calls_refuse_callers_without_a_valid_token(subs: Web) -> None:
    subs.token()  # a token exists; these callers do not have it
    for headers in ({}, {"Authorization": "Bearer mon_not-a-real-token"}):
        client = subs.client(headers=headers)
        for path in ("/api/v1/stories", "/api/v1/stories/1", "/api/v1/subscriptions", "/api/v1/subscriptions/desk"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        refused = client.post("/api/v1/watchlists/bridges/backtest", json={"yaml": DRAFT})
        assert refused.status_code == 401
