"""normalize: canonical URLs, HTML to text, dates, fingerprints. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.domain import Entry
from monitor.ingest.normalize import canonical_url, html_to_text, normalize_entry

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
FEED = "https://feeds.example.org/feed.xml"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM:443/a/B?z=1&a=2#top", "https://news.example.com/a/B?a=2&z=1"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=1&ref=tw",
         "https://example.com/a?id=7"),
        ("https://example.com/a?mc_cid=1&mc_eid=2&cmpid=3", "https://example.com/a"),
        ("https://user:pw@example.com/a", "https://example.com/a"),
        ("https://www.google.com/url?rct=j&sa=t&url=https://www.example.org/story%3Fid%3D5%26utm_source%3Dx"
         "&ct=ga&usg=AFQ", "https://www.example.org/story?id=5"),
        ("http://[::1]:80/", "http://[::1]/"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("  https://example.com/sp ace  ", "https://example.com/sp ace"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_makes_tracking_variants_equal() -> None:
    a = canonical_url("https://example.com/story?b=2&a=1&utm_campaign=x")
    b = canonical_url("https://EXAMPLE.com/story?a=1&b=2#comments")
    assert a == b


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Hello&nbsp;<b>world</b> &amp; co</p><p>Second\n  para</p>", "Hello world & co\nSecond para"),
        ("<script>alert(1)</script><style>p{}</style>Text", "Text"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("Blog &#8211; InfluxData", "Blog – InfluxData"),
        ("\n\t  Report on <b>Slack</b>  \n", "Report on Slack"),
        ("plain text\n\nwith paragraphs", "plain text\nwith paragraphs"),
        ("a < b and c > d", "a < b and c > d"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_normalize_entry_text_fields_and_link() -> None:
    entry = Entry(
        title="  Kim <b>meets</b>\n Putin ",
        link="https://News.example.org/a?utm_source=rss",
        guid="g1",
        summary="<p>Talks &amp; a banquet.</p>",
        content="<div>Long</div><div>body</div>",
        published=datetime(2025, 6, 10, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        author="<i>Desk</i>",
    )
    item = normalize_entry(entry, feed_url=FEED, now=NOW)
    assert item.title == "Kim meets Putin"
    assert item.link == "https://news.example.org/a"
    assert item.summary == "Talks & a banquet."
    assert item.content == "Long\nbody"
    assert item.author == "Desk"
    assert item.published_at == datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert item.published_at is not None and item.published_at.tzinfo is UTC
    assert item.feed_url == FEED
    assert item.fetched_at == NOW


def test_far_future_dates_are_clamped_to_now_but_small_skew_is_kept() -> None:
    soon = NOW + timedelta(hours=20)
    far = NOW + timedelta(days=3)
    assert normalize_entry(Entry(title="t", published=soon), feed_url=FEED, now=NOW).published_at == soon
    assert normalize_entry(Entry(title="t", published=far), feed_url=FEED, now=NOW).published_at == NOW


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        normalize_entry(Entry(title="t"), feed_url=FEED, now=datetime(2025, 6, 10))


def test_same_link_from_two_feeds_is_one_fingerprint() -> None:
    a = normalize_entry(Entry(title="A", link="https://example.org/s?utm_source=a", guid="1"),
                        feed_url="https://one.example/feed", now=NOW)
    b = normalize_entry(Entry(title="B", link="https://EXAMPLE.org/s#x", guid="99"),
                        feed_url="https://two.example/feed", now=NOW)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint.startswith("link:")


def test_google_alert_redirect_and_direct_link_share_a_fingerprint() -> None:
    wrapped = "https://www.google.com/url?rct=j&sa=t&url=https://www.example.org/story&ct=ga"
    a = normalize_entry(Entry(title="x", link=wrapped), feed_url=FEED, now=NOW)
    b = normalize_entry(Entry(title="y", link="https://www.example.org/story"), feed_url=FEED, now=NOW)
    assert a.fingerprint == b.fingerprint


def test_guid_fingerprints_are_scoped_by_feed() -> None:
    a = normalize_entry(Entry(title="t", guid="1234"), feed_url="https://one.example/feed", now=NOW)
    b = normalize_entry(Entry(title="t", guid="1234"), feed_url="https://two.example/feed", now=NOW)
    again = normalize_entry(Entry(title="other", guid="1234"), feed_url="https://one.example/feed", now=NOW)
    assert a.fingerprint.startswith("guid:")
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == again.fingerprint


def test_hash_fingerprint_ignores_markup_case_and_spacing() -> None:
    a = normalize_entry(Entry(title="Talks  <b>held</b>", summary="In Beijing."), feed_url=FEED, now=NOW)
    b = normalize_entry(Entry(title="talks held", summary=" in  beijing. "), feed_url=FEED, now=NOW)
    c = normalize_entry(Entry(title="talks held", summary="in Moscow."), feed_url=FEED, now=NOW)
    assert a.fingerprint.startswith("hash:")
    assert a.fingerprint == b.fingerprint != c.fingerprint
