"""Operator pages for subscriptions: their state, the next digest's preview, and a test message.

The preview's email HTML is the message subscribers get, with its inline styles. It is served alone,
from ``/subscriptions/{name}/preview.html``, under its own Content-Security-Policy (``sandbox``, no
scripts, no requests; inline styles and ``data:`` images only), and shown in an ``<iframe sandbox>``:
whatever a feed put in it can run nothing and reach nothing, and the operator pages keep their policy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from monitor.db import read_scope
from monitor.operations import OperationError, subscriptions
from monitor.web.pages import _checked, _now, _operator, _page, _web
from monitor.web.security import CSP

router = APIRouter(include_in_schema=False)

# The email HTML alone: inline styles (email needs them) and data: images; nothing else, and a sandbox.
PREVIEW_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
# The page around it: the operator pages' policy, plus frames from this site (the preview only).
FRAMING_CSP = CSP + "; frame-src 'self'"


def _overview(request: Request) -> list[subscriptions.SubscriptionView]:
    web = _web(request)
    with read_scope(web.reads) as db:
        return subscriptions.subscription_views(db, web.settings, now=_now())


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request) -> Response:
    session = _operator(request)
    return _page(request, "subscriptions.html", session, rows=_overview(request), outcome=None, error=None)


def _preview(request: Request, name: str) -> subscriptions.DigestPreview:
    web = _web(request)
    try:
        with read_scope(web.reads) as db:
            return subscriptions.digest_preview(db, web.settings, web.reads, name, now=_now())
    except OperationError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/subscriptions/{name}/preview", response_class=HTMLResponse)
def preview_page(request: Request, name: str) -> Response:
    session = _operator(request)
    preview = _preview(request, name)
    response = _page(request, "preview.html", session, preview=preview)
    if preview.html:
        response.headers["Content-Security-Policy"] = FRAMING_CSP
    return response


@router.get("/subscriptions/{name}/preview.html", response_class=HTMLResponse)
def preview_frame(request: Request, name: str) -> Response:
    """The next digest's email HTML, as sent; only ever shown inside the preview page's sandboxed frame."""
    _operator(request)
    preview = _preview(request, name)
    if not preview.html:
        raise HTTPException(404, f"subscription {name[:64]!r} sends no email; its preview page shows the messages")
    return HTMLResponse(preview.html, headers={"Content-Security-Policy": PREVIEW_CSP,
                                               "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store"})


@router.post("/subscriptions/{name}/test", response_class=HTMLResponse)
def send_test(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
    """Send a clearly marked test message through the subscription's real transport; show where it went."""
    session = _checked(request, csrf)
    web = _web(request)
    if name not in {s.name for s in web.settings.subscriptions}:
        raise HTTPException(404, f"no subscription named {name[:64]!r} in the configuration")
    try:
        target = subscriptions.send_test(web.settings, web.engine, name, now=_now())
    except OperationError as exc:
        return _page(request, "subscriptions.html", session, 502, rows=_overview(request), outcome=None,
                     error=str(exc))
    return _page(request, "subscriptions.html", session, rows=_overview(request), error=None,
                 outcome=f"Test message for {name} sent: {target}")
