"""Every real-world feed in shared/feeds-wild parses sensibly (or fails cleanly).

The folder sits next to the repository; these tests skip when it is absent (and fail under ``CI=true``).
See its README for what is special about each file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from monitor.errors import ParseError
from monitor.ingest.normalize import normalize_entry
from monitor.ingest.parse import parse_feed
from tests.helpers.shared import SHARED, shared_dir, shared_files

WILD = SHARED / "feeds-wild"
FILES = [p.name for p in shared_files("feeds-wild")]
NOW = datetime(2030, 1, 1, tzinfo=UTC)

# Genuinely broken documents: ParseError is the right answer.
BROKEN = {"reuters-truncated.rss.xml", "allthis-truncated.feed.json"}
# A valid 131-byte channel with no items: an empty feed, not an error.
EMPTY = {"minimal-windows-1252.rss.xml"}
# Where each feed is really served from, so relative links resolve as a reader would.
SERVED_FROM = {
    "talkingpointsmemo.atom.xml": "http://talkingpointsmemo.com/account/feed/all/x",
    "relative-urls.rss.xml": "https://www.arcgames.com/en/games/neverwinter/news/rss",
}
# A word that only decodes right if the declared (or sniffed) charset was honoured.
KNOWN_WORDS = {
    "oren-ru-windows-1251.rss.xml": "Оренбург",
    "kc0011-gb2312.rss.xml": "纪念币",
    "jn-pt-iso-8859-1.rss.xml": "Notícias",
    "golem-iso-8859-1.rss1.rdf": "Glasfaserförderung",
    "uol-noticias-latin1-undeclared.rss.xml": "simulações",
    "cerclepsy-latin1-undeclared.rss.xml": "é",
    "aktuality-sk.rss.xml": "ekonomiky",
    "bbc-urdu.rss.xml": "پاکستان",
    "touchnokia-css-sanitise.atom.xml": "Невидимая",
}



@pytest.fixture(autouse=True)
def _wild_folder() -> None:
    shared_dir("feeds-wild")


def _url(name: str) -> str:
    return SERVED_FROM.get(name, f"https://feeds.example.org/{name}")


def _text(name: str) -> str:
    feed = parse_feed((WILD / name).read_bytes(), url=_url(name))
    return "\n".join([feed.title, *(e.title + "\n" + e.summary + "\n" + e.content for e in feed.entries)])


@pytest.mark.parametrize("name", FILES)
def test_wild_feed_parses_to_sensible_items(name: str) -> None:
    content = (WILD / name).read_bytes()
    if name in BROKEN:
        with pytest.raises(ParseError) as info:
            parse_feed(content, url=_url(name))
        assert info.value.url == _url(name)
        return
    feed = parse_feed(content, url=_url(name))
    if name in EMPTY:
        assert feed.entries == ()
        return
    assert feed.entries, "a real feed with items yields entries"
    for entry in feed.entries:
        item = normalize_entry(entry, feed_url=_url(name), now=NOW)
        assert item.title or item.summary or item.content or item.link
        assert "<" not in item.title or ">" not in item.title, item.title
        assert "\n" not in item.title
        if entry.link is not None:
            parts = urlsplit(entry.link)
            assert parts.scheme in ("http", "https") and parts.netloc, entry.link
        if item.published_at is not None:
            assert item.published_at.tzinfo is UTC
            assert datetime(1995, 1, 1, tzinfo=UTC) < item.published_at <= NOW
    titled = [e for e in feed.entries if e.title.strip()]
    assert len(titled) >= len(feed.entries) // 2, "most entries have a title"


@pytest.mark.parametrize("name", sorted(KNOWN_WORDS))
def test_charsets_decode(name: str) -> None:
    assert name in FILES, f"{name} is named here but not in {WILD}"
    assert KNOWN_WORDS[name] in _text(name)


def test_minimal_windows_1252_title_decodes_euro_sign() -> None:
    feed = parse_feed((WILD / "minimal-windows-1252.rss.xml").read_bytes(), url=_url("x"))
    assert feed.title == "Euro €"


def test_root_relative_atom_links_are_resolved() -> None:
    feed = parse_feed((WILD / "talkingpointsmemo.atom.xml").read_bytes(),
                      url=SERVED_FROM["talkingpointsmemo.atom.xml"])
    assert all(e.link and e.link.startswith("http://talkingpointsmemo.com/") for e in feed.entries)


def test_relative_item_links_are_resolved() -> None:
    feed = parse_feed((WILD / "relative-urls.rss.xml").read_bytes(), url=SERVED_FROM["relative-urls.rss.xml"])
    assert feed.entries
    assert all(e.link and e.link.startswith("https://www.arcgames.com/") for e in feed.entries)


def test_gb2312_slash_date_is_january_not_november() -> None:
    feed = parse_feed((WILD / "kc0011-gb2312.rss.xml").read_bytes(), url=_url("kc0011-gb2312.rss.xml"))
    # 2020/1/10 14:33:00 with no zone, in a zh-cn feed: China time (UTC+8)
    assert feed.entries[0].published == datetime(2020, 1, 10, 6, 33, tzinfo=UTC)


def test_localised_month_names_are_read() -> None:
    feed = parse_feed((WILD / "uol-noticias-latin1-undeclared.rss.xml").read_bytes(), url=_url("uol"))
    assert all(e.published is not None for e in feed.entries)
    assert feed.entries[0].published == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)


def test_google_alerts_titles_lose_markup_and_links_unwrap() -> None:
    feed = parse_feed((WILD / "google-alerts.atom.xml").read_bytes(), url=_url("google-alerts.atom.xml"))
    items = [normalize_entry(e, feed_url=_url("g"), now=NOW) for e in feed.entries]
    assert all("<b>" not in i.title for i in items)
    assert all(i.link and not i.link.startswith("https://www.google.com/url") for i in items)


def test_huffpost_cdata_whitespace_is_trimmed() -> None:
    feed = parse_feed((WILD / "huffpost-canada.rss.xml").read_bytes(), url=_url("huffpost"))
    items = [normalize_entry(e, feed_url=_url("h"), now=NOW) for e in feed.entries]
    assert all(i.title == i.title.strip() and "  " not in i.title for i in items)


def test_illegally_nested_empty_items_are_dropped() -> None:
    feed = parse_feed((WILD / "pcmag-illegally-nested.rss.xml").read_bytes(), url=_url("pcmag"))
    assert len(feed.entries) == 10
    assert all(e.title for e in feed.entries)
