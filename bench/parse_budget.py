"""Worst-case parse and text-extraction time per KB: crafted inputs a hostile feed can send.

Each case runs in its own subprocess (so one slow case cannot hold up the others and its peak
memory is its own), with a wall-clock cap: a case over the cap is reported as ``> CAP s``.
Measured: the time of the step named (``html_to_text`` on one string, ``parse_feed`` on one
document, or the whole per-feed step ``prepare_feed``: parse, normalise, story signatures),
milliseconds per KB of input, and the subprocess's peak RSS.

Cases:

* ``comment-a``: ``<!--`` followed by ``<a`` repeated (HTML-to-text), at 160 KB and 400 KB;
* ``cdata-open``: ``<![foo[`` repeated; ``lt-run``: ``<`` repeated; ``block-tags``: ``<p>x`` repeated;
* ``deep-html``: ``<div>`` nested 900k deep in one item's escaped description;
* ``empty-items``: a 9.8 MB RSS feed of empty ``<item></item>``;
* ``deep-xml``: 900k nested XML elements inside one item;
* ``deep-json``: a JSON Feed whose one item nests 900k arrays, beside a good item;
* ``big-feed``: an ordinary 8 MB full-content feed (500 items), as the reference.

Usage: python bench/parse_budget.py [--cap 300] [--only NAME ...]

Run with ``PYTHONPATH=/path/to/other/checkout`` to measure another version of the code.
"""

from __future__ import annotations

import argparse
import html
import json
import subprocess
import sys
import tempfile
import textwrap

HTML_CASES: dict[str, str] = {
    "comment-a 160KB": "<!--" + "<a" * 80_000,
    "comment-a 400KB": "<!--" + "<a" * 200_000,
    "cdata-open 400KB": "<p>x</p>" + "<![foo[" * 57_000,
    "lt-run 400KB": "<b>x</b>" + "<" * 400_000,
    "block-tags 3.6MB": "<p>x" * 900_000,
}


def _rss(items: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            f"<link>https://example.org/</link>{items}</channel></rss>").encode()


def _documents() -> dict[str, tuple[str, bytes]]:
    good = "<item><title>Good item</title><link>https://example.org/good</link></item>"
    deep_html = html.escape("<div>" * 900_000 + "deep")
    body = "<p>" + "Kim Jong Un met Putin in Vladivostok and discussed cooperation. " * 250 + "</p>"
    big = "".join(f"<item><title>Story {i}</title><link>https://example.org/{i}</link>"
                  f"<description>{html.escape(body)}</description></item>" for i in range(500))
    deep_json = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [
        {"id": "1", "url": "https://example.org/1", "title": "Good"}, {"id": "2", "_x": "DEEP"}]})
    deep_json = deep_json.replace('"DEEP"', "[" * 900_000 + "]" * 900_000)
    return {
        "empty-items 9.8MB": ("application/rss+xml", _rss(good + "<item></item>" * 754_000)),
        "deep-html 4.5MB": ("application/rss+xml", _rss(f"{good}<item><title>Deep</title><description>"
                                                       f"{deep_html}</description></item>")),
        "deep-xml 3.6MB": ("application/rss+xml", _rss(f"{good}<item><title>Deep</title>"
                                                      + "<x>" * 900_000 + "</item>")),
        "deep-json 1.8MB": ("application/feed+json", deep_json.encode()),
        "big-feed 8MB": ("application/rss+xml", _rss(big)),
    }


_CHILD = textwrap.dedent("""
    import resource, sys, time
    from datetime import UTC, datetime
    kind, path, content_type = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(path, "rb").read()
    import inspect
    from monitor.ingest.normalize import html_to_text
    from monitor.pipeline import prepare_feed
    start = time.perf_counter()  # imports done: only the step is timed
    if kind == "html":
        html_to_text(data.decode())
    else:
        extra = {"budget": None} if "budget" in inspect.signature(prepare_feed).parameters else {}
        try:
            prepared = prepare_feed(data, "https://example.org/feed", content_type or None,
                                    "https://example.org/feed", datetime.now(UTC), **extra)
            outcome = f"{len(prepared.items)} items" + (f", error: {prepared.error[:60]}" if prepared.error else "")
        except BaseException as exc:
            outcome = "raised " + type(exc).__name__
        print(outcome, file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def run(name: str, kind: str, data: bytes, content_type: str, cap: float) -> None:
    with tempfile.NamedTemporaryFile(suffix=".bin") as handle:
        handle.write(data)
        handle.flush()
        try:
            done = subprocess.run([sys.executable, "-c", _CHILD, kind, handle.name, content_type],
                                  capture_output=True, text=True, timeout=cap, check=False)
        except subprocess.TimeoutExpired:
            print(f"{name:<20} {len(data) // 1024:>8} {'> ' + str(int(cap)) + ' s':>12} {'':>10} {'':>9}  (capped)")
            return
    if done.returncode != 0 or not done.stdout.strip():
        print(f"{name:<20} {len(data) // 1024:>8} {'failed':>12}  {done.stderr.strip()[-120:]}")
        return
    elapsed, rss_kb = done.stdout.split()
    seconds = float(elapsed)
    per_kb = seconds * 1000 / max(1, len(data) / 1024)
    note = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    print(f"{name:<20} {len(data) // 1024:>8} {seconds:>11.3f}s {per_kb:>9.4f} {int(rss_kb) // 1024:>8}M  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cap", type=float, default=300.0, help="seconds after which a case is stopped")
    parser.add_argument("--only", nargs="*", default=None, help="case names (prefixes) to run")
    args = parser.parse_args()
    print(f"{'case':<20} {'KB':>8} {'time':>12} {'ms/KB':>9} {'peak RSS':>9}  outcome")
    for name, markup in HTML_CASES.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        run(name, "html", markup.encode(), "", args.cap)
    for name, (content_type, data) in _documents().items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        run(name, "feed", data, content_type, args.cap)


if __name__ == "__main__":
    main()
