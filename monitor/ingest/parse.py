"""Feed documents (bytes) to :class:`~monitor.domain.ParsedFeed` values.

Owns format detection and reading: RSS 0.9x/1.0/2.0, RDF and Atom through
feedparser, JSON Feed 1.0/1.1 through :mod:`json`. Pure: bytes in, values out.
It must not do I/O, read the clock or settings, or import httpx; it leaves HTML
in summaries and titles for :mod:`monitor.ingest.normalize` to turn into text.

Safety:

* feedparser is handed an ``io.BytesIO``, never ``str`` or ``bytes``: given a
  string it may fetch it as a URL, and given bytes it first tries
  ``open(bytes)`` as a *file name*.
* A document whose DOCTYPE declares entities (``<!ENTITY``) is refused before
  feedparser sees it. Feeds have no use for entity declarations; they are how
  billion-laughs and external-entity attacks are written. Refusing is simpler
  and safer than stripping the DOCTYPE, which would leave the document's
  ``&name;`` references undefined anyway.
* At most :data:`MAX_ENTRIES` entries are kept per feed (the first ones, which
  in practice are the newest).

Dates: feedparser reads unknown zone names (CEST, IST, JST, ...) as UTC and
misreads ``2020/1/10 14:33:00`` as 1 November. Strings of those shapes are
parsed here; everything else uses feedparser's result. ``Entry.published`` is
timezone-aware UTC or ``None``. Dates are not compared with "now" here; that
is normalisation's job, which is given the time.
"""

from __future__ import annotations

import calendar
import io
import json
import re
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.domain import Entry, ParsedFeed
from monitor.errors import ParseError

__all__ = ["MAX_ENTRIES", "parse_feed"]

MAX_ENTRIES = 500

# Zone names seen in real feeds, with offsets in hours. feedparser knows only
# the US ones and reads the rest as UTC. Ambiguous names take the reading most
# common in news feeds: IST is India, CST is US Central (as feedparser reads it).
_ZONE_HOURS: dict[str, float] = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2,
    "MET": 1, "MEST": 2, "MEZ": 1, "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3, "IST": 5.5, "PKT": 5,
    "ICT": 7, "WIB": 7, "HKT": 8, "SGT": 8, "AWST": 8, "PHT": 8, "JST": 9, "KST": 9, "ACST": 9.5,
    "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "HST": -10, "AKST": -9, "AKDT": -8,
    "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4,
    "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5, "BRT": -3, "ART": -3,
}
# Month abbreviations in English and the languages of the feeds monitor reads
# (pt, es, it, fr, de); feedparser knows only English ones.
_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "jan ene gen janv jän", "feb fev fév févr", "mar mär mrz mars", "apr abr avr",
        "may mai mag", "jun giu juin", "jul lug juil", "aug ago août aoû",
        "sep set sept", "oct out ott okt", "nov", "dec dez dic déc",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number
_RFC822ISH = re.compile(
    r"^(?:[^\W\d]+\.?,?\s+)?(?P<d>\d{1,2})\s+(?P<mon>[^\W\d]{3,5})\.?\s+(?P<y>\d{2}|\d{4})"
    r"\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"(?:\s*(?P<off>[+-]\d{2}:?\d{2})|\s+(?P<zone>[A-Za-z]{1,5}))?\s*$"
)
_SLASH_DATE = re.compile(
    r"^\s*(?P<y>\d{4})/(?P<mo>\d{1,2})/(?P<d>\d{1,2})"
    r"(?:[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?\s*$"
)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_JSON_TYPES = ("application/feed+json", "application/json", "text/json")


def parse_feed(content: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a feed document fetched from ``url``.

    ``content_type`` is the HTTP Content-Type (its charset is honoured). Raises
    :class:`ParseError` naming ``url`` when the bytes are not a feed.
    """
    if not content or not content.strip():
        raise ParseError(f"{url}: empty document, not a feed", url=url)
    if _looks_like_json(content, content_type):
        return _parse_json_feed(content, url=url)
    _refuse_entities(content, url=url)
    return _parse_xml_feed(content, url=url, content_type=content_type)


# --------------------------------------------------------------------------- XML


def _looks_like_json(content: bytes, content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES:
        return True
    return content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _refuse_entities(content: bytes, *, url: str) -> None:
    probe = content
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: look at it as UTF-8
        probe = content.decode("utf-16", "replace").encode("utf-8")
    doctype = _DOCTYPE.search(probe)
    if doctype is not None and _ENTITY.search(probe, doctype.start()):
        raise ParseError(
            f"{url}: the document declares XML entities in its DOCTYPE; refused "
            "(entity expansion attacks), feeds have no need for them",
            url=url,
        )


def _parse_xml_feed(content: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # sanitize_html off: normalisation turns all HTML into text anyway, and the
    # sanitiser is the slowest part of feedparser on large HTML bodies.
    result = feedparser.parse(io.BytesIO(content), response_headers=headers, sanitize_html=False)
    raw_entries = list(result.entries)
    feed = result.feed
    feed_link = _absolute(feed.get("link"), url)
    entries: list[Entry] = []
    for raw in raw_entries:
        entry = _xml_entry(raw, url=url, feed_link=feed_link)
        if entry is not None:
            entries.append(entry)
            if len(entries) >= MAX_ENTRIES:
                break
    if not entries:
        # A feed with no entries is fine; a document that broke before its first
        # readable entry, or that no format claims (an HTML page), is not.
        reason = result.get("bozo_exception")
        if isinstance(reason, xml.sax.SAXException):
            raise ParseError(f"{url}: broken feed document with no readable entries ({reason})", url=url)
        if not result.get("version"):
            raise ParseError(
                f"{url}: not a feed (no RSS, Atom, RDF or JSON Feed document found; an HTML page?)",
                url=url,
            )
    return ParsedFeed(
        title=_clean(feed.get("title")),
        link=feed_link,
        entries=tuple(entries),
        ttl_minutes=_int(feed.get("ttl")),
    )


def _xml_entry(raw: Mapping[str, Any], *, url: str, feed_link: str | None) -> Entry | None:
    link = _absolute(raw.get("link"), url)
    if link is None:
        for candidate in raw.get("links") or ():
            if candidate.get("rel", "alternate") == "alternate":
                link = _absolute(candidate.get("href"), url)
                if link:
                    break
    content_parts = [str(c.get("value") or "") for c in raw.get("content") or ()]
    content = "\n".join(p for p in content_parts if p.strip()).strip()
    summary = _clean(raw.get("summary"))
    if content == summary:
        content = ""
    title = _clean(raw.get("title"))
    if not (title or link or content or summary):
        return None
    return Entry(
        title=title,
        link=link,
        guid=_clean(raw.get("id")) or None,
        summary=summary,
        content=content,
        published=_entry_date(raw),
        author=_clean(raw.get("author")) or None,
    )


def _entry_date(raw: Mapping[str, Any]) -> datetime | None:
    for key in ("published", "updated", "created"):
        text = raw.get(key)
        parsed = raw.get(f"{key}_parsed")
        if not text and not parsed:
            continue
        mine = parse_date(str(text)) if text else None
        if mine is not None:
            return mine
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                return None
    return None


def parse_date(text: str) -> datetime | None:
    """Dates feedparser gets wrong; ``None`` for other shapes (feedparser's reading is used then).

    Handles RFC 822-like dates with any zone name in :data:`_ZONE_HOURS` and
    month names in several languages (``Seg, 24 Set 2018 19:42:40 -0300``),
    and ``YYYY/M/D h:m:s``, which has no zone and is read as UTC.
    """
    text = " ".join(text.split())
    slash = _SLASH_DATE.match(text)
    if slash:
        return _datetime(slash["y"], slash["mo"], slash["d"], slash["h"], slash["mi"], slash["s"], 0.0)
    rfc = _RFC822ISH.match(text)
    if not rfc:
        return None
    month = _MONTHS.get(rfc["mon"].lower()) or _MONTHS.get(rfc["mon"].lower()[:3])
    if month is None:
        return None
    if rfc["off"]:
        digits = rfc["off"].replace(":", "")
        sign = -1 if digits[0] == "-" else 1
        hours = sign * (int(digits[1:3]) + int(digits[3:5]) / 60)
    elif rfc["zone"]:
        if rfc["zone"].upper() not in _ZONE_HOURS:
            return None
        hours = _ZONE_HOURS[rfc["zone"].upper()]
    else:
        hours = 0.0
    year = int(rfc["y"])
    if len(rfc["y"]) == 2:  # RFC 2822 section 4.3
        year += 2000 if year < 50 else 1900
    return _datetime(str(year), str(month), rfc["d"], rfc["h"], rfc["mi"], rfc["s"], hours)


def _datetime(y: str, mo: str, d: str, h: str | None, mi: str | None, s: str | None,
              offset_hours: float) -> datetime | None:
    try:
        local = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                         tzinfo=timezone(timedelta(hours=offset_hours)))
    except ValueError:
        return None
    return local.astimezone(UTC)


# --------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(content: bytes, *, url: str) -> ParsedFeed:
    try:
        doc = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"{url}: malformed JSON Feed ({exc})", url=url) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(f"{url}: JSON document is not a JSON Feed (no 'items' list)", url=url)
    version = str(doc.get("version") or "")
    if version and not version.startswith("https://jsonfeed.org/version/"):
        raise ParseError(f"{url}: unknown JSON Feed version {version!r}", url=url)
    home = _absolute(_str(doc.get("home_page_url")), url)
    entries: list[Entry] = []
    for raw in doc["items"]:
        if not isinstance(raw, dict):
            continue
        entry = _json_entry(raw, url=url)
        if entry is not None:
            entries.append(entry)
            if len(entries) >= MAX_ENTRIES:
                break
    return ParsedFeed(title=_clean(_str(doc.get("title"))), link=home, entries=tuple(entries))


def _json_entry(raw: dict[str, Any], *, url: str) -> Entry | None:
    link = _absolute(_str(raw.get("url")), url) or _absolute(_str(raw.get("external_url")), url)
    title = _clean(_str(raw.get("title")))
    summary = _clean(_str(raw.get("summary")))
    content = (_str(raw.get("content_html")) or _str(raw.get("content_text")) or "").strip()
    if not (title or link or content or summary):
        return None
    authors: list[Any] = raw["authors"] if isinstance(raw.get("authors"), list) else [raw.get("author")]
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict)]
    guid = raw.get("id")
    return Entry(
        title=title,
        link=link,
        guid=str(guid).strip() or None if guid is not None else None,
        summary=summary,
        content=content,
        published=_iso_date(_str(raw.get("date_published")) or _str(raw.get("date_modified"))),
        author=", ".join(n for n in names if n) or None,
    )


def _iso_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        # Real JSON feeds sometimes carry RFC 822 dates despite the spec.
        parts = parsedate_tz(text)
        if parts is None:
            return None
        try:
            return datetime.fromtimestamp(calendar.timegm(parts[:9]) - (parts[9] or 0), tz=UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if when.tzinfo is None:  # the spec requires an offset; assume UTC rather than drop it
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# --------------------------------------------------------------------------- helpers


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: Any) -> str:
    return str(value).strip() if value else ""


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value else None
    except ValueError:
        return None


def _absolute(link: str | None, base: str) -> str | None:
    """An absolute http(s) link, resolved against ``base`` if relative; else None."""
    if not link or not link.strip():
        return None
    link = link.strip()
    try:
        resolved = urljoin(base, link)
        scheme = urlsplit(resolved).scheme.lower()
    except ValueError:
        return None
    return resolved if scheme in ("http", "https") else None
