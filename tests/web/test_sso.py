"""The reverse-proxy SSO header mode, served as ``monitor web`` serves it (``serve_app``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from sqlmodel import select

from monitor.db import session_scope
from monitor.models import Feed
from tests.web.conftest import Story, Web, form_csrf, web_server, web_settings

HEADER = "X-Forwarded-User"


def _gated(db_url: str, trusted: list[str]) -> Iterator[Web]:
    settings = web_settings(db_url, web_auth_header=HEADER, web_trusted_proxies=trusted)
    yield from web_server(settings, gated=True)


@pytest.fixture
def behind_proxy(db_url: str) -> Iterator[Web]:
    """The test client connects from 127.0.0.1, a trusted proxy."""
    yield from _gated(db_url, ["127.0.0.1/32"])


@pytest.fixture
def not_behind_proxy(db_url: str) -> Iterator[Web]:
    """Only 10.0.0.0/8 is trusted: the test client (127.0.0.1) is a stranger."""
    yield from _gated(db_url, ["10.0.0.0/8"])


def test_a_trusted_proxy_names_the_operator(behind_proxy: Web) -> None:
    web = behind_proxy
    web.operator("alice")
    web.seed([Story(title="Choe Son Hui in Moscow")])
    client = web.client(headers={HEADER: "alice", "X-Forwarded-For": "203.0.113.7"})
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert "Choe Son Hui in Moscow" in page.text and "alice" in page.text
    # Forms work too: the CSRF token of a proxy-named operator is stable and checked.
    csrf = form_csrf(client.get("/feeds").text)
    added = client.post("/feeds", data={"url": "https://news.example.org/rss", "csrf": csrf})
    assert added.status_code == 303, added.text
    assert client.post("/feeds", data={"url": "https://other.example.org/rss", "csrf": "forged"}).status_code == 403
    with session_scope(web.engine) as session:
        assert sorted(session.exec(select(Feed.url))) == ["https://news.example.org/rss",
                                                            "https://wire.example.org/rss"]


def test_a_name_the_operators_table_does_not_know_is_refused(behind_proxy: Web) -> None:
    behind_proxy.operator("alice")
    response = behind_proxy.client(headers={HEADER: "mallory"}).get("/")
    assert response.status_code == 403
    assert "mallory" in response.text and "monitor web passwd" in response.text


def test_without_the_header_an_operator_logs_in_as_usual(behind_proxy: Web) -> None:
    response = behind_proxy.client().get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_the_header_from_an_untrusted_address_is_ignored(not_behind_proxy: Web) -> None:
    not_behind_proxy.operator("alice")
    client = not_behind_proxy.client(headers={HEADER: "alice"})
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/feeds").status_code == 303


def test_the_header_mode_needs_trusted_proxies(db_url: str) -> None:
    with pytest.raises(ValidationError, match="web_trusted_proxies"):
        web_settings(db_url, web_auth_header=HEADER)
    with pytest.raises(ValidationError, match="not a network"):
        web_settings(db_url, web_auth_header=HEADER, web_trusted_proxies=["localhost"])
