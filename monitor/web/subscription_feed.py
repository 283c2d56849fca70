"""Hits as Atom: a watchlist's (``/feeds/{watchlist}.atom``, behind an API token) and a subscription's
(``/feeds/subscriptions/{name}.atom?token=…``).

Feed readers cannot send headers, so the token rides in the URL. Two kinds are accepted:

- the feed's own token (``sub_…``, an HMAC of the subscription's name under ``web_secret``; the API's
  ``atom_url`` carries it): it opens this one feed and nothing else, but it cannot be revoked on its own
  (changing ``web_secret`` changes every feed token and ends every login);
- an API token (``mon_…``, ``monitor tokens create NAME --read-only``): revocable by name, but whoever
  reads it from a URL (a reader's logs, a shared OPML) can call the whole read API with it.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from monitor import operations
from monitor.web.api import _bearer, _db, _now, _state, _token
from monitor.web.security import feed_token, feed_token_ok

router = APIRouter(include_in_schema=False)
ATOM_ENTRIES = 50


@router.get("/feeds/{watchlist}.atom", include_in_schema=False)
def atom_feed(request: Request, watchlist: str, token: str | None = None) -> Response:
    """A watchlist's latest hits as Atom; a feed reader sends its token as ?token= (or a Bearer header)."""
    from monitor.web.atom import hits_feed

    _token(request, _bearer(request) or token)
    settings = _state(request).settings
    with _db(request) as session:
        hits, _after = operations.hits_page(session, operations.HitFilter(watchlist=watchlist), limit=ATOM_ENTRIES)
    base = (settings.base_url or str(request.base_url)).rstrip("/")
    body = hits_feed(watchlist, hits, self_url=f"{base}/feeds/{watchlist}.atom", id_base=f"{base}/monitor",
                     now=_now())
    return Response(body, media_type="application/atom+xml; charset=utf-8")


def _base(request: Request) -> str:
    return str(_state(request).settings.base_url or request.base_url).rstrip("/")


def feed_url(request: Request, subscription: str) -> str:
    """The subscription's Atom URL with its feed token."""
    token = feed_token(_state(request).feed_key, subscription)
    return f"{_base(request)}/feeds/subscriptions/{quote(subscription)}.atom?token={token}"


@router.get("/feeds/subscriptions/{name}.atom")
def subscription_feed(request: Request, name: str, token: str | None = None) -> Response:
    """The newest hits this subscription receives (its watchlists, at or above its minimum score)."""
    from monitor.web.atom import hits_feed

    state = _state(request)
    presented = _bearer(request) or token
    if not feed_token_ok(state.feed_key, name, presented):
        _token(request, presented)  # an API token instead; 401 when it is neither
    config = next((s for s in state.settings.subscriptions if s.name == name), None)
    if config is None:
        raise HTTPException(404, f"no subscription named {name[:64]!r}")
    filters = operations.HitFilter(watchlists=tuple(config.watchlists), min_score=config.min_score or None)
    with _db(request) as session:
        hits, _after = operations.hits_page(session, filters, limit=ATOM_ENTRIES)
    base = _base(request)
    body = hits_feed(name, hits, self_url=f"{base}/feeds/subscriptions/{quote(name)}.atom",
                     id_base=f"{base}/monitor", now=_now(), kind="subscription")
    return Response(body, media_type="application/atom+xml; charset=utf-8")
