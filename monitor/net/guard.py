"""The network guard: which addresses monitor may connect to, enforced where the socket opens.

Feed fetching (:mod:`monitor.ingest.fetch`) and every delivery transport that speaks HTTP
(webhooks, ntfy) build their clients here, so one guard decides for all of them. It never
reads settings: callers build a :class:`FetchPolicy` once and inject it.

The network guard, and why it is built this way: refusing a URL after resolving
its host is not enough if the HTTP library then resolves the name *again* to
connect (DNS rebinding: the second answer may be 127.0.0.1). So the check lives
where the socket is opened. :func:`build_client` gives httpx a transport (:class:`GuardedTransport`, an
``httpx.AsyncBaseTransport`` over an ``httpcore.AsyncConnectionPool``) whose
network backend (:class:`GuardedBackend`) resolves the host with
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
import functools
import ipaddress
import socket
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from monitor.errors import BlockedAddressError, FetchError

if TYPE_CHECKING:
    from monitor.config import Settings

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchPolicy",
    "GuardedBackend",
    "GuardedTransport",
    "build_client",
    "check_url",
    "guarded_transport",
    "host_slot",
    "parse_url",
    "resolve_checked",
]

DEFAULT_USER_AGENT = "monitor/0.1 (+https://github.com/monitor-alerts/monitor)"
# Only what monitor.net.http's decoder handles; httpx would otherwise add br/zstd when installed.
ACCEPT_ENCODING = "gzip, deflate"


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


# --------------------------------------------------------------------------- addresses


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


@functools.lru_cache(maxsize=16384)
def parse_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per URL (httpx's parser costs more than the rest of a 304 does).

    A poll uses each feed URL a few times a fetch (guard, host slot, request), every cycle; the
    URL is immutable, so one parse serves them all. Raises ``httpx.InvalidURL`` as httpx does.
    """
    return httpx.URL(url)


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs monitor must not fetch, without touching the network.

    Checks the scheme (http/https; ``file`` only when ``allow_file_urls``), that
    there is a host, and that a literal IP host (or ``localhost``) is not a
    forbidden address. Other host names are checked when resolved, at connect
    time. Used for feed URLs on every redirect hop, for imported feed URLs, and
    for webhook URLs when the config loads (and again on every attempt). A URL that passes is
    remembered with its policy (the checks read nothing else), so the next call is a lookup.
    """
    _checked(url, policy)


@functools.lru_cache(maxsize=16384)
def _checked(url: str, policy: FetchPolicy) -> None:
    """:func:`check_url`'s checks; a refusal raises (and, being an exception, is not cached)."""
    try:
        parsed = parse_url(url)
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


async def resolve_checked(host: str, port: int, policy: FetchPolicy, *, url: str) -> list[str]:
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


class GuardedBackend(httpcore.AsyncNetworkBackend):
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
        addresses = await resolve_checked(host, port, self._policy, url=host)
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



# httpcore's exceptions, most specific first, and the httpx exception each becomes (what httpx's own
# transport does), so callers see httpx's public exception types whichever transport answered.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx(exc: Exception, request: httpx.Request) -> Exception:
    for core, public in _EXCEPTIONS:
        if isinstance(exc, core):
            error = public(str(exc))
            error.request = request
            return error
    return exc


class _ResponseStream(httpx.AsyncByteStream):
    """httpcore's response body as httpx reads it, with httpcore errors raised as httpx errors."""

    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            mapped = _as_httpx(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore connection pool whose every TCP connect is guarded.

    Built on httpx's and httpcore's public interfaces only (``AsyncBaseTransport``,
    ``AsyncConnectionPool(network_backend=...)``), so an httpx upgrade cannot silently drop the
    guard. HTTP/1.1 only; proxies are never used (see the module docstring).
    """

    def __init__(self, policy: FetchPolicy, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = _as_httpx(exc, request)
            if mapped is exc:
                raise  # BlockedAddressError and FetchError from the backend pass as they are
            raise mapped from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()



# Clients whose connections are guarded at connect time, and per-client,
# per-host slots that keep one cycle from hammering a single host.
_GUARDED: weakref.WeakKeyDictionary[httpx.AsyncClient, GuardedTransport] = weakref.WeakKeyDictionary()
_HOST_SLOTS: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def build_client(policy: FetchPolicy) -> httpx.AsyncClient:
    """The one HTTP client for a poll or delivery cycle. The caller closes it."""
    limits = httpx.Limits(
        max_connections=policy.max_connections,
        max_keepalive_connections=policy.max_connections,
    )
    transport = GuardedTransport(policy, limits)
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(policy.timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
    )
    _GUARDED[client] = transport
    return client


def host_slot(client: httpx.AsyncClient, host: str, policy: FetchPolicy) -> asyncio.Semaphore:
    """The client's slot for ``host``: at most ``per_host_limit`` requests to one host at a time."""
    slots = _HOST_SLOTS.setdefault(client, {})
    slot = slots.get(host)
    if slot is None:
        slot = slots[host] = asyncio.Semaphore(max(1, policy.per_host_limit))
    return slot


def guarded_transport(client: httpx.AsyncClient) -> GuardedTransport | None:
    """The transport of a client built by :func:`build_client`, whose connections are checked at connect
    time (None for any other client)."""
    return _GUARDED.get(client)
