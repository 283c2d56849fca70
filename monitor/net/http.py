"""Guarded HTTP requests: one request through the guard, bodies read under a cap, Retry-After.

Shared by feed fetching and the HTTP delivery transports. What it guarantees:

* every request passes :func:`~monitor.net.guard.check_url` first (scheme, literal addresses),
  and a client not built by :func:`~monitor.net.guard.build_client` gets a resolve-and-check
  before each request (without the rebinding protection);
* **size cap on the decoded body**, enforced while streaming. gzip/deflate are decoded here (not
  by httpx) with ``zlib``'s ``max_length``, so a gzip bomb never inflates more than
  ``max_bytes + 1`` bytes. Only ``gzip, deflate`` is advertised, so no other coding should
  arrive; one that does is an error;
* transport failures come back as :class:`~monitor.errors.FetchError` in words an operator can
  act on, naming the URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.errors import BlockedAddressError, FetchError, HTTPStatusError, TooLargeError
from monitor.net.guard import FetchPolicy, check_url, guarded_transport, parse_url, resolve_checked

__all__ = [
    "MAX_RETRY_AFTER",
    "deadline_error",
    "describe",
    "guarded_request",
    "open_guarded",
    "parse_retry_after",
    "read_body",
]

_CHUNK = 64 * 1024


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



# --------------------------------------------------------------------------- requests


async def open_guarded(
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
    parsed = parse_url(url)
    if parsed.scheme == "file":
        raise FetchError(f"{url}: file: URLs cannot be requested over HTTP", url=url)
    transport = guarded_transport(client)  # None: not our client, so its connections are not checked
    if transport is None and not policy.allow_private_networks:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await resolve_checked(parsed.host, port, policy, url=url)
    try:
        request = client.build_request(method, parsed, headers=headers, content=content)
        if transport is None:
            return await client.send(request, stream=True, follow_redirects=False)
        # Our own client: straight to its transport. What the client adds around a request is what
        # monitor does without (redirects are followed here hop by hop, there is no auth, and no
        # cookie from one answer is sent with the next request), and it costs a fifth of a request.
        response = await transport.handle_async_request(request)
        response.request = request
        return response
    except BlockedAddressError as exc:
        raise BlockedAddressError(str(exc).replace(f"{exc.url}: ", f"{url}: ", 1), url=url) from None
    except FetchError:
        raise
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"{url}: {describe(exc, policy)}", url=url) from None


async def read_body(response: httpx.Response, policy: FetchPolicy, *, url: str, truncate: bool) -> bytes:
    try:
        return await _read_capped(response, policy.max_bytes, url=url, truncate=truncate)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {describe(exc, policy)} while reading the body", url=url) from None


def describe(exc: Exception, policy: FetchPolicy) -> str:
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



def deadline_error(url: str, policy: FetchPolicy) -> FetchError:
    return FetchError(
        f"{url}: no complete answer within the {policy.deadline:g}s deadline; the server is too slow",
        url=url,
    )


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
            response = await open_guarded(client, method, url, policy, headers=headers, content=content)
            try:
                if 300 <= response.status_code < 400:
                    raise HTTPStatusError(
                        f"{url}: HTTP {response.status_code} redirect to "
                        f"{response.headers.get('location', '(no Location)')}; redirects are not followed "
                        f"for {method}, configure the final URL",
                        url=url,
                        status=response.status_code,
                    )
                body = await read_body(response, policy, url=url, truncate=True)
            finally:
                await response.aclose()
    except TimeoutError:
        raise deadline_error(url, policy) from None
    # The body is already decoded: drop headers that describe the wire form. Raw bytes, not decoded
    # strings: a header value outside ASCII (``X-Note: café``) must survive the rebuild, not raise.
    kept = [(k, v) for k, v in response.headers.raw
            if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
    return httpx.Response(response.status_code, headers=kept, content=body, request=response.request)
