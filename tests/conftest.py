"""Shared fixtures: databases (SQLite and PostgreSQL), a real SMTP server, a webhook receiver.

PostgreSQL: a template database is migrated once per run and cloned per test
(``CREATE DATABASE … TEMPLATE``). Under ``CI=true`` the PostgreSQL runs are
required; elsewhere they skip with a reason when no server answers.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PG_ADMIN_URL = os.environ.get("MONITOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_PG_TEMPLATE = f"monitor_test_tmpl_{os.getpid()}"


def _pg_admin() -> sa.Engine | None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        engine.dispose()
        return None
    return engine


def pg_admin_or_skip() -> sa.Engine:
    """An admin connection to PostgreSQL; skip without one, but fail under ``CI=true``."""
    admin = _pg_admin()
    if admin is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but {PG_ADMIN_URL} does not answer")
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}")
    return admin


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    admin = pg_admin_or_skip()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{_PG_TEMPLATE}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{_PG_TEMPLATE}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield _PG_TEMPLATE
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a clone of the PostgreSQL template."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database on each backend, for tests that migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    request.getfixturevalue("pg_template")  # fails under CI=true, skips elsewhere, when no server answers
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)
    refuse_with: str | None = None  # e.g. "451 try later" or "550 no such user"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server on 127.0.0.1; ``refuse_with`` makes it refuse recipients."""
    from aiosmtpd.controller import Controller

    state = SmtpServer(host="127.0.0.1", port=0)

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if state.refuse_with:
                return state.refuse_with
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.messages.append(envelope)
            return "250 Message accepted"

    with socket.socket() as probe:  # aiosmtpd's start-up self-check needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    state.port = port
    try:
        yield state
    finally:
        controller.stop()


# --- webhook receiver -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # Statuses to answer, in order; when exhausted, 200. Each entry: (status, headers).
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with each request before it is answered (in the server's thread), e.g. to advance a test clock.
    on_request: Callable[[Received], None] | None = None


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers from a script."""
    state = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                state.requests.append(received)
                status, headers = state.script.pop(0) if state.script else (200, {})
            if state.on_request is not None:
                state.on_request(received)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
