"""The web front door's pure helpers: languages by script, sessions, rate limits, links, highlighting."""

from __future__ import annotations

import pytest

from monitor.lang import script_language
from monitor.web.render import evidence_note, highlight, xml_safe
from monitor.web.security import RateLimiter, SessionCodec, csrf_ok, safe_href


@pytest.mark.parametrize(("text", "lang"), [
    ("김정은 위원장, 평양에서 중국 대표단 접견", "ko"),
    ("中方愿为朝鲜半岛和平稳定发挥建设性作用", "zh"),
    ("北朝鮮の金正恩総書記がロシアを訪問", "ja"),
    ("Визит российской делегации в Пхеньян", "ru"),
    ("Kim Jong Un meets Putin in Vladivostok", "en"),
    ("Kim Jong Un 김정은 위원장 평양 방문", "ko"),
    ("1234 — !!", None),
    ("", None),
])
def test_the_language_is_told_by_script(text: str, lang: str | None) -> None:
    assert script_language(text) == lang


def test_a_session_survives_a_round_trip_and_nothing_else_does() -> None:
    codec = SessionCodec(b"k", 60)
    session = codec.new("admin", now=1000.0)
    cookie = codec.dump(session)
    assert codec.load(cookie, now=1030.0) == session
    assert codec.load(cookie, now=1061.0) is None  # expired
    assert codec.load(cookie.replace(".", ".A", 1), now=1030.0) is None
    assert SessionCodec(b"other", 60).load(cookie, now=1030.0) is None
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "x") and not csrf_ok(None, session.csrf)


def test_the_rate_limit_counts_per_address_within_the_window() -> None:
    limit = RateLimiter(2, 10.0)
    assert [limit.allow("a", now=t) for t in (0, 1, 2)] == [True, True, False]
    assert limit.allow("b", now=2)
    assert limit.allow("a", now=10.5)


def test_a_flood_of_addresses_does_not_grow_the_limiter_without_bound() -> None:
    limit = RateLimiter(1, 10.0, max_keys=100)
    for n in range(10_000):
        limit.allow(f"10.0.{n // 256}.{n % 256}", now=float(n) / 1000)
    assert len(limit._events) <= 100


@pytest.mark.parametrize(("url", "kept"), [
    ("https://example.org/a", True), ("http://example.org", True), ("javascript:alert(1)", False),
    (" JavaScript:alert(1)", False), ("data:text/html,x", False), ("//evil.example.org", False), (None, False),
    ("vbscript:x", False),
])
def test_only_http_links_are_rendered(url: str | None, kept: bool) -> None:
    assert (safe_href(url) is not None) == kept


def test_highlights_wrap_escaped_text_only() -> None:
    evidence = [{"field": "title", "start": 9, "end": 20, "text": "Kim Jong Un"},
                {"field": "title", "start": 15, "end": 22, "text": "g Un <b"},
                {"field": "summary", "start": 0, "end": 3, "text": "abc"}]
    html = str(highlight("<script> Kim Jong Un <b>", evidence, "title"))
    assert html == "&lt;script&gt; <mark>Kim Jong Un &lt;b</mark>&gt;"
    assert str(highlight("text", [{"field": "title", "start": 0, "end": 99, "text": "y"}], "title")) == "text"


def test_evidence_notes_tell_the_anniversary_and_its_ordinal() -> None:
    note = evidence_note({"kind": "anniversary", "text": "75th anniversary", "event_name": "DPRK–China ties",
                          "ordinal": 75, "expected_ordinal": 75, "ordinal_ok": True})
    assert note == "anniversary: 75th anniversary → DPRK–China ties, 75th (as expected)"


def test_xml_safe_drops_what_xml_cannot_carry() -> None:
    assert xml_safe("a\x00b\x0bc\ud800d\ne") == "abcd\ne"
