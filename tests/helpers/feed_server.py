"""A real HTTP server on loopback for tests that fetch feeds or receive webhooks.

``FeedServer`` runs :class:`http.server.ThreadingHTTPServer` on ``127.0.0.1``
(port chosen by the OS) in a background thread. It has a mutable route table
(:meth:`FeedServer.set_route`, :meth:`FeedServer.set_handler`), a log of every
request received (:attr:`FeedServer.requests`) and built-in routes for the
awkward cases a fetcher must survive:

=========================  ==================================================
``/feed.xml``              a small RSS 2.0 feed
``/feed.json``             a small JSON Feed
``/etag``                  ETag ``"v1"``; 304 when If-None-Match matches
``/last-modified``         Last-Modified; 304 when If-Modified-Since matches
``/moved-301``             301 -> ``/feed.xml``
``/moved-308``             308 -> ``/feed.xml``
``/found-302``             302 -> ``/feed.xml``
``/temp-307``              307 -> ``/feed.xml``
``/chain-301-302``         301 -> ``/found-302`` -> ``/feed.xml``
``/chain-302-301``         302 -> ``/moved-301`` -> ``/feed.xml``
``/loop``                  302 -> ``/loop`` forever
``/redirect-metadata``     302 -> ``http://169.254.169.254/latest/meta-data/``
``/redirect-private``      302 -> ``http://10.0.0.1/feed.xml``
``/rate-limited``          429 with ``Retry-After: 120``
``/unavailable``           503 with an HTTP-date Retry-After (90 s ahead)
``/gone``                  410
``/server-error``          500
``/slow``                  200, then a byte every 50 ms for up to 10 s
``/huge``                  200, 32 MiB streamed without Content-Length
``/huge-declared``         200 with ``Content-Length`` of 32 MiB, streamed
``/gzip-bomb``             ``Content-Encoding: gzip``: 64 MiB of zeros, ~64 KiB sent
``/gzip-feed``             the ``/feed.xml`` feed, gzip-encoded
``/billion-laughs``        XML with nested entity declarations
``/html``                  an HTML page (not a feed)
``/wrong-type``            the RSS feed served as ``text/html``
=========================  ==================================================

Nothing here ever connects anywhere: redirects to private addresses only
*name* them, and the fetcher under test must refuse them before connecting.
Use as a context manager (``with FeedServer() as server:``) or through
:func:`feed_server`, which conftests can wrap as a fixture.
"""

from __future__ import annotations

import email.utils
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

SMALL_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Loopback News</title><link>http://127.0.0.1/</link><description>test</description>
<item><title>Delegation arrives in Pyongyang</title><link>http://127.0.0.1/news/1</link>
<guid>loopback-1</guid><pubDate>Tue, 10 Jun 2025 08:00:00 GMT</pubDate>
<description>&lt;p&gt;A delegation &lt;b&gt;arrived&lt;/b&gt;.&lt;/p&gt;</description></item>
<item><title>Second story</title><link>/news/2</link><guid>loopback-2</guid></item>
</channel></rss>
"""

SMALL_JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "Loopback JSON",
"home_page_url": "http://127.0.0.1/", "items": [{"id": "j1", "url": "http://127.0.0.1/j/1",
"title": "JSON item", "content_text": "Hello", "date_published": "2025-06-10T08:00:00+02:00"}]}
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>http://127.0.0.1/x</link></item></channel></rss>
"""

HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>Welcome</title></head><body><h1>Not a feed</h1><p>Just a page.</p></body></html>
"""

ETAG = '"v1"'
LAST_MODIFIED = "Tue, 10 Jun 2025 08:00:00 GMT"
BIG = 32 * 2**20
BOMB = 64 * 2**20


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    peer: tuple[str, int] = ("", 0)  # the client's address and port: one per TCP connection


@dataclass
class Route:
    """A canned answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest], Route]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            peer=(str(self.client_address[0]), int(self.client_address[1])),
        )
        owner = self.server.owner
        owner._record(request)
        path = self.path.split("?", 1)[0]
        handler = owner._handlers.get(path)
        if handler is not None:
            self._send(handler(request))
            return
        route = owner._routes.get(path)
        if route is not None:
            self._send(route)
            return
        stream = getattr(self, "_stream_" + path.strip("/").replace("-", "_"), None)
        if stream is not None and path.strip("/") in FeedServer.STREAMING:
            stream()
            return
        self._send(Route(404, b"not found\n", {"Content-Type": "text/plain"}))

    do_GET = do_POST = do_HEAD = do_PUT = _handle

    def _send(self, route: Route) -> None:
        self.send_response(route.status)
        headers = {k.lower(): v for k, v in route.headers.items()}
        for name, value in route.headers.items():
            self.send_header(name, value)
        if "content-length" not in headers:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if self.command != "HEAD" and route.status not in (204, 304):
            self.wfile.write(route.body)

    def _start_stream(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _write_until(self, chunks: Iterator[bytes], pause: float = 0.0) -> None:
        stopping = self.server.owner._stopping
        try:
            for chunk in chunks:
                if stopping.is_set():
                    return
                self.wfile.write(chunk)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should

    def _stream_slow(self) -> None:
        self._start_stream({"Content-Type": "application/rss+xml"})
        self._write_until((b" " for _ in range(200)), pause=0.05)

    def _zeros(self, total: int) -> Iterator[bytes]:
        chunk = b"\0" * 65536
        for _ in range(total // len(chunk)):
            yield chunk

    def _stream_huge(self) -> None:
        self._start_stream({"Content-Type": "application/rss+xml"})
        self._write_until(self._zeros(BIG))

    def _stream_huge_declared(self) -> None:
        self._start_stream({"Content-Type": "application/rss+xml", "Content-Length": str(BIG)})
        self._write_until(self._zeros(BIG))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FeedServer


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB, compresslevel=9)


class FeedServer:
    """Loopback HTTP server with routes, canned edge cases and a request log."""

    STREAMING: ClassVar[frozenset[str]] = frozenset({"slow", "huge", "huge-declared"})
    _bomb: ClassVar[bytes | None] = None

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._routes: dict[str, Route] = {}
        self._handlers: dict[str, Handler] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._install_builtins()

    # -- lifecycle
    def start(self) -> FeedServer:
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.owner = self
        # A short poll interval keeps shutdown (and so each test's teardown) fast.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="feed-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- routes
    def set_route(self, path: str, status: int = 200, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> None:
        """Answer ``path`` (any method, query ignored) with a fixed response."""
        self._handlers.pop(path, None)
        self._routes[path] = Route(status, body, dict(headers or {}))

    def set_handler(self, path: str, handler: Handler) -> None:
        """Answer ``path`` by calling ``handler(request) -> Route`` (runs in a server thread)."""
        self._routes.pop(path, None)
        self._handlers[path] = handler

    # -- request log
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    # -- built-ins
    @classmethod
    def gzip_bomb_body(cls) -> bytes:
        if cls._bomb is None:
            cls._bomb = _gzip_bomb()
        return cls._bomb

    def _install_builtins(self) -> None:
        rss = {"Content-Type": "application/rss+xml; charset=utf-8"}
        self.set_route("/feed.xml", body=SMALL_RSS, headers=rss)
        self.set_route("/feed.json", body=SMALL_JSON_FEED, headers={"Content-Type": "application/feed+json"})
        self.set_handler("/etag", self._etag)
        self.set_handler("/last-modified", self._last_modified)
        for path, status, target in [
            ("/moved-301", 301, "/feed.xml"),
            ("/moved-308", 308, "/feed.xml"),
            ("/found-302", 302, "/feed.xml"),
            ("/temp-307", 307, "/feed.xml"),
            ("/chain-301-302", 301, "/found-302"),
            ("/chain-302-301", 302, "/moved-301"),
            ("/loop", 302, "/loop"),
            ("/redirect-metadata", 302, "http://169.254.169.254/latest/meta-data/"),
            ("/redirect-private", 302, "http://10.0.0.1/feed.xml"),
        ]:
            self.set_route(path, status=status, headers={"Location": target})
        self.set_route("/rate-limited", status=429, body=b"slow down\n", headers={"Retry-After": "120"})
        self.set_handler("/unavailable", lambda _r: Route(
            503, b"maintenance\n", {"Retry-After": email.utils.formatdate(time.time() + 90, usegmt=True)}))
        self.set_route("/gone", status=410, body=b"gone\n")
        self.set_route("/server-error", status=500, body=b"oops\n")
        self.set_handler("/gzip-bomb", lambda _r: Route(
            200, self.gzip_bomb_body(), {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}))
        self.set_route("/gzip-feed", body=gzip.compress(SMALL_RSS),
                       headers={**rss, "Content-Encoding": "gzip"})
        self.set_route("/billion-laughs", body=BILLION_LAUGHS, headers={"Content-Type": "application/xml"})
        self.set_route("/html", body=HTML_PAGE, headers={"Content-Type": "text/html; charset=utf-8"})
        self.set_route("/wrong-type", body=SMALL_RSS, headers={"Content-Type": "text/html; charset=utf-8"})

    @staticmethod
    def _etag(request: RecordedRequest) -> Route:
        headers = {"ETag": ETAG, "Content-Type": "application/rss+xml",
                   "Cache-Control": "public, max-age=300"}
        if request.headers.get("if-none-match") == ETAG:
            return Route(304, b"", headers)
        return Route(200, SMALL_RSS, headers)

    @staticmethod
    def _last_modified(request: RecordedRequest) -> Route:
        headers = {"Last-Modified": LAST_MODIFIED, "Content-Type": "application/rss+xml"}
        if request.headers.get("if-modified-since") == LAST_MODIFIED:
            return Route(304, b"", headers)
        return Route(200, SMALL_RSS, headers)


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """A started :class:`FeedServer`, stopped on exit. Wrap it as a pytest fixture."""
    server = FeedServer()
    with server:
        yield server
