"""More of the JSON API under /api/v1: stories and subscriptions.

Same rules as :mod:`monitor.web.api`: a Bearer token on every call, unknown query parameters refused,
keyset cursors, ``{"detail": …}`` errors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from monitor import operations
from monitor.operations import api_views, subscriptions
from monitor.web.api import (
    Reader,
    _db,
    _documented,
    _known_parameters,
    _now,
    _state,
    decode_cursor,
    encode_cursor,
)

router = APIRouter(responses=_documented(400, 401), dependencies=[Depends(_known_parameters)])
Limit = Annotated[int, Query(ge=1, le=operations.MAX_PAGE)]
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
Name = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


# --- stories ------------------------------------------------------------------------------------


class ReportOut(BaseModel):
    item_id: int
    title: str
    link: str | None
    feed: str
    lang: str | None
    published_at: datetime | None


class StoryOut(BaseModel):
    story_id: int = Field(description="The id of the story's first item.")
    title: str
    link: str | None
    feed: str
    lang: str | None
    published_at: datetime | None
    report_count: int = Field(description="Items that told this story, the first included.")
    also_reported_by: list[ReportOut] = Field(description="The other reports, oldest first (20 per story in a "
                                                          "list, 200 for one story).")
    watchlists: list[str] = Field(description="Watchlists with a hit on any report of the story.")


class StoriesPage(BaseModel):
    stories: list[StoryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null on the last.")


def _story_out(view: api_views.StoryView) -> StoryOut:
    return StoryOut(story_id=view.story_id, title=view.title, link=view.link, feed=view.feed, lang=view.lang,
                    published_at=view.published_at, report_count=view.report_count,
                    also_reported_by=[ReportOut(item_id=r.item_id, title=r.title, link=r.link, feed=r.feed,
                                                lang=r.lang, published_at=r.published_at)
                                      for r in view.also_reported_by],
                    watchlists=view.watchlists)


@router.get("/api/v1/stories", response_model=StoriesPage, tags=["stories"])
def list_stories(request: Request, _token: Reader, cursor: str | None = None, limit: Limit = 50) -> StoriesPage:
    """Stories newest first: each is one event, named after its first report, with the feeds that also
    reported it."""
    with _db(request) as session:
        stories, after = api_views.stories_page(session, before=decode_cursor(cursor), limit=limit)
    return StoriesPage(stories=[_story_out(s) for s in stories], next_cursor=encode_cursor(after))


@router.get("/api/v1/stories/{story_id}", response_model=StoryOut, tags=["stories"], responses=_documented(404))
def get_story(request: Request, _token: Reader, story_id: RowId) -> StoryOut:
    """One story and its reports (an item that joined another story is listed under that story's id)."""
    try:
        with _db(request) as session:
            return _story_out(api_views.get_story(session, story_id))
    except operations.OperationError as exc:
        raise HTTPException(404, str(exc)) from None


# --- subscriptions ------------------------------------------------------------------------------


class SubscriptionOut(BaseModel):
    name: str
    channel: str = Field(description="email, webhook or ntfy")
    schedule: str
    timezone: str
    quiet_hours: str | None
    watchlists: list[str]
    min_score: float
    recipients: list[str] = Field(description="Email addresses; a webhook's URL with its secrets masked; an ntfy "
                                                 "server as host/*** (the topic name is the secret).")
    unsubscribed: int = Field(description="Recipients that left through an unsubscribe link.")
    pending_hits: int | None = Field(description="Hits waiting for the next message (counted up to 1000); null "
                                                 "when the workers have not recorded the subscription yet.")
    pending_hits_capped: bool
    pending_deliveries: int
    dead_deliveries: int
    next_digest_at: datetime | None = Field(description="Null for immediate subscriptions (the next delivery "
                                                        "cycle).")
    last_planned_at: datetime | None
    atom_url: str = Field(description="This subscription's hits as Atom, with a token for this feed only.")


def _subscription_out(request: Request, view: subscriptions.SubscriptionView) -> SubscriptionOut:
    from dataclasses import asdict

    from monitor.web.subscription_feed import feed_url

    fields = {k: v for k, v in asdict(view).items() if k in SubscriptionOut.model_fields}  # the API's subset
    return SubscriptionOut(**fields, atom_url=feed_url(request, view.name))


@router.get("/api/v1/subscriptions", response_model=list[SubscriptionOut], tags=["subscriptions"])
def list_subscriptions(request: Request, _token: Reader) -> list[SubscriptionOut]:
    """Every subscription in the config: channel, schedule, watchlists, what is waiting and when it goes out."""
    with _db(request) as session:
        views = subscriptions.subscription_views(session, _state(request).settings, now=_now())
    return [_subscription_out(request, v) for v in views]


@router.get("/api/v1/subscriptions/{name}", response_model=SubscriptionOut, tags=["subscriptions"],
            responses=_documented(404))
def get_subscription(request: Request, _token: Reader, name: Name) -> SubscriptionOut:
    """One subscription."""
    try:
        with _db(request) as session:
            view = subscriptions.subscription_view(session, _state(request).settings, name, now=_now())
    except operations.OperationError as exc:
        raise HTTPException(404, str(exc)) from None
    return _subscription_out(request, view)
