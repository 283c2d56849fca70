"""What the parse keeps when feeds are odd or hostile: one bad entry never costs the feed, entity
refusal reads the decoded prolog, JSON Feed versions, Atom text fields, links, feed discovery."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from monitor.domain import Entry
from monitor.errors import ParseError
from monitor.ingest.discover import discover_feeds
from monitor.ingest.normalize import normalize_entries, normalize_entry
from monitor.ingest.parse import MAX_DEPTH, MAX_RAW_ENTRIES, parse_feed
from monitor.pipeline import prepare_feed

URL = "https://feeds.example.org/x/feed.xml"
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
# What an operator must never read in a message: Python exception class names.
EXCEPTION_NAMES = re.compile(r"\b\w*(Error|Exception)\b|Traceback")


def _rss(items: str, channel: str = "<link>https://news.example.org/</link>") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{channel}'
            f"{items}</channel></rss>").encode()


def _item(title: str, extra: str = "") -> str:
    return f"<item><title>{title}</title><link>https://news.example.org/{title}</link>{extra}</item>"


# --------------------------------------------------------------------------- one bad entry


def test_bad_entries_cost_only_themselves_in_rss() -> None:
    feed = _rss(
        _item("good1")
        + _item("cdata", "<description>&lt;![foo[ text</description>")
        + _item("truncated", "<description>&lt;![ x</description>")
        + _item("bracket", "<description>&lt;![ 1 ]&gt; tail</description>")
        + _item("year1", "<pubDate>Mon, 01 Jan 0001 00:00:00 +0100</pubDate>")
        + _item("year9999", "<pubDate>Fri, 31 Dec 9999 23:30:00 -0100</pubDate>")
        + _item("good2", "<pubDate>Tue, 10 Jun 2025 08:00:00 GMT</pubDate>")
    )
    prepared = prepare_feed(feed, URL, "application/rss+xml", URL, NOW)
    assert prepared.error is None
    assert [i.title for i in prepared.items] == ["good1", "cdata", "truncated", "bracket", "year1", "year9999",
                                                 "good2"]
    by_title = {i.title: i for i in prepared.items}
    assert by_title["bracket"].summary == "tail"
    assert by_title["year1"].date_from_fetch and by_title["year1"].published_at == NOW
    assert by_title["good2"].published_at == datetime(2025, 6, 10, 8, 0, tzinfo=UTC)


def test_bad_entries_cost_only_themselves_in_json_feed() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    items = [
        {"id": "1", "url": "https://j.example.org/1", "title": "good1"},
        {"id": "2", "url": "https://j.example.org/2", "title": "cdata", "content_html": "<![foo[ <p>x"},
        {"id": "3", "url": "https://j.example.org/3", "title": "year1", "date_published": "0001-01-01T00:00:00+01:00"},
        {"id": "4", "url": "https://j.example.org/4", "title": "big", "_n": "BIGINT"},
        {"id": "5", "url": "https://j.example.org/5", "title": "deep", "_x": "DEEP"},
        {"id": "6", "url": "https://j.example.org/6", "title": "good2", "date_published": "2025-06-10T10:00:00+02:00"},
    ]
    text = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": items})
    text = text.replace('"BIGINT"', "7" * 5000).replace('"DEEP"', deep)
    prepared = prepare_feed(text.encode(), URL, "application/feed+json", URL, NOW)
    assert prepared.error is None
    assert [i.title for i in prepared.items] == ["good1", "cdata", "year1", "big", "good2"]
    assert prepared.skipped == ("entry 5: nested too deeply to read",)
    assert prepared.items[-1].published_at == datetime(2025, 6, 10, 8, 0, tzinfo=UTC)


def test_an_entry_that_fails_normalisation_is_skipped_with_a_plain_reason() -> None:
    good = Entry(title="Fine", link="https://n.example.org/1")
    broken = Entry(title="Broken", summary=7, link="https://n.example.org/2")  # type: ignore[arg-type]  # a bug's shape
    items, skipped = normalize_entries([good, broken, good], feed_url=URL, now=NOW)
    assert [i.title for i in items] == ["Fine", "Fine"]
    assert skipped == ["entry 2 ('Broken'): its text could not be read"]
    assert not EXCEPTION_NAMES.search(skipped[0])


def test_an_oversized_document_is_cut_at_an_entry_boundary() -> None:
    feed = parse_feed(_rss(_item("x") * (MAX_RAW_ENTRIES + 50)), url=URL)
    assert len(feed.entries) == 500
    assert feed.skipped and "first 2000" in feed.skipped[0]


def test_deep_nesting_costs_the_entries_from_it_on_not_the_ones_before() -> None:
    depth = MAX_DEPTH * 4
    feed = parse_feed(_rss(_item("a") + _item("b") + "<item><title>deep</title>" + "<x>" * depth + "</item>"
                           + _item("after")), url=URL)
    assert [e.title for e in feed.entries] == ["a", "b"]
    assert feed.skipped == (f"entry 3 and the rest of the document: elements nested more than {MAX_DEPTH} deep",)


def test_cpu_budget_fails_the_feed_with_a_clear_reason() -> None:
    body = "<p>" + "word " * 2000 + "</p>"
    feed = _rss("".join(_item(f"i{n}", f"<description><![CDATA[{body}]]></description>") for n in range(400)))
    prepared = prepare_feed(feed, URL, "application/rss+xml", URL, NOW, budget=0.01)
    assert prepared.items == [] and prepared.error is not None
    assert "took more than 0.01 s of CPU" in prepared.error and URL in prepared.error
    assert not EXCEPTION_NAMES.search(prepared.error)


# --------------------------------------------------------------------------- entity refusal


DOCTYPE_ENTITY = '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'


@pytest.mark.parametrize("codec", ["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037"])
def test_entity_declarations_are_refused_in_every_encoding(codec: str) -> None:
    document = (DOCTYPE_ENTITY.replace('"1.0"?>', f'"1.0" encoding="{codec}"?>', 1)
                + '<rss version="2.0"><channel><title>&b;</title></channel></rss>')
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(document.encode(codec), url=URL, content_type="text/xml")


def test_entity_declaration_hidden_behind_a_comment_in_the_doctype_is_refused() -> None:
    document = ('<?xml version="1.0"?><!DOCTYPE rss [<!-- <a> --><!ENTITY x SYSTEM "file:///etc/passwd">]>'
                '<rss version="2.0"><channel><title>&x;</title></channel></rss>')
    with pytest.raises(ParseError, match="declares XML entities"):
        parse_feed(document.encode(), url=URL)


def test_an_item_quoting_a_doctype_in_cdata_is_content_not_a_declaration() -> None:
    quoted = '<![CDATA[How XXE works: <!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>]]>'
    feed = parse_feed(_rss(_item("xxe", f"<description>{quoted}</description>") + _item("next")), url=URL)
    assert [e.title for e in feed.entries] == ["xxe", "next"]
    assert "<!ENTITY xxe" in feed.entries[0].summary


# --------------------------------------------------------------------------- what the parse keeps


@pytest.mark.parametrize("version", ["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1",
                                     "http://jsonfeed.org/version/1", "1.1", "", None])
def test_json_feed_every_version_string_is_read(version: str | None) -> None:
    doc: dict[str, object] = {"title": "J", "items": [{"id": "1", "title": "One", "url": "https://j.example/1"}]}
    if version is not None:
        doc["version"] = version
    assert [e.title for e in parse_feed(json.dumps(doc).encode(), url=URL).entries] == ["One"]


def test_json_feed_item_text_fills_an_empty_summary() -> None:
    doc = {"version": "1.1", "items": [
        {"id": "1", "url": "https://j.example/1", "content_text": "Plain <text> & more"},
        {"id": "2", "url": "https://j.example/2", "content_html": "<p>Rich <b>text</b></p>"},
        {"id": "3", "url": "https://j.example/3", "summary": "Own summary", "content_html": "<p>Body</p>"},
    ]}
    items = [normalize_entry(e, feed_url=URL, now=NOW) for e in parse_feed(json.dumps(doc).encode(), url=URL).entries]
    assert [i.summary for i in items] == ["Plain <text> & more", "Rich text", "Own summary"]
    assert items[2].content == "Body"


def test_atom_text_fields_are_text_not_html() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
    <entry><title type="text">History of the &lt;blink&gt; tag</title><link href="https://a.example/1"/>
      <summary type="text">Use &lt;b&gt; for bold &amp; &lt;i&gt;</summary></entry>
    <entry><title>&lt;/example&gt;</title><link href="https://a.example/2"/></entry>
    <entry><title type="html">&lt;b&gt;Bold&lt;/b&gt; news</title><link href="https://a.example/3"/></entry>
    </feed>"""
    items = [normalize_entry(e, feed_url=URL, now=NOW) for e in parse_feed(atom, url=URL).entries]
    assert [i.title for i in items] == ["History of the <blink> tag", "</example>", "Bold news"]
    assert items[0].summary == "Use <b> for bold & <i>"


def test_relative_links_resolve_against_xml_base_then_channel_link_then_feed_url() -> None:
    items = (_item("abs") + "<item><title>rel</title><link>/news/2</link></item>"
             + '<item xml:base="https://cdn.example.net/base/"><title>based</title><link>3</link></item>')
    with_channel = parse_feed(_rss(items, "<link>https://site.example.com/home/</link>"), url=URL)
    assert [e.link for e in with_channel.entries] == [
        "https://news.example.org/abs", "https://site.example.com/news/2", "https://cdn.example.net/base/3"]
    without_channel = parse_feed(_rss(items, ""), url=URL)
    assert without_channel.entries[1].link == "https://feeds.example.org/news/2"


def test_javascript_links_never_become_links() -> None:
    feed = parse_feed(_rss("<item><title>x</title><link>javascript:alert(1)</link></item>"), url=URL)
    assert feed.entries[0].link is None


HTML_PAGE = """<!doctype html><html><head><title>News</title>
<link rel="stylesheet" href="/s.css">
<link rel="alternate" type="application/rss+xml" title="RSS" href="/rss.xml">
<link rel="alternate" type="application/atom+xml" href="https://other.example.org/atom">
<link rel="alternate" type="application/rss+xml" href="/rss.xml">
<link rel="alternate" hreflang="de" href="/de/">
</head><body><p>Hello</p></body></html>"""


def discover_feed_links(page: str, base_url: str) -> list[str]:
    return [found.url for found in discover_feeds(page, url=base_url)]


def test_discover_feed_links_lists_the_feeds_a_page_names() -> None:
    assert discover_feed_links(HTML_PAGE, "https://news.example.org/section/") == [
        "https://news.example.org/rss.xml", "https://other.example.org/atom"]
    assert discover_feed_links("<html><body>no feeds</body></html>", "https://n.example.org/") == []
    assert discover_feed_links("", "https://n.example.org/") == []


def test_an_html_page_as_feed_url_says_which_url_to_use() -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(HTML_PAGE.encode(), url="https://news.example.org/", content_type="text/html")
    message = str(info.value)
    assert "not a feed" in message and "https://news.example.org/rss.xml" in message and "use that URL" in message


# --------------------------------------------------------------------------- dates and normalisation


@pytest.mark.parametrize(("published", "from_fetch"), [
    (None, True),
    (datetime(1970, 1, 1, tzinfo=UTC), True),
    (datetime(1989, 12, 31, tzinfo=UTC), True),
    (datetime(2025, 6, 12, 12, 0, 1, tzinfo=UTC), True),  # more than a day ahead
    (datetime(2025, 6, 11, 11, 0, tzinfo=UTC), False),  # within a day: a zone misdeclared by hours
    (datetime(1990, 1, 2, tzinfo=UTC), False),
])
def test_implausible_or_missing_dates_become_the_time_first_seen(published: datetime | None,
                                                                 from_fetch: bool) -> None:
    item = normalize_entry(Entry(title="t", link="https://n.example.org/1", published=published),
                           feed_url=URL, now=NOW)
    assert item.date_from_fetch is from_fetch
    assert item.published_at == (NOW if from_fetch else published)


def test_per_feed_settings_override_what_the_document_says() -> None:
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Т</title>'
            "<item><title>Новости</title><link>https://r.example/1</link>"
            "<pubDate>10.06.2024 09:00</pubDate></item></channel></rss>").encode("cp1251")
    (entry,) = parse_feed(body, url=URL, content_type="text/xml; charset=utf-8", encoding="windows-1251",
                          timezone="Asia/Vladivostok").entries
    assert entry.title == "Новости"
    assert entry.published == datetime(2024, 6, 9, 23, 0, tzinfo=UTC)
