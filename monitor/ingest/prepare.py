"""The CPU-bound part of polling one feed: parse, normalise, match, story signatures.

Runs in the parse worker processes (and in the main process for small cycles), so it imports only
what that work needs: a worker starts in a fraction of the time the whole pipeline takes to import,
and the first feeds of a cycle are parsed sooner.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from monitor.domain import Document, Item, Match
from monitor.errors import ParseError
from monitor.ingest.budget import BudgetExceeded, cpu_budget
from monitor.ingest.cluster import StorySignature, signature_for
from monitor.ingest.normalize import normalize_entries
from monitor.ingest.parse import parse_feed
from monitor.match import Matcher, load_watchlists, watchlist_versions

# CPU seconds one feed's parse and text extraction may take (enforced in the parse workers and in a
# main-thread poll): far above what any real feed needs (a 9 MB full-content feed takes about 2 s).
PARSE_BUDGET_SECONDS = 30.0


def document_for(item: Item) -> Document:
    """What the matcher reads of an item."""
    return Document(title=item.title, summary=item.summary, content=item.content, published=item.published_at)


def reference_date(item: Item, now: datetime) -> date:
    """The day an item's anniversaries are checked against: its publication day, else today."""
    return (item.published_at or now).date()


def alertable_flags(items: list[Item], *, first_poll: bool, window_start: datetime) -> list[bool]:
    """Which items may become hits: all of them, except on a feed's first poll, where only those
    published inside the alert window (a new feed's back catalogue is stored, not alerted)."""
    return [
        (not first_poll) or (not it.date_from_fetch and it.published_at is not None
                             and it.published_at >= window_start)
        for it in items
    ]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A fetched feed turned into items off the main process (parse, normalise, story signatures)."""

    items: list[Item]
    signatures: dict[str, StorySignature]  # by fingerprint
    ttl_minutes: int | None
    error: str | None = None
    skipped: tuple[str, ...] = ()  # entries that could not be read, one reason each
    # The matches of every alertable item, by fingerprint, when a parse worker matched them
    # (None: match in the main process).
    matches: dict[str, list[Match]] | None = None


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """What a parse worker needs to match a feed's items as the main process would."""

    folder: str  # the watchlists folder
    key: str  # :func:`versions_key` of the watchlists the cycle uses
    first_poll: bool
    window_start: datetime


def versions_key(versions: dict[str, str]) -> str:
    return repr(sorted(versions.items()))


# In a parse worker: matchers by folder and versions key (None: the folder did not give that version).
_WORKER_MATCHERS: OrderedDict[tuple[str, str], Matcher | None] = OrderedDict()


def _worker_matcher(folder: str, key: str) -> Matcher | None:
    """The matcher for ``key``, loaded from ``folder`` once per worker and version; None when the files no
    longer give that version (edited since the cycle began, or broken: the main process keeps the last
    good lists then), and the main process matches instead."""
    if (folder, key) not in _WORKER_MATCHERS:
        matcher = None
        try:
            result = load_watchlists(Path(folder))
            if not result.errors and versions_key(watchlist_versions(result)) == key:
                matcher = Matcher.compile(result)
        except Exception:  # whatever it is, the main process matches with what it has
            matcher = None
        _WORKER_MATCHERS[folder, key] = matcher
        while len(_WORKER_MATCHERS) > 2:
            _WORKER_MATCHERS.popitem(last=False)
    return _WORKER_MATCHERS[folder, key]


def prepare_in_worker(content: bytes, url: str, content_type: str | None, feed_url: str, now: datetime,
                      plan: MatchPlan, encoding: str | None = None, timezone: str | None = None) -> Prepared:
    """Parse, normalise and match one feed in a parse worker; story signatures for the items that hit."""
    matcher = _worker_matcher(plan.folder, plan.key)
    return prepare_feed(content, url, content_type, feed_url, now, encoding, timezone, signatures=False,
                        matching=None if matcher is None else (matcher, plan))


def prepare_feed(content: bytes, url: str, content_type: str | None, feed_url: str, now: datetime,
                 encoding: str | None = None, timezone: str | None = None, *, signatures: bool = True,
                 budget: float | None = PARSE_BUDGET_SECONDS,
                 matching: tuple[Matcher, MatchPlan] | None = None) -> Prepared:
    """The CPU-bound part of polling one feed; runs in a worker process. Pure but for the CPU budget.

    With ``matching``, the alertable items are matched as well, and story signatures are computed for
    those that hit (only they are grouped into stories).
    """
    matches: dict[str, list[Match]] | None = None
    try:
        with cpu_budget(budget):
            parsed = parse_feed(content, url=url, content_type=content_type, encoding=encoding, timezone=timezone)
            items, skipped = normalize_entries(parsed.entries, feed_url=feed_url, now=now)
            sigs = {it.fingerprint: signature_for(it.title, it.summary) for it in items} if signatures else {}
            if matching is not None:
                matcher, plan = matching
                matches = {}
                flags = alertable_flags(items, first_poll=plan.first_poll, window_start=plan.window_start)
                for item, ok in zip(items, flags, strict=True):
                    if ok and item.fingerprint not in matches:
                        found = matcher.match(document_for(item), on=reference_date(item, now))
                        matches[item.fingerprint] = found
                        if found and item.fingerprint not in sigs:
                            sigs[item.fingerprint] = signature_for(item.title, item.summary)
    except ParseError as exc:
        return Prepared([], {}, None, str(exc))
    except BudgetExceeded as exc:
        return Prepared([], {}, None, f"{url}: reading this feed took more than {exc.seconds:g} s of CPU; refused "
                                      f"({len(content) // 1024} KB; a feed this large or convoluted costs every poll)")
    return Prepared(items, sigs, parsed.ttl_minutes, skipped=(*parsed.skipped, *skipped), matches=matches)


def story_signatures(texts: list[tuple[str, str, str]]) -> dict[str, StorySignature]:
    """``{fingerprint: signature}`` of (fingerprint, title, summary) items; runs in a parse worker."""
    return {fp: signature_for(title, summary) for fp, title, summary in texts}
