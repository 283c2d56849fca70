"""Operator pages against a real server: login, CSRF, hostile feed text, filters, search, feeds, retries."""

from __future__ import annotations

import time
from html.parser import HTMLParser

from monitor import operations, store
from monitor.db import session_scope
from monitor.web.security import SESSION_COOKIE, SessionCodec
from tests.web.conftest import PASSWORD, WEB_SECRET, Story, Web, form_csrf
from tests.web.test_api import _dead_delivery

HOSTILE = Story(
    title='<script>alert("title")</script> Kim Jong Un <img src=x onerror=alert(1)> meets Xi',
    summary='Delegation "arrives" <b onclick="steal()">now</b> & talks',
    link="javascript:alert(document.cookie)",
    evidence=[{"kind": "actor", "field": "title", "start": 32, "end": 43, "text": "Kim Jong Un", "actor": "kim"}],
)


def test_pages_need_a_login_and_send_back_where_the_operator_was_going(web: Web) -> None:
    client = web.client()
    for path in ("/", "/search?q=x", "/feeds", "/deliveries"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    web.operator()
    login = client.get("/login?next=/feeds")
    response = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": form_csrf(login.text),
                                           "next": "/feeds"})
    assert (response.status_code, response.headers["location"]) == (303, "/feeds")
    assert client.get("/feeds").status_code == 200


def test_login_refuses_wrong_passwords_missing_csrf_and_foreign_redirects(web: Web) -> None:
    web.operator()
    client = web.client()
    csrf = form_csrf(client.get("/login").text)
    wrong = client.post("/login", data={"name": "admin", "password": "not the password", "csrf": csrf})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    nobody = client.post("/login", data={"name": "nobody", "password": PASSWORD, "csrf": csrf})
    assert nobody.status_code == 401
    no_csrf = client.post("/login", data={"name": "admin", "password": PASSWORD})
    assert no_csrf.status_code == 403
    elsewhere = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": csrf,
                                            "next": "//evil.example.org/"})
    assert (elsewhere.status_code, elsewhere.headers["location"]) == (303, "/")


def test_login_attempts_are_rate_limited(web: Web) -> None:
    web.operator()
    client = web.client()
    csrf = form_csrf(client.get("/login").text)
    codes = [client.post("/login", data={"name": "admin", "password": f"guess {n}", "csrf": csrf}).status_code
             for n in range(11)]
    assert codes == [401] * 10 + [429]
    right = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": csrf})
    assert right.status_code == 429  # even the right password waits out the window


def test_forms_without_the_sessions_csrf_token_are_refused(web: Web) -> None:
    dead = _dead_delivery(web)
    client = web.logged_in()
    csrf = form_csrf(client.get("/deliveries").text)
    for data in ({}, {"csrf": "forged"}, {"csrf": csrf + "x"}):
        assert client.post(f"/deliveries/{dead}/retry", data=data).status_code == 403
        assert client.post("/feeds", data={"url": "https://example.org/rss", **data}).status_code == 403
    with session_scope(web.engine) as session:
        assert [d.status for d in store.list_deliveries(session)] == ["dead"]
        assert store.list_feeds(session) == []
    # Another operator's token does not pass either: tokens belong to one session.
    other = web.logged_in()
    assert other.post(f"/deliveries/{dead}/retry", data={"csrf": csrf}).status_code == 403


def test_an_expired_or_forged_session_is_refused(web: Web) -> None:
    codec = SessionCodec(WEB_SECRET.encode(), 3600)
    expired = codec.dump(codec.new("admin", now=time.time() - 7200))
    forged = SessionCodec(b"another secret", 3600).dump(codec.new("admin"))
    for cookie in (expired, forged, "garbage", codec.dump(codec.new("admin"))[:-2]):
        client = web.client(cookies={SESSION_COOKIE: cookie})
        assert client.get("/").status_code == 303
    assert web.client(cookies={SESSION_COOKIE: codec.dump(codec.new("admin"))}).get("/").status_code == 200


class _Tags(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_hostile_feed_text_is_rendered_inert(web: Web) -> None:
    web.seed([HOSTILE])
    client = web.logged_in()
    for page in (client.get("/").text, client.get("/search", params={"q": "Kim Jong"}).text):
        tags = elements(page)
        assert [t for t, _a in tags if t in ("script", "img", "b", "iframe")] == []
        assert not any(name.startswith("on") for _t, attrs in tags for name in attrs)
        hrefs = [attrs.get("href") or "" for _t, attrs in tags]
        assert not any(h.lower().startswith("javascript:") for h in hrefs)
        assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in page  # shown as text, not run
    assert "<mark>Kim Jong Un</mark>" in client.get("/").text


def test_hits_are_filtered_on_the_page(web: Web) -> None:
    web.seed([
        Story(title="Kim Jong Un receives Chinese delegation", watchlist="delegation_visits"),
        Story(title="김정은, 중국 대표단 접견", watchlist="delegation_visits"),
        Story(title="Пхеньян и Москва подписали договор", watchlist="treaties"),
    ])
    client = web.logged_in()
    page = client.get("/", params={"lang": "ko"}).text
    assert "김정은, 중국 대표단 접견" in page and "Kim Jong Un receives" not in page
    page = client.get("/", params={"watchlist": "treaties"}).text
    assert "Пхеньян" in page and "김정은" not in page
    assert client.get("/", params={"since": "yesterday"}).status_code == 400


def test_the_search_page_finds_korean_and_russian_words(web: Web) -> None:
    web.seed([Story(title="김정은 위원장, 평양에서 중국 대표단 접견", watchlist=None),
              Story(title="Визит российской делегации в Пхеньян", watchlist=None)])
    client = web.logged_in()
    korean = client.get("/search", params={"q": "평양"}).text
    assert "<mark>평양</mark>" in korean and "Визит" not in korean
    russian = client.get("/search", params={"q": "пхеньян"}).text
    assert "<mark>Пхеньян</mark>" in russian and "김정은 위원장" not in russian


def test_feeds_are_added_and_reset_from_the_feeds_page(web: Web) -> None:
    client = web.logged_in()
    csrf = form_csrf(client.get("/feeds").text)
    added = client.post("/feeds", data={"url": "https://news.example.org/rss", "name": "News", "csrf": csrf})
    assert (added.status_code, added.headers["location"]) == (303, "/feeds?done=feed-added")
    page = client.get("/feeds?done=feed-added").text
    assert "Feed added" in page and "https://news.example.org/rss" in page
    refused = client.post("/feeds", data={"url": "javascript:alert(1)", "csrf": csrf})
    assert refused.status_code == 400 and "unsupported URL scheme" in refused.text
    with session_scope(web.engine) as session:
        [feed] = store.list_feeds(session)
    assert client.post(f"/feeds/{feed.id}/pause", data={"csrf": csrf}).status_code == 303
    assert client.post(f"/feeds/{feed.id}/reset", data={"csrf": csrf}).status_code == 303
    with session_scope(web.engine) as session:
        assert [f.active for f in store.list_feeds(session)] == [True]


def test_a_dead_delivery_is_retried_from_the_deliveries_page(web: Web) -> None:
    dead = _dead_delivery(web)
    client = web.logged_in()
    page = client.get("/deliveries", params={"status": "dead"}).text
    assert "550 mailbox unavailable" in page
    response = client.post(f"/deliveries/{dead}/retry", data={"csrf": form_csrf(page)})
    assert response.status_code == 303
    with session_scope(web.engine) as session:
        assert [d.status for d in store.list_deliveries(session)] == ["pending"]


def test_logging_out_ends_the_session(web: Web) -> None:
    client = web.logged_in()
    csrf = form_csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/").status_code == 303


def test_the_first_page_tells_a_new_operator_what_to_do(web: Web) -> None:
    client = web.client()
    assert "monitor web passwd admin" in client.get("/login").text
    with session_scope(web.engine) as session:
        assert not operations.has_operators(session)
    client = web.logged_in()
    assert "No feeds yet" in client.get("/").text
