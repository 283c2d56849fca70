"""Operator pages for watchlists (versions, examples, problems, backtesting a draft) and upcoming anniversaries.

A backtest reads many stored items, so each runs under caps (``operations.watchlists``: draft size, days,
items, seconds) in FastAPI's thread pool, and at most ``BACKTESTS_AT_ONCE`` run at a time: a busy server
answers 429 instead of queueing more.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from monitor.db import read_scope
from monitor.operations import calendar, watchlists
from monitor.web.pages import _checked, _now, _operator, _page, _web

router = APIRouter(include_in_schema=False)
BACKTESTS_AT_ONCE = 2
_backtests = threading.BoundedSemaphore(BACKTESTS_AT_ONCE)
_LIMITS = {"max_items": watchlists.BACKTEST_MAX_ITEMS, "max_seconds": int(watchlists.BACKTEST_SECONDS)}


@router.get("/watchlists", response_class=HTMLResponse)
def watchlists_page(request: Request) -> Response:
    session = _operator(request)
    overview = watchlists.watchlists_overview(_web(request).settings.watchlists_dir)
    return _page(request, "watchlists.html", session, overview=overview, draft=_NEW_DRAFT,
                 since=_default_since(), result=None, **_LIMITS)


@router.get("/watchlists/{name}", response_class=HTMLResponse)
def watchlist_page(request: Request, name: str) -> Response:
    session = _operator(request)
    folder = _web(request).settings.watchlists_dir
    overview = watchlists.watchlists_overview(folder)
    found = next((w for w in overview.watchlists if w.name == name), None)
    if found is None:
        raise HTTPException(404, f"no valid watchlist named {name[:80]!r}; the watchlists page lists them")
    return _page(request, "watchlist.html", session, watchlist=found, draft=watchlists.watchlist_source(folder, name)
                 or "", since=_default_since(), result=None, **_LIMITS,
                 problems=[p for p in overview.problems if p.startswith(f"watchlists/{found.file}:")])


@router.post("/watchlists/backtest", response_class=HTMLResponse)
def backtest_draft(request: Request, draft: Annotated[str, Form(max_length=watchlists.MAX_DRAFT_BYTES)] = "",
                   replaces: Annotated[str, Form(max_length=64)] = "", since: Annotated[str, Form(max_length=10)] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Validate a draft and run it over stored items; nothing is saved, and the draft comes back in the form."""
    session = _checked(request, csrf)
    web = _web(request)
    start = _since(since)
    if not _backtests.acquire(blocking=False):
        raise HTTPException(429, "other backtests are running; try again in a moment")
    try:
        with read_scope(web.reads) as db:
            result = watchlists.backtest_draft(db, web.settings.watchlists_dir, draft, replaces=replaces or None,
                                               since=start)
    except watchlists.DraftError as exc:
        result = watchlists.DraftBacktest(problems=[str(exc)], since=start)
    finally:
        _backtests.release()
    overview = watchlists.watchlists_overview(web.settings.watchlists_dir)
    found = next((w for w in overview.watchlists if w.name == replaces), None) if replaces else None
    code = 200  # an invalid draft is an answer (its problems, with lines), not a failed request
    if found is not None:
        return _page(request, "watchlist.html", session, code, watchlist=found, draft=draft,
                     since=start.date().isoformat() if start else "", result=result, **_LIMITS,
                     problems=[p for p in overview.problems if p.startswith(f"watchlists/{found.file}:")])
    return _page(request, "watchlists.html", session, code, overview=overview, draft=draft,
                 since=start.date().isoformat() if start else "", result=result, **_LIMITS)


@router.get("/anniversaries", response_class=HTMLResponse)
def anniversaries_page(request: Request) -> Response:
    session = _operator(request)
    agenda = calendar.upcoming_anniversaries(_web(request).settings.watchlists_dir, _now().date(),
                                             calendar.UPCOMING_DAYS)
    return _page(request, "anniversaries.html", session, agenda=agenda)


def _default_since() -> str:
    return (_now() - timedelta(days=watchlists.BACKTEST_DAYS)).date().isoformat()


def _since(value: str) -> datetime | None:
    """The form's "since" day (midnight UTC); empty means the default window, never the whole archive."""
    if not value.strip():
        value = _default_since()
    try:
        return datetime.combine(date.fromisoformat(value.strip()), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise HTTPException(400, f"since: write a date as YYYY-MM-DD, not {value[:20]!r}") from None


_NEW_DRAFT = """\
kind: watchlist
name: my_draft
title: My draft
version: "1"
severity: medium
cues:
  visit: ["visit*", "arriv*", "talks"]
rules:
  - id: visit
    within: sentence
    all:
      - cue: visit
      - side: dprk
      - side: [china, russia]
examples:
  match:
    - title: Kim Jong Un arrives in Beijing for talks with Xi Jinping
  no_match:
    - title: Kim Jong Un inspects a factory
"""
