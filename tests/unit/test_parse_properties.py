"""Property-based tests over decoding, parsing, HTML-to-text, dates and normalisation.

Whatever bytes or text arrive, no exception escapes: a document that is not a feed is a
:class:`ParseError` (the clear refusal the operator sees), everything else parses. The example
counts are modest so the suite stays fast; raise them locally with ``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.domain import Entry
from monitor.errors import ParseError
from monitor.ingest.dates import parse_date
from monitor.ingest.decode import ALIASES, decode_document
from monitor.ingest.normalize import EARLIEST_DATE, FUTURE_TOLERANCE, html_to_text, normalize_entry
from monitor.ingest.parse import parse_feed

settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

URL = "https://feeds.example.org/feed"
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
LABELS = st.sampled_from([*ALIASES, "utf-8", "utf-16", "utf-32", "ibm037", "x-unknown", "rot13", "", " "])
MARKUP = st.lists(st.sampled_from([
    "<p>", "</p>", "<a href='x'>", "</a>", "<!--", "-->", "<![CDATA[", "]]>", "<![foo[", "<![ 1 ]>", "<script>",
    "</script>", "<br/>", "&amp;", "&#8211;", "&#x110000;", "&#0;", "&nosuch;", "<", ">", "\x00", "\ufeff",
    "<div>", "<?php ?>", "<!DOCTYPE html>", "<table><tr><td>", "text", " ", "\n", "한국어", "Москва", "中文",
]), max_size=40).map("".join)
TEXT = st.one_of(st.text(max_size=200), MARKUP)
DATES = st.one_of(
    st.text(max_size=40),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0100")),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat() + "-01:00"),
    st.sampled_from(["2024年6月10日", "2024. 6. 10. 오후 3:00:00", "10 июня 2024", "Mon Jun 10 09:00:00 CST 2024",
                     "GMT+99", "99:99", "2024-13-45", "31.02.2024 25:61", "0000-00-00T00:00:00Z"]),
)
LANGUAGES = st.sampled_from([None, "en", "ko", "zh-cn", "zh-TW", "ja", "ru", "xx", ""])


@given(st.binary(max_size=2000), st.one_of(st.none(), LABELS.map(lambda x: f"text/xml; charset={x}")),
       st.one_of(st.none(), LABELS))
def test_decoding_never_raises(content: bytes, content_type: str | None, override: str | None) -> None:
    decoded = decode_document(content, content_type=content_type, override=override)
    assert isinstance(decoded.text, str)


@given(st.binary(max_size=3000), st.sampled_from([None, "text/xml", "application/json", "text/html"]))
def test_any_bytes_parse_or_are_refused_clearly(content: bytes, content_type: str | None) -> None:
    try:
        parse_feed(content, url=URL, content_type=content_type)
    except ParseError as exc:
        assert URL in str(exc)


@given(st.lists(st.tuples(TEXT, TEXT, DATES), max_size=8), LANGUAGES, st.sampled_from(["utf-8", "utf-16", "cp1251"]))
def test_rss_with_any_text_and_dates_keeps_its_entries(items: list[tuple[str, str, str]], language: str | None,
                                                       codec: str) -> None:
    lang = f"<language>{language}</language>" if language else ""
    body = "".join(f"<item><title>{escape(t)}</title><link>https://n.example/{n}</link>"
                   f"<description>{escape(d)}</description><pubDate>{escape(date)}</pubDate></item>"
                   for n, (t, d, date) in enumerate(items))
    text = (f'<?xml version="1.0" encoding="{codec}"?><rss version="2.0"><channel><title>T</title>{lang}{body}'
            "</channel></rss>")
    try:
        data = text.encode(codec)
    except UnicodeEncodeError:
        data = text.encode(codec, "replace")
    try:
        feed = parse_feed(data, url=URL)
    except ParseError:
        return  # e.g. a control character the XML parser cannot recover from
    for entry in feed.entries:
        item = normalize_entry(entry, feed_url=URL, now=NOW)
        assert item.published_at is not None
        assert EARLIEST_DATE <= item.published_at <= NOW + FUTURE_TOLERANCE


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                                max_size=4)),
    max_leaves=20,
)
JSON_ITEMS = st.fixed_dictionaries({}, optional={
    "id": JSON_VALUES, "url": st.one_of(TEXT, JSON_VALUES), "title": st.one_of(TEXT, JSON_VALUES),
    "content_html": TEXT, "content_text": TEXT, "summary": st.one_of(TEXT, JSON_VALUES),
    "date_published": st.one_of(DATES, JSON_VALUES), "authors": JSON_VALUES, "author": JSON_VALUES,
})


@given(st.lists(st.one_of(JSON_ITEMS, JSON_VALUES), max_size=6), JSON_VALUES, LANGUAGES)
def test_json_feed_with_any_items_never_escapes(items: list[object], version: object, language: str | None) -> None:
    doc = {"version": version, "title": "J", "items": items, "language": language}
    feed = parse_feed(json.dumps(doc).encode(), url=URL)
    assert len(feed.entries) <= len(items)  # one entry per item at most, never invented ones
    for entry in feed.entries:
        item = normalize_entry(entry, feed_url=URL, now=NOW)
        assert item.fingerprint and item.feed_url == URL


@given(TEXT)
def test_html_to_text_never_raises_and_gives_clean_text(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip()
    assert "\r" not in text and "\xa0" not in text and "\n\n" not in text


@given(st.text(alphabet=st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)), max_size=200))
def test_plain_text_comes_out_as_written(text: str) -> None:
    expected = "\n".join(" ".join(line.split()) for line in text.replace("\r", "\n").replace("\xa0", " ").split("\n"))
    assert html_to_text(text) == "\n".join(line for line in expected.split("\n") if line).strip()


@given(DATES, LANGUAGES)
def test_dates_are_utc_or_none(text: str, language: str | None) -> None:
    when = parse_date(text, language=language)
    assert when is None or when.utcoffset() == timedelta(0)


@given(st.builds(Entry, title=TEXT, link=st.one_of(st.none(), TEXT), guid=st.one_of(st.none(), TEXT), summary=TEXT,
                 content=TEXT, published=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
                 author=st.one_of(st.none(), TEXT)))
def test_normalisation_never_raises(entry: Entry) -> None:
    item = normalize_entry(entry, feed_url=URL, now=NOW)
    assert item.fingerprint and item.published_at is not None
