"""Watchlists as operators see them: versions, rule counts, embedded examples, problems; drafts tried on stored items.

The overview runs the same example check as ``monitor watchlists test`` and gives each list the same
version key the workers record (``version:fingerprint``, ``WatchlistSource.versions``). A draft is
loaded beside the live lists in a temporary copy of the folder, so the live folder is never written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.operations.backtest import BacktestReport, backtest

MAX_DRAFT_BYTES = 256 * 1024  # a watchlist file is a few kilobytes; a larger draft is refused before parsing
BACKTEST_DAYS = 30  # a draft is tried on the items fetched in the last 30 days unless the operator says otherwise
BACKTEST_MAX_ITEMS = 20_000  # and on at most this many of them
BACKTEST_SECONDS = 20.0  # and for at most this long, so a request never holds the server


class DraftError(Exception):
    """A draft that cannot be tried, with the reason for the operator."""


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    title: str
    expect: bool  # True: should match; False: should not
    passed: bool
    line: int
    on: str | None


@dataclass(frozen=True, slots=True)
class WatchlistView:
    name: str
    title: str
    version: str  # the version string written in the file
    fingerprint: str  # the hash of the compiled rules, as recorded with each matched item
    file: str  # the file's name inside the watchlist folder
    description: str
    severity: str
    rules: int
    exclude: int
    examples: list[ExampleOutcome]

    @property
    def failing(self) -> list[ExampleOutcome]:
        return [e for e in self.examples if not e.passed]


@dataclass(frozen=True, slots=True)
class WatchlistsOverview:
    watchlists: list[WatchlistView]
    problems: list[str]  # every validation problem, as ``file:line: reason`` relative to the folder
    folder: str


def _relative(text: str, folder: Path, shown: str = "watchlists") -> str:
    return text.replace(str(folder), shown)


def _load(folder: Path) -> tuple[Any, Any, dict[str, str]]:
    """The load result, the compiled matcher and each list's ``version:fingerprint`` (as the workers key them)."""
    from monitor.match import Matcher
    from monitor.pipeline.context import WatchlistSource

    source = WatchlistSource(folder)
    try:
        matcher: Matcher = source.get()
    except Exception:  # nothing valid in the folder: the problems say why
        from monitor.match import load_watchlists

        return load_watchlists(folder), None, {}
    return source.result, matcher, source.versions


def watchlists_overview(folder: Path) -> WatchlistsOverview:
    """Each valid watchlist with its version, file, rule count and example results; every problem found."""
    from monitor.match import example_outcomes

    result, matcher, versions = _load(folder)
    outcomes: dict[str, list[ExampleOutcome]] = {}
    if matcher is not None:
        for watchlist, example, passed in example_outcomes(result, matcher):
            outcomes.setdefault(watchlist.name, []).append(
                ExampleOutcome(title=example.title, expect=example.expect, passed=passed, line=example.line,
                               on=example.on))
    views = [
        WatchlistView(name=w.name, title=w.title, version=w.version,
                      fingerprint=versions.get(w.name, "").partition(":")[2], file=Path(w.path).name,
                      description=w.description, severity=w.severity, rules=len(w.rules), exclude=len(w.exclude),
                      examples=outcomes.get(w.name, []))
        for w in sorted(result.watchlists, key=lambda w: w.name)
    ]
    return WatchlistsOverview(watchlists=views, problems=[_relative(str(e), folder) for e in result.errors],
                              folder=str(folder))


def watchlist_source(folder: Path, name: str) -> str | None:
    """The text of the file that defines watchlist ``name`` (None when no valid list has that name)."""
    from monitor.match import load_watchlists

    for watchlist in load_watchlists(folder).watchlists:
        if watchlist.name == name:
            try:
                return Path(watchlist.path).read_text(encoding="utf-8")
            except OSError:
                return None
    return None


@dataclass(slots=True)
class DraftBacktest:
    """A draft's validation problems, or what it would catch among the stored items."""

    problems: list[str] = field(default_factory=list)
    report: BacktestReport | None = None
    since: datetime | None = None
    stopped: str | None = None  # why the scan stopped early (item cap or time budget), when it did

    @property
    def valid(self) -> bool:
        return not self.problems and self.report is not None


def backtest_draft(session: Any, folder: Path, draft: str, *, replaces: str | None, since: datetime | None,
                   samples: int = 5, max_items: int = BACKTEST_MAX_ITEMS,
                   seconds: float = BACKTEST_SECONDS) -> DraftBacktest:
    """Validate ``draft`` (watchlist YAML) beside the live lists and run it over stored items, saving nothing.

    ``replaces``: the live list whose file the draft stands in for (editing it); otherwise the draft is a new
    file. Problems in the draft are reported with its line numbers; problems in other files do not stop it.
    Raises :class:`DraftError` for a draft too large to read.
    """
    if len(draft.encode("utf-8")) > MAX_DRAFT_BYTES:
        raise DraftError(f"the draft is larger than {MAX_DRAFT_BYTES // 1024} KB; a watchlist is a few KB")
    from monitor.match import Matcher, load_watchlists

    with tempfile.TemporaryDirectory(prefix="monitor-draft-") as tmp:
        work = Path(tmp) / "watchlists"
        if folder.is_dir():
            shutil.copytree(folder, work, ignore=shutil.ignore_patterns("*.xml", ".*"))
        else:
            work.mkdir()
        live = next((w for w in load_watchlists(work).watchlists if w.name == replaces), None) if replaces else None
        if live is not None:
            target = Path(live.path)
        else:  # a new file, beside (never over) the live ones
            target = work / "draft.yaml"
            while target.exists():
                target = target.with_name("_" + target.name)
        target.write_text(draft, encoding="utf-8")
        result = load_watchlists(work)
        own = [e for e in result.errors if e.path == str(target)]
        shown = f"draft ({target.name})" if live is not None else "draft"
        if own:
            return DraftBacktest(problems=[_relative(str(e), target, shown) for e in own], since=since)
        mine = next((w for w in result.watchlists if w.path == str(target)), None)
        if mine is None:
            problems = [_relative(str(e), work) for e in result.errors] or ["the draft defines no watchlist"]
            return DraftBacktest(problems=problems, since=since)
        matcher = Matcher.compile(result)
    outcome = DraftBacktest(since=since)
    deadline = time.monotonic() + seconds

    def stop(scanned: int) -> bool:
        if scanned >= max_items:
            outcome.stopped = f"stopped after {max_items:,} items (the cap for one request)"
        elif time.monotonic() > deadline:
            outcome.stopped = f"stopped after {seconds:g} s (the time budget for one request) at {scanned:,} items"
        return outcome.stopped is not None

    outcome.report = backtest(session, matcher, mine.name, mine.version, since=since, samples=samples, stop=stop)
    return outcome
