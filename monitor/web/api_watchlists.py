"""The watchlist calls of the JSON API: the folder's lists and their problems, a draft checked beside them,
and backtests of a stored list or a draft over stored items. Nothing here writes to the folder or the database.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from monitor.web.api import Reader, _db, _documented, _known_parameters, _state

router = APIRouter(responses=_documented(400, 401), dependencies=[Depends(_known_parameters)])
Name = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class WatchlistDraft(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="File name, without .yaml")
    yaml: str = Field(max_length=1_000_000)


class Validation(BaseModel):
    valid: bool
    watchlists: list[str]
    problems: list[str]


@router.get("/api/v1/watchlists", response_model=Validation, tags=["watchlists"])
def list_watchlists(request: Request, _token: Reader) -> Validation:
    """The watchlists in the configured folder, and their problems."""
    return _validate(_state(request).settings.watchlists_dir)


@router.post("/api/v1/watchlists/validate", response_model=Validation, tags=["watchlists"])
def validate_watchlist(request: Request, _token: Reader, draft: WatchlistDraft) -> Validation:
    """Check a draft watchlist beside the configured ones (nothing is saved)."""
    with draft_folder(_state(request).settings.watchlists_dir, draft.name, draft.yaml) as work:
        result = _validate(work)
    return Validation(valid=result.valid, watchlists=result.watchlists,
                      problems=[p.replace(str(work), "watchlists") for p in result.problems])


@contextmanager
def draft_folder(folder: Path, name: str | None, text: str) -> Iterator[Path]:
    """A temporary copy of the watchlist folder with ``name``.yaml replaced by ``text`` (None: a plain copy),
    so a draft is read beside the actors and calendar it refers to; the live folder is never written."""
    with tempfile.TemporaryDirectory(prefix="monitor-draft-") as tmp:
        work = Path(tmp) / "watchlists"
        if folder.is_dir():
            shutil.copytree(folder, work)
        else:
            work.mkdir()
        if name is not None:
            (work / f"{name}.yaml").write_text(text, encoding="utf-8")
        yield work


def _validate(folder: Path) -> Validation:
    from monitor.errors import WatchlistError
    from monitor.match import load_watchlists

    try:
        result = load_watchlists(folder)
    except WatchlistError as exc:
        return Validation(valid=False, watchlists=[], problems=[str(exc)])
    problems = [str(e) for e in result.errors]
    return Validation(valid=not problems, watchlists=sorted(w.name for w in result.watchlists), problems=problems)


# --- backtests ----------------------------------------------------------------------------------

MAX_BACKTEST_BODY = 256 * 1024
_backtests = threading.BoundedSemaphore(1)  # matching is CPU work: one backtest at a time per process


class BacktestIn(BaseModel):
    yaml: str | None = Field(default=None, max_length=200_000,
                             description="A draft of this watchlist; omitted: the list as it is in the folder.")
    since: datetime | None = Field(default=None, description="Only items fetched at or after this time.")
    max_items: int = Field(default=20_000, ge=1, le=100_000, description="Scan at most the newest this many items.")
    samples: int = Field(default=5, ge=0, le=50)


class BacktestSample(BaseModel):
    title: str
    link: str | None
    explanation: str


class BacktestOut(BaseModel):
    watchlist: str
    version: str
    draft: bool = Field(description="True when the body's YAML was tried, not the stored list.")
    scanned: int
    hits: int = Field(description="Items the list would catch among those scanned.")
    per_feed: dict[str, int]
    per_day: dict[str, int]
    new: int = Field(description="Would-be hits with no stored hit.")
    gone: int = Field(description="Stored hits the list would no longer catch.")
    new_titles: list[str]
    gone_titles: list[str]
    stored_versions: list[str]
    samples: list[BacktestSample]


def _body_size(request: Request) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BACKTEST_BODY:
        raise HTTPException(413, f"the body is over {MAX_BACKTEST_BODY // 1024} KB")


@router.post("/api/v1/watchlists/{name}/backtest", response_model=BacktestOut, tags=["watchlists"],
             responses={**_documented(404, 409), 413: {"description": "Body too large"}},
             dependencies=[Depends(_body_size)])
def backtest_watchlist(request: Request, _token: Reader, name: Name, body: BacktestIn) -> BacktestOut:
    """Run a watchlist (stored, or a draft in the body) over the newest stored items; nothing is saved or sent,
    so a read-only token may call it. One backtest runs at a time (409 while another does)."""
    from monitor.match import Matcher, load_watchlists
    from monitor.operations.backtest import backtest

    if body.since is not None and body.since.tzinfo is None:
        raise HTTPException(400, "since: give a time zone (e.g. 2026-11-25T00:00:00Z)")
    folder = _state(request).settings.watchlists_dir
    if not _backtests.acquire(blocking=False):
        raise HTTPException(409, "another backtest is running; try again when it is done")
    try:
        drafted = draft_folder(folder, name, body.yaml) if body.yaml is not None else nullcontext(folder)
        with drafted as work:
            result = load_watchlists(work)
            problems = [str(e).replace(str(work), "watchlists") for e in result.errors]
            chosen = [w for w in result.watchlists if w.name == name]
            if not chosen:
                mine = [p for p in problems if f"{name}.yaml" in p]
                raise HTTPException(400 if body.yaml is not None else 404, f"no valid watchlist named {name!r}"
                                    + (": " + "; ".join(mine[:5]) if mine else ""))
            matcher = Matcher.compile(result)
        with _db(request) as session:
            report = backtest(session, matcher, name, chosen[0].version, since=body.since, samples=body.samples,
                              newest=body.max_items)
    finally:
        _backtests.release()
    return BacktestOut(
        watchlist=name, version=report.version, draft=body.yaml is not None, scanned=report.scanned,
        hits=len(report.would), per_feed=dict(report.per_feed.most_common(50)),
        per_day=dict(sorted(report.per_day.items())[-92:]), new=len(report.new), gone=len(report.gone),
        new_titles=[report.titles.get(i, str(i)) for i in report.new[:body.samples]],
        gone_titles=[report.titles.get(i, str(i)) for i in report.gone[:body.samples]],
        stored_versions=report.versions,
        samples=[BacktestSample(title=s.title, link=s.link, explanation=s.explanation) for s in report.samples],
    )


