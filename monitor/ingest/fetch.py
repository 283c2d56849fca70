"""Fetching feeds over HTTP(S) (and local ``file:`` feeds), safely.

This module owns every byte monitor reads from the network for a feed, and the
network guard that webhook delivery shares (:func:`check_url`,
:func:`guarded_request`). It never reads settings: callers build a
:class:`FetchPolicy` once, build a client from it with :func:`build_client`, and
inject both. It does not parse, store or schedule; it reports facts
(status, validators, ``max_age``, ``retry_after``, permanent redirects) and the
scheduler decides what to do with them.

What it guarantees per request:

* **Conditional GET**: ``If-None-Match`` / ``If-Modified-Since`` from
  :class:`FeedState`; a 304 comes back as ``not_modified=True`` with no content.
* **Redirects one hop at a time** (at most ``max_redirects``), each hop checked
  by the guard again. A chain that *starts* with 301/308 reports where the feed
  moved (``permanent_redirect``); 302/303/307 are followed silently.
* **Size cap on the decoded body**, enforced while streaming. gzip/deflate are
  decoded here (not by httpx) with ``zlib``'s ``max_length``, so a gzip bomb
  never inflates more than ``max_bytes + 1`` bytes. Only ``gzip, deflate`` is
  advertised, so no other coding should arrive; one that does is an error.
* **A total deadline** (``asyncio.timeout``) on top of httpx's per-phase
  timeouts, which restart on every chunk and so cannot stop a slow drip. It
  counts the time requests are in flight, not the wait for a per-host slot.

The network guard, and why it is built this way: refusing a URL after resolving
its host is not enough if the HTTP library then resolves the name *again* to
connect (DNS rebinding: the second answer may be 127.0.0.1). So the check lives
where the socket is opened. :func:`build_client` gives httpx a transport whose
httpcore network backend (:class:`_GuardedBackend`) resolves the host with
``loop.getaddrinfo``, refuses the connection if *any* resolved address is
private, loopback, link-local, multicast, reserved, unspecified, CGNAT or an
IPv6 form embedding such an IPv4 address, and then connects to exactly those
checked addresses. Because only the TCP connect is redirected, the URL, the
``Host`` header, TLS SNI and certificate verification all keep using the real
host name, so this is correct for http and https alike, and pooled keep-alive
connections (keyed by host name) were each checked when opened. Rewriting the
URL to the IP with a ``Host`` header and ``sni_hostname`` would also work for
one request but lets two names on one CDN address share a pooled TLS connection
verified for the other name. Proxies from the environment are ignored
(``trust_env=False``): through a proxy the guard would check the proxy, not the
target. Cheap static checks (scheme, literal IP hosts) run in
:func:`check_url` before any request, on every hop, so a redirect to
``http://169.254.169.254/`` is refused without opening a socket. A client that
was not built here gets the same resolve-and-check before each hop, without the
rebinding protection.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import mimetypes
import re
import socket
import time
import weakref
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.request import url2pathname

import httpcore
import httpx

from monitor.errors import BlockedAddressError, FetchError, HTTPStatusError, TooLargeError

if TYPE_CHECKING:
    from monitor.config import Settings

__all__ = [
    "FeedState",
    "FetchPolicy",
    "FetchResult",
    "build_client",
    "check_url",
    "fetch_feed",
    "guarded_request",
    "parse_retry_after",
]

DEFAULT_USER_AGENT = "monitor/0.1 (+https://github.com/monitor-alerts/monitor)"
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Only what _Decoder handles; httpx would otherwise add br/zstd when installed.
_ACCEPT_ENCODING = "gzip, deflate"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_RETRYABLE = frozenset({429, 503})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """How fetching behaves. Built once from settings by the caller.

    ``timeout`` is httpx's per-phase timeout (connect, each read, ...);
    ``deadline`` bounds the whole request including redirects and body.
    ``max_bytes`` caps the *decoded* body. ``allowed_networks`` (CIDR strings)
    exempts specific networks from the guard, e.g. an intranet feed host,
    without opening every private address.
    """

    timeout: float = 20.0
    deadline: float = 60.0
    max_bytes: int = 10 * 2**20
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_networks: bool = False
    allow_file_urls: bool = False
    per_host_limit: int = 2
    max_connections: int = 50
    allowed_networks: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, *, allow_file_urls: bool = True) -> FetchPolicy:
        """The policy for feeds, the same for polling and for checking imported URLs.

        ``allow_file_urls`` is for URLs an operator wrote in the config file; URLs
        from anywhere else (an OPML import) are checked with it off.
        """
        return cls(
            timeout=settings.fetch_timeout, deadline=settings.fetch_deadline, max_bytes=settings.max_feed_bytes,
            user_agent=settings.user_agent, allow_private_networks=settings.allow_private_networks,
            allowed_networks=tuple(settings.allowed_networks), allow_file_urls=allow_file_urls,
        )

    @classmethod
    def for_webhooks(cls, settings: Settings) -> FetchPolicy:
        """The policy for webhook delivery: shorter timeouts, a small answer, the same network guard."""
        return cls(
            timeout=15.0, deadline=30.0, max_bytes=64 * 1024, user_agent=settings.user_agent,
            allow_private_networks=settings.allow_private_networks,
            allowed_networks=tuple(settings.allowed_networks),
        )


@dataclass(frozen=True)
class FeedState:
    """What monitor remembers about a feed between polls (the validators)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one successful fetch (2xx or 304).

    ``permanent_redirect`` is where the feed moved when the redirect chain
    started with 301/308 (the URL to store instead of ``url``), else ``None``.
    ``max_age`` is Cache-Control ``max-age`` in seconds, a hint for scheduling.
    """

    url: str
    final_url: str
    status: int
    not_modified: bool
    content: bytes | None
    content_type: str | None
    etag: str | None
    last_modified: str | None
    permanent_redirect: str | None
    max_age: int | None
    elapsed_ms: float


# --------------------------------------------------------------------------- guard


def _networks(policy: FetchPolicy) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in policy.allowed_networks)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for any address a public feed or webhook has no business using."""
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 spellings of an IPv4 address are judged by that IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_forbidden(embedded)
        if ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: FetchPolicy) -> bool:
    if policy.allow_private_networks or not _is_forbidden(ip):
        return True
    return any(ip.version == net.version and ip in net for net in _networks(policy))


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _is_localhost_name(host: str) -> bool:
    """``localhost`` and ``*.localhost`` are loopback by definition (RFC 6761), whatever DNS says."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs monitor must not fetch, without touching the network.

    Checks the scheme (http/https; ``file`` only when ``allow_file_urls``), that
    there is a host, and that a literal IP host (or ``localhost``) is not a
    forbidden address. Other host names are checked when resolved, at connect
    time. Used for feed URLs on every redirect hop, for imported feed URLs, and
    for webhook URLs when the config loads (and again on every attempt).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"{url}: not a valid URL ({exc})", url=url) from None
    scheme = parsed.scheme
    if scheme == "file":
        if not policy.allow_file_urls:
            raise FetchError(
                f"{url}: file: URLs are not allowed here (only for feeds declared in the config file)",
                url=url,
            )
        return
    if scheme not in ("http", "https"):
        raise FetchError(f"{url}: unsupported URL scheme {scheme or '(none)'!r}; use http or https", url=url)
    if not parsed.host:
        raise FetchError(f"{url}: the URL has no host", url=url)
    ip = _literal_ip(parsed.host)
    if ip is None and _is_localhost_name(parsed.host):
        ip = ipaddress.IPv4Address("127.0.0.1")
    if ip is not None and not _address_allowed(ip, policy):
        raise BlockedAddressError(
            f"{url}: {ip} is a private, loopback or otherwise non-public address; "
            "set allow_private_networks to fetch it",
            url=url,
        )


async def _resolve_checked(host: str, port: int, policy: FetchPolicy, *, url: str) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if any is forbidden.

    One forbidden answer refuses the lot: a name that mixes public and private
    addresses is more likely an attack than a misconfiguration.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: cannot resolve host {host!r} ({exc})", url=url) from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        ip = _literal_ip(address)
        if ip is None or not _address_allowed(ip, policy):
            raise BlockedAddressError(
                f"{url}: host {host!r} resolves to {address}, a private, loopback or otherwise "
                "non-public address; set allow_private_networks to fetch it",
                url=url,
            )
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"{url}: host {host!r} has no addresses", url=url)
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address (see module docstring)."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._policy.allow_private_networks:
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        # url=host: fetch_feed/guarded_request re-raise it naming the full URL.
        addresses = await _resolve_checked(host, port, self._policy, url=host)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by monitor")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: FetchPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx has no public hook for the network backend, so swap the pool it
        # built (no sockets are open yet) for one that uses the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


# Clients whose connections are guarded at connect time, and per-client,
# per-host slots that keep one cycle from hammering a single host.
_GUARDED: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
_HOST_SLOTS: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def build_client(policy: FetchPolicy) -> httpx.AsyncClient:
    """The one HTTP client for a poll or delivery cycle. The caller closes it."""
    limits = httpx.Limits(
        max_connections=policy.max_connections,
        max_keepalive_connections=policy.max_connections,
    )
    client = httpx.AsyncClient(
        transport=_GuardedTransport(policy, limits),
        timeout=httpx.Timeout(policy.timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": _ACCEPT_ENCODING},
    )
    _GUARDED.add(client)
    return client


def _host_slot(client: httpx.AsyncClient, host: str, policy: FetchPolicy) -> asyncio.Semaphore:
    slots = _HOST_SLOTS.setdefault(client, {})
    slot = slots.get(host)
    if slot is None:
        slot = slots[host] = asyncio.Semaphore(max(1, policy.per_host_limit))
    return slot


# --------------------------------------------------------------------------- bodies


class _Decoder:
    """Content-Encoding decoder that never inflates past ``limit + 1`` bytes."""

    def __init__(self, content_encoding: str | None, *, url: str) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(f"{url}: unsupported Content-Encoding {content_encoding!r}", url=url)
        self._coding = codings[0] if codings else None
        self._url = url
        self._started = False
        self._z: Any = None
        if self._coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self._coding == "deflate":
            self._z = zlib.decompressobj()

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode ``data``, returning at most ``room`` bytes beyond which the caller stops."""
        if self._z is None:
            return data
        try:
            out = self._inflate(data, room)
        except zlib.error:
            if self._coding != "deflate" or self._started:
                raise FetchError(f"{self._url}: corrupt {self._coding} body", url=self._url) from None
            # Some servers send raw deflate without the zlib header.
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                out = self._inflate(data, room)
            except zlib.error:
                raise FetchError(f"{self._url}: corrupt deflate body", url=self._url) from None
        self._started = True
        return out

    def _inflate(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        while data and not self._z.eof:
            out += self._z.decompress(data, max(1, room - len(out)))
            if len(out) >= room:
                break
            data = self._z.unconsumed_tail
        return bytes(out)

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        try:
            return bytes(self._z.flush())
        except zlib.error:
            raise FetchError(f"{self._url}: corrupt {self._coding} body", url=self._url) from None


async def _read_capped(response: httpx.Response, limit: int, *, url: str, truncate: bool) -> bytes:
    """Read and decode the body; over ``limit`` either raise TooLargeError or truncate."""
    encoding = response.headers.get("content-encoding")
    decoder = _Decoder(encoding, url=url)
    declared = response.headers.get("content-length", "")
    if not truncate and decoder._coding is None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(
            f"{url}: body of {int(declared)} bytes is over the {limit} byte cap", url=url
        )
    body = bytearray()
    async for chunk in response.aiter_raw(_CHUNK):
        body += decoder.feed(chunk, limit + 1 - len(body))
        if len(body) > limit:
            break
    else:
        body += decoder.flush()
    if len(body) > limit:
        if truncate:
            return bytes(body[:limit])
        raise TooLargeError(f"{url}: body is over the {limit} byte cap (after decoding)", url=url)
    return bytes(body)


# --------------------------------------------------------------------------- headers


MAX_RETRY_AFTER = 86400.0  # a server asking for more than a day gets a day; its answer is a hint
_DELTA_SECONDS = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also accepts "²"


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), within [0, a day].

    The header comes from whoever answers, so anything odd (``²``, a negative
    number, thirty nines, a date in year 9999 or one that does not exist) is
    either clamped or ignored, never raised.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return MAX_RETRY_AFTER if len(value) > 9 else min(MAX_RETRY_AFTER, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" dates: HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def _max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def _conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {"Accept": _ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


# --------------------------------------------------------------------------- requests


async def _open(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    policy: FetchPolicy,
    *,
    headers: dict[str, str] | None,
    content: bytes | None,
) -> httpx.Response:
    """Send one request (no redirects) through the guard; the caller closes the response."""
    check_url(url, policy)
    parsed = httpx.URL(url)
    if parsed.scheme == "file":
        raise FetchError(f"{url}: file: URLs cannot be requested over HTTP", url=url)
    if client not in _GUARDED and not policy.allow_private_networks:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await _resolve_checked(parsed.host, port, policy, url=url)
    try:
        request = client.build_request(method, url, headers=headers, content=content)
        return await client.send(request, stream=True, follow_redirects=False)
    except BlockedAddressError as exc:
        raise BlockedAddressError(str(exc).replace(f"{exc.url}: ", f"{url}: ", 1), url=url) from None
    except FetchError:
        raise
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"{url}: {_describe(exc, policy)}", url=url) from None


async def _read(response: httpx.Response, policy: FetchPolicy, *, url: str, truncate: bool) -> bytes:
    try:
        return await _read_capped(response, policy.max_bytes, url=url, truncate=truncate)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {_describe(exc, policy)} while reading the body", url=url) from None


def _describe(exc: Exception, policy: FetchPolicy) -> str:
    """What went wrong on the wire, in words an operator can act on (no exception class names)."""
    detail = f" ({exc})" if str(exc) else ""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out connecting after {policy.timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: no data for {policy.timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect{detail}"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return f"the connection was reset or closed by the server{detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the answer is not valid HTTP{detail}"
    if isinstance(exc, httpx.InvalidURL):
        return f"not a valid URL{detail}"
    return f"the request failed{detail}"


class _Budget:
    """A deadline that only runs while a request is in flight (see :func:`_fetch_http`)."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    @contextlib.asynccontextmanager
    async def running(self, url: str, policy: FetchPolicy) -> AsyncIterator[None]:
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, self.left)):
                yield
        except TimeoutError:
            raise _deadline_error(url, policy) from None
        finally:
            self.left -= time.monotonic() - began


def _deadline_error(url: str, policy: FetchPolicy) -> FetchError:
    return FetchError(
        f"{url}: no complete answer within the {policy.deadline:g}s deadline; the server is too slow",
        url=url,
    )


async def fetch_feed(client: httpx.AsyncClient, state: FeedState, policy: FetchPolicy) -> FetchResult:
    """Fetch one feed: conditional GET, guarded redirects, capped body, deadline.

    Returns a :class:`FetchResult` for 2xx and 304. Raises :class:`FetchError`
    (or a subclass) naming ``state.url`` for everything else: blocked address,
    too large, timeout, too many redirects, and :class:`HTTPStatusError` for
    error statuses (``retry_after`` set from Retry-After on 429/503).
    """
    started = time.perf_counter()
    check_url(state.url, policy)
    if httpx.URL(state.url).scheme == "file":
        return await _fetch_file(state, policy, started)
    try:
        return await _fetch_http(client, state, policy, started)
    except FetchError as exc:
        if exc.url == state.url:
            raise
        # Raised for a later hop: keep the message (it names that hop) but attribute it to the feed.
        raise type(exc)(str(exc), url=state.url, status=exc.status, retry_after=exc.retry_after) from None


async def _fetch_http(
    client: httpx.AsyncClient, state: FeedState, policy: FetchPolicy, started: float
) -> FetchResult:
    """The redirect chain under one deadline, which starts with the first request, not before.

    Waiting for a per-host slot (another feed on the same host is being fetched)
    is not the server being slow: a fast feed queued behind slow neighbours must
    not be recorded as "too slow". Each later hop waits for its host's slot with
    the clock stopped as well, so the deadline measures the servers' time only.
    """
    url = state.url
    headers = _conditional_headers(state)
    permanent: str | None = None
    chain_permanent = True
    budget = _Budget(policy.deadline)
    for _hop in range(policy.max_redirects + 1):
        async with _host_slot(client, httpx.URL(url).host, policy), budget.running(state.url, policy):
            response = await _open(client, "GET", url, policy, headers=headers, content=None)
            try:
                status = response.status_code
                if status in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise HTTPStatusError(f"{url}: {status} redirect without a Location", url=state.url,
                                              status=status)
                    try:
                        target = str(httpx.URL(url).join(location.strip()).copy_with(fragment=None))
                    except (httpx.InvalidURL, ValueError):
                        raise FetchError(f"{url}: redirect to an invalid URL {location!r}",
                                         url=state.url) from None
                    if httpx.URL(target).scheme not in ("http", "https"):
                        # file: is allowed only for URLs an operator wrote in the config, never as a
                        # place a remote server sends us to.
                        raise BlockedAddressError(f"{url}: redirect to a non-HTTP URL {target!r} refused",
                                                  url=state.url)
                    if status in _PERMANENT and chain_permanent:
                        permanent = target
                    else:
                        chain_permanent = False
                    url = target
                    continue
                if status == 304:
                    return FetchResult(
                        url=state.url,
                        final_url=url,
                        status=304,
                        not_modified=True,
                        content=None,
                        content_type=None,
                        etag=response.headers.get("etag") or state.etag,
                        last_modified=response.headers.get("last-modified") or state.last_modified,
                        permanent_redirect=permanent,
                        max_age=_max_age(response.headers.get("cache-control")),
                        elapsed_ms=(time.perf_counter() - started) * 1000,
                    )
                if status >= 300 or status < 200:
                    retry_after = None
                    if status in _RETRYABLE:
                        retry_after = parse_retry_after(
                            response.headers.get("retry-after"), now=datetime.now(UTC)
                        )
                    where = f" (redirected from {state.url})" if url != state.url else ""
                    reason = response.reason_phrase or ""
                    raise HTTPStatusError(
                        f"{url}{where}: HTTP {status} {reason}".rstrip(),
                        url=state.url,
                        status=status,
                        retry_after=retry_after,
                    )
                body = await _read(response, policy, url=url, truncate=False)
                return FetchResult(
                    url=state.url,
                    final_url=url,
                    status=status,
                    not_modified=False,
                    content=body,
                    content_type=response.headers.get("content-type"),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    permanent_redirect=permanent,
                    max_age=_max_age(response.headers.get("cache-control")),
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
            finally:
                await response.aclose()
    raise FetchError(f"{state.url}: more than {policy.max_redirects} redirects (last: {url})", url=state.url)


async def guarded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    policy: FetchPolicy,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One guarded request for webhook delivery: no redirects, capped read, deadline.

    Any status other than 3xx is returned for the caller to judge (its body
    read and truncated to ``max_bytes``: a large answer to a successful POST
    must not turn into a failed, re-sent delivery). A 3xx raises
    :class:`HTTPStatusError`: re-sending a POST elsewhere is not safe.
    """
    try:
        async with asyncio.timeout(policy.deadline):
            response = await _open(client, method, url, policy, headers=headers, content=content)
            try:
                if 300 <= response.status_code < 400:
                    raise HTTPStatusError(
                        f"{url}: HTTP {response.status_code} redirect to "
                        f"{response.headers.get('location', '(no Location)')}; redirects are not followed "
                        f"for {method}, configure the final URL",
                        url=url,
                        status=response.status_code,
                    )
                body = await _read(response, policy, url=url, truncate=True)
            finally:
                await response.aclose()
    except TimeoutError:
        raise _deadline_error(url, policy) from None
    # The body is already decoded: drop headers that describe the wire form. Raw bytes, not decoded
    # strings: a header value outside ASCII (``X-Note: café``) must survive the rebuild, not raise.
    kept = [(k, v) for k, v in response.headers.raw
            if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
    return httpx.Response(response.status_code, headers=kept, content=body, request=response.request)


# --------------------------------------------------------------------------- file:


def _file_path(url: str) -> Path:
    parsed = httpx.URL(url)
    if parsed.host not in ("", "localhost"):
        raise FetchError(f"{url}: file: URLs must name a local path (file:///...)", url=url)
    return Path(url2pathname(parsed.path))


def _read_file(path: Path, limit: int, url: str) -> tuple[int, int, bytes | None]:
    st = path.stat()
    if st.st_size > limit:
        raise TooLargeError(f"{url}: file of {st.st_size} bytes is over the {limit} byte cap", url=url)
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{url}: file is over the {limit} byte cap", url=url)
    return st.st_size, st.st_mtime_ns, data


async def _fetch_file(state: FeedState, policy: FetchPolicy, started: float) -> FetchResult:
    """Local feed file with the same size cap and an emulated conditional GET."""
    url = state.url
    path = _file_path(url)
    try:
        st = await asyncio.to_thread(path.stat)
    except OSError as exc:
        raise FetchError(f"{url}: cannot read {path}: {exc.strerror or exc}", url=url) from None
    etag = f'W/"{st.st_size:x}-{st.st_mtime_ns:x}"'
    last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
    content_type = mimetypes.guess_type(path.name)[0]
    if path.suffix == ".json":
        content_type = "application/feed+json"
    if state.etag == etag:
        return FetchResult(url=url, final_url=url, status=304, not_modified=True, content=None,
                           content_type=content_type, etag=etag, last_modified=last_modified,
                           permanent_redirect=None, max_age=None,
                           elapsed_ms=(time.perf_counter() - started) * 1000)
    try:
        size, mtime_ns, data = await asyncio.to_thread(_read_file, path, policy.max_bytes, url)
    except OSError as exc:
        raise FetchError(f"{url}: cannot read {path}: {exc.strerror or exc}", url=url) from None
    # Validators from the stat taken with the read, so a file changed in between is re-read next time.
    etag = f'W/"{size:x}-{mtime_ns:x}"'
    return FetchResult(url=url, final_url=url, status=200, not_modified=False, content=data,
                       content_type=content_type, etag=etag, last_modified=last_modified,
                       permanent_redirect=None, max_age=None,
                       elapsed_ms=(time.perf_counter() - started) * 1000)
