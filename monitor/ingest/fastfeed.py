"""A fast reader for plain RSS 2.0 and Atom 1.0 documents, giving exactly what feedparser gives for them.

feedparser reads a document through SAX with Python work at every element start,
end and text run (about 10 ms for a feed of 20 items); most feeds monitor polls are
plain RSS 2.0 or Atom, for which libxml2 (through lxml) builds the tree in C and a
short walk reads the few fields :mod:`monitor.ingest.parse` uses.

"Exactly": :func:`read_plain_feed` returns the feed-level fields and one dict per
entry with the keys :mod:`monitor.ingest.parse` reads from feedparser's result
(``title``, ``link``, ``links``, ``id``, ``summary``, ``content``, ``published``,
``updated``, ``author``, and the ``type`` of Atom text constructs), with
feedparser's values: text stripped, its repair of UTF-8 read as Latin-1, its
mapping of C1 controls to windows-1252 characters, its URL clean-up, its
guid/id-as-link, summary-from-content and "name (email)" author rules. It only
accepts a document whose every element it knows the effect of; anything else (a
DOCTYPE, ``xml:base``, markup inside a text field, Atom ``xhtml`` or ``src``
content, an unknown element or namespace, a field given twice, attributes where
feedparser would read them, RSS 0.90/1.0, Atom 0.3) returns ``None`` and the
caller uses feedparser. The caller hands
it only documents that expat (feedparser's own parser) found well-formed, that
declared no entities and were not cut for size, so both readers see the same tree.
``tests/unit/test_fastfeed_equivalence.py`` runs both readers over every feed in
the shared corpora and requires the same entries wherever this one accepts.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

__all__ = ["read_plain_feed"]

_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ATOM = "{http://www.w3.org/2005/Atom}"

# Item children and what feedparser does with each (the ones marked "kept" have no
# effect on the fields read here: feedparser files them under keys of their own).
_ITEM_TEXT = {
    "title": "title",
    "link": "link",
    "guid": "id",
    "description": "summary",
    "pubDate": "published",
    "author": "author",
    f"{_CONTENT}encoded": "content",
    f"{_DC}creator": "author",
    f"{_DC}date": "updated",
}
_ITEM_KEPT = frozenset({
    "category", "comments", f"{_DC}subject",
    "{http://purl.org/rss/1.0/modules/slash/}comments",
    "{http://wellformedweb.org/commentAPI/}commentRss",
    "{http://rssnamespace.org/feedburner/ext/1.0}origLink",
})
# Attributes an item child may carry without changing what feedparser reads.
_ITEM_ATTRIBUTES = {"guid": frozenset({"isPermaLink"}), "category": frozenset({"domain"}),
                    "enclosure": frozenset({"url", "length", "type"})}
_CHANNEL_TEXT = frozenset({"title", "link", "language", "ttl"})
_CHANNEL_KEPT = frozenset({
    "description", "copyright", "managingEditor", "webMaster", "pubDate", "lastBuildDate",
    "category", "generator", "docs", "rating",
    "{http://purl.org/rss/1.0/modules/syndication/}updatePeriod",
    "{http://purl.org/rss/1.0/modules/syndication/}updateFrequency",
    "{http://purl.org/rss/1.0/modules/syndication/}updateBase",
})
_IMAGE_CHILDREN = frozenset({"url", "title", "link", "width", "height", "description"})
_SKIP_CHILDREN = {"skipHours": "hour", "skipDays": "day"}

# feedparser's windows-1252 repair of C1 control characters (feedparser.html._cp1252).
_CP1252 = {code: bytes([code]).decode("cp1252") for code in range(128, 160) if code not in (129, 141, 143, 144, 157)}
_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_ENTITY_LIKE = re.compile("&([A-Za-z0-9_]+);")


def _parser() -> etree.XMLParser:
    """A parser for one document: lxml parsers must not be shared between threads (the daemon polls
    in its scheduler thread while the web probes feeds in others); one costs a few microseconds."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=False, strip_cdata=True, recover=False)


class _Unsupported(Exception):
    """The document holds something this reader does not reproduce: feedparser reads it."""


def read_plain_feed(document: bytes) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
    """(version, feed fields, entries) as feedparser's result would hold them, or None when feedparser must
    read the document. ``version`` is ``"rss20"`` or ``"atom10"``, as feedparser names them."""
    try:
        root = etree.fromstring(document, _parser())
        if root.getroottree().docinfo.doctype:
            return None  # feedparser reads some DOCTYPEs (Netscape's RSS 0.91 entities)
        if root.tag == "rss":
            return ("rss20", *_read_rss(root))
        if root.tag == f"{_ATOM}feed":
            return ("atom10", *_read_atom(root))
        return None
    except (etree.XMLSyntaxError, _Unsupported, ValueError):
        return None


def _read_rss(root: etree._Element) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if set(root.attrib) - {"version"}:
        raise _Unsupported
    children = _elements(root)
    if len(children) != 1 or children[0].tag != "channel" or children[0].attrib:
        raise _Unsupported
    feed: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    for child in _elements(children[0]):
        tag = child.tag
        if tag == "item":
            entries.append(_item(child))
        elif tag in _CHANNEL_TEXT:
            if tag in feed or child.attrib:
                raise _Unsupported
            feed[tag] = _text(child, link=tag == "link")
        elif tag in _CHANNEL_KEPT:
            _leaf(child)
        elif tag == "image":
            for part in _elements(child):
                if part.tag not in _IMAGE_CHILDREN or part.attrib:
                    raise _Unsupported
                _leaf(part)
        elif tag in _SKIP_CHILDREN:
            for part in _elements(child):
                if part.tag != _SKIP_CHILDREN[tag] or part.attrib:
                    raise _Unsupported
                _leaf(part)
        elif tag == "cloud":
            _leaf(child)
        elif tag == f"{_ATOM}link":
            # rel="self"/"hub" is only filed under links; an alternate one (or one without href) sets the feed's link.
            if (child.get("rel") or "alternate").lower() == "alternate" or "href" not in child.attrib:
                raise _Unsupported
            _leaf(child)
        else:
            raise _Unsupported
    if "&" in feed.get("link", ""):  # feedparser repairs "&name;" in the channel link (not "&amp;")
        feed["link"] = _ENTITY_LIKE.sub(r"&\g<1>", feed["link"])
    return feed, entries


def _item(item: etree._Element) -> dict[str, Any]:
    if item.attrib:
        raise _Unsupported
    entry: dict[str, Any] = {}
    permalink = False
    for child in _elements(item):
        tag = child.tag
        names = child.keys()
        if names and not _ITEM_ATTRIBUTES.get(tag, frozenset()).issuperset(names):
            raise _Unsupported
        key = _ITEM_TEXT.get(tag)
        if key is None:
            if tag not in _ITEM_KEPT and tag != "enclosure":
                raise _Unsupported
            _leaf(child)
            continue
        if key in entry:
            raise _Unsupported  # given twice: feedparser's first/last/depth rules differ by field
        if key == "id":
            permalink = child.get("isPermaLink", "true") == "true"
        entry[key] = _text(child, link=key == "link" or (key == "id" and permalink))
    link = entry.pop("link", None)
    if link is not None:
        # feedparser's repair of query strings read as entities; the link is also its only link.
        if "&" in link:
            link = _ENTITY_LIKE.sub(r"&\g<1>", link.replace("&amp;", "&"))
        entry["link"] = link
        entry["links"] = [{"rel": "alternate", "type": "text/html", "href": link}] if link else []
    elif "id" in entry and permalink:
        entry["link"] = entry["id"]  # a permalink guid stands in for a missing link
    if "content" in entry:
        value = entry["content"]
        entry["content"] = [{"type": "text/html", "value": value}]
        entry.setdefault("summary", value)
    return entry


# --------------------------------------------------------------------------- Atom 1.0

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Atom's text constructs: the types feedparser reads as text or HTML (xhtml keeps markup: not here).
_TEXT_TYPES = {None: "text/plain", "text": "text/plain", "text/plain": "text/plain", "html": "text/html",
               "text/html": "text/html"}
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_LINK_ATTRIBUTES = frozenset({"href", "rel", "type", "title", "hreflang", "length"})
_VERSION_NAMESPACES = frozenset({"http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"})
_FEED_KEPT = frozenset(f"{_ATOM}{name}" for name in ("subtitle", "updated", "generator", "icon", "logo", "rights",
                                                     "category"))


_ATOM_REPEATABLE = frozenset({f"{_ATOM}link", f"{_ATOM}category"})


def _first_time(tag: str, seen: set[str]) -> None:
    """Refuse an Atom element given twice (feedparser's first/last rules differ by field); links and
    categories repeat by design."""
    if tag in seen and tag not in _ATOM_REPEATABLE:
        raise _Unsupported
    seen.add(tag)


def _read_atom(root: etree._Element) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if set(root.attrib) - {_XML_LANG} or _VERSION_NAMESPACES & {u.lower() for u in root.nsmap.values()}:
        raise _Unsupported  # RSS 0.90/1.0 namespaces declared first change feedparser's idea of the version
    feed: dict[str, Any] = {}
    language = root.get(_XML_LANG)
    if language:
        feed["language"] = language.replace("_", "-")
    entries = []
    seen: set[str] = set()
    for child in _elements(root):
        tag = child.tag
        if tag == f"{_ATOM}entry":
            entries.append(_atom_entry(child))
            continue
        _first_time(tag, seen)
        if tag == f"{_ATOM}title":
            _atom_text(child, feed, "title")
        elif tag == f"{_ATOM}link":
            _atom_link(child, feed)
        elif tag == f"{_ATOM}id":
            _atom_id(child, feed)
        elif tag == f"{_ATOM}author":
            _atom_author(child)
        elif tag in _FEED_KEPT:
            _leaf(child)
        else:
            raise _Unsupported
    return feed, entries


def _atom_entry(entry: etree._Element) -> dict[str, Any]:
    if entry.attrib:
        raise _Unsupported
    raw: dict[str, Any] = {}
    seen: set[str] = set()
    for child in _elements(entry):
        tag = child.tag
        _first_time(tag, seen)
        if tag == f"{_ATOM}title":
            _atom_text(child, raw, "title")
        elif tag == f"{_ATOM}summary":
            _atom_text(child, raw, "summary")
        elif tag == f"{_ATOM}content":
            value, kind = _typed_text(child)
            raw["content"] = [{"type": kind, "value": value}]
            raw.setdefault("summary", value)  # feedparser copies text and HTML content to a missing summary
        elif tag == f"{_ATOM}link":
            _atom_link(child, raw)
        elif tag == f"{_ATOM}id":
            _atom_id(child, raw)
        elif tag in (f"{_ATOM}published", f"{_ATOM}updated"):
            if child.keys():
                raise _Unsupported
            raw[tag[len(_ATOM):]] = _text(child, link=False)
        elif tag == f"{_ATOM}author":
            raw["author"] = _atom_author(child)
        elif tag == f"{_ATOM}category":
            _leaf(child)
        else:
            raise _Unsupported
    return raw


def _typed_text(element: etree._Element) -> tuple[str, str]:
    if set(element.keys()) - {"type"}:
        raise _Unsupported
    kind = _TEXT_TYPES.get(element.get("type", "").lower() or None)
    if kind is None:
        raise _Unsupported  # xhtml, base64 and other media types: feedparser's own handling
    return _text(element, link=False), kind


def _atom_text(element: etree._Element, context: dict[str, Any], key: str) -> None:
    value, kind = _typed_text(element)
    context[key] = value
    context[f"{key}_detail"] = {"type": kind}


def _atom_link(element: etree._Element, context: dict[str, Any]) -> None:
    _leaf(element)
    names = element.keys()
    if "href" not in names or not _LINK_ATTRIBUTES.issuperset(names):
        raise _Unsupported
    href = element.get("href", "")  # an attribute: none of the text repairs, only the URL fix-up
    if ":///" in href:
        href = _URI_FIXER.sub(r"\1\3", href)
    rel = element.get("rel", "alternate").lower()  # an empty rel or type stays empty, as in feedparser
    kind = element.get("type", "application/atom+xml" if rel == "self" else "text/html").lower()
    kind = {"html": "text/html", "xhtml": "application/xhtml+xml", "text": "text/plain"}.get(kind, kind)
    context.setdefault("links", []).append({"rel": rel, "type": kind, "href": href})
    if rel == "alternate" and kind in _HTML_TYPES:
        context["link"] = href


def _atom_id(element: etree._Element, context: dict[str, Any]) -> None:
    if element.keys():
        raise _Unsupported
    value = _text(element, link=True)  # an Atom id is read like a permalink guid
    context["id"] = value
    context.setdefault("link", value)


def _atom_author(element: etree._Element) -> str:
    """The author as feedparser sets it: "name (email)", name, email, or the element's own text."""
    if element.keys():
        raise _Unsupported
    parts: dict[str, str] = {}
    for child in _elements(element):
        name = child.tag[len(_ATOM):] if child.tag.startswith(_ATOM) else ""
        if name not in ("name", "email", "uri") or name in parts or child.keys():
            raise _Unsupported
        _leaf(child)
        parts[name] = (child.text or "").strip()  # feedparser keeps these as written (no repairs)
    if parts.get("name") and parts.get("email"):
        return f"{parts['name']} ({parts['email']})"
    if parts.get("name") or parts.get("email"):
        return parts.get("name") or parts["email"]
    if parts:
        return ""
    return _text(element, link=False)


def _elements(parent: etree._Element) -> list[etree._Element]:
    """The element children; text between them must be blank, comments and PIs are skipped."""
    if parent.text and parent.text.strip():
        raise _Unsupported
    found = []
    for child in parent:
        if child.tail and child.tail.strip():
            raise _Unsupported
        if isinstance(child.tag, str):
            if ":" in child.tag and not child.tag.startswith("{"):
                raise _Unsupported  # an undeclared prefix: feedparser's reader refuses the document
            found.append(child)
    return found


def _leaf(element: etree._Element) -> None:
    if len(element):
        raise _Unsupported


def _text(element: etree._Element, *, link: bool) -> str:
    """An element's text as feedparser's ``pop`` leaves it."""
    _leaf(element)
    text = (element.text or "").strip()
    if link and ":///" in text:  # the only case _URI_FIXER changes
        text = _URI_FIXER.sub(r"\1\3", text)
    if text.isascii():  # neither repair below can change ASCII text
        return text
    try:  # UTF-8 that was read as Latin-1 somewhere upstream
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_CP1252)
