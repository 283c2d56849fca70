"""A webhook receiver on loopback that answers the way broken or hostile endpoints do.

Each path is one behaviour (see :data:`BEHAVIOURS`); every request is recorded
with its path and headers before the answer, so a test can count what each
endpoint received and check that no ``webhook-id`` arrived twice.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


def _answer(handler: BaseHTTPRequestHandler, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Write a response by hand, so header values can be any bytes (a real server may send UTF-8)."""
    head = [f"HTTP/1.1 {status} X\r\n".encode(), b"Content-Length: 2\r\n", b"Connection: close\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in headers]
    handler.wfile.write(b"".join(head) + b"\r\nok")


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of answering."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


def _slow(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(1.0)
    _answer(handler, 200)


BEHAVIOURS: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {
    "/odd-header": lambda h: _answer(h, 200, [(b"X-Note", "café".encode()), (b"X-Bin", b"\xff\xfe")]),
    "/retry-nines": lambda h: _answer(h, 429, [(b"Retry-After", b"9" * 30)]),
    "/retry-superscript": lambda h: _answer(h, 503, [(b"Retry-After", "²".encode())]),
    "/retry-negative": lambda h: _answer(h, 429, [(b"Retry-After", b"-5")]),
    "/retry-year-9999": lambda h: _answer(h, 503, [(b"Retry-After", b"Fri, 31 Dec 9999 23:59:59 GMT")]),
    "/retry-nonsense-date": lambda h: _answer(h, 503, [(b"Retry-After", b"Mon, 99 Foo 99999 99:99:99 GMT")]),
    "/slow": _slow,
    "/server-error": lambda h: _answer(h, 500),
    "/not-found": lambda h: _answer(h, 404),
    "/reset": _reset,
    "/not-http": lambda h: h.wfile.write(b"hello, this is not HTTP\r\n\r\n"),
    "/huge-header": lambda h: _answer(h, 200, [(b"X-Big", b"a" * 200_000)]),
    "/ok": lambda h: _answer(h, 200),
}


@dataclass
class HostileReceiver:
    base_url: str
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for h in self.hits if h.path == path)


@contextmanager
def hostile_receiver() -> Iterator[HostileReceiver]:
    state = HostileReceiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.close_connection = True
            BEHAVIOURS.get(self.path, BEHAVIOURS["/not-found"])(self)

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass  # the reset behaviour closed the socket already

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
