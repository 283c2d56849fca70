"""Per-feed CPU work of a poll (what ``prepare_feed`` does): parse, normalise, story signatures.

Two sets of documents: the 500 feeds ``bench/ingest.py`` serves (RSS 2.0, 20 items each, the same
generator) and every file of ``../shared/feeds-wild`` (real feeds: RSS, Atom, RDF, JSON Feed, odd
charsets). For each, in child processes, process CPU time of:

* ``parse``: ``parse_feed`` with feedparser only (``fast=False``) and with the fast RSS reader
  allowed (the default), and how many documents the fast reader took;
* ``normalise``: ``normalize_entries`` on the parsed entries;
* ``signatures``: ``signature_for`` on every item;
* ``total``: the three together, as ``prepare_feed`` runs them.

Each variant runs in its own child process, alternating, best of ``--rounds``: on a busy machine
both sides are slowed alike, and ratios within one run are what to compare. ``--against DIR``
also measures the code of another checkout (e.g. ``git worktree add /tmp/base main``) through
``PYTHONPATH`` (its ``parse_feed`` as it is), giving the before/after ratio of the whole step.

Usage: python bench/parse.py [--feeds 500] [--rounds 3] [--against DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WILD = ROOT.parent / "shared" / "feeds-wild"


def _documents(kind: str, feeds: int) -> list[tuple[bytes, str]]:
    if kind == "bench":
        sys.path.insert(0, str(ROOT / "bench"))
        from ingest import feed_body  # the generator bench/ingest.py serves

        now = datetime.now(UTC)
        return [(feed_body(f, 1, 20, now, 0.12, "realistic"), f"http://127.0.0.1:1/feed/{f}.xml")
                for f in range(feeds)]
    return [(p.read_bytes(), f"https://wild.example/{p.name}") for p in sorted(WILD.iterdir())
            if p.is_file() and p.name != "README.md"]


def child(kind: str, feeds: int, fast: bool | None) -> dict[str, float]:
    """Measure in this process; ``fast`` None means "the code on PYTHONPATH as it is" (no ``fast`` argument)."""
    from monitor.errors import ParseError
    from monitor.ingest.cluster import signature_for
    from monitor.ingest.normalize import normalize_entries
    from monitor.ingest.parse import parse_feed

    documents = _documents(kind, feeds)
    now = datetime.now(UTC)
    options = {} if fast is None else {"fast": fast}
    parsed = []
    start = time.process_time()
    for content, url in documents:
        try:
            parsed.append((parse_feed(content, url=url, **options), url))
        except ParseError:
            continue
    parse_s = time.process_time() - start
    start = time.process_time()
    items = [normalize_entries(feed.entries, feed_url=url, now=now)[0] for feed, url in parsed]
    normalise_s = time.process_time() - start
    start = time.process_time()
    count = 0
    for batch in items:
        for item in batch:
            signature_for(item.title, item.summary)
            count += 1
    signatures_s = time.process_time() - start
    taken = 0
    if fast:
        from monitor.ingest import fastfeed, parse

        calls = [0]
        original = fastfeed.read_plain_feed

        def counting(document: bytes) -> object:
            result = original(document)
            calls[0] += result is not None
            return result

        parse.read_plain_feed = counting  # type: ignore[assignment]  # count, then put back
        for content, url in documents:
            try:
                parse_feed(content, url=url)
            except ParseError:
                pass
        parse.read_plain_feed = original
        taken = calls[0]
    return {"documents": len(documents), "items": count, "fast_taken": taken, "parse": parse_s,
            "normalise": normalise_s, "signatures": signatures_s,
            "total": parse_s + normalise_s + signatures_s}


def _run_child(kind: str, feeds: int, variant: str, against: str | None) -> dict[str, float]:
    env = dict(os.environ)
    path = against if variant == "base" else str(ROOT)
    env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import parse as b, json; "
            f"print(json.dumps(b.child({kind!r}, {feeds}, {dict(fast=True, feedparser=False, base=None)[variant]!r})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=inspect.getdoc(sys.modules[__name__]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="another checkout to measure as the base (via PYTHONPATH)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    variants = ["feedparser", "fast"] + (["base"] if args.against else [])
    kinds = ["bench"] + (["wild"] if WILD.is_dir() else [])
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind in kinds:
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for variant in variants:
                figures = _run_child(kind, args.feeds, variant, args.against)
                previous = best.get(variant)
                best[variant] = figures if previous is None else {
                    k: min(v, previous[k]) if k in ("parse", "normalise", "signatures", "total") else v
                    for k, v in figures.items()}
        results[kind] = best
        print(f"\n{kind}: {best['fast']['documents']} documents, {best['fast']['items']} items, "
              f"{best['fast']['fast_taken']} read by the fast reader (CPU seconds, best of {args.rounds})")
        print(f"{'variant':<12}{'parse':>9}{'normalise':>11}{'signatures':>12}{'total':>9}")
        for variant in variants:
            f = best[variant]
            print(f"{variant:<12}{f['parse']:>9.3f}{f['normalise']:>11.3f}{f['signatures']:>12.3f}{f['total']:>9.3f}")
        fast, slow = best["fast"], best["feedparser"]
        print(f"parse: feedparser / fast = {slow['parse'] / fast['parse']:.2f}x; "
              f"per-feed step: {slow['total'] / fast['total']:.2f}x")
        if args.against:
            print(f"per-feed step, base / this = {best['base']['total'] / fast['total']:.2f}x "
                  f"(signatures {best['base']['signatures'] / fast['signatures']:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
