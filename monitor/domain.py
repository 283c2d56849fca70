"""Value types shared by the pipeline's steps.

Plain frozen dataclasses: no I/O, no database, no settings. Pure steps take and
return these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as parsed from a feed, before normalisation.

    ``summary`` and ``content`` may hold HTML; ``published`` is timezone-aware
    UTC when the feed gave a date monitor could read, else ``None``.
    """

    title: str = ""
    link: str | None = None
    guid: str | None = None
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed document holds."""

    title: str
    link: str | None
    entries: tuple[Entry, ...]
    ttl_minutes: int | None = None
    # One line per entry that could not be read (the others are kept), for the feed's status.
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """A normalised item: plain text, canonical link, UTC date, fingerprint.

    ``fingerprint`` is feed-independent (canonical link, else GUID, else a hash
    of the content), so the same story carried by two feeds is one item.
    """

    fingerprint: str
    title: str
    link: str | None
    guid: str | None
    summary: str
    content: str
    published_at: datetime | None
    author: str | None
    feed_url: str
    fetched_at: datetime
    # True when the feed gave no plausible date and ``published_at`` is the time the item was
    # first seen (``fetched_at``); such an item never counts as recent on a feed's first poll.
    date_from_fetch: bool = False
    # The script language of title and summary (:func:`monitor.lang.script_language`), worked out when
    # the item is normalised (in a parse worker); None: not worked out, or no letters.
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """What the matcher reads: an item's text fields and its date."""

    title: str
    summary: str = ""
    content: str = ""
    published: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """One watchlist matching one document, with why.

    ``evidence`` holds JSON-ready dicts (see docs/watchlists.md for their keys);
    it is stored with the hit and rendered in digests and webhooks.
    """

    watchlist: str
    version: str
    score: float
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "watchlist": self.watchlist,
            "version": self.version,
            "score": round(self.score, 4),
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A stored hit with what a message needs to show it."""

    hit_id: int
    item_id: int
    watchlist: str
    score: float
    evidence: list[dict[str, Any]]
    title: str
    link: str | None
    summary: str
    published_at: datetime | None
    feed_name: str | None
    feed_url: str
    created_at: datetime
    story_id: int | None = None
    # The item's story was already named in an earlier message to this subscription.
    follow_up: bool = False
    content: str = ""  # the item's full text, where evidence offsets may point
    # The story's report that was sent earlier (title, link, source), named when this one follows it up.
    follow_up_of: StoryRef | None = None


@dataclass(frozen=True, slots=True)
class StoryRef:
    """The first report of a story a subscriber was sent: what a follow-up names."""

    item_id: int
    title: str
    link: str | None
    source: str
