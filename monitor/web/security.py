"""Signed session cookies, CSRF tokens, rate limits, security headers and safe links.

Pure helpers (the secret and the time are parameters), so each is tested on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SESSION_COOKIE = "monitor_session"

# No inline script or style anywhere: everything comes from /static, and nothing may frame the pages.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "interest-cohort=()",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(secret: bytes, purpose: str) -> bytes:
    """One key per purpose from the configured secret, so a token for one use never passes for another."""
    return hmac.new(secret, f"monitor-web:{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    user: str | None
    csrf: str
    expires: float

    @property
    def logged_in(self) -> bool:
        return self.user is not None


class SessionCodec:
    """A session in a signed cookie (HMAC-SHA256): who is logged in, the CSRF token, when it expires."""

    def __init__(self, secret: bytes, lifetime: int) -> None:
        self.key = derive_key(secret, "session")
        self.lifetime = lifetime

    def new(self, user: str | None, *, now: float | None = None) -> Session:
        return Session(user=user, csrf=secrets.token_urlsafe(24), expires=(now or time.time()) + self.lifetime)

    def for_proxy_user(self, user: str, *, now: float | None = None) -> Session:
        """The session of an operator a trusted proxy names (SSO header mode): no cookie; the CSRF token is an
        HMAC of the name, stable across requests and unknowable without the secret."""
        csrf = _b64(hmac.new(self.key, f"proxy-user:{user}".encode(), hashlib.sha256).digest()[:24])
        return Session(user=user, csrf=csrf, expires=(now or time.time()) + self.lifetime)

    def dump(self, session: Session) -> str:
        payload = json.dumps({"u": session.user, "c": session.csrf, "e": int(session.expires)},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(hmac.new(self.key, payload, hashlib.sha256).digest())}"

    def load(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie carries; None when it is missing, forged, malformed or expired."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            payload_text, tag_text = cookie.split(".", 1)
            payload, tag = _unb64(payload_text), _unb64(tag_text)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(tag, hmac.new(self.key, payload, hashlib.sha256).digest()):
            return None
        try:
            data = json.loads(payload)
            session = Session(user=data["u"], csrf=str(data["c"]), expires=float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now or time.time()):
            return None
        return session


def csrf_ok(session: Session | None, presented: Any) -> bool:
    """The form's CSRF field equals the session's token (constant-time)."""
    if session is None or not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a client address), in memory.

    Each process keeps its own counts: behind several web processes the limit is per process.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 10000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._events) >= self.max_keys and key not in self._events:
                self._forget_idle(now)
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:  # a flood of distinct addresses: start over rather than grow
            self._events.clear()


def safe_href(url: str | None) -> str | None:
    """The link when it is http(s); None for ``javascript:``, ``data:`` and anything else."""
    if not url:
        return None
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


# --- per-subscription feed tokens ---------------------------------------------------------------

FEED_TOKEN_PREFIX = "sub_"


def feed_token(key: bytes, subscription: str) -> str:
    """The token in a subscription's Atom URL: an HMAC of its name, good for that one feed only."""
    return FEED_TOKEN_PREFIX + _b64(hmac.new(key, subscription.encode(), hashlib.sha256).digest()[:24])


def feed_token_ok(key: bytes, subscription: str, presented: str | None) -> bool:
    if not presented or not presented.startswith(FEED_TOKEN_PREFIX) or len(presented) > 100:
        return False
    return hmac.compare_digest(feed_token(key, subscription).encode(), presented.encode())


# --- single sign-on through a reverse proxy -----------------------------------------------------


def parse_networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def address_in(host: str | None, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


class ProxyAuthGate:
    """ASGI middleware for the SSO header mode: the identity header (``web_auth_header``) survives only on a
    connection from a trusted proxy (``web_trusted_proxies``); from any other peer it is removed, so nothing
    behind this gate can be fooled by a client that sends it itself.

    It must see the connection's own peer address, so it runs outside the forwarded-header handling
    (``monitor web`` serves ``gate(ProxyHeadersMiddleware(app))`` with uvicorn's own handling off). The
    verdict is kept in the scope (``monitor.proxy_user``) for the pages.
    """

    def __init__(self, app: Any, header: str, trusted: list[str]) -> None:
        self.app, self.header, self.trusted = app, header.lower().encode("latin-1"), parse_networks(trusted)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = (scope.get("client") or (None, None))[0]
            values = [v for k, v in scope["headers"] if k == self.header]
            headers = [(k, v) for k, v in scope["headers"] if k != self.header]
            scope = dict(scope, headers=headers)
            user = values[0].decode("latin-1").strip() if len(values) == 1 else ""
            scope["monitor.proxy_user"] = user if user and address_in(peer, self.trusted) else None
        await self.app(scope, receive, send)
