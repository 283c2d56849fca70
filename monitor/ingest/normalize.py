"""Parsed entries to normalised items: canonical URLs, plain text, UTC dates, fingerprints.

Pure: values in, values out. The time is a parameter (``now``); this module
must not read the clock, do I/O, read settings or import httpx. It decides what
makes two entries "the same item" (:func:`normalize_entry`'s fingerprint), so
changing it changes deduplication for stored items: do so deliberately.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lxml import etree

from monitor.domain import Entry, Item
from monitor.lang import script_language

__all__ = ["canonical_url", "fingerprint", "html_to_text", "normalize_entries", "normalize_entry", "plausible_date"]

# A feed's clock may run ahead a little (zones misdeclared by hours); beyond a
# day the date is wrong, and a future date would pin the item to the top.
FUTURE_TOLERANCE = timedelta(days=1)
# Nothing monitor reads was published before this; an earlier date is a placeholder (0001-01-01, 1970).
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)

# Query parameters that identify the campaign or the click, not the page.
_TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "twclid",
    "mc_cid", "mc_eid", "ref", "ref_src", "ref_url", "cmpid", "cmp", "ncid", "ocid", "sr_share",
    "_hsenc", "_hsmi", "mkt_tok", "wt_mc", "wt.mc_id", "wt_zmc", "at_medium", "at_campaign",
    "at_custom1", "at_custom2", "at_custom3", "at_custom4", "spm", "__twitter_impression",
    "xtor", "ito", "s_cid", "cid_source", "rss_source", "smid", "partner", "ftag",
})
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_")
_DEPTH_LIMIT = etree.ErrorTypes.ERR_RESOURCE_LIMIT  # libxml2: "Excessive depth in document"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_GOOGLE_HOSTS = re.compile(r"^(?:www\.)?google\.[a-z.]{2,6}$")


def canonical_url(url: str) -> str:
    """One spelling per page, so the same link from two feeds is one item.

    Lower-cases scheme and host, drops default ports, credentials, the
    fragment and tracking parameters, sorts the remaining query parameters,
    and unwraps ``google.com/url?...&url=`` redirects (Google Alerts). A URL
    that cannot be parsed is returned stripped but otherwise unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if _GOOGLE_HOSTS.match(host) and parts.path == "/url":
        for key, value in query:
            if key in ("url", "q") and value.startswith(("http://", "https://")):
                return canonical_url(value)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    kept = sorted(
        (k, v) for k, v in query
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    )
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(kept), ""))


# --------------------------------------------------------------------------- HTML to text

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tr", "ul",
})
# Not text a reader sees. (The contents of <object> and <iframe> are fallback text, which is.)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# Whether a string holds markup at all. [^<>] (not [^>]): a run of "<a<a<a" without ">" must not make
# every "<" scan to the end of the string.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<!--|<!\[")
_ANY_TAG = re.compile(r"<[^<>]*>")
_BREAK = "\ue000"


def _tag_alternation(names: frozenset[str]) -> str:
    """``a(?:ddress|rticle)|b(?:r|...)``: grouped by first letter, so each "<" costs a few comparisons."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names, key=len, reverse=True):
        groups.setdefault(name[0], []).append(re.escape(name[1:]))
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in sorted(groups.items()))


_BLOCK_START = re.compile(r"<(?=/?(?:" + _tag_alternation(_BLOCK_TAGS) + r")[\s/>])", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Plain text from an HTML fragment (or from text with entities).

    Tags are removed, entities unescaped, script/style contents dropped, runs of
    whitespace collapsed to one space, and block boundaries (paragraphs, line
    breaks, list items) kept as single newlines.

    Linear in the input: markup is read by libxml2's HTML parser (through lxml),
    never by a regex or parser that rescans on malformed markup (``<!--`` followed
    by ``<a`` repeated, ``<![foo[``). libxml2 refuses documents nested deeper than
    256 elements; their text is then taken by stripping tags, also linearly.
    """
    if not html:
        return ""
    if _TAG.search(html):
        text = _markup_text(html)
    else:  # plain text with entities: its line breaks are breaks
        text = unescape(html)
    text = text.replace("\xa0", " ").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def _markup_text(html: str) -> str:
    # Block boundaries become a private-use marker in front of each block tag, turned into a newline
    # once the text is out: libxml2 then does all the walking, in C (a Python walk over a
    # million elements costs seconds). The marker cannot come from the feed: it is removed first.
    marked = _BLOCK_START.sub(_BREAK + "<", html.replace(_BREAK, ""))
    parser = etree.HTMLParser(recover=True, no_network=True, remove_comments=True, remove_pis=True,
                              encoding="utf-8")
    root = etree.fromstring(marked.encode("utf-8", "replace"), parser)
    if any(error.type == _DEPTH_LIMIT for error in parser.error_log):
        text = unescape(_ANY_TAG.sub(" ", marked))
    elif root is None:
        return ""
    else:
        etree.strip_elements(root, *_SKIP_TAGS, with_tail=False)
        text = etree.tostring(root, method="text", encoding="unicode")
    # In markup, source line breaks are just whitespace; the markers are the breaks.
    return text.replace("\n", " ").replace(_BREAK, "\n")


# --------------------------------------------------------------------------- items


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def fingerprint(*, link: str | None, guid: str | None, feed_url: str, title: str, summary: str,
                content: str = "") -> str:
    """The identity of an item across feeds and polls.

    The canonical link when there is one (the same story from two feeds is one
    item). Else the GUID, scoped by the feed: RSS only promises a GUID is unique
    within its feed, and short ones like ``"1234"`` collide across feeds. Else a
    hash of the normalised text (content too when title and summary are empty).
    """
    if link:
        return "link:" + _sha256(canonical_url(link))
    if guid:
        return "guid:" + _sha256(canonical_url(feed_url) + "\n" + guid.strip())
    body = _fold(title) + "\n" + _fold(summary)
    if not (title.strip() or summary.strip()):
        body += "\n" + _fold(content)
    return "hash:" + _sha256(body)


def normalize_entries(entries: Iterable[Entry], *, feed_url: str, now: datetime) -> tuple[list[Item], list[str]]:
    """Normalise a feed's entries one by one: one that fails is skipped with a reason, the others kept."""
    items: list[Item] = []
    skipped: list[str] = []
    for position, entry in enumerate(entries, start=1):
        try:
            items.append(normalize_entry(entry, feed_url=feed_url, now=now))
        except Exception:  # whatever one entry holds, the feed's other entries are kept
            label = " ".join(entry.title.split())[:80] if isinstance(entry.title, str) else ""
            skipped.append(f"entry {position}{f' ({label!r})' if label else ''}: its text could not be read")
    return items, skipped


def plausible_date(published: datetime | None, now: datetime) -> datetime | None:
    """``published`` in UTC when it can be an item's date: not before 1990, at most a day after ``now``."""
    if published is None:
        return None
    published = published.replace(tzinfo=UTC) if published.tzinfo is None else published.astimezone(UTC)
    if published < EARLIEST_DATE or published > now + FUTURE_TOLERANCE:
        return None
    return published


def normalize_entry(entry: Entry, *, feed_url: str, now: datetime) -> Item:
    """Turn a parsed entry into an item: text fields, canonical link, UTC date, fingerprint.

    ``now`` (timezone-aware) is the fetch time: it becomes ``fetched_at``. An
    entry without a plausible date (none, before 1990, more than a day after
    ``now``) is dated ``now``, the time it was first seen, and says so in
    ``date_from_fetch``.
    """
    if now.tzinfo is None:
        raise ValueError("normalize_entry needs a timezone-aware 'now'")
    now = now.astimezone(UTC)
    title = " ".join(html_to_text(entry.title).split())
    summary = html_to_text(entry.summary)
    content = html_to_text(entry.content)
    link = canonical_url(entry.link) if entry.link and entry.link.strip() else None
    guid = entry.guid.strip() if entry.guid and entry.guid.strip() else None
    published = plausible_date(entry.published, now)
    author = " ".join(html_to_text(entry.author).split()) if entry.author else None
    return Item(
        fingerprint=fingerprint(link=link, guid=guid, feed_url=feed_url, title=title, summary=summary,
                                content=content),
        title=title,
        link=link,
        guid=guid,
        summary=summary,
        content=content,
        published_at=published or now,
        author=author or None,
        feed_url=feed_url,
        fetched_at=now,
        date_from_fetch=published is None,
        lang=script_language(f"{title} {summary}"),
    )
