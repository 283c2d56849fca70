"""OPML subscription lists: reading them into :class:`OpmlFeed` values and writing them back.

Owns the OPML format only: which outlines are feeds, how folders become
``category`` paths, and OPML 2.0 output that round-trips through
:func:`parse_opml`. Pure: bytes in, values out (and back). It must not do I/O,
read settings or the clock, or decide what monitor does with the feeds (turning
them into config entries is the caller's job).

Reading rules, chosen for the files feed readers actually export:

* An ``outline`` with an ``xmlUrl`` attribute (any case: ``xmlurl`` occurs) is a
  feed; ``type`` (``rss``, ``atom``, missing) and ``htmlUrl`` are ignored.
  Only ``http``/``https`` URLs are kept: an imported list must not point
  monitor at ``file:`` paths. The others are reported (:func:`read_opml`), never dropped silently.
* An ``outline`` without ``xmlUrl`` is a folder; its name (``text``, else
  ``title``) is one segment of its feeds' ``category``, joined with ``/`` (a
  ``/`` inside a name becomes ``-``, so the path stays unambiguous). An empty
  folder, and an outline with neither URL nor children, yields nothing.
* A feed's ``title`` is its ``text`` attribute (the name the user sees, per
  OPML 2.0), else ``title``, else ``None``; a name equal to the URL is
  ``None`` (that is how :func:`export_opml` writes a feed without a title).
* A URL listed twice is kept once, at its first position.

Safety: the document is read with expat, and any entity declaration in a
DOCTYPE is refused as soon as the parser meets it, before anything is expanded
(billion laughs, external entities). Subscription lists have no use for them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers import expat

from monitor.errors import ConfigError

__all__ = ["OpmlFeed", "OpmlRead", "export_opml", "parse_opml", "read_opml"]


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    """One feed of a subscription list; ``category`` is the folder path, e.g. ``"Asia/Korea"``."""

    url: str
    title: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class OpmlRead:
    """The feeds of a document and the outlines refused, as ``(url, reason)``."""

    feeds: list[OpmlFeed]
    refused: list[tuple[str, str]]


class _Refused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _attr(attrs: Mapping[str, str], name: str) -> str | None:
    value = attrs.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in attrs.items() if k.lower() == lowered), None)
    value = " ".join(value.split()) if value is not None else None
    return value or None


class _Reader:
    """Streams expat events into feeds; keeps only the folder path, not a tree."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.feeds: list[OpmlFeed] = []
        self.refused: list[tuple[str, str]] = []
        self.seen: set[str] = set()
        self.root: str | None = None
        self.saw_body = False
        self.depth = 0
        self.body_depth: int | None = None
        # One entry per open outline: its folder name, or None when it adds no path segment.
        self.folders: list[str | None] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit(":", 1)[-1].lower()
        self.depth += 1
        if self.root is None:
            self.root = tag
            return
        if tag == "body" and self.depth == 2 and self.body_depth is None:
            self.saw_body = True
            self.body_depth = self.depth
            return
        if tag != "outline" or self.body_depth is None:
            return
        label = _attr(attrs, "text") or _attr(attrs, "title")
        url = _attr(attrs, "xmlUrl")
        if url is None:
            self.folders.append(label.replace("/", "-") if label else None)
            return
        self.folders.append(None)
        if not re.match(r"^https?://", url, re.IGNORECASE):
            scheme = url.split(":", 1)[0] if ":" in url else ""
            self.refused.append((url, f"not an http(s) URL ({scheme}: URLs are refused)" if scheme
                                 else "not an http(s) URL (no scheme)"))
            return
        if url in self.seen:
            return
        self.seen.add(url)
        path = [f for f in self.folders[:-1] if f]
        self.feeds.append(OpmlFeed(url=url, title=None if label == url else label,
                                   category="/".join(path) or None))

    def end(self, name: str) -> None:
        tag = name.rsplit(":", 1)[-1].lower()
        if tag == "outline" and self.body_depth is not None and self.folders:
            self.folders.pop()
        elif tag == "body" and self.depth == self.body_depth:
            self.body_depth = None
        self.depth -= 1

    def entity(self, *_args: object) -> None:
        raise _Refused("the DOCTYPE declares entities; refused (OPML has no use for them and they "
                       "are how entity-expansion attacks are written): remove the DOCTYPE",
                       self.parser.CurrentLineNumber)


def parse_opml(data: bytes, *, source: str) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order (see :func:`read_opml` for the refused ones)."""
    return read_opml(data, source=source).feeds


def read_opml(data: bytes, *, source: str) -> OpmlRead:
    """The feeds of an OPML document, in document order, and the outlines refused with why.

    ``source`` (a file name or URL) names the document in errors. Raises
    :class:`~monitor.errors.ConfigError` for malformed XML (with the line), a
    document that is not OPML or has no ``<body>``, and entity declarations.
    """
    if not data.strip():
        raise ConfigError(f"{source}: the OPML file is empty")
    parser = expat.ParserCreate()
    reader = _Reader(parser)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.EntityDeclHandler = reader.entity
    parser.UnparsedEntityDeclHandler = reader.entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ConfigError(f"{source}:{exc.line}: {exc}") from None
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code is not None else str(exc)
        raise ConfigError(f"{source}:{exc.lineno}: not well-formed XML ({reason}, column {exc.offset + 1})"
                          ) from None
    if reader.root != "opml":
        raise ConfigError(f"{source}: not an OPML document (the top element is <{reader.root}>, expected <opml>)")
    if not reader.saw_body:
        raise ConfigError(f"{source}: the OPML document has no <body>, so it lists no feeds")
    return OpmlRead(reader.feeds, reader.refused)


# Characters XML 1.0 cannot carry even escaped; a title scraped from a feed may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def export_opml(feeds: list[OpmlFeed], *, title: str = "monitor feeds") -> bytes:
    """An OPML 2.0 document (UTF-8) listing ``feeds``, categories as nested folder outlines.

    Folders appear in the order their first feed does. A feed without a title
    gets its URL as ``text`` (OPML requires one) and no ``title`` attribute.
    """
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _clean(title)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for feed in feeds:
        path = tuple(_clean(p).strip() for p in (feed.category or "").split("/") if p.strip())
        for depth in range(1, len(path) + 1):
            if path[:depth] not in folders:
                name = path[depth - 1]
                folders[path[:depth]] = ET.SubElement(folders[path[:depth - 1]], "outline", text=name, title=name)
        outline = ET.SubElement(folders[path], "outline", type="rss", text=_clean(feed.title or feed.url))
        if feed.title:
            outline.set("title", _clean(feed.title))
        outline.set("xmlUrl", _clean(feed.url))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
