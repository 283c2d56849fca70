"""Poll-cycle throughput and memory on loopback: ``monitor poll --once --all`` against N local feeds.

A feed server runs in its own process (asyncio, HTTP/1.1 keep-alive, ETag/304),
so it is not the bottleneck and does not share the poller's interpreter. Each
feed serves ``--items`` generated news-like items, about one in six about
DPRK–China/Russia exchanges so matching and hit storage do real work. The
served items change when the bench advances the server's round.

Measured, each cycle being one ``python -m monitor --config CFG poll --once --all`` subprocess:

1. the first full cycle (every feed new: fetch, parse, normalise, store, match);
2. a second cycle on unchanged feeds (every feed answers 304);
3. a sequential baseline in this process: for each feed ``httpx.get`` +
   ``feedparser.parse`` + one regex search (no storage, no matching);
4. archive growth: further cycles with fresh items, reporting the peak RSS of
   each poll subprocess (``os.wait4``) against the number of stored items.

Loopback has no network latency, so there the cycle's advantage is only what
overlapping fetches with parsing and storing buys; ``--latency-ms 50`` adds a
typical round trip to every answer, which is what concurrency exists to hide.

Usage: python bench/ingest.py [--feeds 1000] [--items 20] [--hosts 50] [--growth-rounds 4] [--latency-ms 0]
                              [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import httpx

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- generated news

# Real news is diverse: items share phrases, not paragraphs. Generic items are built from a
# pseudo-word vocabulary (as bench/match.py does) around a few real phrases, so story grouping
# sees realistic overlap (a shared paragraph in every item would make them all one story).
SYLLABLES = ["ka", "ro", "mi", "ten", "vus", "lo", "pre", "dan", "sko", "yel", "ur", "fin", "gol", "bra", "ne", "tu"]
PHRASES = ["officials said on", "according to a statement", "the ministry said", "in a report published",
           "the city council", "critics argued that", "a spokesperson said", "in the coming weeks"]
DPRK_CHINA = [
    ("Chinese delegation led by {official} arrives in Pyongyang",
     "A Chinese party and government delegation led by {official} arrived in Pyongyang on {day} for an "
     "official goodwill visit, the Korean Central News Agency said."),
    ("Kim Jong Un hosts banquet for visiting Russian delegation",
     "North Korean leader Kim Jong Un hosted a banquet on {day} for a Russian government delegation led by "
     "{official}, state media reported."),
    ("North Korea and China mark anniversary of friendship treaty",
     "North Korea and China exchanged messages on {day} marking the anniversary of the 1961 Treaty of "
     "Friendship, Cooperation and Mutual Assistance, and a reception was held at the Chinese embassy."),
    ("Russia ratifies military cooperation agreement with DPRK",
     "Russia's parliament on {day} ratified a military cooperation agreement with North Korea, with "
     "{official} saying the pact obliges mutual assistance in the event of an armed attack."),
]
OFFICIALS = ["Zhao Leji", "Wang Yi", "Sergei Shoigu", "Li Hongzhong", "Sergei Lavrov", "Andrei Belousov"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(n))


def item_text(feed: int, round_: int, k: int) -> tuple[str, str]:
    rng = random.Random(feed * 1_000_003 + round_ * 7919 + k)
    detail = f"{_words(rng, 12)}, {rng.choice(PHRASES)} {_words(rng, 14)}."
    if rng.random() < 0.17:
        title, lead = rng.choice(DPRK_CHINA)
        values = {"official": rng.choice(OFFICIALS), "day": rng.choice(DAYS)}
        return title.format(**values), f"{lead.format(**values)} {detail}"
    return _words(rng, 7).capitalize(), f"{_words(rng, 10).capitalize()} {rng.choice(PHRASES)} {detail}"


def feed_body(feed: int, round_: int, items: int, now: datetime) -> bytes:
    entries = []
    for k in range(items):
        title, summary = item_text(feed, round_, k)
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


def serve(port_out: mp.connection.Connection, round_: Synchronized[int], items: int, latency: float,
          hosts: int) -> None:
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
            body = cache[(feed, current)] = feed_body(feed, current, items, now)
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

    def line(self) -> str:
        return (f"{self.seconds:7.2f} s wall, {self.cycle_seconds:7.2f} s in the cycle, "
                f"peak RSS {self.max_rss_mb:6.1f} MB | {self.output}")


def feed_url(port: int, n: int, hosts: int) -> str:
    return f"http://127.0.0.{n % hosts + 1}:{port}/feed/{n}.xml"


def write_config(folder: Path, port: int, feeds: int, hosts: int) -> Path:
    lines = [
        f"database_url: sqlite:///{folder / 'monitor.db'}",
        f"watchlists_dir: {ROOT / 'watchlists'}",
        f"outbox_dir: {folder / 'outbox'}",
        "allow_private_networks: true",
        "poll_interval: 5m",
        "poll_concurrency: 50",
        "feeds:",
        *(f"  - {{url: '{feed_url(port, n, hosts)}', name: 'Feed {n}'}}" for n in range(feeds)),
    ]
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_CYCLE_DONE = re.compile(r"poll cycle done: .*duration_ms=(\d+)")


def poll_once(config: Path, log: Path) -> Cycle:
    """One poll subprocess; peak RSS from ``wait4`` (this child only, not the server)."""
    command = [sys.executable, "-m", "monitor", "--config", str(config), "--log-level", "INFO",
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
    return Cycle(seconds, cycle_seconds, usage.ru_maxrss / 1024, output.strip())


def sequential_baseline(port: int, feeds: int, hosts: int) -> tuple[float, int]:
    pattern = re.compile(r"\b(?:Pyongyang|North Korea|DPRK|Kim Jong Un)\b")
    started = time.perf_counter()
    found = 0
    for n in range(feeds):
        response = httpx.get(feed_url(port, n, hosts), timeout=20)
        parsed = feedparser.parse(response.content)
        found += sum(1 for e in parsed.entries if pattern.search(e.get("title", "") + " " + e.get("summary", "")))
    return time.perf_counter() - started, found


def stored_items(folder: Path) -> int:
    with sqlite3.connect(folder / "monitor.db") as db:
        return int(db.execute("select count(*) from items").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--growth-rounds", type=int, default=None,
                        help="cycles with fresh items after the first (default 4; 2 with --quick)")
    parser.add_argument("--hosts", type=int, default=50, choices=range(1, 255), metavar="1-254",
                        help="loopback addresses the feeds are spread over (default 50)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay every answer, as a real network would (loopback has none)")
    parser.add_argument("--quick", action="store_true", help="100 feeds, 2 growth rounds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, database, log)")
    args = parser.parse_args()
    if args.quick:
        args.feeds = 100
    if args.growth_rounds is None:
        args.growth_rounds = 2 if args.quick else 4

    ctx = mp.get_context("fork")
    round_ = ctx.Value("i", 0)
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(send, round_, args.items, args.latency_ms / 1000, args.hosts),
                         daemon=True)
    server.start()
    try:
        if not receive.poll(10):
            raise SystemExit("the feed server did not start")
        port = int(receive.recv())
        folder = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
        config = write_config(folder, port, args.feeds, args.hosts)
        log = folder / "poll.log"
        print(f"{args.feeds} feeds x {args.items} items on {args.hosts} loopback hosts, port {port} "
              f"(+{args.latency_ms:g} ms a request); folder {folder}")

        full = poll_once(config, log)
        print(f"full cycle:      {full.line()}")
        unchanged = poll_once(config, log)
        print(f"304 cycle:       {unchanged.line()}")
        seq, found = sequential_baseline(port, args.feeds, args.hosts)
        print(f"sequential loop: {seq:7.2f} s  (httpx.get + feedparser.parse + regex; {found} regex hits)")
        print(f"speed-up vs sequential loop: {seq / full.seconds:5.2f}x wall, {seq / full.cycle_seconds:5.2f}x cycle")
        print(f"304 cycle / full cycle:      {unchanged.seconds / full.seconds:5.2f} wall, "
              f"{unchanged.cycle_seconds / full.cycle_seconds:5.2f} cycle")

        print("archive growth (fresh items every round):")
        print(f"  round 0: {stored_items(folder):>7} items stored, poll peak RSS {full.max_rss_mb:6.1f} MB")
        for r in range(1, args.growth_rounds + 1):
            round_.value = r
            cycle = poll_once(config, log)
            print(f"  round {r}: {stored_items(folder):>7} items stored, poll peak RSS {cycle.max_rss_mb:6.1f} MB, "
                  f"{cycle.seconds:6.2f} s wall, {cycle.cycle_seconds:6.2f} s cycle")
        if not args.keep:
            for path in sorted(folder.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            folder.rmdir()
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
