"""Backtest: run one watchlist, as it is now in its folder, over stored items. Sends and records nothing.

Shared by ``monitor watchlists backtest`` and any page that shows the same report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor import store
from monitor.domain import Document


@dataclass(frozen=True, slots=True)
class Sample:
    """One would-be hit, with the evidence for its first match."""

    title: str
    link: str | None
    explanation: str


@dataclass(slots=True)
class BacktestReport:
    """What a watchlist would have caught among the stored items, and how that differs from the stored hits."""

    name: str
    version: str
    scanned: int = 0
    per_feed: Counter[str] = field(default_factory=Counter)
    per_day: Counter[str] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    would: set[int] = field(default_factory=set)
    stored: dict[int, str] = field(default_factory=dict)  # item id -> watchlist version of the stored hit
    titles: dict[int, str] = field(default_factory=dict)

    @property
    def new(self) -> list[int]:
        """Items the list would catch now and has no stored hit for."""
        return sorted(self.would - self.stored.keys())

    @property
    def gone(self) -> list[int]:
        """Items with a stored hit the list would no longer catch."""
        return sorted(self.stored.keys() - self.would)

    @property
    def versions(self) -> list[str]:
        return sorted(set(self.stored.values()))

    @property
    def previous(self) -> list[str]:
        return sorted(set(self.stored.values()) - {self.version})


def backtest(session: Any, matcher: Any, name: str, version: str, *, since: datetime | None,
             samples: int, stop: Callable[[int], bool] | None = None, newest: int | None = None) -> BacktestReport:
    """Match every stored item fetched since ``since`` against ``name`` (one streaming pass).

    ``stop(scanned)``, asked before each item, ends the pass early (a web page's caps); the report then
    covers the items scanned so far. ``newest`` bounds the work to the newest that many items (the web API's
    cap); the comparison with stored hits then covers the same items only.
    """
    from monitor.match import explain as explain_match

    report = BacktestReport(name=name, version=version)
    after_id = store.nth_newest_item_id(session, newest) if newest is not None else 0
    report.stored = {item_id: version for item_id, version in store.stored_hit_items(session, name, since=since).items()
                     if item_id > after_id}
    for item in store.iter_items(session, since=since, after_id=after_id):
        if stop is not None and stop(report.scanned):
            # Items are read in id order: stored hits past the last one read were not tried, so are no change.
            report.stored = {k: v for k, v in report.stored.items() if k < item.id}
            break
        report.scanned += 1
        doc = Document(title=item.title, summary=item.summary, content=item.content, published=item.published_at)
        when = item.published_at or item.fetched_at
        matches = [m for m in matcher.match(doc, on=when.date() if when else None) if m.watchlist == name]
        if not matches:
            if item.id in report.stored:
                report.titles[item.id] = item.title
            continue
        report.would.add(item.id)
        report.titles[item.id] = item.title
        report.per_feed[item.feed] += 1
        report.per_day[(when or datetime.now(UTC)).strftime("%Y-%m-%d")] += 1
        if len(report.samples) < samples:
            report.samples.append(Sample(title=item.title, link=item.link, explanation=explain_match(matches[0])))
    return report
