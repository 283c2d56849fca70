"""Scale-out: 1, 2 and 3 ``monitor run`` workers sharing one PostgreSQL database.

For each worker count, a fresh database (``CREATE DATABASE``, then ``monitor db upgrade``),
N loopback feeds served by a separate process (spread over 50 loopback addresses, because
the poller limits connections per host) and a webhook receiver in another process. The
workers start together; the script samples the database every 0.2 s and measures:

- **polling**: feeds polled per second, from the first feed stored to the moment every feed
  has ``last_polled_at`` set (the first poll tick runs at start, so this is one cold cycle);
- **delivery**: messages sent per second and hits delivered per second, from the first
  delivery row to the moment every hit is linked to a sent delivery for every subscription.
  Subscriptions are JSON webhooks (one message per subscription per plan carries every hit;
  the chat formats name only a few reports of one story per message, which would measure
  that pacing instead). Delivery is paced by the 15 s tick: the rate is a lower bound on
  what the sending code can do;
- **contention**, from outside: how many workers held feed leases at once (sampled), how
  many feeds each worker polled and how many of its poll cycles found nothing to claim while
  feeds were still unpolled (its claim lost to another worker's, from the INFO summary line
  each cycle prints); deliveries sent per worker; feeds polled more than once; and messages
  the receiver got twice (the same ``webhook-id``), which must be zero.

Usage:
    python bench/workers.py                 # 3,000 feeds, 1, 2 and 3 workers
    python bench/workers.py --quick         # 300 feeds
    python bench/workers.py --workers 1,3 --feeds 1000 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("MONITOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WATCHLISTS = ["delegation_visits", "anniversaries", "defense_treaties"]
RELEVANT = [
    ("Chinese delegation led by Zhao Leji arrives in Pyongyang",
     "The Chinese delegation was greeted at the airport by Choe Ryong Hae and held talks with Kim Jong Un on "
     "the DPRK-China friendship."),
    ("Russia ratifies mutual defence treaty with North Korea",
     "The State Duma ratified the comprehensive strategic partnership treaty signed by Vladimir Putin and Kim "
     "Jong Un, which obliges each side to provide military assistance if the other is attacked."),
]
OTHER = ("Markets close higher", "Stocks rose on the last trading day of the week.")
SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "do", "pri", "na", "gor", "ste", "bu", "li", "xo", "mar"]


# --- the feed server and the webhook receiver (each in its own process) -----------------------------


def filler(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(n))


def feed_body(feed: int, items: int, now: datetime) -> bytes:
    """One matching item (so every feed yields a hit), the rest matching nothing.

    Each item carries its own filler words, so items do not group into one story: a story's
    reports are named a few per message (``chat.MAX_ALSO``), which would measure that pacing.
    """
    rng = random.Random(feed)
    entries = []
    for k in range(items):
        title, summary = RELEVANT[feed % len(RELEVANT)] if k == 0 else OTHER
        title, summary = f"{title}: {filler(rng, 6)}", f"{filler(rng, 40)}. {summary.split('.')[0]}."
        published = now - timedelta(minutes=10 * k + 5)
        entries.append(
            f"<item><title>{title}</title><link>https://news{feed % 50}.example/{feed}/{k}</link>"
            f"<pubDate>{format_datetime(published)}</pubDate><description>{summary}</description></item>")
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Feed {feed}</title><link>https://news{feed % 50}.example/</link><description>d</description>"
            f"{''.join(entries)}</channel></rss>").encode()


def serve_feeds(port: int, ready: Any, items: int, hosts: int) -> None:
    """``/feed/<n>.xml`` on 127.0.0.1 … 127.0.0.<hosts>, one port, keep-alive HTTP/1.1."""
    now = datetime.now(UTC)
    cache: dict[int, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                found = re.fullmatch(r"/feed/(\d+)\.xml", path)
                if found:
                    n = int(found.group(1))
                    body = cache.get(n) or cache.setdefault(n, feed_body(n, items, now))
                    status = b"200 OK"
                else:
                    status, body = b"404 Not Found", b"not found\n"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/rss+xml\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, f"127.0.0.{n}", port, backlog=2048)
                   for n in range(1, hosts + 1)]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_WEBHOOK_ID = re.compile(rb"\r\nwebhook-id:[ \t]*(\S+)", re.IGNORECASE)
_OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


def serve_hook(port: int, ready: Any, received: Synchronized[int], repeated: Synchronized[int]) -> None:
    """Answers 200 to every POST; counts them, and counts ``webhook-id`` values seen before."""
    seen: set[bytes] = set()

    class Hook(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = bytearray()
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                length = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
                total = end + 4 + (int(length.group(1)) if length else 0)
                if len(self.buffer) < total:
                    return
                key = _WEBHOOK_ID.search(self.buffer, 0, end + 2)
                if key is not None:
                    if key.group(1) in seen:
                        repeated.value += 1
                    seen.add(key.group(1))
                del self.buffer[:total]
                received.value += 1  # the only writer
                assert self.transport is not None
                self.transport.write(_OK)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Hook, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(target: Any, *args: Any) -> mp.process.BaseProcess:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    process = ctx.Process(target=target, args=(args[0], ready, *args[1:]), daemon=True)
    process.start()
    if not ready.wait(30):
        raise SystemExit(f"{target.__name__} did not start")
    return process


# --- one run -------------------------------------------------------------------------------------


@dataclass
class Run:
    workers: int
    feeds: int
    poll_seconds: float = float("nan")  # first feed stored → every feed polled
    start_to_polled: float = float("nan")  # workers started → every feed polled
    hits: int = 0
    deliveries: int = 0
    delivered_hits: int = 0
    delivery_seconds: float = float("nan")  # first delivery row → every hit delivered to every subscription
    max_lease_holders: int = 0  # most workers seen holding feed leases at the same moment
    polled_by: list[int] = field(default_factory=list)  # feeds polled, per worker
    empty_cycles: list[int] = field(default_factory=list)  # poll cycles that claimed nothing while feeds were due
    sent_by: list[int] = field(default_factory=list)
    repolled: int = 0  # feeds polled more than once (a lease that expired, or lost)
    received: int = 0
    repeated: int = 0  # messages the receiver got a second time (same webhook-id)
    exit_codes: list[int] = field(default_factory=list)
    all_polled_at: str = ""  # local time, as in the workers' log lines


_POLL_DONE = re.compile(r"^(\S+) INFO monitor: poll cycle done: (\d+) feeds")
_DELIVERY_DONE = re.compile(r"delivery cycle done: (\d+) planned, (\d+) sent")


def run_workers(n_workers: int, args: argparse.Namespace, folder: Path, feed_port: int, hook_port: int,
                hook_counts: tuple[Synchronized[int], Synchronized[int]]) -> Run:
    run = Run(workers=n_workers, feeds=args.feeds)
    name = f"monitor_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
    here = folder / f"{n_workers}-workers"
    here.mkdir()
    config = write_config(here, url, args, feed_port, hook_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")} | {"MONITOR_LOG_LEVEL": "INFO"}
    monitor = [sys.executable, "-m", "monitor", "--config", str(config)]
    subprocess.run([*monitor, "db", "upgrade"], check=True, env=env, capture_output=True, timeout=120)
    received, repeated = hook_counts
    received.value = repeated.value = 0
    engine = sa.create_engine(url)
    logs = [here / f"worker-{i}.log" for i in range(n_workers)]
    procs = []
    try:
        started = time.perf_counter()
        for log in logs:
            with log.open("wb") as err:
                procs.append(subprocess.Popen([*monitor, "run"], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                              cwd=here))
        sample(run, engine, started, args)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        run.exit_codes = [proc.wait(timeout=120) for proc in procs]
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    run.received, run.repeated = received.value, repeated.value
    read_logs(run, logs)
    return run


def write_config(folder: Path, url: str, args: argparse.Namespace, feed_port: int, hook_port: int) -> Path:
    lines = [
        f"database_url: '{url}'",
        f"watchlists_dir: '{ROOT / 'watchlists'}'",
        f"outbox_dir: '{folder / 'outbox'}'",
        "allow_private_networks: true",
        "poll_concurrency: 50",
        "coming_up_days: 0",
        "subscriptions:",
        *(f"  - {{name: hook{i}, watchlists: [{', '.join(WATCHLISTS)}], schedule: immediate, "
          f"webhook: {{url: 'http://127.0.0.1:{hook_port}/hook/{i}', format: json}}}}"
          for i in range(args.subscriptions)),
        "feeds:",
        *(f"  - {{url: 'http://127.0.0.{n % args.hosts + 1}:{feed_port}/feed/{n}.xml', name: 'Feed {n}'}}"
          for n in range(args.feeds)),
    ]
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample(run: Run, engine: sa.Engine, started: float, args: argparse.Namespace) -> None:
    """Watch the database until every hit is delivered to every subscription (or the timeout)."""
    first_polled = first_delivery = None
    deadline = started + args.timeout
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        with engine.connect() as conn:
            polled = conn.execute(sa.text("select count(*) from feeds where last_polled_at is not null")).scalar()
            holders = conn.execute(sa.text(
                "select count(distinct lease_owner) from feeds where lease_until > now()")).scalar()
            hits = conn.execute(sa.text("select count(*) from hits")).scalar() or 0
            deliveries = conn.execute(sa.text("select count(*) from deliveries")).scalar() or 0
            pending = conn.execute(sa.text("select count(*) from deliveries where status <> 'sent'")).scalar()
            linked = conn.execute(sa.text("select count(*) from delivery_hits")).scalar() or 0
        run.max_lease_holders = max(run.max_lease_holders, int(holders or 0))
        if polled and first_polled is None:
            first_polled = now
        if polled == run.feeds and run.start_to_polled != run.start_to_polled:  # still NaN
            run.start_to_polled = now - started
            run.all_polled_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
            run.poll_seconds = now - (first_polled or started)
        if deliveries and first_delivery is None:
            first_delivery = now
        if (polled == run.feeds and hits and not pending and linked == hits * args.subscriptions
                and first_delivery is not None):
            run.hits, run.deliveries, run.delivered_hits = hits, deliveries, linked
            run.delivery_seconds = now - first_delivery
            return
        time.sleep(0.2)
    print(f"  timed out after {args.timeout} s: {polled}/{run.feeds} feeds polled, {linked}/"
          f"{hits * args.subscriptions} hits delivered, {pending} deliveries pending", file=sys.stderr)


def read_logs(run: Run, logs: list[Path]) -> None:
    """Per worker: feeds polled, sends, and poll cycles that claimed nothing while feeds were still unpolled."""
    for log in logs:
        polled = empty = sent = 0
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if (found := _POLL_DONE.search(line)) is not None:
                polled += int(found.group(2))
                # Log times are local, to the second: same format as ``all_polled_at``.
                if int(found.group(2)) == 0 and run.all_polled_at and found.group(1) < run.all_polled_at:
                    empty += 1
            elif (found := _DELIVERY_DONE.search(line)) is not None:
                sent += int(found.group(2))
        run.polled_by.append(polled)
        run.empty_cycles.append(empty)
        run.sent_by.append(sent)
    run.repolled = sum(run.polled_by) - run.feeds


# --- the report ----------------------------------------------------------------------------------


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(f"\n{args.feeds} feeds x {args.items} items, {args.subscriptions} JSON webhook subscriptions "
          f"(every feed yields one hit), PostgreSQL, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| workers | feeds/s (first→all) | start→all polled | msgs/s | hits delivered/s | deliveries | "
          "max lease holders | feeds polled per worker | empty poll cycles | feeds re-polled | sent per worker | "
          "repeats at receiver | exit codes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r.workers} | {r.feeds / r.poll_seconds:,.0f} ({r.poll_seconds:.1f} s) | {r.start_to_polled:.1f} s "
              f"| {r.deliveries / r.delivery_seconds:,.1f} | {r.delivered_hits / r.delivery_seconds:,.0f} | "
              f"{r.deliveries} in {r.delivery_seconds:.1f} s | {r.max_lease_holders} | "
              f"{'/'.join(map(str, r.polled_by))} | {'/'.join(map(str, r.empty_cycles))} | "
              f"{r.repolled} | {'/'.join(map(str, r.sent_by))} | {r.repeated} of {r.received} | {r.exit_codes} |")
    base = runs[0]
    print()
    for r in runs[1:]:
        print(f"{r.workers} vs {base.workers} workers: polling {base.poll_seconds / r.poll_seconds:.2f}x, "
              f"delivery {base.delivery_seconds / r.delivery_seconds:.2f}x (time ratios; 1.00x = no gain)")
    totals: Counter[str] = Counter()
    for r in runs:
        totals["repeated"] += r.repeated
        totals["bad_exit"] += sum(1 for c in r.exit_codes if c != 0)
    if totals["repeated"]:
        print(f"\nDUPLICATES: the receiver got {totals['repeated']} messages twice (same webhook-id)")
    if totals["bad_exit"]:
        print(f"\n{totals['bad_exit']} workers did not exit 0 on SIGTERM")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=3000)
    parser.add_argument("--items", type=int, default=3, help="items per feed (the first one matches)")
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run, e.g. 1,3")
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=50, choices=range(1, 255), metavar="1-254",
                        help="loopback addresses the feeds are spread over (the poller limits per host)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per run before giving up")
    parser.add_argument("--pg-url", default=PG_URL, help="an admin URL (CREATE/DROP DATABASE)")
    parser.add_argument("--quick", action="store_true", help="300 feeds")
    parser.add_argument("--keep", action="store_true", help="keep the folder with configs and worker logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.feeds = 300
    folder = Path(tempfile.mkdtemp(prefix="monitor-workers-"))
    feed_port, hook_port = free_port(), free_port()
    ctx = mp.get_context("spawn")
    received: Synchronized[int] = ctx.Value("q", 0)  # type: ignore[assignment]
    repeated: Synchronized[int] = ctx.Value("q", 0)  # type: ignore[assignment]
    servers = [start(serve_feeds, feed_port, args.items, args.hosts),
               start(serve_hook, hook_port, received, repeated)]
    runs = []
    try:
        for n in (int(x) for x in args.workers.split(",")):
            print(f"{n} worker(s) …", file=sys.stderr, flush=True)
            runs.append(run_workers(n, args, folder, feed_port, hook_port, (received, repeated)))
    finally:
        for server in servers:
            server.terminate()
            server.join(5)
        if args.keep:
            print(f"configs and worker logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report(runs, args)
    return 1 if any(r.repeated or any(r.exit_codes) for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
