"""A real uvicorn server on 127.0.0.1 serving ``monitor web`` over a migrated database (SQLite or PostgreSQL)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from monitor import operations, store
from monitor.config import Settings
from monitor.db import make_engine, session_scope
from monitor.domain import Item, Match

ROOT = Path(__file__).resolve().parents[2]
UNSUBSCRIBE_SECRET = "unsubscribe-test-secret"
WEB_SECRET = "web-test-secret"
PASSWORD = "correct horse battery"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Story:
    title: str
    summary: str = ""
    link: str | None = None
    feed: str = "https://wire.example.org/rss"
    watchlist: str | None = "delegation_visits"
    evidence: Sequence[dict[str, Any]] = ()
    story_of: int | None = None  # index of an earlier story this one retells


@dataclass
class Web:
    url: str
    engine: Engine
    settings: Settings
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    def token(self, name: str = "test", *, read_only: bool = False) -> str:
        with session_scope(self.engine) as session:
            return operations.create_api_token(session, name, read_only=read_only, now=NOW)

    def api(self, *, read_only: bool = False) -> httpx.Client:
        token = self.token(f"t{len(self.clients)}", read_only=read_only)
        return self.client(headers={"Authorization": f"Bearer {token}"})

    def operator(self, name: str = "admin", password: str = PASSWORD) -> None:
        with session_scope(self.engine) as session:
            operations.set_operator_password(session, name, password, now=NOW)

    def logged_in(self) -> httpx.Client:
        """A client with an operator's session cookie, obtained through the login form."""
        self.operator()
        client = self.client()
        csrf = form_csrf(client.get("/login").text)
        response = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": csrf, "next": "/"})
        assert response.status_code == 303, response.text
        return client

    def seed(self, stories: Sequence[Story], *, hours_apart: float = 1.0) -> list[int]:
        """Store items (and their hits); returns the item ids. The first story is the newest."""
        ids: list[int] = []
        with session_scope(self.engine) as session:
            feeds = {f.url: f.id for f in store.list_feeds(session)}
            for url in {s.feed for s in stories} - feeds.keys():
                store.add_imported_feeds(session, [(url, url.split("/")[2], None)], now=NOW, interval=900,
                                         alert_window=86400)
            feeds = {f.url: f.id for f in store.list_feeds(session)}
            for n, s in reversed(list(enumerate(stories))):  # oldest first: newest gets the highest id
                when = NOW - timedelta(hours=hours_apart * n)
                item = Item(fingerprint=f"fp:{s.feed}:{s.title}:{n}", title=s.title, link=s.link, guid=None,
                            summary=s.summary, content="", published_at=when, author=None, feed_url=s.feed,
                            fetched_at=when)
                [(item_id, _item, _ok)] = store.insert_new_items(session, feeds[s.feed], [item], alertable=[True])
                ids.append(item_id)
                if s.watchlist:
                    store.insert_hits(session, [(item_id, Match(s.watchlist, "1", 2.0, tuple(s.evidence)))],
                                      now=when)
            ids.reverse()
            for n, s in enumerate(stories):
                if s.story_of is not None:
                    from monitor.models import Item as ItemRow

                    for row_id, story in ((ids[s.story_of], ids[s.story_of]), (ids[n], ids[s.story_of])):
                        row = session.get(ItemRow, row_id)
                        assert row is not None
                        row.story_id = story
                        session.add(row)
        return ids


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def serve(app: Any, **config: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                                           lifespan="off", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def web_settings(db_url: str, **values: Any) -> Settings:
    base: dict[str, Any] = dict(database_url=db_url, watchlists_dir=ROOT / "watchlists",
                                unsubscribe_secret=UNSUBSCRIBE_SECRET, web_secret=WEB_SECRET)
    base.update(values)
    return Settings(**base)


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    yield from web_server(web_settings(db_url))


def web_server(settings: Settings, *, gated: bool = False) -> Iterator[Web]:
    """Serve ``settings``' database; ``gated``: as ``monitor web`` does (``serve_app``: forwarded headers and
    the SSO gate inside the application, uvicorn's own forwarded-header handling off)."""
    from monitor.web.app import create_app, serve_app

    engine = make_engine(settings.database_url)
    if gated:
        server, thread, url = serve(serve_app(settings, engine), proxy_headers=False)
    else:
        server, thread, url = serve(create_app(settings, engine))
    state = Web(url=url, engine=engine, settings=settings)
    try:
        yield state
    finally:
        for client in state.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
