"""Feed documents (bytes) to :class:`~monitor.domain.ParsedFeed` values.

Owns format detection and reading: RSS 0.9x/1.0/2.0, RDF and Atom through
feedparser, JSON Feed (every published version) through :mod:`json`. Plain RSS
2.0 and Atom 1.0, most of what is polled, are read by :mod:`monitor.ingest.fastfeed`,
which gives feedparser's values for the fields read here and declines anything
it does not reproduce (``fast=False`` turns it off, for comparison). Pure:
bytes in, values out. It must not do I/O, read the clock or settings, or import
httpx; it leaves HTML in summaries and titles for :mod:`monitor.ingest.normalize`
to turn into text (fields a feed marks as plain text are escaped, so they come
out as written).

Decoding happens first, here, not in feedparser: see :mod:`monitor.ingest.decode`
for the order. feedparser is handed the decoded text re-encoded as UTF-8 with a
declaration that says so, so it never second-guesses the choice.

Safety:

* feedparser is handed an ``io.BytesIO``, never ``str`` or ``bytes``: given a
  string it may fetch it as a URL, and given bytes it first tries
  ``open(bytes)`` as a *file name*.
* A document whose DOCTYPE declares entities (``<!ENTITY``) is refused before
  feedparser sees it. Feeds have no use for entity declarations; they are how
  billion-laughs and external-entity attacks are written. The check reads the
  decoded text (so UTF-16, UTF-32 and EBCDIC cannot hide a declaration) and
  only the prolog, before the root element: an item that quotes a DOCTYPE in
  CDATA is content, not a declaration. feedparser's own DOCTYPE handling stays
  as a second layer.
* One entry that cannot be read is skipped with a reason (:attr:`ParsedFeed.skipped`);
  it never costs the feed its other entries.
* At most :data:`MAX_ENTRIES` entries are kept per feed (the first ones, which
  in practice are the newest).

Links: relative item links resolve against ``xml:base`` (feedparser applies
it), then the channel's ``<link>``, then the feed's URL. feedparser's own
rewriting of URIs inside HTML is off (``resolve_relative_uris=False``): it is
the slowest part of parsing large full-content feeds, and the text is reduced
to plain text anyway.

Dates: :func:`monitor.ingest.dates.parse_date` for every format, read in the
feed's zone (per-feed ``timezone:`` setting, else the zone of the feed's
language). ``Entry.published`` is timezone-aware UTC or ``None``.
"""

from __future__ import annotations

import html
import io
import json
import re
import xml.sax
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.parsers import expat

import feedparser
import feedparser.api

from monitor.domain import Entry, ParsedFeed
from monitor.errors import ParseError
from monitor.ingest.dates import feed_zone, guess_language, parse_date
from monitor.ingest.decode import decode_document
from monitor.ingest.discover import discover_feeds
from monitor.ingest.fastfeed import read_plain_feed

# Buffered character data (see monitor.ingest.saxreader): same text, a fraction of the calls.
if "monitor.ingest.saxreader" not in feedparser.api.PREFERRED_XML_PARSERS:
    feedparser.api.PREFERRED_XML_PARSERS.insert(0, "monitor.ingest.saxreader")

__all__ = ["MAX_ENTRIES", "parse_date", "parse_feed"]

MAX_ENTRIES = 500
# Entries looked at in one document, and element nesting allowed. feedparser's cost grows with
# both (754k empty items: 38 s; 900k nested elements: 80 s and 650 MB), while no real feed comes
# near either; a document past them is cut before the entry that crosses the line.
MAX_RAW_ENTRIES = 4 * MAX_ENTRIES
MAX_DEPTH = 256
MAX_JSON_DEPTH = 64  # deeper JSON is read item by item (see _salvage_json_items)
_JSON_TYPES = ("application/feed+json", "application/json", "text/json")
# The XML declaration, also after a leading comment or blank lines (ill-formed, but seen in real feeds).
_XML_DECL = re.compile(r"^\s*(?:<!--(?:(?!-->).){0,2000}-->\s*){0,20}(<\?xml\b[^>]{0,500}?\?>)", re.DOTALL)
_PROLOG_SKIP = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_DOCTYPE = re.compile(r"<!DOCTYPE\b", re.IGNORECASE)
_DOCTYPE_STOP = re.compile(r"""[\[\]>"']|<!--""")
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
# A document that ends by closing a feed's root is complete, if flawed (an undefined entity, say):
# feedparser's recovery reads it. One that stops before is cut short.
_ROOT_CLOSED = re.compile(r"</\s*(?:[\w-]+:)?(?:rss|feed|RDF|channel)\s*>\s*$", re.IGNORECASE)
_HTML_PAGE = re.compile(r"<html\b|<!doctype\s+html\b", re.IGNORECASE)


class EntryError(Exception):
    """One entry cannot be read; carries the reason shown to the operator."""


def parse_feed(content: bytes, *, url: str, content_type: str | None = None, encoding: str | None = None,
               timezone: str | None = None, fast: bool = True) -> ParsedFeed:
    """Parse a feed document fetched from ``url``.

    ``content_type`` is the HTTP Content-Type (its charset is one of the hints
    for decoding); ``encoding`` and ``timezone`` are the feed's settings, which
    override what the document says. Raises :class:`ParseError` naming ``url``
    when the bytes are not a feed. ``fast=False`` reads every XML document with
    feedparser: the reference :mod:`monitor.ingest.fastfeed` is held to.
    """
    if not content or not content.strip():
        raise ParseError(f"{url}: empty document, not a feed", url=url)
    text = decode_document(content, content_type=content_type, override=encoding).text
    if _looks_like_json(text, content_type):
        return _parse_json_feed(text, url=url, timezone=timezone)
    _refuse_entities(text, url=url)
    return _parse_xml_feed(text, url=url, content_type=content_type, timezone=timezone, fast=fast)


def _looks_like_json(text: str, content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    start = text.lstrip("\ufeff \t\r\n")[:1]
    return start == "{" or (media in _JSON_TYPES and start != "<")


def _entries(raws: Any, read: Callable[[Any], Entry | None]) -> tuple[list[Entry], list[str]]:
    """Read entries one by one: one that fails is skipped with its reason, the others are kept."""
    entries: list[Entry] = []
    skipped: list[str] = []
    for position, raw in enumerate(raws, start=1):
        try:
            entry = read(raw)
        except EntryError as exc:
            skipped.append(f"entry {position}: {exc}")
            continue
        except Exception:  # whatever one entry does, the feed's other entries are kept
            skipped.append(f"entry {position}: could not be read")
            continue
        if entry is not None:
            entries.append(entry)
            if len(entries) >= MAX_ENTRIES:
                break
    return entries, skipped


# --------------------------------------------------------------------------- XML


def _refuse_entities(text: str, *, url: str) -> None:
    """Refuse a DOCTYPE that declares entities. Reads the prolog only (before the root element)."""
    position = 0
    while True:
        skipped = _PROLOG_SKIP.match(text, position)
        if skipped and skipped.end() > position:
            position = skipped.end()
            continue
        if not _DOCTYPE.match(text, position):
            return
        end = _doctype_end(text, position)
        if _ENTITY.search(text, position, end):
            raise ParseError(
                f"{url}: the document declares XML entities in its DOCTYPE; refused "
                "(entity expansion attacks), feeds have no need for them",
                url=url,
            )
        position = end


def _doctype_end(text: str, start: int) -> int:
    """Where a DOCTYPE declaration ends: its ``>`` outside quotes, comments and the internal subset."""
    position, in_subset = start + 9, False
    while True:
        stop = _DOCTYPE_STOP.search(text, position)
        if stop is None:
            return len(text)
        token = stop.group()
        if token in ('"', "'"):
            close = text.find(token, stop.end())
            position = len(text) if close < 0 else close + 1
        elif token == "<!--":
            close = text.find("-->", stop.end())
            position = len(text) if close < 0 else close + 3
        elif token == "[":
            in_subset, position = True, stop.end()
        elif token == "]":
            in_subset, position = False, stop.end()
        elif in_subset:  # ">" ending a declaration inside the subset
            position = stop.end()
        else:
            return stop.end()


def _utf8_document(text: str) -> bytes:
    """The decoded text as UTF-8 bytes whose XML declaration says UTF-8."""
    text = text.lstrip("\ufeff")
    declaration = _XML_DECL.match(text[:65536])
    if declaration:
        text = text[:declaration.start(1)] + text[declaration.end(1):]
    return b'<?xml version="1.0" encoding="utf-8"?>' + text.encode("utf-8", "replace")


class _Cut(Exception):
    """Stops the pre-scan: the document is cut at ``position`` and its ``open`` elements closed."""

    def __init__(self, position: int, open_elements: list[str], reason: str) -> None:
        super().__init__(reason)
        self.position, self.open_elements, self.reason = position, open_elements, reason


def _bounded(data: bytes, *, url: str) -> tuple[bytes, str | None, bool]:
    """``data`` cut before the entry that makes it too long or too deep, and closed; with the reason,
    and whether expat read the whole document as well-formed XML.

    A fast pass with expat (no entity expansion: entity declarations were refused before). A
    document that expat finds ill-formed is left to feedparser's own recovery.
    """
    scanner = expat.ParserCreate()
    stack: list[str] = []
    entries = 0
    last_entry: tuple[int, list[str], int] | None = None

    def start(name: str, attrs: object) -> None:
        nonlocal entries, last_entry
        stack.append(name)
        if name in ("item", "entry") or name.endswith((":item", ":entry")):
            entries += 1
            if entries > MAX_RAW_ENTRIES:
                raise _Cut(scanner.CurrentByteIndex, stack[:-1],
                           f"entries after the first {MAX_RAW_ENTRIES}: not read (the document holds more)")
            last_entry = (scanner.CurrentByteIndex, stack[:-1], entries)
        if len(stack) > MAX_DEPTH:
            if last_entry is None:
                raise ParseError(f"{url}: elements nested more than {MAX_DEPTH} deep; not a feed monitor reads",
                                 url=url)
            position, open_elements, number = last_entry
            raise _Cut(position, open_elements,
                       f"entry {number} and the rest of the document: elements nested more than {MAX_DEPTH} deep")

    def end(name: str) -> None:
        stack.pop()

    scanner.StartElementHandler = start
    scanner.EndElementHandler = end
    try:
        scanner.Parse(data, True)
    except _Cut as cut:
        closing = "".join(f"</{name}>" for name in reversed(cut.open_elements)).encode("utf-8")
        return data[:cut.position] + closing, cut.reason, False
    except expat.ExpatError:
        return data, None, False
    return data, None, True


def _parse_xml_feed(text: str, *, url: str, content_type: str | None, timezone: str | None,
                    fast: bool = True) -> ParsedFeed:
    document, cut_reason, well_formed = _bounded(_utf8_document(text), url=url)
    # Plain RSS 2.0 and Atom 1.0 (most feeds) are read by the fast reader, which gives what feedparser gives;
    # everything else, and anything it is not sure of, by feedparser.
    plain = read_plain_feed(document) if fast and well_formed and cut_reason is None else None
    if plain is not None:
        version, feed, raws = plain
        reason = None
    else:
        result = _feedparser(document, content_type)
        feed, raws = result.feed, result.entries
        version, reason = str(result.get("version") or ""), result.get("bozo_exception")
    feed_link = _absolute(feed.get("link"), url)
    atom = version.startswith("atom")
    language = _str(feed.get("language")) or guess_language(_clean(feed.get("title")) + " " + " ".join(
        _clean(e.get("title")) for e in raws[:20]))
    zone = feed_zone(timezone, language)
    bases = [b for b in (feed_link, url) if b]
    entries, skipped = _entries(
        raws, lambda raw: _xml_entry(raw, bases=bases, atom=atom, zone=zone, language=language))
    if cut_reason:
        skipped.append(cut_reason)
    if not entries and not skipped:
        # A feed with no entries is fine; a document that broke before its first
        # readable entry, or that no format claims (an HTML page), is not.
        if not version and _HTML_PAGE.search(text[:4096]):
            raise ParseError(_not_a_feed(text, url), url=url)
        if isinstance(reason, xml.sax.SAXException) and not _ROOT_CLOSED.search(text[-200:]):
            raise ParseError(f"{url}: broken feed document with no readable entries ({reason})", url=url)
        if not version:
            raise ParseError(_not_a_feed(text, url), url=url)
    return ParsedFeed(
        title=_text_field(feed, "title", atom),
        link=feed_link,
        entries=tuple(entries),
        ttl_minutes=_int(feed.get("ttl")),
        skipped=tuple(skipped),
    )


def _feedparser(document: bytes, content_type: str | None) -> Any:
    media = (content_type or "").split(";", 1)[0].strip().lower() or "application/xml"
    # No content-location: relative links stay relative (or xml:base-resolved) so that the channel's
    # <link> can be applied before the feed URL. sanitize_html off: normalisation turns all HTML
    # into text anyway, and the sanitiser is the slowest part of feedparser on large HTML bodies.
    return feedparser.parse(io.BytesIO(document), response_headers={"content-type": f"{media}; charset=utf-8"},
                            sanitize_html=False, resolve_relative_uris=False)


def _not_a_feed(text: str, url: str) -> str:
    if _HTML_PAGE.search(text[:4096]):
        links = [found.url for found in discover_feeds(text, url=url)]
        if links:
            return (f"{url}: this is a web page, not a feed; it names its feed at {links[0]}: use that URL"
                    + (f" (other feeds it names: {', '.join(links[1:4])})" if len(links) > 1 else ""))
        return f"{url}: this is a web page, not a feed, and it names no feed (no <link rel=\"alternate\">)"
    return f"{url}: not a feed (no RSS, Atom, RDF or JSON Feed document found; an HTML page?)"


def _text_field(raw: Mapping[str, Any], key: str, atom: bool) -> str:
    """A title or summary as HTML: Atom ``type="text"`` values are escaped, so they read as written."""
    value = _clean(raw.get(key))
    detail = raw.get(f"{key}_detail") or {}
    if atom and value and detail.get("type") == "text/plain":
        return html.escape(value, quote=False)
    return value


def _xml_entry(raw: Mapping[str, Any], *, bases: list[str], atom: bool, zone: tzinfo | None,
               language: str | None) -> Entry | None:
    link = _absolute(raw.get("link"), *bases)
    if link is None:
        for candidate in raw.get("links") or ():
            if candidate.get("rel", "alternate") == "alternate":
                link = _absolute(candidate.get("href"), *bases)
                if link:
                    break
    content_parts = []
    for part in raw.get("content") or ():
        value = str(part.get("value") or "")
        if atom and part.get("type") == "text/plain":
            value = html.escape(value, quote=False)
        content_parts.append(value)
    content = "\n".join(p for p in content_parts if p.strip()).strip()
    summary = _text_field(raw, "summary", atom)
    if content == summary:
        content = ""
    title = _text_field(raw, "title", atom)
    if not (title or link or content or summary):
        return None
    return Entry(
        title=title,
        link=link,
        guid=_clean(raw.get("id")) or None,
        summary=summary,
        content=content,
        published=_entry_date(raw, zone=zone, language=language) if isinstance(raw, dict) else None,
        author=_clean(raw.get("author")) or None,
    )


def _entry_date(raw: dict[str, Any], *, zone: tzinfo | None, language: str | None) -> datetime | None:
    for key in ("published", "updated", "created"):
        text = dict.get(raw, key)  # dict.get: feedparser's own get() maps missing keys with a warning
        if isinstance(text, str) and text.strip():
            when = parse_date(text, zone=zone, language=language)
            if when is not None:
                return when
    return None


# --------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(text: str, *, url: str, timezone: str | None) -> ParsedFeed:
    try:
        doc = json.loads(text, parse_int=_json_int)
        items: Any = doc.get("items") if isinstance(doc, dict) else None
    except RecursionError:
        doc, items = _salvage_json(text, url=url)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{url}: malformed JSON Feed ({exc})", url=url) from None
    if not isinstance(doc, dict) or not isinstance(items, list):
        raise ParseError(f"{url}: JSON document is not a JSON Feed (no 'items' list)", url=url)
    home = _absolute(_str(doc.get("home_page_url")), url)
    language = _str(doc.get("language")) or guess_language(" ".join(
        str(i.get("title") or "") for i in items[:20] if isinstance(i, dict)))
    zone = feed_zone(timezone, language)
    bases = [b for b in (home, url) if b]
    entries, skipped = _entries(items, lambda raw: _json_entry(raw, bases=bases, zone=zone, language=language))
    return ParsedFeed(title=_clean(_str(doc.get("title"))), link=home, entries=tuple(entries),
                      skipped=tuple(skipped))


def _json_int(digits: str) -> int | float:
    # A 5000-digit number is no reason to lose a feed (int() refuses over 4300 digits).
    return int(digits) if len(digits) <= 100 else float(digits)


def _salvage_json(text: str, *, url: str) -> tuple[dict[str, Any], list[Any]]:
    """A document too deeply nested to read whole: read its top-level values, and its items one by one.

    An item nested too deeply is skipped (as an item that fails to load); the others are kept.
    """
    spans = _top_level_spans(text)
    if spans is None:
        raise ParseError(f"{url}: malformed JSON Feed (nesting too deep or unbalanced)", url=url)
    doc: dict[str, Any] = {}
    items: list[Any] = []
    for key, start, end in spans:
        if key == "items":
            for item_start, item_end in _array_spans(text, start, end) or ():
                try:
                    items.append(json.loads(text[item_start:item_end], parse_int=_json_int))
                except (RecursionError, json.JSONDecodeError):
                    items.append(None)  # counted as a skipped entry below
            continue
        try:
            doc[key] = json.loads(text[start:end], parse_int=_json_int)
        except (RecursionError, json.JSONDecodeError):
            continue
    doc["items"] = items
    return doc, items


# Strings, runs of opening or closing brackets (one token for "[[[[": deep nesting costs one step), "," and ":".
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[{]+|[\]}]+|[,:]', re.DOTALL)


def _value_spans(text: str, start: int, end: int) -> list[tuple[int, int, int]] | None:
    """(member start, value start, value end) of each comma-separated member between ``start`` and ``end``.

    Stops at the bracket that closes the enclosing object or array; None if there is none.
    """
    members: list[tuple[int, int, int]] = []
    depth, member_start, value_start = 0, start, start
    for token in _JSON_TOKEN.finditer(text, start, end):
        kind = token.group()
        first = kind[0]
        if first in "[{":
            depth += len(kind)
        elif first in "]}":
            if len(kind) > depth:  # this run closes the enclosing container
                members.append((member_start, value_start, token.start() + depth))
                return members
            depth -= len(kind)
        elif depth == 0 and kind == ":":
            value_start = token.end()
        elif depth == 0 and kind == ",":
            members.append((member_start, value_start, token.start()))
            member_start = value_start = token.end()
    return None


def _top_level_spans(text: str) -> list[tuple[str, int, int]] | None:
    opening = text.find("{")
    if opening < 0:
        return None
    members = _value_spans(text, opening + 1, len(text))
    if members is None:
        return None
    spans = []
    for member_start, value_start, value_end in members:
        try:
            key = json.loads(text[member_start:value_start].rstrip().rstrip(":"))
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(key, str):
            spans.append((key, value_start, value_end))
    return spans


def _array_spans(text: str, start: int, end: int) -> list[tuple[int, int]] | None:
    opening = text.find("[", start, end)
    if opening < 0:
        return None
    members = _value_spans(text, opening + 1, end)
    if members is None:
        return None
    return [(s, e) for s, _v, e in members if text[s:e].strip()]


def _json_entry(raw: Any, *, bases: list[str], zone: tzinfo | None, language: str | None) -> Entry | None:
    if raw is None:
        raise EntryError("nested too deeply to read")
    if not isinstance(raw, dict):
        return None
    link = _absolute(_str(raw.get("url")), *bases) or _absolute(_str(raw.get("external_url")), *bases)
    title = _clean(_str(raw.get("title")))
    summary = _clean(_str(raw.get("summary")))
    content_html = _str(raw.get("content_html")) or ""
    content_text = _str(raw.get("content_text")) or ""
    content = (content_html or html.escape(content_text, quote=False)).strip()
    if not summary:  # the item's text is its summary: digests, chat and webhooks show the summary
        summary, content = content, ""
    if not (title or link or content or summary):
        return None
    authors: list[Any] = raw["authors"] if isinstance(raw.get("authors"), list) else [raw.get("author")]
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict)]
    guid = raw.get("id")
    date = _str(raw.get("date_published")) or _str(raw.get("date_modified"))
    return Entry(
        title=title,
        link=link,
        guid=str(guid).strip() or None if isinstance(guid, str | int) and not isinstance(guid, bool) else None,
        summary=summary,
        content=content,
        published=parse_date(date, zone=zone, language=language) if date else None,
        author=", ".join(n for n in names if n) or None,
    )


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


def _absolute(link: Any, *bases: str) -> str | None:
    """An absolute http(s) link: ``link`` itself, or resolved against the first base that makes it one."""
    if not isinstance(link, str) or not link.strip():
        return None
    link = link.strip()
    for base in ("", *bases):
        try:
            resolved = urljoin(base, link) if base else link
            parts = urlsplit(resolved)
        except ValueError:
            continue
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            return resolved
        if parts.scheme and parts.scheme.lower() not in ("http", "https"):
            return None  # javascript:, mailto:, data: ... never become links
    return None
