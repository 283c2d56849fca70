"""Watchlist matching: load and validate watchlist files, compile them once, match documents.

Public surface: :func:`load_watchlists` (never raises for a bad file; problems are in
``LoadResult.errors`` with file and line), :class:`Matcher` (``Matcher.compile(result)``,
``matcher.match(doc, on=date)``), :func:`explain` and :func:`run_examples`. Pure: the
only I/O is reading the watchlist folder; the reference date is always a parameter.
"""

from monitor.match.anniversaries import Calendar, CalendarEvent, upcoming
from monitor.match.engine import Matcher, example_outcomes, explain, normalise, run_examples
from monitor.match.watchlist import Actor, LoadResult, Watchlist, load_watchlists, watchlist_versions

__all__ = [
    "Actor",
    "Calendar",
    "CalendarEvent",
    "LoadResult",
    "Matcher",
    "Watchlist",
    "example_outcomes",
    "explain",
    "load_watchlists",
    "normalise",
    "run_examples",
    "upcoming",
    "watchlist_versions",
]
