"""The JSON API against a real server: auth, pagination, filters, search in any script, changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor import store
from monitor.db import session_scope
from tests.web.conftest import NOW, Story, Web

API_READS = ["/api/v1/hits", "/api/v1/items?q=Pyongyang", "/api/v1/feeds", "/api/v1/deliveries",
             "/api/v1/watchlists"]


@pytest.mark.parametrize("header", [None, "Bearer mon_not-a-real-token", "Basic YWRtaW46YWRtaW4=", "Bearer mon_"])
def test_the_api_refuses_calls_without_a_valid_token(web: Web, header: str | None) -> None:
    client = web.client(headers={"Authorization": header} if header else {})
    web.token()  # a token exists; the caller just does not have it
    for path in API_READS:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/feeds", json={"url": "https://example.org/rss"}).status_code == 401
    assert client.post("/api/v1/deliveries/1/retry").status_code == 401


def test_a_read_only_token_reads_and_cannot_change_anything(web: Web) -> None:
    client = web.api(read_only=True)
    for path in API_READS:
        assert client.get(path).status_code == 200, path
    refused = client.post("/api/v1/feeds", json={"url": "https://example.org/rss"})
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]
    with session_scope(web.engine) as session:
        assert store.list_feeds(session) == []


def test_a_revoked_token_is_refused(web: Web) -> None:
    from monitor import operations

    client = web.api()
    assert client.get("/api/v1/hits").status_code == 200
    with session_scope(web.engine) as session:
        for row in operations.list_api_tokens(session):
            operations.revoke_api_token(session, row.name)
    assert client.get("/api/v1/hits").status_code == 401


def test_hits_come_newest_first_in_pages_that_cover_every_hit_once(web: Web) -> None:
    web.seed([Story(title=f"Delegation visit {n}") for n in range(120)], hours_apart=0.1)
    client = web.api()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = client.get("/api/v1/hits", params={"limit": 50, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        body = response.json()
        seen += [h["title"] for h in body["hits"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"Delegation visit {n}" for n in range(120)]


def test_hits_filter_by_watchlist_feed_time_and_language(web: Web) -> None:
    web.seed([
        Story(title="Kim Jong Un receives Chinese delegation", watchlist="delegation_visits"),
        Story(title="김정은, 중국 대표단 접견", watchlist="delegation_visits", feed="https://kr.example.org/rss"),
        Story(title="Пхеньян и Москва подписали договор", watchlist="treaties"),
        Story(title="朝鲜与中国庆祝建交七十五周年", watchlist="anniversaries", feed="https://cn.example.org/rss"),
    ], hours_apart=24)
    client = web.api()

    def titles(**params: str) -> list[str]:
        response = client.get("/api/v1/hits", params=params)
        assert response.status_code == 200, response.text
        return [h["title"] for h in response.json()["hits"]]

    assert titles(watchlist="delegation_visits") == ["Kim Jong Un receives Chinese delegation",
                                                      "김정은, 중국 대표단 접견"]
    assert titles(lang="ko") == ["김정은, 중국 대표단 접견"]
    assert titles(lang="ru") == ["Пхеньян и Москва подписали договор"]
    assert titles(lang="zh") == ["朝鲜与中国庆祝建交七十五周年"]
    assert titles(feed="kr.example.org") == ["김정은, 중국 대표단 접견"]
    since = (NOW - timedelta(hours=30)).isoformat()
    until = (NOW - timedelta(hours=12)).isoformat()
    assert titles(since=since, until=until) == ["김정은, 중국 대표단 접견"]
    assert client.get("/api/v1/hits", params={"since": "2026-01-01T00:00:00"}).status_code == 400  # no zone
    assert client.get("/api/v1/hits", params={"cursor": "garbage!"}).status_code == 400


def test_a_hit_names_the_other_feeds_that_reported_its_story(web: Web) -> None:
    web.seed([
        Story(title="Zhao Leji arrives in Pyongyang", feed="https://b.example.org/rss", story_of=1),
        Story(title="Zhao Leji arrives in Pyongyang for talks", feed="https://a.example.org/rss"),
    ])
    hits = web.api().get("/api/v1/hits").json()["hits"]
    assert hits[0]["also_reported_by"] == ["a.example.org"]
    assert hits[1]["also_reported_by"] == ["b.example.org"]


@pytest.mark.parametrize(("term", "expected"), [
    ("김정은", "김정은 위원장, 평양에서 중국 대표단 접견"),  # Korean
    ("평양", "김정은 위원장, 평양에서 중국 대표단 접견"),  # a two-syllable Korean word (shorter than a trigram)
    ("朝鲜半岛", "中方愿为朝鲜半岛和平稳定发挥建设性作用"),  # Chinese
    ("пхеньян", "Визит российской делегации в Пхеньян"),  # Russian, other case than stored
    ("delegation pyongyang", "Russian delegation lands in Pyongyang"),  # every word must occur
])
def test_search_finds_items_in_korean_chinese_and_russian(web: Web, term: str, expected: str) -> None:
    web.seed([
        Story(title="김정은 위원장, 평양에서 중국 대표단 접견", watchlist=None),
        Story(title="中方愿为朝鲜半岛和平稳定发挥建设性作用", watchlist=None),
        Story(title="Визит российской делегации в Пхеньян", watchlist=None),
        Story(title="Russian delegation lands in Pyongyang", watchlist=None),
        Story(title="Weather in Seoul", summary="Rain and delegation of duties", watchlist=None),
    ])
    response = web.api().get("/api/v1/items", params={"q": term})
    assert response.status_code == 200
    assert [i["title"] for i in response.json()["items"]] == [expected]


@pytest.mark.parametrize("term", ["Pyong\x00yang", "\x00평양\x00", "Pyongyang\x1b"])
def test_search_with_control_characters_is_answered_not_a_server_error(web: Web, term: str) -> None:
    # A NUL ends an FTS5 query string (SQLite) and is refused in a PostgreSQL parameter; stored text
    # holds no control characters, so they separate words as spaces do.
    web.seed([Story(title="Russian delegation lands in Pyongyang", watchlist=None),
              Story(title="김정은 위원장, 평양에서 중국 대표단 접견", watchlist=None)])
    response = web.api().get("/api/v1/items", params={"q": term})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 1


def test_search_pages_through_many_matches(web: Web) -> None:
    web.seed([Story(title=f"Пхеньян сводка {n}", watchlist=None) for n in range(30)], hours_apart=0.1)
    client = web.api()
    first = client.get("/api/v1/items", params={"q": "Пхеньян", "limit": 20}).json()
    second = client.get("/api/v1/items", params={"q": "Пхеньян", "limit": 20, "cursor": first["next_cursor"]}).json()
    titles = [i["title"] for i in first["items"] + second["items"]]
    assert titles == [f"Пхеньян сводка {n}" for n in range(30)]
    assert second["next_cursor"] is None


def test_feeds_are_added_paused_and_reset(web: Web) -> None:
    client = web.api()
    added = client.post("/api/v1/feeds", json={"url": "https://news.example.org/rss", "name": "News"})
    assert added.status_code == 201, added.text
    feed = added.json()
    assert (feed["name"], feed["active"], feed["origin"]) == ("News", True, "web")
    again = client.post("/api/v1/feeds", json={"url": "https://news.example.org/rss"})
    assert again.status_code == 400 and "already watched" in again.json()["detail"]
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "http://127.0.0.1:5432/", "not a url"):
        refused = client.post("/api/v1/feeds", json={"url": bad})
        assert refused.status_code == 400, bad
    paused = client.delete(f"/api/v1/feeds/{feed['id']}")
    assert paused.status_code == 200 and paused.json()["active"] is False
    reset = client.post(f"/api/v1/feeds/{feed['id']}/reset")
    assert reset.status_code == 200 and reset.json()["active"] is True
    assert client.post("/api/v1/feeds/9999/reset").status_code == 404
    assert client.post(f"/api/v1/feeds/{2**80}/reset").status_code == 422  # beyond any row id: refused, no 500
    assert [f["url"] for f in client.get("/api/v1/feeds").json()] == ["https://news.example.org/rss"]


def test_a_dead_delivery_is_listed_and_retried(web: Web) -> None:
    dead = _dead_delivery(web)
    client = web.api()
    listed = client.get("/api/v1/deliveries", params={"status": "dead"}).json()["deliveries"]
    assert [(d["id"], d["last_error"]) for d in listed] == [(dead, "550 mailbox unavailable")]
    assert client.get("/api/v1/deliveries", params={"status": "lost"}).status_code == 400
    retried = client.post(f"/api/v1/deliveries/{dead}/retry")
    assert retried.status_code == 200
    assert client.get("/api/v1/deliveries", params={"status": "pending"}).json()["deliveries"][0]["id"] == dead
    assert client.post("/api/v1/deliveries/424242/retry").status_code == 404


def _dead_delivery(web: Web) -> int:
    from monitor.models import Subscription

    with session_scope(web.engine) as session:
        sub = Subscription(name="desk", created_at=NOW)
        session.add(sub)
        session.flush()
        assert sub.id is not None
        delivery = store.enqueue_delivery(session, subscription_id=sub.id, key="msg_dead", transport="email",
                                          subject="3 hits", payload=b"x", recipients='["a@example.org"]',
                                          hit_ids=[], now=NOW)
        store.record_delivery_failure(session, delivery, error="550 mailbox unavailable", next_attempt_at=None)
    return delivery


def test_watchlist_drafts_are_validated_without_being_saved(web: Web) -> None:
    client = web.api(read_only=True)
    current = client.get("/api/v1/watchlists").json()
    assert current["valid"] and "delegation_visits" in current["watchlists"]
    broken = client.post("/api/v1/watchlists/validate", json={"name": "draft", "yaml": "name: draft\nrules: 3\n"})
    assert broken.status_code == 200
    assert broken.json()["valid"] is False
    assert any("draft.yaml" in p for p in broken.json()["problems"])
    assert not (web.settings.watchlists_dir / "draft.yaml").exists()
    assert client.post("/api/v1/watchlists/validate", json={"name": "../x", "yaml": ""}).status_code == 422


def test_the_openapi_document_describes_the_api(web: Web) -> None:
    doc = web.client().get("/api/v1/openapi.json").json()
    assert {"/api/v1/hits", "/api/v1/items", "/api/v1/feeds", "/api/v1/feeds/{feed_id}",
            "/api/v1/deliveries/{delivery_id}/retry", "/api/v1/watchlists/validate"} <= set(doc["paths"])
    assert not any(p.startswith(("/login", "/unsubscribe")) for p in doc["paths"])


def test_search_with_a_short_term_finds_rare_matches_among_many(web: Web) -> None:
    web.seed([Story(title=f"Pyongyang daily {n}" + (" 铁路" if n in (3, 17, 33) else ""), watchlist=None)
              for n in range(40)], hours_apart=0.1)
    client = web.api()
    first = client.get("/api/v1/items", params={"q": "pyongyang 铁路", "limit": 2}).json()
    assert [i["title"] for i in first["items"]] == ["Pyongyang daily 3 铁路", "Pyongyang daily 17 铁路"]
    rest = client.get("/api/v1/items", params={"q": "pyongyang 铁路", "limit": 2, "cursor": first["next_cursor"]})
    assert [i["title"] for i in rest.json()["items"]] == ["Pyongyang daily 33 铁路"]
    assert rest.json()["next_cursor"] is None


def test_an_unknown_query_parameter_is_named_not_ignored(web: Web) -> None:
    response = web.api().get("/api/v1/hits", params={"watchlists": "treaties"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("unknown query parameter 'watchlists'")
