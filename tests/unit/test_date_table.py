"""Date table: the date string a feed carries + the feed's language -> the instant it means.

Run through ``parse_feed`` (RSS ``pubDate``/``<language>``, JSON Feed ``date_published``/``language``)
so the same table shows what a reader gets, whichever format the feed uses. Shapes are the ones
Korean, Chinese, Japanese and Russian news sites emit. A zone-less local date is read in the zone
of the feed's language (a Korean site's ``2024.06.10 09:00`` is Seoul time); an ambiguous
abbreviation (CST) is resolved the same way. ``None``: the feed carries no usable date (the
item is dated when first seen, see ``test_normalize``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest

from monitor.ingest import dates
from monitor.ingest.parse import parse_feed

URL = "https://news.example.org/rss"


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


CASES: list[tuple[str, str | None, datetime | None]] = [
    # Korean
    ("2024.06.10 09:00:00", "ko", _utc(2024, 6, 10, 0, 0)),
    ("2024. 6. 10. 오후 3:00:00", "ko", _utc(2024, 6, 10, 6, 0)),
    ("2024. 6. 10. 오전 9:05", "ko", _utc(2024, 6, 10, 0, 5)),
    ("2004년 05월 28일 01:31:15", "ko", _utc(2004, 5, 27, 16, 31, 15)),
    ("2004-05-25 오후 11:23:17", "ko", _utc(2004, 5, 25, 14, 23, 17)),
    ("2024/06/10 09:00:00 +0900", "ko", _utc(2024, 6, 10, 0, 0)),
    ("Mon Jun 10 09:00:00 KST 2024", "ko", _utc(2024, 6, 10, 0, 0)),
    ("Mon Jun 10 09:00:00 KST 2024", "en", _utc(2024, 6, 10, 0, 0)),
    ("Mon, 10 Jun 2024 09:00:00 KST", None, _utc(2024, 6, 10, 0, 0)),
    ("2024-06-10 09:00:00", "ko-KR", _utc(2024, 6, 10, 0, 0)),
    # Chinese
    ("2024年6月10日", "zh-cn", _utc(2024, 6, 9, 16, 0)),
    ("2024年06月10日 09:00", "zh", _utc(2024, 6, 10, 1, 0)),
    ("2024年6月10日 下午3:30", "zh-CN", _utc(2024, 6, 10, 7, 30)),
    ("Mon Jun 10 09:00:00 CST 2024", "zh-cn", _utc(2024, 6, 10, 1, 0)),
    ("Mon, 10 Jun 2024 09:00:00 CST", "zh", _utc(2024, 6, 10, 1, 0)),
    ("Mon, 10 Jun 2024 09:00:00 CST", "en-us", _utc(2024, 6, 10, 15, 0)),
    ("Mon, 10 Jun 2024 09:00:00 GMT+8", "zh", _utc(2024, 6, 10, 1, 0)),
    ("2024-06-10 09:00:00 UTC+8", None, _utc(2024, 6, 10, 1, 0)),
    ("Mon, 10 Jun 2024 09:00:00 GMT+08:00", None, _utc(2024, 6, 10, 1, 0)),
    ("2024/06/10 09:00", "zh-TW", _utc(2024, 6, 10, 1, 0)),
    # Japanese
    ("2024年6月10日 9時05分", "ja", _utc(2024, 6, 10, 0, 5)),
    ("2024/06/10 09:00:00 JST", "ja", _utc(2024, 6, 10, 0, 0)),
    # Russian
    ("10 июня 2024 09:00", "ru", _utc(2024, 6, 10, 6, 0)),
    ("10 июня 2024, 09:00 MSK", "ru", _utc(2024, 6, 10, 6, 0)),
    ("3 марта 2024 г. 18:45", "ru-RU", _utc(2024, 3, 3, 15, 45)),
    ("10.06.2024 09:00", "ru", _utc(2024, 6, 10, 6, 0)),
    ("10.06.2024 09:00:00 +0300", "ru", _utc(2024, 6, 10, 6, 0)),
    ("Пн, 10 июн 2024 09:00:00 +0300", "ru", _utc(2024, 6, 10, 6, 0)),
    ("Mon, 10 Jun 2024 09:00:00 MSK", None, _utc(2024, 6, 10, 6, 0)),
    # Shapes every format shares
    ("2024-06-10T09:00:00+09:00", "en", _utc(2024, 6, 10, 0, 0)),
    ("2024-11-01T10:00:00Z", "en", _utc(2024, 11, 1, 10, 0)),  # a real 1 November stays
    ("Fri, 01 Nov 2024 10:00:00 GMT", "en", _utc(2024, 11, 1, 10, 0)),
    ("Mon, 10 Jun 2024 09:00:00 +0000", "en", _utc(2024, 6, 10, 9, 0)),
    ("Tue, 10 Jun 2025 10:00:00 CEST", "de", _utc(2025, 6, 10, 8, 0)),
    ("June 10, 2024 9:00 AM EDT", "en", _utc(2024, 6, 10, 13, 0)),
    ("2024", "ko", None),  # a bare year is not a date (feedparser: 1 November)
    ("Mon, 01 Jan 0001 00:00:00 +0100", "en", None),
    ("9999-12-31T23:59:59-01:00", "en", None),
    ("not a date", "en", None),
]


# Further shapes from the same sites (added after the fix; the table above was written before it).
CASES += [
    ("20240610T090000Z", None, _utc(2024, 6, 10, 9, 0)),
    ("星期一, 10 六月 2024 09:00:00 +0800", "zh", _utc(2024, 6, 10, 1, 0)),
    ("월, 10 6월 2024 09:00:00 +0900", "ko", _utc(2024, 6, 10, 0, 0)),
    ("2024년 6월 10일 (월) 오후 3:05", "ko", _utc(2024, 6, 10, 6, 5)),
    ("24.06.10 09:00", "ko", _utc(2024, 6, 10, 0, 0)),
    ("10.06.24 09:00", "ru", _utc(2024, 6, 10, 6, 0)),
    ("10 Июня 2024 года, 09:00", "ru", _utc(2024, 6, 10, 6, 0)),
    ("Mon Jun 10 2024 09:00:00 GMT+0800 (中国标准时间)", "zh", _utc(2024, 6, 10, 1, 0)),
    ("2024/6/10 下午 09:00:00", "zh", _utc(2024, 6, 10, 13, 0)),
    ("2024-06-10 09:00:00.0", "zh-cn", _utc(2024, 6, 10, 1, 0)),
    ("10-Jun-2024 09:00", "en", _utc(2024, 6, 10, 9, 0)),
    ("10 de junho de 2024 09:00", "pt", _utc(2024, 6, 10, 9, 0)),
]


def _rss(date: str, language: str | None) -> bytes:
    lang = f"<language>{language}</language>" if language else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{lang}'
            f"<item><title>Item</title><link>https://news.example.org/1</link>"
            f"<pubDate>{escape(date)}</pubDate></item></channel></rss>").encode()


def _json(date: str, language: str | None) -> bytes:
    doc: dict[str, object] = {"version": "https://jsonfeed.org/version/1.1", "title": "T",
                              "items": [{"id": "1", "url": "https://news.example.org/1", "title": "Item",
                                         "date_published": date}]}
    if language:
        doc["language"] = language
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.mark.parametrize(("text", "language", "expected"), CASES, ids=[f"{t}|{lang}" for t, lang, _ in CASES])
def test_rss_dates(text: str, language: str | None, expected: datetime | None) -> None:
    (entry,) = parse_feed(_rss(text, language), url=URL).entries
    assert entry.published == expected


@pytest.mark.parametrize(("text", "language", "expected"), CASES, ids=[f"{t}|{lang}" for t, lang, _ in CASES])
def test_json_feed_dates(text: str, language: str | None, expected: datetime | None) -> None:
    (entry,) = parse_feed(_json(text, language), url=URL).entries
    assert entry.published == expected


def _outcome(read: Callable[[], datetime | None]) -> object:
    try:
        return read()
    except (OverflowError, ValueError, OSError):
        return "refused"


def test_common_shapes_read_directly_agree_with_the_general_parser() -> None:
    # RFC 822 and RFC 3339 dates with an explicit zone are read by a shortcut; whatever it reads must
    # be what the general parser reads, in every feed zone and language (edge values included).
    rng = random.Random(822)
    zones = [None, ZoneInfo("Asia/Seoul"), ZoneInfo("America/New_York")]
    days = ["0", "00", "1", "01", "9", "28", "29", "30", "31", "32", "39"]
    years = ["0000", "0001", "1899", "1970", "2000", "2024", "2025", "9999"]
    offsets = ["+0000", "-0000", "+0900", "-0530", "+1800", "+1801", "-2359", "+0099", "GMT", "UT", "UTC", "Z"]
    weekdays = ["", "Mon, ", "Sun, "]
    months = ["Jan", "Feb", "Jun", "Dec"]
    checked = 0
    for _ in range(3000):
        clock = f"{rng.choice(['00', '09', '12', '23'])}:{rng.choice(['00', '30', '59'])}:{rng.choice(['00', '59'])}"
        rfc822 = f"{rng.choice(weekdays)}{rng.choice(days)} {rng.choice(months)} {rng.choice(years)} {clock} " \
                 f"{rng.choice(offsets)}"
        offset = rng.choice(["Z", "+00:00", "-00:00", "+09:00", "-05:30", "+18:00", "+18:01", "+23:59", "+00:99"])
        rfc3339 = f"{rng.choice(years)}-{rng.choice(['00', '01', '02', '06', '12', '13'])}-" \
                  f"{rng.choice(days).zfill(2)[-2:]}T{clock}{rng.choice(['', '.5', '.123456789'])}{offset}"
        for text in (rfc822, rfc3339):
            direct = _outcome(lambda t=text: dates._common(t))
            if direct is None:
                continue
            checked += 1
            for zone in zones:
                for language in ("", "en", "ko"):
                    general = _outcome(lambda t=text, z=zone, lang=language: dates._parse(t, z, lang))
                    assert direct == general, (text, zone, language)
    assert checked > 4000
