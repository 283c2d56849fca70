"""Upcoming round-number anniversaries for the calendar page, from the same code as ``monitor anniversaries``.

Grouped by week (Monday first) so a page can show an agenda; each entry names its ordinal, its calendar
entry (id, line and citation) and the watchlists whose anniversary rules resolve to the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

UPCOMING_DAYS = 90


def ordinal(n: int) -> str:
    """``73`` → ``73rd``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True, slots=True)
class AnniversaryView:
    date: date
    years: int
    ordinal: str  # "75th"
    name: str
    event: str  # the calendar entry's id
    parties: tuple[str, ...]
    line: int | None  # the entry's line in the calendar file
    source: str  # the entry's citation
    since: int | None  # the year of the event


@dataclass(frozen=True, slots=True)
class Week:
    start: date  # the Monday
    anniversaries: list[AnniversaryView]


@dataclass(frozen=True, slots=True)
class Agenda:
    start: date
    end: date
    weeks: list[Week]
    watchlists: list[str]  # the lists with anniversary rules (they resolve ordinals against this calendar)
    problems: list[str]

    @property
    def count(self) -> int:
        return sum(len(w.anniversaries) for w in self.weeks)


def upcoming_anniversaries(folder: Path, today: date, days: int = UPCOMING_DAYS) -> Agenda:
    """Round-number (multiple-of-5) anniversaries from ``today`` to ``today + days``, grouped by week."""
    from monitor.match import load_watchlists, upcoming

    result = load_watchlists(folder)
    weeks: dict[date, list[AnniversaryView]] = {}
    for found in upcoming(result.calendar, today, days):
        event = result.calendar.events[found.event]
        weeks.setdefault(found.date - timedelta(days=found.date.weekday()), []).append(AnniversaryView(
            date=found.date, years=found.years, ordinal=ordinal(found.years), name=found.name, event=found.event,
            parties=found.parties, line=event.line, source=event.source, since=event.year))
    lists = sorted(w.name for w in result.watchlists if any(r.anniversary for r in w.rules))
    return Agenda(start=today, end=today + timedelta(days=days),
                  weeks=[Week(start, rows) for start, rows in sorted(weeks.items())], watchlists=lists,
                  problems=[str(e).replace(str(folder), "watchlists") for e in result.errors])
