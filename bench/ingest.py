"""Poll-cycle throughput and memory on loopback: ``monitor poll --once --all`` against N local feeds.

The case measured is a fresh SQLite database, N loopback feeds x 20 items each (distinct
text, a controlled share of items that hit a watchlist, 12% by default), polled once by
``python -m monitor poll --once --all`` as a subprocess, against a sequential loop in the same
run (for each feed: ``httpx.get``, ``feedparser.parse``, one regex over title + summary). Ratios
within one run are what compares across machines; wall times on a loaded machine do not.

A feed server runs in its own process (asyncio, HTTP/1.1 keep-alive, ETag/304), so it does
not share an interpreter with the poller or with the sequential loop (``--server thread``
puts it in this process instead, to measure what that changes). Measured:

1. the first full cycle (every item new: fetch, parse, normalise, store, match, stories);
2. a second cycle on unchanged feeds (every feed answers 304): its share of the full cycle
   and its cost per feed;
3. the sequential loop (no storage, no matching);
4. the hits actually stored, read from the database (share of items, stories);
5. peak RSS of each poll subprocess (``os.wait4``: that child only, not the server);
6. optionally archive growth (``--growth-rounds``): further cycles with fresh items.

``--profile`` runs the full cycle under cProfile and prints the top functions by cumulative
time (the profile file is kept beside the database); ``--profile-304`` does the same for the
all-304 cycle. ``--latency-ms 50`` delays every answer,
as a network round trip would; loopback has none. ``--hosts`` spreads the feeds over
127.0.0.1 ... 127.0.0.N: the poller caps connections per host, so with one host at most that
many fetches are in flight.

Usage: python bench/ingest.py [--feeds 500] [--items 20] [--hit-share 0.12] [--text realistic|pseudo]
                              [--hosts 1] [--latency-ms 0] [--db-dir DIR] [--server process|thread]
                              [--loop shared|per-request|both] [--profile] [--profile-304] [--growth-rounds 0]
                              [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile  # noqa: F401  (documented: the poll runs under ``python -m cProfile``)
import io
import json
import multiprocessing as mp
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_text import item_text

ROOT = Path(__file__).resolve().parent.parent

# One regex over title + summary, as a naive monitor would run: the actors the hit items name.
NAIVE = re.compile(r"\b(?:Pyongyang|North Korea\w*|DPRK|Kim Jong Un)\b")


def feed_body(feed: int, round_: int, items: int, now: datetime, hit_share: float, shape: str) -> bytes:
    entries = []
    for k in range(items):
        title, summary, _ = item_text(feed, round_, k, hit_share, shape)
        published = now - timedelta(minutes=5 * k + 1)
        entries.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news{feed % 50}.example/{feed}/{round_}/{k}</link>"
            f"<guid isPermaLink='false'>{feed}-{round_}-{k}</guid>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(summary)}</description></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Feed {feed}</title><link>https://news{feed % 50}.example/</link>"
        f"<description>Generated feed {feed}</description>{''.join(entries)}</channel></rss>"
    ).encode()


# --------------------------------------------------------------------------- the feed server (own process)


def serve(port_out: Connection, round_: Synchronized[int], items: int, latency: float, hosts: int,
          hit_share: float, shape: str) -> None:
    """Serve ``/feed/<n>.xml`` with ETag ``"<n>-<round>"``; 304 on a matching If-None-Match.

    Listens on 127.0.0.1 … 127.0.0.<hosts> (one port): the poller limits connections per
    host, as it should, so feeds all on one host would measure that politeness cap, not
    the cycle. ``latency`` (seconds) delays every answer, standing in for a network's round trip.
    """
    cache: dict[tuple[int, int], bytes] = {}
    now = datetime.now(UTC)

    def answer(path: str, inm: str | None) -> tuple[str, bytes, str]:
        match = re.fullmatch(r"/feed/(\d+)\.xml", path)
        if not match:
            return "404 Not Found", b"not found\n", ""
        feed, current = int(match.group(1)), round_.value
        etag = f'"{feed}-{current}"'
        if inm == etag:
            return "304 Not Modified", b"", etag
        body = cache.get((feed, current))
        if body is None:
            if len(cache) > 5000:  # only the current round is asked for
                cache.clear()
            body = cache[(feed, current)] = feed_body(feed, current, items, now, hit_share, shape)
        return "200 OK", body, etag

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?", 1)[0]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                status, body, etag = answer(path, headers.get("if-none-match"))
                if latency:
                    await asyncio.sleep(latency)
                extra = f"ETag: {etag}\r\nContent-Type: application/rss+xml; charset=utf-8\r\n" if etag else ""
                writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        first = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        # All of 127.0.0.0/8 is loopback on Linux; the others share the first one's port.
        for n in range(2, hosts + 1):
            await asyncio.start_server(handle, f"127.0.0.{n}", port, backlog=1024)
        port_out.send(port)
        async with first:
            await first.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- measuring


@dataclass
class Cycle:
    seconds: float  # the subprocess, start to exit
    cycle_seconds: float  # poll_cycle itself, from its summary log line (no start-up, migration, config sync)
    max_rss_mb: float
    output: str
    cpu_seconds: float = float("nan")  # user + system, the poll process and its worker processes

    def line(self) -> str:
        return (f"{self.seconds:7.2f} s wall, {self.cycle_seconds:7.2f} s in the cycle, {self.cpu_seconds:6.2f} s CPU, "
                f"peak RSS {self.max_rss_mb:6.1f} MB | {self.output}")


def feed_url(port: int, n: int, hosts: int) -> str:
    return f"http://127.0.0.{n % hosts + 1}:{port}/feed/{n}.xml"


def write_config(folder: Path, db_dir: Path, port: int, args: argparse.Namespace) -> Path:
    feeds, hosts = args.feeds, args.hosts
    lines = [
        f"database_url: sqlite:///{db_dir / 'monitor.db'}",
        f"watchlists_dir: {ROOT / 'watchlists'}",
        f"outbox_dir: {folder / 'outbox'}",
        "allow_private_networks: true",
        "poll_interval: 5m",
        *([f"poll_concurrency: {args.poll_concurrency}"] if args.poll_concurrency else []),
        "feeds:",
        *(f"  - {{url: '{feed_url(port, n, hosts)}', name: 'Feed {n}'}}" for n in range(feeds)),
    ]
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_CYCLE_DONE = re.compile(r"poll cycle done: .*duration_ms=(\d+)")


def poll_once(config: Path, log: Path, profile: Path | None = None) -> Cycle:
    """One poll subprocess; peak RSS from ``wait4`` (this child only, not the server)."""
    runner = ["-m", "cProfile", "-o", str(profile)] if profile else []
    command = [sys.executable, *runner, "-m", "monitor", "--config", str(config), "--log-level", "INFO",
               "poll", "--once", "--all"]
    started = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)  # not proc.wait(): wait4 also returns the child's rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"poll failed ({proc.returncode}): {output}; see {log}")
    done = _CYCLE_DONE.findall(log.read_text(encoding="utf-8", errors="replace"))
    cycle_seconds = int(done[-1]) / 1000 if done else float("nan")
    # wait4's usage counts the child's own reaped children too (its worker processes)
    return Cycle(seconds, cycle_seconds, usage.ru_maxrss / 1024, " ".join(output.split()),
                 usage.ru_utime + usage.ru_stime)


def sequential_loop(port: int, feeds: int, hosts: int, shared_client: bool = True) -> tuple[float, float, int]:
    """The naive loop: for each feed one GET, one parse, one regex over title + summary.

    ``shared_client``: one ``httpx.Client`` for the loop (keep-alive). Otherwise ``httpx.get`` per
    feed, which builds a client, and with it an SSL context from the CA bundle, on every call:
    that costs more than the fetch and the parse together and makes the loop look slow.
    """
    started, cpu = time.perf_counter(), time.process_time()
    found = 0
    with httpx.Client(timeout=30) as client:
        get = client.get if shared_client else (lambda url: httpx.get(url, timeout=30))
        for n in range(feeds):
            response = get(feed_url(port, n, hosts))
            parsed = feedparser.parse(response.content)
            found += sum(1 for e in parsed.entries
                         if NAIVE.search(e.get("title", "") + " " + e.get("summary", "")))
    return time.perf_counter() - started, time.process_time() - cpu, found


@dataclass
class Stored:
    items: int
    hit_items: int
    hits: int
    stories_with_hits: int

    @property
    def hit_share(self) -> float:
        return self.hit_items / self.items if self.items else 0.0


def stored(db: Path) -> Stored:
    with sqlite3.connect(db) as conn:
        items = int(conn.execute("select count(*) from items").fetchone()[0])
        hit_items, hits = conn.execute("select count(distinct item_id), count(*) from hits").fetchone()
        stories = conn.execute(
            "select count(distinct i.story_id) from items i join hits h on h.item_id = i.id"
        ).fetchone()[0]
    return Stored(items, int(hit_items), int(hits), int(stories or 0))


def print_profile(path: Path, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    print(text)
    return text


def start_server(args: argparse.Namespace, round_: Synchronized[int]) -> tuple[int, object]:
    """The feed server in its own process (default) or in a thread of this one (``--server thread``)."""
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    server_args = (send, round_, args.items, args.latency_ms / 1000, args.hosts, args.hit_share, args.text)
    runner: object
    if args.server == "thread":
        runner = threading.Thread(target=serve, args=server_args, daemon=True)
    else:
        runner = ctx.Process(target=serve, args=server_args, daemon=True)
    runner.start()
    if not receive.poll(15):
        raise SystemExit("the feed server did not start")
    return int(receive.recv()), runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hit-share", type=float, default=0.12,
                        help="share of items generated as watchlist hits (default 0.12)")
    parser.add_argument("--text", choices=["realistic", "pseudo"], default="realistic",
                        help="item text: English news sentences (default) or pseudo-words (the earlier shape)")
    parser.add_argument("--hosts", type=int, default=1, choices=range(1, 255), metavar="1-254",
                        help="loopback addresses the feeds are spread over (default 1: all on 127.0.0.1)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay every answer, as a real network would (loopback has none)")
    parser.add_argument("--poll-concurrency", type=int, default=None,
                        help="the config's poll_concurrency (default: monitor's default)")
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="folder for the SQLite file (default: the temporary folder, under $TMPDIR)")
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="feed server in its own process (default) or in a thread of this one")
    parser.add_argument("--profile", action="store_true",
                        help="run the full cycle under cProfile and print the top functions by cumulative time")
    parser.add_argument("--profile-304", action="store_true",
                        help="run the all-304 cycle under cProfile and print its top functions too")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile (default 25)")
    parser.add_argument("--loop", choices=["shared", "per-request", "both"], default="shared",
                        help="sequential loop with one httpx.Client (default), httpx.get per feed, or both")
    parser.add_argument("--skip-sequential", action="store_true", help="do not run the sequential loop")
    parser.add_argument("--skip-304", action="store_true", help="do not run the all-304 cycle")
    parser.add_argument("--growth-rounds", type=int, default=0, help="cycles with fresh items after the first")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, database, log)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    round_ = mp.get_context("fork").Value("i", 0)
    port, runner = start_server(args, round_)
    folder = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    db_dir = Path(tempfile.mkdtemp(prefix="monitor-bench-db-", dir=args.db_dir)) if args.db_dir else folder
    result: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()},
                                 "load_before": os.getloadavg()}
    try:
        config = write_config(folder, db_dir, port, args)
        log = folder / "poll.log"
        print(f"{args.feeds} feeds x {args.items} items ({args.text} text, {args.hit_share:.0%} generated as hits) "
              f"on {args.hosts} loopback host(s), +{args.latency_ms:g} ms a request, server in a {args.server}; "
              f"database in {db_dir}; load average {os.getloadavg()[0]:.1f}")
        profile = folder / "poll.prof" if args.profile else None
        full = poll_once(config, log, profile)
        print(f"full cycle:      {full.line()}")
        result["full"] = asdict(full)
        got = stored(db_dir / "monitor.db")
        result["stored"] = {**asdict(got), "hit_share": got.hit_share}
        print(f"stored:          {got.items} items, {got.hit_items} with hits ({got.hit_share:.1%} of items), "
              f"{got.hits} hits, {got.stories_with_hits} stories with hits")
        if not args.skip_304:
            profile_304 = folder / "poll-304.prof" if args.profile_304 else None
            unchanged = poll_once(config, log, profile_304)
            result["unchanged"] = asdict(unchanged)
            print(f"304 cycle:       {unchanged.line()}")
            print(f"304 / full:      {unchanged.seconds / full.seconds:6.1%} wall, "
                  f"{unchanged.cycle_seconds / full.cycle_seconds:6.1%} cycle; "
                  f"{unchanged.seconds / args.feeds * 1000:.2f} ms wall a feed, "
                  f"{unchanged.cycle_seconds / args.feeds * 1000:.2f} ms cycle a feed")
        if not args.skip_sequential:
            loops = {"shared": [True], "per-request": [False], "both": [True, False]}[args.loop]
            for shared_client in loops:
                kind = "one httpx.Client" if shared_client else "httpx.get per feed"
                seq, seq_cpu, found = sequential_loop(port, args.feeds, args.hosts, shared_client)
                ratio_wall, ratio_cycle = seq / full.seconds, seq / full.cycle_seconds
                result["sequential" if shared_client else "sequential_per_request"] = {
                    "seconds": seq, "cpu_seconds": seq_cpu, "regex_hits": found, "ratio_wall": ratio_wall,
                    "ratio_cycle": ratio_cycle}
                print(f"sequential loop: {seq:7.2f} s, {seq_cpu:.2f} s CPU ({kind} + feedparser.parse + regex; "
                      f"{found} regex hits); monitor used {full.cpu_seconds / seq_cpu:.2f}x its CPU")
                print(f"monitor vs loop: {ratio_wall:5.2f}x wall, {ratio_cycle:5.2f}x cycle "
                      f"(above 1: monitor faster)")
        for r in range(1, args.growth_rounds + 1):
            round_.value = r
            cycle = poll_once(config, log)
            print(f"  growth round {r}: {stored(db_dir / 'monitor.db').items:>7} items stored, "
                  f"poll peak RSS {cycle.max_rss_mb:6.1f} MB, {cycle.seconds:6.2f} s wall")
        result["load_after"] = os.getloadavg()
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if profile:
            print(f"profile of the full cycle ({profile}), top {args.top} by cumulative time:")
            result["profile"] = print_profile(profile, args.top)
            if args.json:
                shutil.copy(profile, args.json.with_suffix(".prof"))
        if args.profile_304 and not args.skip_304:
            print(f"profile of the all-304 cycle, top {args.top} by cumulative time:")
            result["profile_304"] = print_profile(folder / "poll-304.prof", args.top)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    finally:
        if isinstance(runner, mp.process.BaseProcess):
            runner.terminate()
            runner.join(5)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            if db_dir != folder:
                shutil.rmtree(db_dir, ignore_errors=True)
        else:
            print(f"kept {folder}" + (f" and {db_dir}" if db_dir != folder else ""))


if __name__ == "__main__":
    main()
