"""OPML import on the feeds page against a real server: the same import and policy as ``monitor feeds import``."""

from __future__ import annotations

import httpx

from monitor import store
from monitor.db import session_scope
from tests.web.conftest import Story, Web, form_csrf

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Desk feeds</title></head><body>
  <outline text="Korea" title="Korea">
    <outline type="rss" text="New wire" xmlUrl="https://new.example.org/rss"/>
    <outline type="rss" text="Known wire" xmlUrl="https://wire.example.org/rss"/>
    <outline type="rss" text="&lt;script&gt;alert(1)&lt;/script&gt;" xmlUrl="https://hostile.example.org/rss"/>
  </outline>
  <outline type="rss" text="Loopback" xmlUrl="http://127.0.0.1:8080/admin"/>
  <outline type="rss" text="Local file" xmlUrl="file:///etc/passwd"/>
</body></opml>
"""


def _upload(client: httpx.Client, csrf: str | None, data: bytes, name: str = "feeds.opml") -> httpx.Response:
    fields = {"csrf": csrf} if csrf is not None else {}
    return client.post("/feeds/import", data=fields, files={"file": (name, data, "text/x-opml")})


def test_an_opml_upload_adds_new_feeds_and_says_what_was_present_or_refused(web: Web) -> None:
    web.seed([Story(title="Already here", feed="https://wire.example.org/rss")])
    client = web.logged_in()
    csrf = form_csrf(client.get("/feeds").text)
    response = _upload(client, csrf, OPML)
    assert response.status_code == 200, response.text
    text = response.text
    assert "Imported 2 feeds</strong>; 1 already present, 2 refused" in text
    assert "<li>https://new.example.org/rss</li>" in text and "<li>https://wire.example.org/rss</li>" in text
    assert "127.0.0.1" in text and "file:///etc/passwd" in text  # refused, each with its reason
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the title as text
    with session_scope(web.engine) as session:
        feeds = {f.url: f for f in store.list_feeds(session)}
    assert set(feeds) == {"https://wire.example.org/rss", "https://new.example.org/rss",
                          "https://hostile.example.org/rss"}
    assert feeds["https://new.example.org/rss"].category == "Korea"
    again = _upload(client, csrf, OPML)
    assert "Imported 0 feeds</strong>; 3 already present, 2 refused" in again.text


def test_an_opml_upload_without_the_csrf_token_changes_nothing(web: Web) -> None:
    client = web.logged_in()
    for csrf in (None, "forged"):
        assert _upload(client, csrf, OPML).status_code == 403
    assert _upload(web.client(), None, OPML).status_code == 303
    with session_scope(web.engine) as session:
        assert store.list_feeds(session) == []


def test_a_broken_or_oversized_opml_file_is_refused_with_the_reason(web: Web) -> None:
    client = web.logged_in()
    csrf = form_csrf(client.get("/feeds").text)
    broken = _upload(client, csrf, b"<opml><body>\n<outline xmlUrl='https://a.example.org/rss'>\n</body></opml>")
    assert broken.status_code == 400
    assert "feeds.opml:3: not well-formed XML" in broken.text
    entity = _upload(client, csrf, b'<!DOCTYPE opml [<!ENTITY x "y">]><opml><body/></opml>')
    assert entity.status_code == 400
    huge = _upload(client, csrf, b"<opml><body>" + b" " * (2 * 1024 * 1024) + b"</body></opml>")
    assert huge.status_code == 413
    empty = _upload(client, csrf, b"")
    assert empty.status_code == 400 and "choose an OPML file" in empty.text
    with session_scope(web.engine) as session:
        assert store.list_feeds(session) == []
