"""The fast RSS reader gives what feedparser gives, on every feed of the shared corpora.

Each document is parsed twice, with the fast reader allowed (the default) and with feedparser
only (``fast=False``), and the results must be equal: the same :class:`ParsedFeed` (feed title,
link, TTL, skipped entries and every :class:`Entry` field) and the same normalised items
(title, link, fingerprint, published instant, summary text, content text), or the same
:class:`ParseError`. The comparison is over every document, not only those the fast reader
accepts, so a document it wrongly accepts shows up as a difference. It also counts, and prints,
how many documents took the fast path: a test that never exercised it would prove nothing.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.domain import ParsedFeed
from monitor.errors import ParseError
from monitor.ingest import fastfeed, parse
from monitor.ingest.decode import decode_document
from monitor.ingest.fastfeed import read_plain_feed
from monitor.ingest.normalize import normalize_entries
from tests.helpers.shared import SHARED, shared_dir

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "http://127.0.0.1:8097/"
# The corpora hold ~2,400 documents; fewer than this many taking the fast path means it broke.
MIN_FAST = 100


def _documents() -> list[tuple[Path, str, str | None]]:
    found = []
    for folder in ("feeds-corpus", "feeds-wild"):
        shared_dir(folder)
        for path in sorted((SHARED / folder).rglob("*")):
            if path.is_file() and path.name not in ("README.md", "_meta.json"):
                head = path.read_bytes()[:4096].decode("utf-8", "replace")
                header = re.search(r"Header:\s*content-type:\s*(.+?)\s*$", head, re.MULTILINE | re.IGNORECASE)
                found.append((path, BASE + str(path.relative_to(SHARED)), header.group(1) if header else None))
    return found


def _result(data: bytes, url: str, content_type: str | None, *, fast: bool) -> ParsedFeed | str:
    try:
        return parse.parse_feed(data, url=url, content_type=content_type, fast=fast)
    except ParseError as exc:
        return f"ParseError: {exc}"


def _items(parsed: ParsedFeed, url: str) -> list[tuple[object, ...]]:
    items, skipped = normalize_entries(parsed.entries, feed_url=url, now=NOW)
    return [(i.title, i.link, i.fingerprint, i.published_at, i.summary, i.content, i.author) for i in items] + [
        ("skipped", s) for s in skipped]


def _took_fast_path(data: bytes, url: str, content_type: str | None) -> bool:
    """Whether parse_feed's XML path hands this document to the fast reader (same steps, same order)."""
    try:
        text = decode_document(data, content_type=content_type).text
    except Exception:
        return False
    if not data.strip() or parse._looks_like_json(text, content_type):
        return False
    try:
        parse._refuse_entities(text, url=url)
        document, cut, well_formed = parse._bounded(parse._utf8_document(text), url=url)
    except ParseError:
        return False
    return well_formed and cut is None and read_plain_feed(document) is not None


def test_fast_reader_agrees_with_feedparser_on_every_corpus_document() -> None:
    documents = _documents()
    fast_count, differences = 0, []
    for path, url, content_type in documents:
        data = path.read_bytes()
        took_fast = _took_fast_path(data, url, content_type)
        fast_count += took_fast
        mine = _result(data, url, content_type, fast=True)
        reference = _result(data, url, content_type, fast=False)
        if isinstance(mine, str) or isinstance(reference, str):
            same = mine == reference
        else:
            same = mine == reference and _items(mine, url) == _items(reference, url)
        if not same:
            differences.append(f"{path.relative_to(SHARED)} (fast path: {took_fast})")
    print(f"\n{fast_count} of {len(documents)} documents took the fast path")
    assert not differences, "fast reader and feedparser differ on:\n" + "\n".join(differences)
    assert fast_count >= MIN_FAST, f"only {fast_count} documents took the fast path"


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>Feed &amp; co</title><link>https://example.org/</link><ttl>30</ttl><language>de</language>
<atom:link href="https://example.org/feed" rel="self" type="application/rss+xml"/>
{items}
</channel></rss>"""

CASES = {
    "guid as link": "<item><title>A</title><guid>https:///example.org/a</guid></item>",
    "guid not a permalink": "<item><title>A</title><guid isPermaLink='false'>https://example.org/a</guid></item>",
    "link after guid": "<item><guid>https://example.org/g</guid><link>/relative?a=1&amp;amp;b=2</link></item>",
    "content before description": ("<item><title>T</title><content:encoded><![CDATA[<p>full</p>]]></content:encoded>"
                                   "<description>short &lt;b&gt;bold&lt;/b&gt;</description></item>"),
    "content only": "<item><title>T</title><content:encoded>&lt;p&gt;only&lt;/p&gt;</content:encoded></item>",
    "latin-1 read utf-8": "<item><title>Caf\u00c3\u00a9 \u0080 \u0093quoted\u0094</title><link>https://e.org/x</link></item>",
    "dates and author": ("<item><title>D</title><pubDate>Tue, 03 Jun 2025 09:39:21 GMT</pubDate>"
                         "<dc:creator> Jane </dc:creator><link>https://e.org/d</link></item>"),
    "dc date only": "<item><title>D</title><dc:date>2025-06-03T09:39:21+02:00</dc:date></item>",
    "empty link": "<item><title>E</title><link></link><guid>https://example.org/e</guid></item>",
    "javascript link": "<item><title>J</title><link>javascript:alert(1)</link></item>",
    "nothing to show": "<item><pubDate>Tue, 03 Jun 2025 09:39:21 GMT</pubDate></item>",
}


@pytest.mark.parametrize("items", CASES.values(), ids=CASES.keys())
def test_fast_reader_agrees_on_the_rules_feedparser_applies(items: str) -> None:
    data = RSS.format(items=items).encode("utf-8")
    url = "https://example.org/feed"
    assert _took_fast_path(data, url, None)
    mine = parse.parse_feed(data, url=url, fast=True)
    assert mine == parse.parse_feed(data, url=url, fast=False)
    assert _items(mine, url) == _items(parse.parse_feed(data, url=url, fast=False), url)


DECLINED = {
    "markup in a field": "<item><title>T</title><description><p>raw</p></description></item>",
    "field given twice": "<item><title>A</title><title>B</title></item>",
    "unknown element": "<item><title>T</title><media:title xmlns:media='http://search.yahoo.com/mrss/'>M</media:title></item>",
    "xml:base": "<item xml:base='https://other.example/'><title>T</title><link>x</link></item>",
    "typed description": "<item><title>T</title><description type='text/plain'>x</description></item>",
    "upper-case name": "<item><Title>T</Title></item>",
}


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ko_KR"><title type="text">A &lt;b&gt; feed</title>
<id>tag:example.org,2025:feed</id><link href="https://example.org/" rel="alternate"/>
<link rel="self" href="https://example.org/atom"/><updated>2025-06-03T09:39:21Z</updated>
{entries}
</feed>"""

ATOM_CASES = {
    "text title escaped, html summary not": ("<entry><title>1 &lt; 2</title>"
                                             "<summary type='html'>&lt;b&gt;x&lt;/b&gt;</summary>"
                                             "<id>https://example.org/1</id>"
                                             "<updated>2025-06-03T09:39:21+09:00</updated></entry>"),
    "id stands in for a missing link": "<entry><title>T</title><id>https:///example.org/2</id></entry>",
    "alternate link after id wins": ("<entry><id>https://example.org/id</id><title>T</title>"
                                     "<link href='https://example.org/page' type='text/html'/></entry>"),
    "only an enclosure link": "<entry><title>T</title><id>tag:x</id><link rel='enclosure' href='https://e.org/a.mp3'/></entry>",
    "empty rel": "<entry><title>T</title><link rel='' href='https://example.org/r'/></entry>",
    "content copied to summary": "<entry><title>T</title><content type='text'>a &lt; b</content></entry>",
    "summary after content": ("<entry><title>T</title><content type='html'>&lt;p&gt;full&lt;/p&gt;</content>"
                              "<summary>short</summary></entry>"),
    "author name and email": ("<entry><title>T</title><author><name> Kim </name><email>k@example.org</email>"
                              "<uri>https://k.example/</uri></author></entry>"),
    "author uri only": "<entry><title>T</title><author><uri>https://k.example/</uri></author></entry>",
}


@pytest.mark.parametrize("entries", ATOM_CASES.values(), ids=ATOM_CASES.keys())
def test_fast_reader_agrees_on_atom(entries: str) -> None:
    data = ATOM.format(entries=entries).encode("utf-8")
    url = "https://example.org/atom"
    assert _took_fast_path(data, url, None)
    mine, reference = parse.parse_feed(data, url=url, fast=True), parse.parse_feed(data, url=url, fast=False)
    assert mine == reference
    assert _items(mine, url) == _items(reference, url)


ATOM_DECLINED = {
    "xhtml content": "<entry><title>T</title><content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'>x</div></content></entry>",
    "xml:base": "<entry xml:base='https://other.example/'><title>T</title><link href='x'/></entry>",
    "content by reference": "<entry><title>T</title><content src='https://example.org/c'/></entry>",
    "two authors": "<entry><title>T</title><author><name>A</name></author><author><name>B</name></author></entry>",
}


UNUSUAL = {
    **{f"rss: {name}": RSS.format(items=items) for name, items in DECLINED.items()},
    **{f"atom: {name}": ATOM.format(entries=entries) for name, entries in ATOM_DECLINED.items()},
}


@pytest.mark.parametrize("document", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_fast_reader_leaves_unusual_documents_to_feedparser(document: str) -> None:
    data = document.encode("utf-8")
    url = "https://example.org/feed"
    assert not _took_fast_path(data, url, None)
    assert parse.parse_feed(data, url=url) == parse.parse_feed(data, url=url, fast=False)


def test_the_windows_1252_repair_is_feedparsers_table() -> None:
    # feedparser maps C1 controls in every text field through this table; the fast reader must use the same.
    from feedparser.html import _cp1252

    assert fastfeed._CP1252 == _cp1252


EXAMPLES = int(os.environ.get("FASTFEED_EXAMPLES", "60"))  # raise locally for a longer search
# Generated documents, compared the same way; about 60% of them take the fast path (the others hold a
# comment inside a field, or markup that is not well-formed, and go to feedparser on both sides).
# Pieces that exercise feedparser's text rules: markup-like text, entities, C1 controls, UTF-8 read as
# Latin-1, URLs with extra slashes and "&amp;", blanks to strip, scripts other than Latin.
_PIECES = st.lists(st.sampled_from([
    "a", " ", "\n\t", "&amp;", "&lt;b&gt;", "&amp;amp;", "&#128;", "&#147;", "\u00c3\u00a9", "\u00e9", "한국어",
    "<![CDATA[<p>x</p>]]>", "https://", "https:///", "e.org/p?a=1", "&amp;b=2", "&amp;x;", "/rel", "javascript:",
    "Tue, 03 Jun 2025 09:39:21 GMT", "2025-06-03T09:39:21+09:00", "03 Jun 2025", "<!-- c -->",
]), max_size=6).map("".join)
_RSS_FIELDS = st.sampled_from(["title", "link", "guid", "guid isPermaLink='false'", "description", "pubDate",
                               "author", "content:encoded", "dc:creator", "dc:date", "category", "comments"])
_ATOM_FIELDS = st.sampled_from(["title", "title type='html'", "summary", "summary type='text'", "content",
                                "content type='html'", "id", "published", "updated"])


def _element(field: str, text: str) -> str:
    name = field.split(" ", 1)[0]
    return f"<{field}>{text}</{name}>"


def _unique(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen, kept = set(), []
    for field, text in fields:
        name = field.split(" ", 1)[0]
        if name not in seen:
            seen.add(name)
            kept.append((field, text))
    return kept


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.tuples(_RSS_FIELDS, _PIECES), max_size=8), min_size=1, max_size=3), st.booleans())
def test_fast_reader_agrees_on_generated_rss(items: list[list[tuple[str, str]]], with_link: bool) -> None:
    body = "".join("<item>" + "".join(_element(f, t) for f, t in _unique(fields)) + "</item>" for fields in items)
    channel_link = "<link>https://example.org/c?a=1&amp;b=2</link>" if with_link else ""
    data = RSS.format(items=channel_link + body).encode("utf-8")
    url = "https://example.org/feed"
    reference = _result(data, url, None, fast=False)
    assert _result(data, url, None, fast=True) == reference
    if not isinstance(reference, str):
        assert _items(parse.parse_feed(data, url=url), url) == _items(reference, url)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.tuples(_ATOM_FIELDS, _PIECES), max_size=8), min_size=1, max_size=3),
       st.lists(st.sampled_from(["alternate", "self", "enclosure", "", "ALTERNATE"]), max_size=3))
def test_fast_reader_agrees_on_generated_atom(entries: list[list[tuple[str, str]]], rels: list[str]) -> None:
    links = "".join(f"<link rel='{rel}' href='https://example.org/{n}'/>" for n, rel in enumerate(rels))
    body = "".join("<entry>" + "".join(_element(f, t) for f, t in _unique(fields)) + links + "</entry>"
                   for fields in entries)
    data = ATOM.format(entries=body).encode("utf-8")
    url = "https://example.org/atom"
    reference = _result(data, url, None, fast=False)
    assert _result(data, url, None, fast=True) == reference
    if not isinstance(reference, str):
        assert _items(parse.parse_feed(data, url=url), url) == _items(reference, url)
