"""Operator pages: log in, recent hits, search, feeds (with OPML import), deliveries. Server-rendered, no scripts.

Watchlists, anniversaries and subscriptions have their own modules (``pages_watchlists``, ``pages_subscriptions``).

Every form carries the session's CSRF token; every POST checks it before doing anything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor import operations, store
from monitor.db import session_scope
from monitor.net.guard import FetchPolicy
from monitor.web.security import SESSION_COOKIE, Session, csrf_ok

router = APIRouter(include_in_schema=False)
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]  # what the databases can store

MESSAGES = {
    "feed-added": "Feed added; it is polled at the next cycle.",
    "feed-reset": "Feed reset; it is polled at the next cycle.",
    "feed-paused": "Feed paused.",
    "retried": "Delivery queued again; it goes out at the next delivery cycle.",
    "logged-out": "You are logged out.",
}


def _web(request: Request) -> Any:
    return request.app.state.web


def _session(request: Request) -> Session | None:
    """The cookie's session; in the SSO header mode, the operator a trusted proxy names (it wins)."""
    proxy_user = request.scope.get("monitor.proxy_user")
    if proxy_user:
        return _proxy_session(request, proxy_user)
    session: Session | None = _web(request).sessions.load(request.cookies.get(SESSION_COOKIE))
    return session


def _proxy_session(request: Request, name: str) -> Session:
    """An operator named by the proxy must exist (``monitor web passwd NAME``): the proxy says who someone is,
    the operators table says who may operate."""
    web = _web(request)
    with session_scope(web.reads) as db:
        known = operations.operator_exists(db, name)
    if not known:
        raise HTTPException(403, f"{name[:64]!r} is not an operator here; an operator adds it with "
                                 "'monitor web passwd NAME'")
    session: Session = web.sessions.for_proxy_user(name)
    return session


def _set_cookie(request: Request, response: Response, session: Session) -> Response:
    web = _web(request)
    response.set_cookie(SESSION_COOKIE, web.sessions.dump(session), max_age=web.sessions.lifetime, httponly=True,
                        samesite="lax", secure=web.cookie_secure, path="/")
    return response


def _operator(request: Request) -> Session:
    session = _session(request)
    if session is None or not session.logged_in:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": "/login?" + urlencode({"next": target})})
    return session


def _checked(request: Request, csrf: str) -> Session:
    """The logged-in session, when the form's CSRF token is its own; 403 otherwise."""
    session = _operator(request)
    if not csrf_ok(session, csrf):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page and try again")
    return session


def _page(request: Request, template: str, session: Session, code: int = 200, /, **values: Any) -> HTMLResponse:
    message = MESSAGES.get(request.query_params.get("done", ""))
    response: HTMLResponse = _web(request).render(template, request, code, user=session.user, csrf=session.csrf,
                                                  message=message, **values)
    return response


def _local(target: str | None) -> str:
    """Where to go after logging in: a path on this site only."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _now() -> datetime:
    return datetime.now(UTC)


# --- login --------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    web = _web(request)
    session = _session(request) or web.sessions.new(None)
    with session_scope(web.reads) as db:
        first_run = not operations.has_operators(db)
    response = web.render("login.html", request, csrf=session.csrf, next=_local(next), first_run=first_run,
                          error=None, user=None, message=MESSAGES.get(request.query_params.get("done", "")))
    return _set_cookie(request, response, session)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, name: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=1024)] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    from monitor.web.app import client_key

    web = _web(request)
    session = _session(request)

    def again(error: str, status: int) -> Response:
        fresh = session or web.sessions.new(None)
        response = web.render("login.html", request, status, csrf=fresh.csrf, next=_local(next), first_run=False,
                              error=error, user=None, message=None)
        return _set_cookie(request, response, fresh)

    if not web.login_limit.allow(client_key(request)):
        return again("Too many attempts; wait a minute.", 429)
    if not csrf_ok(session, csrf):
        return again("The form expired; try again.", 403)
    with session_scope(web.reads) as db:
        ok = operations.check_operator_password(db, name, password)
    if not ok:
        return again("Wrong name or password.", 401)
    response = RedirectResponse(_local(next), status_code=303)
    return _set_cookie(request, response, web.sessions.new(name))  # a new session (and CSRF token) on login


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    _checked(request, csrf)
    response = RedirectResponse("/login?done=logged-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- hits and search ----------------------------------------------------------------------------


def _day(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise HTTPException(400, f"{field}: write a date as YYYY-MM-DD") from None


def _cursor(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@router.get("/", response_class=HTMLResponse)
def hits_page(request: Request, watchlist: str | None = None, feed: str | None = None, since: str | None = None,
              until: str | None = None, lang: str | None = None, before: str | None = None) -> Response:
    session = _operator(request)
    until_day = _day(until, "until")
    filters = operations.HitFilter(watchlist=watchlist or None, feed=feed or None, since=_day(since, "since"),
                                   until=until_day + timedelta(days=1) if until_day else None, lang=lang or None)
    web = _web(request)
    with session_scope(web.reads) as db:
        hits, after = operations.hits_page(db, filters, before=_cursor(before), limit=50)
        feeds = operations.feed_names(db)
        first_run = not feeds
    names = sorted((web.settings.watchlists_dir.glob("*.yaml")) if web.settings.watchlists_dir.is_dir() else [])
    params = {k: v for k, v in dict(watchlist=watchlist, feed=feed, since=since, until=until, lang=lang).items() if v}
    older = "/?" + urlencode({**params, "before": after}) if after else None
    return _page(request, "hits.html", session, hits=hits, older=older, filters=params, feeds=feeds,
                 watchlists=[p.stem for p in names if not p.stem.startswith("_")], first_run=first_run)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", before: str | None = None) -> Response:
    session = _operator(request)
    q = q[:200]
    items: list[operations.ItemView] = []
    after = None
    if q.strip():
        with session_scope(_web(request).reads) as db:
            items, after = operations.search_items(db, q, before=_cursor(before), limit=50)
    older = "/search?" + urlencode({"q": q, "before": after}) if after else None
    marks = [{"field": field, "text": term} for term in operations.search_terms(q) for field in ("title", "summary")]
    return _page(request, "search.html", session, q=q, items=items, older=older, marks=marks)


# --- feeds --------------------------------------------------------------------------------------


@router.get("/feeds", response_class=HTMLResponse)
def feeds_page(request: Request) -> Response:
    return _feeds(request, _operator(request))


def _feeds(request: Request, session: Session, code: int = 200, /, *, error: str | None = None, url: str = "",
           name: str = "", imported: Any = None) -> HTMLResponse:
    """The feeds page: every feed with its problem, and what the last form did (an error, an import)."""
    web = _web(request)
    now = _now()
    with session_scope(web.reads) as db:
        feeds = store.list_feeds(db)
    rows = [(f, store.feed_problem(f, now=now, failing_for=web.settings.source_problem_after)) for f in feeds]
    return _page(request, "feeds.html", session, code, rows=rows, error=error, url=url, name=name,
                 imported=imported)


@router.post("/feeds", response_class=HTMLResponse)
def feeds_add(request: Request, url: Annotated[str, Form(max_length=2048)] = "",
              name: Annotated[str, Form(max_length=512)] = "", csrf: Annotated[str, Form()] = "") -> Response:
    session = _checked(request, csrf)
    web = _web(request)
    settings = web.settings
    try:
        with session_scope(web.engine) as db:
            operations.add_feed(db, url, name=name or None, now=_now(), interval=settings.poll_interval,
                                alert_window=settings.new_feed_alert_window,
                                policy=FetchPolicy.from_settings(settings, allow_file_urls=False))
    except operations.OperationError as exc:
        return _feeds(request, session, 400, error=str(exc), url=url, name=name)
    return RedirectResponse("/feeds?done=feed-added", status_code=303)


@router.post("/feeds/import", response_class=HTMLResponse)
async def feeds_import(request: Request) -> Response:
    """Add the feeds of an uploaded OPML file, as ``monitor feeds import`` does; show what happened to each.

    The size is checked on the request's length before the body is read, so a large upload costs nothing.
    """
    from starlette.concurrency import run_in_threadpool

    from monitor.errors import ConfigError
    from monitor.operations.opml_import import MAX_OPML_BYTES

    _operator(request)
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "send the file as a form upload (with a Content-Length)")
    if int(length) > MAX_OPML_BYTES + 16 * 1024:
        raise HTTPException(413, f"the OPML file is larger than {MAX_OPML_BYTES // 1024 // 1024} MB")
    async with request.form(max_files=1, max_fields=4) as form:
        session = _checked(request, str(form.get("csrf") or ""))
        upload = form.get("file")
        data = await upload.read(MAX_OPML_BYTES + 1) if upload is not None and not isinstance(upload, str) else b""
        filename = (upload.filename or "upload.opml")[:100] if upload is not None and not isinstance(upload, str) \
            else "upload.opml"
    error, outcome = None, None
    if not data:
        error = "choose an OPML file to import"
    elif len(data) > MAX_OPML_BYTES:
        error = f"the OPML file is larger than {MAX_OPML_BYTES // 1024 // 1024} MB"
    else:
        try:
            outcome = await run_in_threadpool(_import, request, data, filename)
        except ConfigError as exc:
            error = str(exc)
    return _feeds(request, session, 400 if error else 200, error=error, imported=outcome)


def _import(request: Request, data: bytes, filename: str) -> Any:
    from monitor.operations.opml_import import import_opml

    web = _web(request)
    settings = web.settings
    with session_scope(web.engine) as db:
        return import_opml(db, data, source=filename, policy=FetchPolicy.from_settings(settings, allow_file_urls=False),
                           now=_now(), interval=settings.poll_interval, alert_window=settings.new_feed_alert_window)


@router.post("/feeds/{feed_id}/{action}")
def feed_action(request: Request, feed_id: RowId, action: str, csrf: Annotated[str, Form()] = "") -> Response:
    _checked(request, csrf)
    if action not in ("reset", "pause"):
        raise HTTPException(404)
    try:
        with session_scope(_web(request).engine) as db:
            if action == "reset":
                operations.reset_feed(db, feed_id, now=_now())
            else:
                operations.pause_feed(db, feed_id)
    except operations.OperationError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse(f"/feeds?done=feed-{'reset' if action == 'reset' else 'paused'}", status_code=303)


# --- deliveries ---------------------------------------------------------------------------------


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, status: str | None = None, before: str | None = None) -> Response:
    session = _operator(request)
    status = status if status in operations.DELIVERY_STATUSES else None
    with session_scope(_web(request).reads) as db:
        rows, after = operations.deliveries_page(db, status=status, before=_cursor(before))
        unsubscribed = operations.list_unsubscribes(db)
    params = {"status": status} if status else {}
    older = "/deliveries?" + urlencode({**params, "before": after}) if after else None
    return _page(request, "deliveries.html", session, rows=rows, status=status, older=older,
                 statuses=operations.DELIVERY_STATUSES, unsubscribed=unsubscribed)


@router.post("/deliveries/{delivery_id}/retry")
def delivery_retry(request: Request, delivery_id: RowId, csrf: Annotated[str, Form()] = "") -> Response:
    _checked(request, csrf)
    try:
        with session_scope(_web(request).engine) as db:
            operations.retry_delivery(db, delivery_id, now=_now())
    except operations.OperationError as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse("/deliveries?done=retried", status_code=303)
