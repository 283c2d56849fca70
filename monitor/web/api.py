"""The JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json): auth, cursors, hits, items, feeds, deliveries.

More calls live beside it: ``api_views`` (stories, subscriptions), ``api_watchlists`` (validation,
backtests); the Atom feeds are in ``subscription_feed``.

Every call needs ``Authorization: Bearer <token>``; a read-only token may only read.
Lists are newest first and paginated by an opaque cursor (``next_cursor``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from monitor import operations
from monitor.db import session_scope
from monitor.models import ApiToken, Delivery, Feed
from monitor.net.guard import FetchPolicy


class Problem(BaseModel):
    detail: str


def _documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Bad input (the detail says which)", 401: "No token, or an unknown or revoked one",
            403: "The token is read-only", 404: "No such feed or delivery", 409: "Not possible in this state"}
    return {code: {"model": Problem, "description": text[code]} for code in codes}


def _known_parameters(request: Request) -> None:
    """An unknown query parameter is a 400, not silently ignored: ``?watchlists=x`` must not return every hit."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in _query_params(dependant)}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(400, f"unknown query parameter {unknown[0]!r}; this call takes: "
                                 f"{', '.join(sorted(known)) or 'none'}")


def _query_params(dependant: Any) -> list[Any]:
    params = list(dependant.query_params)
    for sub in dependant.dependencies:
        params += _query_params(sub)
    return params


router = APIRouter(responses=_documented(400, 401), dependencies=[Depends(_known_parameters)])
bearer = HTTPBearer(auto_error=False, description="A token from 'monitor tokens create NAME [--read-only]'.")


# --- auth ---------------------------------------------------------------------------------------


def _state(request: Request) -> Any:
    return request.app.state.web


def _token(request: Request, presented: str | None) -> ApiToken:
    if not presented:
        raise HTTPException(401, "send Authorization: Bearer <token> (create one with 'monitor tokens create')",
                            headers={"WWW-Authenticate": "Bearer"})
    with session_scope(_state(request).reads) as session:
        row = operations.check_api_token(session, presented)
    if row is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return row


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def reader(request: Request, credentials: Credentials) -> Iterator[ApiToken]:
    """The caller's token. The read transaction that checked it stays open for the call (:func:`_db` hands
    it out), so a call costs one connection checkout and one transaction, not two."""
    presented = credentials.credentials if credentials else None
    if not presented:
        _token(request, presented)  # raises the 401
    with session_scope(_state(request).reads) as session:
        row = operations.check_api_token(session, presented or "")
        if row is None:
            raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        request.state.read_session = session
        try:
            yield row
        finally:
            request.state.read_session = None


Reader = Annotated[ApiToken, Depends(reader)]


def writer(token: Reader) -> ApiToken:
    if token.read_only:
        raise HTTPException(403, f"token {token.name!r} is read-only")
    return token


Writer = Annotated[ApiToken, Depends(writer)]


def _db(request: Request) -> Any:
    """A session for reading: the one the token was checked in, when there is one."""
    session = getattr(request.state, "read_session", None)
    return nullcontext(session) if session is not None else session_scope(_state(request).reads)


def _write(request: Request) -> Any:
    """A session for changes."""
    return session_scope(_state(request).engine)


# --- cursors ------------------------------------------------------------------------------------


def encode_cursor(value: int | None) -> str | None:
    return None if value is None else base64.urlsafe_b64encode(f"v1:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "v1" or not value.isdigit() or len(value) > 18:
            raise ValueError
        return int(value)
    except ValueError:
        raise HTTPException(400, "cursor: not a cursor this API returned") from None


# --- models -------------------------------------------------------------------------------------


class HitOut(BaseModel):
    hit_id: int
    item_id: int
    watchlist: str
    watchlist_version: str
    score: float
    evidence: list[dict[str, Any]]
    title: str
    summary: str
    link: str | None
    lang: str | None
    published_at: datetime | None
    created_at: datetime
    feed_id: int
    feed: str
    story_id: int | None
    also_reported_by: list[str]


class HitsPage(BaseModel):
    hits: list[HitOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null on the last.")


class ItemOut(BaseModel):
    item_id: int
    title: str
    summary: str
    link: str | None
    lang: str | None
    published_at: datetime | None
    fetched_at: datetime | None
    feed: str


class ItemsPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class FeedOut(BaseModel):
    id: int
    url: str
    name: str | None
    origin: str
    category: str | None
    active: bool
    last_status: int | None
    last_error: str | None
    error_count: int
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    last_entry_at: datetime | None


class FeedIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    name: str | None = Field(default=None, max_length=512)


class DeliveryOut(BaseModel):
    id: int
    status: str
    transport: str
    subject: str
    attempts: int
    hit_count: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime | None
    sent_at: datetime | None


class DeliveriesPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None


class Done(BaseModel):
    ok: bool = True
    message: str


def _feed_out(feed: Feed) -> FeedOut:
    assert feed.id is not None
    return FeedOut(id=feed.id, url=feed.url, name=feed.name, origin=feed.origin, category=feed.category,
                   active=feed.active, last_status=feed.last_status, last_error=feed.last_error,
                   error_count=feed.error_count, last_polled_at=feed.last_polled_at, next_poll_at=feed.next_poll_at,
                   last_entry_at=feed.last_entry_at)


def _delivery_out(d: Delivery) -> DeliveryOut:
    assert d.id is not None
    return DeliveryOut(id=d.id, status=d.status, transport=d.transport, subject=d.subject, attempts=d.attempts,
                       hit_count=d.hit_count, last_error=d.last_error, next_attempt_at=d.next_attempt_at,
                       created_at=d.created_at, sent_at=d.sent_at)


def _refuse(exc: operations.OperationError, status: int = 400) -> HTTPException:
    return HTTPException(status, str(exc))


# --- routes -------------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=operations.MAX_PAGE)]
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]  # what the databases can store


def moment_query(description: str) -> Any:
    """An ISO 8601 time with its zone, as a query parameter (parsed by :func:`_aware`)."""
    return Query(max_length=40, json_schema_extra={"format": "date-time"}, description=description)


@router.get("/api/v1/hits", response_model=HitsPage, tags=["hits"])
def list_hits(
    request: Request, _token: Reader, watchlist: str | None = None,
    feed: Annotated[str | None, Query(description="Feed id, URL or name.")] = None,
    since: Annotated[str | None, moment_query("Hits recorded at or after this time (2026-11-25T00:00:00Z).")] = None,
    until: Annotated[str | None, moment_query("Hits recorded before this time.")] = None,
    lang: Annotated[str | None, Query(max_length=8, description="ko, zh, ja, ru or en (by script).")] = None,
    cursor: str | None = None, limit: Limit = 50,
) -> HitsPage:
    """Stored hits, newest first, with evidence and the other feeds that reported the same story."""
    filters = operations.HitFilter(watchlist=watchlist, feed=feed, since=_aware(since, "since"),
                                   until=_aware(until, "until"), lang=lang)
    with _db(request) as session:
        hits, after = operations.hits_page(session, filters, before=decode_cursor(cursor), limit=limit)
    return HitsPage(hits=[HitOut(**_fields(h)) for h in hits], next_cursor=encode_cursor(after))


def _aware(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time with its zone; anything else (a bare number, a date without a zone) is refused."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: write an ISO 8601 time such as 2026-11-25T00:00:00Z") from None
    if moment.tzinfo is None:
        raise HTTPException(400, f"{name}: give a time zone (e.g. 2026-11-25T00:00:00Z)")
    return moment


def _fields(view: Any) -> dict[str, Any]:
    return {name: getattr(view, name) for name in view.__slots__}


@router.get("/api/v1/items", response_model=ItemsPage, tags=["items"])
def search_items(
    request: Request, _token: Reader,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words that must all occur (substrings).")],
    cursor: str | None = None, limit: Limit = 50,
) -> ItemsPage:
    """Full-text search over stored items, any script (Korean, Chinese and Russian included)."""
    with _db(request) as session:
        items, after = operations.search_items(session, q, before=decode_cursor(cursor), limit=limit)
    return ItemsPage(items=[ItemOut(**_fields(i)) for i in items], next_cursor=encode_cursor(after))


@router.get("/api/v1/feeds", response_model=list[FeedOut], tags=["feeds"])
def list_feeds(request: Request, _token: Reader) -> list[FeedOut]:
    """Every feed with its poll state."""
    from monitor import store

    with _db(request) as session:
        return [_feed_out(f) for f in store.list_feeds(session)]


@router.post("/api/v1/feeds", response_model=FeedOut, status_code=201, tags=["feeds"], responses=_documented(403))
def add_feed(request: Request, _token: Writer, body: FeedIn) -> FeedOut:
    """Watch a new feed (http or https); it is polled at the next cycle."""
    settings = _state(request).settings
    try:
        with _write(request) as session:
            feed = operations.add_feed(session, body.url, name=body.name, now=_now(),
                                       interval=settings.poll_interval, alert_window=settings.new_feed_alert_window,
                                       policy=FetchPolicy.from_settings(settings, allow_file_urls=False))
            return _feed_out(feed)
    except operations.OperationError as exc:
        raise _refuse(exc) from None


@router.delete("/api/v1/feeds/{feed_id}", response_model=FeedOut, tags=["feeds"],
               responses=_documented(403, 404, 409))
def remove_feed(request: Request, _token: Writer, feed_id: RowId) -> FeedOut:
    """Stop polling a feed added by OPML or the API (items and hits stay)."""
    try:
        with _write(request) as session:
            return _feed_out(operations.pause_feed(session, feed_id))
    except operations.OperationError as exc:
        raise _refuse(exc, 404 if "no feed" in str(exc) else 409) from None


@router.post("/api/v1/feeds/{feed_id}/reset", response_model=FeedOut, tags=["feeds"], responses=_documented(403, 404))
def reset_feed(request: Request, _token: Writer, feed_id: RowId) -> FeedOut:
    """Clear a feed's error state and poll it at the next cycle."""
    try:
        with _write(request) as session:
            return _feed_out(operations.reset_feed(session, feed_id, now=_now()))
    except operations.OperationError as exc:
        raise _refuse(exc, 404) from None


@router.get("/api/v1/deliveries", response_model=DeliveriesPage, tags=["deliveries"])
def list_deliveries(request: Request, _token: Reader, status: str | None = None, cursor: str | None = None,
                    limit: Limit = 50) -> DeliveriesPage:
    """The outbox, newest first: pending, sent and dead deliveries."""
    try:
        with _db(request) as session:
            rows, after = operations.deliveries_page(session, status=status, before=decode_cursor(cursor),
                                                     limit=limit)
            return DeliveriesPage(deliveries=[_delivery_out(d) for d in rows], next_cursor=encode_cursor(after))
    except operations.OperationError as exc:
        raise _refuse(exc) from None


@router.post("/api/v1/deliveries/{delivery_id}/retry", response_model=Done, tags=["deliveries"],
             responses=_documented(403, 404))
def retry_delivery(request: Request, _token: Writer, delivery_id: RowId) -> Done:
    """Queue a dead or failing delivery again, due now (same payload and idempotency key)."""
    try:
        with _write(request) as session:
            operations.retry_delivery(session, delivery_id, now=_now())
    except operations.OperationError as exc:
        raise _refuse(exc, 404) from None
    return Done(message=f"delivery {delivery_id} queued; it goes out at the next delivery cycle")


def _now() -> datetime:
    from monitor.web.app import utcnow

    return utcnow()
