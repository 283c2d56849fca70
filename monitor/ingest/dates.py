"""Feed date strings to instants: one parser for RSS, Atom, RDF and JSON Feed.

Pure: strings in, UTC datetimes out; never reads the clock. Feeds write dates
in many local shapes that generic parsers misread: feedparser's fallback turns
any string starting with a four-digit year into 1 November of that year, reads
``CST`` as US Central in a Chinese feed, and drops ``GMT+8`` or Russian month
names. The parser here reads a date as three parts found in the string:

* a **date**: ``YYYY-MM-DD`` with any of ``- / .`` or 年/월/년/月 as separators
  (``2024. 6. 10.``, ``2024年6月10日``, ``2004년 05월 28일``), ``DD.MM.YYYY``, and
  day / month name / year in either order, with month names in English, German,
  French, Spanish, Italian, Portuguese and Russian (genitive too: ``10 июня``);
* a **time**: ``H:MM[:SS]`` (also 時/分, 시/분), with AM/PM written as
  AM/PM, 오전/오후, 上午/下午 or 午前/午後;
* a **zone** right after the time: ``Z``, ``+0900``, ``+09:00``, ``GMT+8``,
  ``UTC+08:00``, or an abbreviation (``KST``, ``MSK``, ``CEST`` ...). This also
  covers Java's ``Mon Jun 10 09:00:00 CST 2024``.

Ambiguous abbreviations and zone-less local dates are read in the feed's zone:
the per-feed ``timezone:`` setting, else the zone of the feed's language (a
Korean feed's ``2024.06.10 09:00`` is Seoul time; ``CST`` in a Chinese feed is
China Standard Time, UTC+8). An abbreviation is taken from that zone when the
zone itself uses it at that date, else from :data:`ZONE_HOURS`. A zone-less
date in a feed of another language is read as UTC.

Shapes none of this reads go to feedparser's date handlers, whose result is
refused when it is the 1-November artefact. ``None`` means no usable date;
deciding what is plausible (not before 1990, not in the future) is
normalisation's job, which knows the time.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ZONE_HOURS", "feed_zone", "guess_language", "parse_date"]

# Zone abbreviations with offsets in hours. Ambiguous ones take the reading
# common in English-language news unless the feed's zone says otherwise.
ZONE_HOURS: dict[str, float] = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2,
    "MET": 1, "MEST": 2, "MEZ": 1, "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3, "MSD": 4, "IST": 5.5, "PKT": 5,
    "ICT": 7, "WIB": 7, "HKT": 8, "SGT": 8, "AWST": 8, "PHT": 8, "MYT": 8, "JST": 9, "KST": 9, "ACST": 9.5,
    "AEST": 10, "AEDT": 11, "VLAT": 10, "NZST": 12, "NZDT": 13, "HST": -10, "AKST": -9, "AKDT": -8,
    "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4,
    "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5, "BRT": -3, "ART": -3,
}
# The zone a feed in this language most likely writes local times in.
LANGUAGE_ZONES: dict[str, str] = {
    "ko": "Asia/Seoul", "ja": "Asia/Tokyo", "zh": "Asia/Shanghai", "zh-cn": "Asia/Shanghai",
    "zh-sg": "Asia/Singapore", "zh-tw": "Asia/Taipei", "zh-hk": "Asia/Hong_Kong", "zh-mo": "Asia/Macau",
    "zh-hant": "Asia/Taipei", "zh-hans": "Asia/Shanghai", "ru": "Europe/Moscow", "be": "Europe/Minsk",
    "uk": "Europe/Kyiv", "kk": "Asia/Almaty", "mn": "Asia/Ulaanbaatar", "vi": "Asia/Ho_Chi_Minh",
}
_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "jan january ene enero gen gennaio janv janvier jän januar janeiro янв январь января",
        "feb february fev fév févr février febbraio febrero februar fevereiro фев февраль февраля",
        "mar march mär märz mrz mars marzo março мар март марта",
        "apr april abr abril avr avril aprile апр апрель апреля",
        "may mai mag maggio mayo maio май мая",
        "jun june giu giugno juin junio juni junho июн июнь июня",
        "jul july lug luglio juil juillet julio juli julho июл июль июля",
        "aug august ago agosto août aoû agosto авг август августа",
        "sep sept september set settembre septembre septiembre setembro сен сент сентябрь сентября",
        "oct october out ott ottobre okt oktober octobre octubre outubro окт октябрь октября",
        "nov november novembre noviembre novembro ноя нояб ноябрь ноября",
        "dec december dez dic dicembre déc décembre diciembre dezember dezembro дек декабрь декабря",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_PM_MARKERS = ("오후", "下午", "午後", "晚上")
_AM_MARKERS = ("오전", "上午", "午前", "凌晨", "早上")
# CJK date/time units -> separators the patterns below read.
_UNITS = str.maketrans({"年": "-", "년": "-", "月": "-", "월": "-", "日": " ", "일": " ", "號": " ", "号": " ",
                        ",": " ", "，": " ", "\u3000": " "})
# 9時05分, 3시 30분 -> 9:05:00
_CJK_TIME = re.compile(r"(?<!\d)(\d{1,2})\s*[時时시]\s*(?:(\d{1,2})\s*[分분]\s*)?(?:(\d{1,2})\s*[秒초])?")
# Month names written with CJK numerals (六月, 十二月), as localised RFC 822 dates have them.
_CN_NUMERAL = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
               "十一": 11, "十二": 12}
_CN_MONTH = re.compile(r"(十[一二]?|[一二三四五六七八九])(?=月)")
# "10 6월 2024" / "10 6月 2024": day, numbered month, year (localised RFC 822).
_D_NUM_MONTH_Y = re.compile(r"(?<!\d)(\d{1,2})\s+(\d{1,2})\s*[月월]\s+(\d{4})(?!\d)")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_YY_MM_DD = re.compile(r"(?<![\d.])(\d{2})([./-])(\d{2})\2(\d{2})(?![\d.])")
_WEEKDAY_CJK = re.compile(r"[(（]\s*[月火水木金土日一二三四五六天월화수목금토일]\s*[)）]"
                          r"|(?:星期|周|週)[一二三四五六日天]|[월화수목금토일]요일|[月火水木金土日]曜日")
_ISO_T = re.compile(r"(?<=\d)T(?=\d)")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d{1,9})?(?![\d:])")
_AFTER_TIME = re.compile(
    r"\s*(?:(?P<ampm>[ap])\.?m\.?(?![a-z]))?\s*\(?\s*"
    r"(?P<zone>Z(?![a-z])|(?:GMT|UTC|UT)?\s*[+-]\s*\d{1,2}(?::?\d{2})?(?!\d)|[A-Z]{2,5}(?![A-Za-z]))?",
    re.IGNORECASE,
)
_OFFSET = re.compile(r"^(?:GMT|UTC|UT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_YMD = re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)")
_DMY = re.compile(r"(?<!\d)(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*[-/.]\s*(\d{4})(?!\d)")
_D_MON_Y = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?\.?[\s-]*(?:de\s+)?([^\W\d_]{3,12})\.?"
                      r"(?:\s+de\s+|[\s,-]+)(\d{4}|\d{2})(?!\d)")
_MON_D_Y = re.compile(r"([^\W\d_]{3,12})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s+(?:[A-Za-z]{1,5}\s+)?(\d{4})(?!\d)")
_LANG_SCRIPT = (
    (re.compile(r"[\uac00-\ud7a3]"), "ko"),
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\u4e00-\u9fff]"), "zh"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
)


def guess_language(text: str) -> str | None:
    """A language from the script of ``text`` (Hangul, Kana, Han, Cyrillic); for feeds that declare none."""
    sample = text[:2000]
    for pattern, language in _LANG_SCRIPT:
        if pattern.search(sample):
            return language
    return None


@lru_cache(maxsize=64)
def feed_zone(setting: str | None = None, language: str | None = None) -> tzinfo | None:
    """The zone for a feed's zone-less dates: its ``timezone:`` setting, else its language's; else None (UTC)."""
    if setting:
        try:
            return ZoneInfo(setting)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if language:
        key = language.strip().lower().replace("_", "-")
        name = LANGUAGE_ZONES.get(key) or LANGUAGE_ZONES.get(key.split("-", 1)[0])
        if name:
            return ZoneInfo(name)
    return None


def parse_date(text: str | None, *, zone: tzinfo | None = None, language: str | None = None) -> datetime | None:
    """The instant ``text`` names, in UTC; ``None`` when it names none.

    ``zone`` is the feed's zone (see :func:`feed_zone`); ``language`` is used for it
    when ``zone`` is not given, and to read ``01/02/2024`` month-first in English feeds.
    """
    if not text or len(text) > 200:
        return None
    if zone is None and language:
        zone = feed_zone(None, language)
    text = " ".join(text.split())
    try:
        common = _common(text)
        return common if common is not None else _parse(text, zone, (language or "").lower())
    except (OverflowError, ValueError, OSError):
        return None


# The two shapes nearly every feed writes, with an explicit zone: RFC 822 (RSS) and RFC 3339 (Atom,
# dc:date). Read directly they cost a fifth of the general path, with the same result, which
# tests/unit/test_date_table.py checks against it; any variation (other zones, no seconds, names
# in another language or case) takes the general path.
_RFC822 = re.compile(r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-3]?\d) "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
                     r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d) (?:(GMT|UTC|UT|Z)|([+-])(\d\d)(\d\d))")
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(?:\.\d{1,9})?"
                      r"(?:(Z)|([+-])(\d\d):(\d\d))")
_MONTH_ABBR = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def _common(text: str) -> datetime | None:
    """``text`` read as RFC 822 or RFC 3339 with an explicit zone; None when it is neither."""
    match = _RFC822.fullmatch(text)
    if match:
        day, month_name, year, hour, minute, second, utc, sign, zone_hours, zone_minutes = match.groups()
        month = _MONTH_ABBR[month_name]
    else:
        match = _RFC3339.fullmatch(text)
        if not match:
            return None
        year, month_text, day, hour, minute, second, utc, sign, zone_hours, zone_minutes = match.groups()
        month = int(month_text)
    zone: tzinfo = UTC
    if not utc:
        minutes = int(zone_hours) * 60 + int(zone_minutes)
        if minutes > 18 * 60:
            return None  # not an offset: the general path decides
        zone = timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
    return datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone).astimezone(UTC)


def _parse(text: str, zone: tzinfo | None, language: str) -> datetime | None:
    original = text
    pm = any(m in text for m in _PM_MARKERS)
    am = any(m in text for m in _AM_MARKERS)
    for marker in (*_PM_MARKERS, *_AM_MARKERS):
        text = text.replace(marker, " ")
    text = _WEEKDAY_CJK.sub(" ", text)
    compact = _COMPACT.match(text)
    if compact:
        return _compact(compact, zone)
    text = _CN_MONTH.sub(lambda m: str(_CN_NUMERAL[m.group(1)]), text)
    text = _D_NUM_MONTH_Y.sub(lambda m: f"{m[3]}-{m[2]}-{m[1]}", text)
    text = _CJK_TIME.sub(lambda m: f" {m[1]}:{m[2] or '00'}:{m[3] or '00'} ", text)
    text = _ISO_T.sub(" ", text.translate(_UNITS))
    hour = minute = second = 0
    zone_text: str | None = None
    found = _TIME.search(text)
    if found:
        hour, minute, second = int(found[1]), int(found[2]), int(found[3] or 0)
        after = _AFTER_TIME.match(text, found.end())
        end = found.end()
        if after:
            if after["ampm"]:
                pm, am = after["ampm"].lower() == "p", after["ampm"].lower() == "a"
            zone_text = after["zone"]
            end = after.end()
        text = text[: found.start()] + " " + text[end:]
    if pm and hour < 12:
        hour += 12
    elif am and hour == 12:
        hour = 0
    day = _date_parts(text, language)
    if day is None:
        return _fallback(original)
    year, month, mday = day
    wall = datetime(year, month, mday, hour, minute, second, tzinfo=UTC)  # the wall-clock fields; zone below
    return wall.replace(tzinfo=_zone(zone_text, wall.replace(tzinfo=None), zone)).astimezone(UTC)


def _compact(match: re.Match[str], zone: tzinfo | None) -> datetime:
    """``20240610``, ``20240610T090000Z``: ISO 8601's basic format."""
    y, mo, d, h, mi, sec, zone_text = match.groups()
    wall = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), tzinfo=UTC)
    return wall.replace(tzinfo=_zone(zone_text, wall.replace(tzinfo=None), zone)).astimezone(UTC)


def _date_parts(text: str, language: str) -> tuple[int, int, int] | None:
    ymd = _YMD.search(text)
    if ymd:
        return int(ymd[1]), int(ymd[2]), int(ymd[3])
    dmy = _DMY.search(text)
    if dmy:
        first, second = int(dmy[1]), int(dmy[3])
        if dmy[2] == "/" and language.startswith("en") and first <= 12:
            first, second = second, first  # US month-first
        return int(dmy[4]), second, first
    short = _YY_MM_DD.search(text)
    if short:
        first, middle, last = int(short[1]), int(short[3]), int(short[4])
        if language[:2] in ("ko", "ja", "zh"):  # 24.06.10: year first
            return 2000 + first, middle, last
        return _year(short[4]), middle, first  # 10.06.24: day first
    for match in _D_MON_Y.finditer(text):
        month = _month(match[2])
        if month:
            return _year(match[3]), month, int(match[1])
    for match in _MON_D_Y.finditer(text):
        month = _month(match[1])
        if month:
            return int(match[3]), month, int(match[2])
    return None


def _month(name: str) -> int | None:
    key = name.lower().rstrip(".")
    return _MONTHS.get(key) or _MONTHS.get(key[:3]) or _MONTHS.get(key[:4])


def _year(digits: str) -> int:
    year = int(digits)
    if len(digits) == 2:  # RFC 2822 section 4.3
        year += 2000 if year < 50 else 1900
    return year


def _zone(name: str | None, local: datetime, feed: tzinfo | None) -> tzinfo:
    """The zone a date's own zone text names, resolved against the feed's zone when ambiguous."""
    if not name:
        return feed or UTC
    name = name.strip()
    offset = _OFFSET.match(name)
    if offset:
        minutes = int(offset[2]) * 60 + int(offset[3] or 0)
        if minutes > 18 * 60:
            return feed or UTC
        return timezone(timedelta(minutes=minutes if offset[1] == "+" else -minutes))
    upper = name.upper()
    if upper in ("Z", "UT", "UTC", "GMT"):
        return UTC
    if feed is not None and feed.tzname(local) == upper:
        return feed
    if upper in ZONE_HOURS:
        return timezone(timedelta(hours=ZONE_HOURS[upper]))
    return feed or UTC  # an unknown word after the time: the feed's own zone


def _fallback(text: str) -> datetime | None:
    """feedparser's handlers for the shapes the above does not read, minus its 1-November artefact."""
    if len(re.findall(r"\d+", text)) < 2:  # a bare year or number is not a date
        return None
    from feedparser.datetimes import _parse_date as feedparser_date

    parsed: time.struct_time | None = feedparser_date(text)
    if parsed is None:
        return None
    if parsed.tm_mon == 11 and parsed.tm_mday == 1 and not re.search(r"11|nov|ноя", text, re.IGNORECASE):
        return None
    return datetime(*parsed[:6], tzinfo=UTC)
