"""Atom feeds of hits, read back by a real feed parser."""

from __future__ import annotations

import feedparser

from tests.web.conftest import Story, Web
from tests.web.test_pages import HOSTILE


def test_a_watchlists_hits_read_back_as_valid_atom(web: Web) -> None:
    web.seed([
        Story(title="Zhao Leji arrives in Pyongyang", link="https://wire.example.org/a/1",
              summary="Talks with Kim Jong Un.",
              evidence=[{"kind": "actor", "field": "title", "start": 0, "end": 9, "text": "Zhao Leji"}]),
        HOSTILE,
        Story(title="Control\x0bcharacters\x1f in a title", link="https://wire.example.org/a/3"),
        Story(title="Not this watchlist", watchlist="treaties"),
    ])
    token = web.token(read_only=True)
    response = web.client().get("/feeds/delegation_visits.atom", params={"token": token})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    titles = [e.title for e in parsed.entries]
    assert titles == ["Zhao Leji arrives in Pyongyang", HOSTILE.title, "Controlcharacters in a title"]
    first = parsed.entries[0]
    assert first.link == "https://wire.example.org/a/1"
    assert "actor: Zhao Leji" in first.content[0].value
    assert [link.get("href") for link in parsed.entries[1].get("links", [])] == []  # javascript: link dropped
    assert token not in response.text


def test_atom_feeds_need_a_token(web: Web) -> None:
    client = web.client()
    assert client.get("/feeds/delegation_visits.atom").status_code == 401
    assert client.get("/feeds/delegation_visits.atom", params={"token": "mon_forged"}).status_code == 401
