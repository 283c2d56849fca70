"""Feed discovery: the feeds a web page names with ``<link rel="alternate">``.

Pure: HTML bytes and the page's URL in, absolute feed URLs out. Used when an
operator gives a site's address where a feed's was expected (``feeds add``).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

FEED_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
    "application/json", "text/xml", "application/xml", "application/x-rss+xml",
})


@dataclass(frozen=True, slots=True)
class FoundFeed:
    url: str
    title: str | None
    type: str


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: list[FoundFeed] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base = urljoin(self.base, href.strip())
            return
        if tag not in ("link", "a"):
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        href = values.get("href", "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            url = urljoin(self.base, href)
            if url.lower().startswith(("http://", "https://")) and all(f.url != url for f in self.found):
                self.found.append(FoundFeed(url=url, title=values.get("title") or None, type=kind))


def discover_feeds(html: str | bytes, *, url: str) -> list[FoundFeed]:
    """The feeds a page links as alternates (``<link>`` or ``<a rel="alternate">``), in page order, as
    absolute http(s) URLs (duplicates once). Used by ``feeds add`` and by the parse error for a page."""
    parser = _Links(url)
    text = html if isinstance(html, str) else html.decode("utf-8", errors="replace")
    parser.feed(text)  # lenient: odd markup never raises
    parser.close()
    return parser.found
