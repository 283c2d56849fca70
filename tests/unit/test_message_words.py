"""The words messages show: the item's own words for evidence, one spelling, URL headers, discovered feeds."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default

import pytest

from monitor.deliver.digest import spell, surface
from monitor.deliver.email import compose, fold_at_whitespace
from monitor.ingest.discover import discover_feeds


@pytest.mark.parametrize(("text", "start", "end", "recorded", "shown"), [
    ("Russia ratifies mutual defence treaty", 7, 12, "ratif", "ratifies"),
    ("Leaders mark the 75th anniversary of ties", 22, 32, "anniversar", "anniversary"),
    ("Kim Jong Un meets Xi", 0, 11, "Kim Jong Un", "Kim Jong Un"),
    ("DPRK-China treaty", 0, 10, "DPRK-China", "DPRK-China"),
    ("中朝友好合作互助条约签订60周年", 2, 4, "友好", "友好"),  # no spaces: the matched span, not the sentence
    ("", 7, 12, "ratif", "ratif"),  # text pruned since: the record
    ("Russia ratifies", 40, 45, "ratif", "ratif"),  # offsets beyond the text: the record
])
def test_evidence_shows_the_words_of_the_item(text: str, start: int, end: int, recorded: str, shown: str) -> None:
    assert surface({"title": text}, {"field": "title", "start": start, "end": end, "text": recorded}) == shown


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("DPRK–China/Russia defence treaties", "en-US", "DPRK–China/Russia defense treaties"),
    ("defense treaties", "en-GB", "defence treaties"),
    ("Defense Ministry programs", "en-GB", "Defence Ministry programmes"),
    ("DEFENCE", "en-US", "DEFENSE"),
    ("delegation visits", "en-US", "delegation visits"),
])
def test_one_spelling_per_language(text: str, language: str, expected: str) -> None:
    assert spell(text, language) == expected


def test_url_headers_fold_at_whitespace_only_and_read_back_as_urls() -> None:
    long = "<https://monitor.example.org/" + "p" * 60 + "/unsubscribe/" + "t" * 120 + ">"
    two = f"<mailto:unsubscribe@example.org?subject={'s' * 40}>, {long}"
    assert fold_at_whitespace("List-Unsubscribe", long) == f"List-Unsubscribe: {long}".encode()
    assert fold_at_whitespace("List-Unsubscribe", two).split(b"\r\n")[1] == f" {long}".encode()
    raw = compose(subject="Ünïcode subject", text="t", html="<p>h</p>", sender="m@example.org",
                  recipients=["a@example.org"], key="k1", date=datetime(2026, 1, 1, tzinfo=UTC),
                  extra_headers={"List-Unsubscribe": two, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    message = email.message_from_bytes(raw, policy=default)
    assert str(message["List-Unsubscribe"]) == two
    assert str(message["Subject"]) == "Ünïcode subject"
    with pytest.raises(ValueError, match="ASCII"):
        fold_at_whitespace("List-Unsubscribe", "<https://exämple.org/u>")


def test_a_pages_alternate_feeds_are_found_as_absolute_urls() -> None:
    html = (b'<html><head><base href="/news/"><link rel="stylesheet" href="s.css">'
            b'<link rel="alternate" type="application/rss+xml" title="RSS" href="rss.xml">'
            b'<LINK REL="Alternate" TYPE="application/atom+xml" HREF="https://cdn.example.org/atom.xml">'
            b'<link rel="alternate" type="application/rss+xml" href="rss.xml">'
            b'<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            b'<link rel="alternate" hreflang="ko" href="/ko/"></head></html>')
    found = discover_feeds(html, url="https://example.org/index.html")
    assert [(f.url, f.title) for f in found] == [("https://example.org/news/rss.xml", "RSS"),
                                                ("https://cdn.example.org/atom.xml", None)]
    assert discover_feeds(b"<html><body>no feeds</body>", url="https://example.org/") == []
