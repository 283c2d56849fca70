"""Fetching feeds over HTTP(S) (and local ``file:`` feeds), safely.

This module owns every byte monitor reads from the network for a feed. The network
guard it fetches through (which addresses may be connected to, the guarded client,
capped bodies) lives in :mod:`monitor.net`, shared with the HTTP delivery transports.
It never reads settings: callers build a :class:`FetchPolicy` once, build a client
from it with :func:`build_client`, and inject both. It does not parse, store or
schedule; it reports facts (status, validators, ``max_age``, ``retry_after``,
permanent redirects) and the scheduler decides what to do with them.

What it guarantees per request:

* **Conditional GET**: ``If-None-Match`` / ``If-Modified-Since`` from
  :class:`FeedState`; a 304 comes back as ``not_modified=True`` with no content.
* **Redirects one hop at a time** (at most ``max_redirects``), each hop checked
  by the guard again. A chain that *starts* with 301/308 reports where the feed
  moved (``permanent_redirect``); 302/303/307 are followed silently.
* **Size cap on the decoded body** and no decompression bombs (:mod:`monitor.net.http`).
* **A total deadline** (``asyncio.timeout``) on top of httpx's per-phase
  timeouts, which restart on every chunk and so cannot stop a slow drip. It
  counts the time requests are in flight, not the wait for a per-host slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import mimetypes
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import url2pathname

import httpx

from monitor.errors import BlockedAddressError, FetchError, HTTPStatusError, TooLargeError
from monitor.net.guard import (
    ACCEPT_ENCODING,
    DEFAULT_USER_AGENT,
    FetchPolicy,
    build_client,
    check_url,
    host_slot,
    parse_url,
)
from monitor.net.http import (
    MAX_RETRY_AFTER,
    deadline_error,
    guarded_request,
    open_guarded,
    parse_retry_after,
    read_body,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_RETRY_AFTER",
    "FeedState",
    "FetchPolicy",
    "FetchResult",
    "build_client",
    "check_url",
    "fetch_feed",
    "guarded_request",
    "parse_retry_after",
]

_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Only what _Decoder handles; httpx would otherwise add br/zstd when installed.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_RETRYABLE = frozenset({429, 503})


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



_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def _max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def _conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {"Accept": _ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers



# --------------------------------------------------------------------------- requests


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
            raise deadline_error(url, policy) from None
        finally:
            self.left -= time.monotonic() - began



async def fetch_feed(client: httpx.AsyncClient, state: FeedState, policy: FetchPolicy) -> FetchResult:
    """Fetch one feed: conditional GET, guarded redirects, capped body, deadline.

    Returns a :class:`FetchResult` for 2xx and 304. Raises :class:`FetchError`
    (or a subclass) naming ``state.url`` for everything else: blocked address,
    too large, timeout, too many redirects, and :class:`HTTPStatusError` for
    error statuses (``retry_after`` set from Retry-After on 429/503).
    """
    started = time.perf_counter()
    check_url(state.url, policy)
    if parse_url(state.url).scheme == "file":
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
        async with host_slot(client, parse_url(url).host, policy), budget.running(state.url, policy):
            response = await open_guarded(client, "GET", url, policy, headers=headers, content=None)
            try:
                status = response.status_code
                if status in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise HTTPStatusError(f"{url}: {status} redirect without a Location", url=state.url,
                                              status=status)
                    try:
                        target = str(parse_url(url).join(location.strip()).copy_with(fragment=None))
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
                    # A 304 has no body (RFC 9110 15.4.5; h11 reads none): reading its end returns the
                    # connection to the pool for the next feed, where closing it unread would drop it.
                    # One that declares a body anyway may have sent it: that connection is dropped, so
                    # the stray bytes cannot be read as the next feed's answer.
                    if response.headers.get("content-length", "0").strip() == "0" and \
                            "transfer-encoding" not in response.headers:
                        await response.aread()
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
                body = await read_body(response, policy, url=url, truncate=False)
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
