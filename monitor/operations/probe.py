"""Probing a URL before it becomes a feed: is it a feed, or a web page that names exactly one?"""

from __future__ import annotations

import asyncio
from typing import Any


class ProbeRefused(Exception):
    """The URL is neither a feed nor a page naming exactly one feed; the message says which and lists them."""


async def _probe(url: str, policy: Any) -> tuple[str, str]:
    from monitor.errors import ParseError
    from monitor.ingest.discover import discover_feeds
    from monitor.ingest.fetch import FeedState, build_client, fetch_feed
    from monitor.ingest.parse import parse_feed

    async with build_client(policy) as client:
        result = await fetch_feed(client, FeedState(url=url), policy)
    content = result.content or b""
    try:
        parse_feed(content, url=result.final_url, content_type=result.content_type)
        return "feed", url
    except ParseError:
        found = discover_feeds(content, url=result.final_url)
    if not found:
        raise ProbeRefused(f"{url} is not a feed and names no feed "
                           "(no <link rel=\"alternate\"> to RSS, Atom or JSON Feed)")
    if len(found) > 1:
        listed = "\n".join(f"  {f.url}" + (f"  ({f.title})" if f.title else "") for f in found)
        raise ProbeRefused(f"{url} is a web page naming {len(found)} feeds; add one of them:\n{listed}")
    return "page", found[0].url


def probe_feed(url: str, policy: Any) -> tuple[str, str]:
    """Fetch ``url``: ``("feed", url)`` when it is a feed, ``("page", feed_url)`` for the one feed a page names.

    Check the URL with ``check_url`` first. Raises ``ProbeRefused`` for a page naming several feeds or none,
    ``FetchError`` when it cannot be fetched.
    """
    return asyncio.run(_probe(url, policy))
