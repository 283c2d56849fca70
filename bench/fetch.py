"""CPU a fetch costs: ``fetch_feed`` against the loopback feed server of ``bench/ingest.py``.

One event loop and one client (as a poll cycle has), two requests in flight (the per-host limit),
the 500 feeds of the ingest benchmark fetched round and round. Measured: CPU time of this process a
fetch (the server runs in its own process), for full answers (200, 20 items) and for 304s. No
parsing, storing or matching: this is the HTTP path alone, the part of a poll the main process
spends most of its time in.

Usage: python bench/fetch.py [--fetches 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest

from monitor.ingest.fetch import FeedState, FetchPolicy, build_client, fetch_feed

FEEDS = 500


async def measure(port: int, fetches: int, conditional: bool) -> float:
    """CPU milliseconds a fetch, after one warm-up pass over every feed (connections open, ETags known)."""
    policy = FetchPolicy(allow_private_networks=True)
    etags: dict[int, str | None] = {}
    async with build_client(policy) as client:
        slots = asyncio.Semaphore(2)

        async def one(n: int) -> None:
            async with slots:
                feed = n % FEEDS
                state = FeedState(url=ingest.feed_url(port, feed, 1), etag=etags.get(feed) if conditional else None)
                result = await fetch_feed(client, state, policy)
                etags[feed] = result.etag

        await asyncio.gather(*(one(n) for n in range(FEEDS)))
        started = time.process_time()
        await asyncio.gather(*(one(n) for n in range(fetches)))
        return (time.process_time() - started) / fetches * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetches", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server_args = argparse.Namespace(items=20, latency_ms=0.0, hosts=1, hit_share=0.12, text="realistic",
                                     server="process")
    port, runner = ingest.start_server(server_args, mp.get_context("fork").Value("i", 0))
    try:
        for _ in range(args.rounds):
            for conditional in (False, True):
                cpu = asyncio.run(measure(port, args.fetches, conditional))
                print(f"{'304' if conditional else '200'}: {cpu:.3f} ms of CPU a fetch ({args.fetches} fetches)")
    finally:
        if isinstance(runner, mp.process.BaseProcess):
            runner.terminate()
            runner.join(5)


if __name__ == "__main__":
    main()
