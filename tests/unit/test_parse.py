"""parse_feed: formats, links, dates, refusals. Pure: bytes in, values out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.ingest.parse import MAX_ENTRIES, parse_date, parse_feed

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
FEED_URL = "https://feeds.example.org/x/feed"


def _parse(name: str, **kwargs: str) -> object:
    return parse_feed((DATA / name).read_bytes(), url=FEED_URL, **kwargs)


def test_rss2_reads_channel_items_ttl_and_drops_empty_items() -> None:
    feed = parse_feed((DATA / "rss2-named-zones.xml").read_bytes(), url=FEED_URL)
    assert feed.title == "Zones & Dates"
    assert feed.link == "https://news.example.org/"
    assert feed.ttl_minutes == 30
    assert [e.title for e in feed.entries] == ["Berlin summer", "Delhi", "Plain GMT", "No date"]
    assert feed.entries[0].summary == "<p>Talks in <b>Berlin</b>.</p>"  # HTML left for normalize
    assert feed.entries[0].guid == "z-1"


def test_named_zones_are_not_read_as_utc() -> None:
    feed = parse_feed((DATA / "rss2-named-zones.xml").read_bytes(), url=FEED_URL)
    expected = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert [e.published for e in feed.entries] == [expected, expected, expected, None]
    assert all(e.published is None or e.published.tzinfo is UTC for e in feed.entries)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 10 Jun 2025 10:00:00 CEST", datetime(2025, 6, 10, 8, 0, tzinfo=UTC)),
        ("Tue, 10 Jun 2025 17:00:00 KST", datetime(2025, 6, 10, 8, 0, tzinfo=UTC)),
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)),
        ("mer, 16 nov 2022 00:38:15 +0100", datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)),
        ("Thu, 07 Dec 17 18:00:29 +0000", datetime(2017, 12, 7, 18, 0, 29, tzinfo=UTC)),
        ("2020/1/10 14:33:00", datetime(2020, 1, 10, 14, 33, tzinfo=UTC)),
        ("Tue, 10 Jun 2025 10:00:00 XYZ", datetime(2025, 6, 10, 10, 0, tzinfo=UTC)),  # unknown: the feed's zone
        ("2025-06-10T10:00:00+02:00", datetime(2025, 6, 10, 8, 0, tzinfo=UTC)),
        ("Tue, 31 Feb 2025 10:00:00 GMT", None),
    ],
)
def test_parse_date_reads_what_feedparser_misreads(text: str, expected: datetime | None) -> None:
    assert parse_date(text) == expected


def test_atom_relative_links_resolve_against_channel_link_and_xml_base() -> None:
    feed = parse_feed((DATA / "atom-relative.xml").read_bytes(), url=FEED_URL)
    assert feed.link == "https://blog.example.net/"
    first, second = feed.entries
    assert first.link == "https://blog.example.net/posts/1"
    assert second.link == "https://cdn.example.net/base/posts/2"
    assert first.published == datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert second.published == datetime(2025, 6, 11, 0, 0, tzinfo=UTC)  # falls back to <updated>
    assert "Body" in first.summary + first.content


def test_rss1_rdf_with_dc_date() -> None:
    feed = parse_feed((DATA / "rss1.rdf").read_bytes(), url=FEED_URL)
    (entry,) = feed.entries
    assert entry.link == "https://rdf.example.org/1"
    assert entry.published == datetime(2025, 6, 9, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("content_type", [None, "application/feed+json", "application/json"])
def test_json_feed(content_type: str | None) -> None:
    feed = parse_feed((DATA / "feed.json").read_bytes(), url=FEED_URL, content_type=content_type)
    assert feed.title == "JSON sample"
    assert feed.link == "https://json.example.org/"
    assert [e.guid for e in feed.entries] == ["1", "2"]  # item 3 has nothing to show: dropped
    first, second = feed.entries
    assert (first.summary, first.content) == ("<p>Hi</p>", "")  # the item's text is its summary
    assert first.author == "Ann"
    assert first.published == datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert second.link == "https://json.example.org/2"  # relative: against the home page, like a channel link
    assert second.summary == "No title here"


@pytest.mark.parametrize("name", ["billion-laughs.xml", "external-entity.xml"])
def test_entity_declarations_are_refused(name: str) -> None:
    with pytest.raises(ParseError, match="entities") as info:
        parse_feed((DATA / name).read_bytes(), url=FEED_URL)
    assert info.value.url == FEED_URL


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match="not a feed") as info:
        parse_feed((DATA / "html-page.html").read_bytes(), url=FEED_URL, content_type="text/html")
    assert FEED_URL in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"   \n", b'{"items": [', b'{"title": "no items"}', b"[1, 2]",
     b'<?xml version="1.0"?><rss version="2.0"><channel><title>cut'],
)
def test_broken_documents_raise_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(content, url=FEED_URL)


def test_feed_served_with_wrong_content_type_still_parses() -> None:
    body = (DATA / "rss2-named-zones.xml").read_bytes()
    feed = parse_feed(body, url=FEED_URL, content_type="text/html; charset=utf-8")
    assert len(feed.entries) == 4


def test_bytes_that_look_like_a_path_are_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes((DATA / "rss1.rdf").read_bytes())
    with pytest.raises(ParseError):
        parse_feed(str(secret).encode(), url=FEED_URL)


def test_valid_feed_without_items_is_empty_not_an_error() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>', url=FEED_URL)
    assert feed.title == "Quiet"
    assert feed.entries == ()


def test_items_are_capped() -> None:
    items = "".join(
        f"<item><title>t{i}</title><link>https://x.example/{i}</link></item>" for i in range(MAX_ENTRIES + 20)
    )
    body = f'<rss version="2.0"><channel><title>Big</title>{items}</channel></rss>'.encode()
    feed = parse_feed(body, url=FEED_URL)
    assert len(feed.entries) == MAX_ENTRIES
    assert feed.entries[0].title == "t0"


def test_non_http_links_are_dropped() -> None:
    body = (b'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
            b"<link>javascript:alert(1)</link></item></channel></rss>")
    (entry,) = parse_feed(body, url=FEED_URL).entries
    assert entry.link is None
