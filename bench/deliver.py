"""Delivery throughput and peak memory: email digests over SMTP and signed JSON webhooks.

For each size N, a fresh worker process builds the state through the real code paths
(a migrated SQLite file, a ``Settings`` with N immediate subscriptions, eight items and
their hits stored with ``store.insert_new_items`` / ``store.insert_hits``) and runs one
``pipeline.delivery_cycle``. Planning (digest, render, enqueue: ``plan_deliveries``) and
sending (``send_due``) are timed separately by wrapping those two functions; the cycle
itself is the unmodified one. Each email subscription yields one SMTP message, each
webhook subscription one signed POST.

The receivers run in their own processes so they neither share the sender's GIL nor
count towards its memory: an aiosmtpd server and a minimal keep-alive HTTP/1.1 server
answering 200, both on 127.0.0.1. Each counts what it received; a run whose counts do
not match N is reported as failed.

Memory: the worker's RSS once the state is built (``/proc/self/statm`` after a collection)
and its peak RSS over the whole run (``ru_maxrss``); the difference bounds what delivering
N messages cost on top of the set-up. Set-up itself (a ``Settings`` with N subscriptions)
may be the peak at large N.

Usage:
    python bench/deliver.py                  # email 100, 1,000; webhooks 100, 1,000, 10,000
    python bench/deliver.py --quick          # email 100; webhooks 100, 1,000
    python bench/deliver.py --profile webhook:10000   # cProfile of one cycle, top functions
    python bench/deliver.py --email --webhook 1000 --latency-ms 100   # receiver answers after 100 ms
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import gc
import io
import json
import multiprocessing as mp
import os
import pstats
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef012").decode()
FEED_URL = "http://127.0.0.1:9/wire.xml"  # never polled: the items are stored directly
WATCHLISTS = ["delegation_visits", "anniversaries", "defense_treaties"]

# Eight stories as a wire would carry them, each with the evidence a match records.
STORIES: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("delegation_visits", "Chinese vice-premier lands in Pyongyang for three days of talks",
     "The delegation was met at Sunan airport by senior party officials; talks on trade and tourism follow.",
     [{"kind": "actor", "field": "title", "text": "Chinese vice-premier"},
      {"kind": "cue", "field": "title", "text": "lands in Pyongyang"}]),
    ("delegation_visits", "Russian natural resources minister opens intergovernmental commission session",
     "The commission reviewed rail links across the Tumen River bridge and fishing quotas.",
     [{"kind": "actor", "field": "title", "text": "Russian natural resources minister"},
      {"kind": "cue", "field": "summary", "text": "intergovernmental commission"}]),
    ("anniversaries", "Pyongyang and Beijing exchange messages on 75 years of diplomatic relations",
     "Leaders' messages recalled the establishment of ties in October 1949.",
     [{"kind": "anniversary", "event": "dprk_china_relations",
       "event_name": "DPRK–China diplomatic relations", "ordinal": 75, "ordinal_ok": True}]),
    ("defense_treaties", "Duma committee backs ratification of partnership treaty with the DPRK",
     "The treaty includes a clause on mutual assistance in the event of aggression against either side.",
     [{"kind": "actor", "field": "title", "text": "Duma"},
      {"kind": "cue", "field": "summary", "text": "mutual assistance"}]),
    ("defense_treaties", "Defence ministers sign protocol on military cooperation in Moscow",
     "The protocol follows the comprehensive strategic partnership treaty signed in June.",
     [{"kind": "cue", "field": "title", "text": "military cooperation"},
      {"kind": "cue", "field": "summary", "text": "strategic partnership treaty"}]),
    ("delegation_visits", "North Korean foreign minister arrives in Vladivostok",
     "The minister is expected to travel on to Moscow for consultations.",
     [{"kind": "actor", "field": "title", "text": "North Korean foreign minister"},
      {"kind": "cue", "field": "title", "text": "arrives in"}]),
    ("anniversaries", "Friendship treaty anniversary marked with banquet in Pyongyang",
     "Diplomats and party officials attended the reception at the People's Palace of Culture.",
     [{"kind": "anniversary", "event": "friendship_treaty", "event_name": "the 1961 friendship treaty",
       "ordinal": 63, "ordinal_ok": True}, {"kind": "cue", "field": "title", "text": "banquet"}]),
    ("delegation_visits", "Chinese art troupe begins goodwill tour",
     "The troupe performs in Pyongyang, Kaesong and Wonsan over ten days.",
     [{"kind": "cue", "field": "title", "text": "goodwill tour"}]),
]


# --- receivers (each in its own process) ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd's start-up self-check needs a concrete port
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


def serve_http(port: int, received: Synchronized[int], ready: Any, latency: float = 0.0) -> None:
    """A keep-alive HTTP/1.1 server that reads each request's body and answers 200 after ``latency`` s."""

    class Hook(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = bytearray()
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                found = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
                total = end + 4 + (int(found.group(1)) if found else 0)
                if len(self.buffer) < total:
                    return
                del self.buffer[:total]
                received.value += 1  # this process is the only writer
                assert self.transport is not None
                if latency:  # same delay for every answer, so answers on one connection stay in order
                    asyncio.get_running_loop().call_later(latency, self.transport.write, _OK)
                else:
                    self.transport.write(_OK)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Hook, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def serve_smtp(port: int, received: Synchronized[int], ready: Any, latency: float = 0.0) -> None:
    """An aiosmtpd server that accepts every recipient and counts messages."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.value += 1
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


@dataclass
class Receiver:
    port: int
    received: Synchronized[int]
    process: mp.process.BaseProcess


@contextlib.contextmanager
def receiver(target: Callable[[int, Synchronized[int], Any, float], None], latency: float = 0.0) -> Iterator[Receiver]:
    ctx = mp.get_context("spawn")
    port = free_port()
    received: Synchronized[int] = ctx.Value("q", 0)  # type: ignore[assignment]
    ready = ctx.Event()
    process = ctx.Process(target=target, args=(port, received, ready, latency), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{target.__name__} did not start")
        yield Receiver(port, received, process)
    finally:
        process.terminate()
        process.join(5)


# --- the worker: one size, one fresh process -------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mb() -> float:
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_settings(kind: str, n: int, folder: Path, port: int) -> Any:
    from monitor.config import Settings

    subscriptions: list[dict[str, Any]] = []
    for i in range(n):
        sub: dict[str, Any] = {"name": f"{kind}-{i:05d}", "watchlists": WATCHLISTS, "schedule": "immediate"}
        if kind == "email":
            sub["email"] = [f"desk{i}@example.org"]
        else:
            sub["webhook"] = {"url": f"http://127.0.0.1:{port}/hook/{i}", "format": "json", "secret": SECRET}
        subscriptions.append(sub)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder / 'monitor.db'}",
        "watchlists_dir": ROOT / "watchlists",
        "outbox_dir": folder / "outbox",
        "allow_private_networks": True,
        "feeds": [{"url": FEED_URL, "name": "Loopback wire"}],
        "subscriptions": subscriptions,
    }
    if kind == "email":
        values["smtp"] = {"host": "127.0.0.1", "port": port, "from": "monitor@example.org", "security": "none"}
    return Settings(**values)


def store_hits(engine: Any, settings: Any) -> int:
    from monitor import store
    from monitor.config_specs import config_specs
    from monitor.db import session_scope
    from monitor.domain import Item, Match

    with session_scope(engine) as session:
        store.sync_config(session, *config_specs(settings), NOW)
        [feed] = store.list_feeds(session)
        assert feed.id is not None
        items = []
        for i, (_watchlist, title, summary, _evidence) in enumerate(STORIES):
            link = f"https://news.example.org/2026/11/story-{i}"
            items.append(Item(fingerprint=f"bench-{i}", title=title, link=link, guid=link, summary=summary,
                              content="", published_at=NOW - timedelta(hours=i + 1), author=None,
                              feed_url=FEED_URL, fetched_at=NOW))
        new = store.insert_new_items(session, feed.id, items, alertable=[True] * len(items))
        hits = [(item_id, Match(watchlist=STORIES[i][0], version="1", score=2.0 + i / 10,
                                evidence=tuple(STORIES[i][3])))
                for i, (item_id, _item, _ok) in enumerate(new)]
        # One story is on two lists, as a treaty anniversary would be.
        hits.append((new[6][0], Match(watchlist="defense_treaties", version="1", score=1.1,
                                      evidence=({"kind": "cue", "field": "title", "text": "friendship treaty"},))))
        return store.insert_hits(session, hits, now=NOW)


def run_worker(kind: str, n: int, port: int, profile: bool) -> dict[str, Any]:
    from monitor import pipeline
    from monitor.db import make_engine, upgrade
    from monitor.logs import setup_logging
    from monitor.pipeline import deliver as cycle_module

    setup_logging("WARNING")  # as `monitor deliver --once` does
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        folder = Path(tmp)
        settings = build_settings(kind, n, folder, port)
        engine = make_engine(settings.database_url)
        upgrade(engine)
        stored = store_hits(engine, settings)
        ctx = pipeline.open_context(settings, now=NOW, migrate=False)
        setup_s = time.perf_counter() - started
        rss_setup = current_rss_mb()

        phases: dict[str, float] = {}
        # ``delivery_cycle`` calls these through its own module, so that is where they are wrapped.
        plan = cycle_module.plan_deliveries
        send = cycle_module.send_due

        def timed_plan(*args: Any, **kwargs: Any) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            plan(*args, **kwargs)
            phases["plan"], phases["plan_cpu"] = time.perf_counter() - t0, time.process_time() - c0

        async def timed_send(*args: Any, **kwargs: Any) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            await send(*args, **kwargs)
            phases["send"], phases["send_cpu"] = time.perf_counter() - t0, time.process_time() - c0

        cycle_module.plan_deliveries = timed_plan  # type: ignore[assignment]
        cycle_module.send_due = timed_send  # type: ignore[assignment]
        profiler = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        summary = pipeline.delivery_cycle(ctx, now=NOW)
        if profiler:
            profiler.disable()
        cycle_s = time.perf_counter() - t0
        ctx.engine.dispose()
        engine.dispose()
    result: dict[str, Any] = {
        "kind": kind, "n": n, "hits_per_message": stored, "planned": summary.planned, "sent": summary.sent,
        "failed": summary.failed + summary.dead,
        "errors": summary.errors[:3], "setup_s": setup_s, "plan_s": phases.get("plan", 0.0),
        "send_s": phases.get("send", 0.0), "cycle_s": cycle_s, "plan_cpu_s": phases.get("plan_cpu", 0.0),
        "send_cpu_s": phases.get("send_cpu", 0.0), "rss_setup_mb": rss_setup,
        "rss_peak_mb": peak_rss_mb(),
    }
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(35)
        result["profile"] = out.getvalue()
    return result


# --- the driver ---------------------------------------------------------------------------------------


def run_size(kind: str, n: int, target: Receiver, *, profile: bool = False) -> dict[str, Any]:
    before = target.received.value
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(n), "--port", str(target.port)]
    if profile:
        command.append("--worker-profile")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"worker {kind} {n} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["received"] = target.received.value - before
    result["load"] = os.getloadavg()[0]  # 1-minute load at the end: other work skews the wall times
    return result


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'kind':<8}{'N':>7}{'recv':>7}{'setup s':>8}{'plan s':>8}{'cpu':>7}{'send s':>8}{'cpu':>7}"
              f"{'cycle s':>8}{'plan/s':>8}{'send/s':>8}{'cycle/s':>8}{'RSS ready':>11}{'peak':>7}{'Δ MB':>6}"
              f"{'load':>6}")
    print(header)
    print("-" * len(header))
    for r in results:
        ok = "" if r["received"] == r["n"] == r["sent"] else f"  MISMATCH sent={r['sent']} {r['errors']}"
        print(f"{r['kind']:<8}{r['n']:>7,}{r['received']:>7,}{r['setup_s']:>8.1f}{r['plan_s']:>8.2f}"
              f"{r['plan_cpu_s']:>7.1f}{r['send_s']:>8.2f}{r['send_cpu_s']:>7.1f}{r['cycle_s']:>8.2f}"
              f"{rate(r['n'], r['plan_s']):>8}{rate(r['n'], r['send_s']):>8}{rate(r['n'], r['cycle_s']):>8}"
              f"{r['rss_setup_mb']:>9.0f}MB{r['rss_peak_mb']:>5.0f}MB{r['rss_peak_mb'] - r['rss_setup_mb']:>6.0f}"
              f"{r['load']:>6.1f}{ok}")


def print_ratios(results: list[dict[str, Any]]) -> None:
    """Growth against the smallest size of each kind: 1.0× time per message means linear."""
    print("\ngrowth vs the smallest N (time per message ×, peak RSS ×):")
    for kind in ("email", "webhook"):
        runs = [r for r in results if r["kind"] == kind]
        if len(runs) < 2:
            continue
        base = runs[0]
        for r in runs[1:]:
            def per(key: str, run: dict[str, Any]) -> float:
                return float(run[key]) / run["n"]

            parts = [f"{phase} {per(phase + '_s', r) / per(phase + '_s', base):.2f}×"
                     for phase in ("plan", "send", "cycle") if base[phase + "_s"] > 0]
            print(f"  {kind:<8} {base['n']:>6,} → {r['n']:<7,} N ×{r['n'] / base['n']:<5.0f} per message: "
                  f"{', '.join(parts)}; peak RSS ×{r['rss_peak_mb'] / base['rss_peak_mb']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about half a minute)")
    parser.add_argument("--email", type=int, nargs="*", help="email sizes (default 100 1000)")
    parser.add_argument("--webhook", type=int, nargs="*", help="webhook sizes (default 100 1000 10000)")
    parser.add_argument("--profile", metavar="KIND:N", help="profile one cycle (e.g. webhook:10000) and exit")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the webhook receiver answers after this delay (a real endpoint's round trip)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, n = args.worker[0], int(args.worker[1])
        print(json.dumps(run_worker(kind, n, args.port, args.worker_profile)))
        return 0

    if args.profile:
        kind, _, size = args.profile.partition(":")
        with receiver(serve_smtp if kind == "email" else serve_http, args.latency_ms / 1000) as target:
            result = run_size(kind, int(size or 1000), target, profile=True)
        print(result.pop("profile", ""))
        print_table([result])
        return 0

    email_sizes = args.email if args.email is not None else ([100] if args.quick else [100, 1000])
    webhook_sizes = args.webhook if args.webhook is not None else ([100, 1000] if args.quick else [100, 1000, 10000])
    results: list[dict[str, Any]] = []
    print(f"monitor delivery benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite, "
          f"{len(STORIES)} items / {len(STORIES) + 1} hits per message\n", flush=True)
    if email_sizes:
        with receiver(serve_smtp) as smtp:
            for n in email_sizes:
                results.append(run_size("email", n, smtp))
                print(f"  email {n:,}: {results[-1]['cycle_s']:.1f}s", flush=True)
    if webhook_sizes:
        with receiver(serve_http, args.latency_ms / 1000) as hook:
            for n in webhook_sizes:
                results.append(run_size("webhook", n, hook))
                print(f"  webhook {n:,}: {results[-1]['cycle_s']:.1f}s", flush=True)
    print()
    print_table(results)
    print_ratios(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    failed = [r for r in results if not r["received"] == r["n"] == r["sent"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
