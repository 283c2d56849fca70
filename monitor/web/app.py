"""The web application: health and metrics, unsubscribe links, Atom feeds; the API and pages are mounted here.

Handlers that touch the database are plain functions: FastAPI runs them in its
thread pool, so a slow query never blocks the event loop.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from monitor import operations
from monitor.config import Settings
from monitor.db import session_scope
from monitor.deliver.tokens import verify_token
from monitor.web.render import evidence_note, highlight
from monitor.web.security import SECURITY_HEADERS, ProxyAuthGate, RateLimiter, SessionCodec, derive_key, safe_href

log = logging.getLogger("monitor.web")
HERE = Path(__file__).parent
HEARTBEAT_MAX_AGE = 300  # /readyz: a worker is alive when its heartbeat is younger than this (seconds)
_SIGNED_PATH = re.compile(r"^/(unsubscribe|preferences)/.*")  # a subscriber link's token is not logged


@dataclass
class WebState:
    """What every handler needs: settings, the engine, the session codec, templates and rate limits."""

    settings: Settings
    engine: Engine  # for changes
    reads: Engine  # for everything else (on SQLite: no write lock, so the workers' writes never wait for a page)
    sessions: SessionCodec
    templates: Environment
    login_limit: RateLimiter
    unsubscribe_limit: RateLimiter
    cookie_secure: bool
    unsubscribe_key: bytes | None
    feed_key: bytes  # signs the tokens in per-subscription Atom URLs

    def render(self, template: str, request: Request, code: int = 200, /, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(request_path=request.url.path, **values)
        return HTMLResponse(html, status_code=code)


def utcnow() -> datetime:
    return datetime.now(UTC)


def client_key(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted)."""
    return request.client.host if request.client else "unknown"


class _Headers(BaseHTTPMiddleware):
    """Security headers on every response, and an access log line without query strings (they may hold tokens)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        private = ("/api/", "/login", "/unsubscribe/", "/preferences/")
        if request.url.path.startswith(private) or request.method != "GET":
            response.headers.setdefault("Cache-Control", "no-store")
        log.info("%s %s %d", request.method, _SIGNED_PATH.sub(r"/\1/…", request.url.path), response.status_code)
        return response


def _templates() -> Environment:
    # auto_reload off: the templates ship with the package, and checking each one's mtime costs a stat() per
    # {% include %} (fifty on a page of hits).
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "xml"]),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters["highlight"] = highlight
    env.filters["evidence_note"] = evidence_note
    env.filters["safe_href"] = safe_href
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "—"
    return env


def read_engine(engine: Engine) -> Engine:
    """The engine for reads. On SQLite a second one without ``BEGIN IMMEDIATE``: its selects run outside any
    write transaction (WAL: readers and the writer do not wait for each other) and it may not write at all."""
    if engine.dialect.name != "sqlite":
        return engine
    import sqlalchemy as sa

    reads = sa.create_engine(engine.url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(reads, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return reads


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """The application for one database; ``monitor web`` serves it with uvicorn."""
    from monitor.web import (
        api,
        api_views,
        api_watchlists,
        pages,
        pages_subscriptions,
        pages_watchlists,
        subscriber,
        subscription_feed,
    )

    if settings.web_secret is not None and settings.web_secret.get_secret_value():
        secret = settings.web_secret.get_secret_value().encode()
    else:
        log.warning("web_secret is not set: sessions end when this process restarts")
        secret = secrets.token_bytes(32)
    state = WebState(
        settings=settings, engine=engine, reads=read_engine(engine),
        sessions=SessionCodec(secret, settings.web_session_lifetime),
        templates=_templates(), login_limit=RateLimiter(10, 60.0), unsubscribe_limit=RateLimiter(30, 60.0),
        cookie_secure=bool(settings.base_url and settings.base_url.startswith("https://")),
        feed_key=derive_key(secret, "subscription-feed"),
        unsubscribe_key=(settings.unsubscribe_secret.get_secret_value().encode()
                         if settings.unsubscribe_secret is not None and settings.unsubscribe_secret.get_secret_value()
                         else None),
    )
    app = FastAPI(
        title="monitor", version="1", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
        description="Watchlist hits, stored items, feeds and the outbox of a monitor installation. "
                    "Every call needs `Authorization: Bearer <token>` (`monitor tokens create NAME`).",
    )
    app.state.web = state
    app.add_middleware(_Headers)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(api_views.router)
    app.include_router(api_watchlists.router)
    app.include_router(subscription_feed.router)
    app.include_router(pages.router)
    app.include_router(pages_watchlists.router)
    app.include_router(pages_subscriptions.router)
    _operations_routes(app, state)
    _error_pages(app, state)
    _subscriber_routes(app, state)
    subscriber.register(app, state)
    return app


def serve_app(settings: Settings, engine: Engine, *, forwarded_allow_ips: str = "127.0.0.1") -> Any:
    """What ``monitor web`` serves (with uvicorn's own forwarded-header handling off): the application behind
    the forwarded-header handling, itself behind the SSO gate when ``web_auth_header`` is set, so the gate
    judges the connection's real peer, not an address a proxy forwarded."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app: Any = ProxyHeadersMiddleware(create_app(settings, engine), trusted_hosts=forwarded_allow_ips)  # type: ignore[arg-type]
    if settings.web_auth_header:
        app = ProxyAuthGate(app, settings.web_auth_header, settings.web_trusted_proxies)
    return app


def _error_pages(app: FastAPI, state: WebState) -> None:
    """Errors on pages as pages; the API keeps FastAPI's JSON ({"detail": ...})."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    titles = {400: "Bad request", 401: "Not allowed", 403: "Refused", 404: "Not found", 409: "Not possible",
              429: "Too many requests"}

    def allowed(request: Request) -> str:
        """Every method some route serves at this path (Starlette names only the first route's)."""
        from starlette.routing import Match

        methods: set[str] = set()
        for route in app.router.routes:
            match, _child = route.matches(request.scope)
            if match != Match.NONE:
                methods |= set(getattr(route, "methods", None) or ())
        return ", ".join(sorted(methods))

    @app.exception_handler(StarletteHTTPException)
    async def page_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": allowed(request)})
        if request.url.path.startswith("/api/") or request.url.path.endswith(".atom") or exc.status_code < 400:
            return await http_exception_handler(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else titles.get(exc.status_code, "Error")
        return state.render("message.html", request, exc.status_code,
                            title=titles.get(exc.status_code, "Error"), message=detail)


def _operations_routes(app: FastAPI, state: WebState) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        """The process answers."""
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Database reachable, migrations current, a worker's heartbeat fresh; 503 with the reasons otherwise."""
        problems = operations.readiness(state.reads, now=utcnow(), max_heartbeat_age=HEARTBEAT_MAX_AGE)
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from monitor.web.metrics import render

        with session_scope(state.reads) as session:
            figures = operations.figures(session, now=utcnow(), max_heartbeat_age=HEARTBEAT_MAX_AGE)
        return Response(render(figures), media_type=CONTENT_TYPE_LATEST)


def _subscriber_routes(app: FastAPI, state: WebState) -> None:
    def check(request: Request, token: str) -> tuple[Any, HTMLResponse | None]:
        if not state.unsubscribe_limit.allow(client_key(request)):
            return None, state.render("message.html", request, 429, title="Too many requests",
                                      message="Too many requests from your address; try again in a minute.")
        found = (verify_token(state.unsubscribe_key, token, now=utcnow())
                 if state.unsubscribe_key and len(token) < 2048 else None)
        if found is None:
            return None, state.render("message.html", request, 404, title="Link not valid",
                                      message="This unsubscribe link is not valid. Use the link from a recent "
                                              "message, or write to the sender.")
        return found, None

    @app.get("/unsubscribe/{token}", include_in_schema=False, response_class=HTMLResponse)
    def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
        """A confirm page: mail scanners follow GET links, so GET never unsubscribes."""
        found, refused = check(request, token)
        if refused is not None:
            return refused
        return state.render("unsubscribe.html", request, subscription=found.subscription, address=found.address,
                            done=False)

    @app.post("/unsubscribe/{token}", include_in_schema=False, response_class=HTMLResponse)
    def unsubscribe(request: Request, token: str) -> HTMLResponse:
        """RFC 8058 one-click (and the confirm page's button). The signed token is the authority, no cookie."""
        found, refused = check(request, token)
        if refused is not None:
            return refused
        with session_scope(state.engine) as session:
            operations.record_unsubscribe(session, found.subscription, found.address, now=utcnow())
        log.info("unsubscribed an address from %s", found.subscription)
        return state.render("unsubscribe.html", request, subscription=found.subscription, address=found.address,
                            done=True)
