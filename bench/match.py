"""Matching throughput: the seeded watchlists, then 30, 300 and 1,000 synthetic ones.

Each synthetic watchlist has the shape of the seeded ones (three rules: a DPRK-side actor,
a partner-side actor and a cue set of its own, within a sentence; a ROK exclusion), with
cue phrases unique to it, so it adds rules and automaton keys without matching every
item. One item in ten carries one synthetic cue, so candidate evaluation is exercised.
The baseline compiles one regex per rule term and runs every rule on every item.

Usage: python bench/match.py [--items N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from monitor.domain import Document
from monitor.match import LoadResult, Matcher, load_watchlists
from monitor.match.watchlist import expand_alias

ROOT = Path(__file__).resolve().parent.parent
SYLLABLES = ["ka", "ro", "mi", "ten", "vus", "lo", "pre", "dan", "sko", "yel", "ur", "fin", "gol", "bra"]


def pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(4))


def synthetic_folder(n: int, folder: Path, rng: random.Random) -> list[str]:
    """Copy the shared files and write ``n`` synthetic watchlists; returns some of their cues."""
    for name in ("actors.yaml", "calendar.yaml"):
        (folder / name).write_text((ROOT / "watchlists" / name).read_text(encoding="utf-8"), encoding="utf-8")
    cues: list[str] = []
    for i in range(n):
        words = [pseudo_word(rng) for _ in range(12)]
        cues.extend(words[:2])
        cue_list = "\n".join(f"    - \"{w}*\"" for w in words)
        (folder / f"synthetic_{i:04d}.yaml").write_text(f"""kind: watchlist
name: synthetic_{i:04d}
title: Synthetic {i}
version: "1"
severity: low
threshold: 0.75
cues:
  topic:
{cue_list}
rules:
  - id: pair
    all: [{{side: dprk}}, {{side: [china, russia]}}, {{cue: topic}}]
    none: [{{side: rok}}]
  - id: dprk_only
    weight: 0.5
    all: [{{side: dprk}}, {{cue: topic}}]
  - id: near
    within: 10
    all: [{{side: [china, russia]}}, {{cue: topic}}]
""", encoding="utf-8")
    return cues


def load_items(rng: random.Random, count: int, cues: list[str]) -> list[Document]:
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "labelled.jsonl").read_text("utf-8").splitlines()]
    docs = []
    for i in range(count):
        row = rows[i % len(rows)]
        # Headline + a 2-3 sentence summary, as feeds deliver them.
        summary = f"{row['summary']} {rows[(i * 7 + 3) % len(rows)]['summary']}"
        if cues and i % 10 == 0:
            summary += f" Officials discussed {rng.choice(cues)} projects with North Korea and China."
        docs.append(Document(title=row["title"], summary=summary))
    return docs


def rate(fn: Callable[[Document], object], docs: list[Document], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while True:
        for doc in docs:
            fn(doc)
        done += len(docs)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


class RegexBaseline:
    """One compiled regex per rule term; every rule of every watchlist runs on every item."""

    def __init__(self, result: LoadResult) -> None:
        self.rules: list[list[re.Pattern[str]]] = []
        for wl in result.watchlists:
            for rule in wl.rules:
                terms = []
                for term in rule.all:
                    if term.kind == "actor":
                        aliases = [a for actor in result.actors.values()
                                   if (not term.sides or set(actor.sides) & set(term.sides))
                                   and (not term.actors or actor.id in term.actors)
                                   for alias in actor.aliases for a in expand_alias(alias)]
                    elif term.kind == "cue":
                        aliases = [a for name in term.values for p in wl.cues[name] for a in expand_alias(p)]
                    elif term.kind == "event":
                        aliases = [a for e in result.calendar.events.values() for p in e.aliases
                                   for a in expand_alias(p)]
                    else:
                        aliases = [a for p in term.values for a in expand_alias(p)]
                    body = "|".join(re.escape(a.rstrip("*")) for a in sorted(set(aliases), key=len, reverse=True))
                    terms.append(re.compile(rf"(?i)(?<!\w)(?:{body})"))
                self.rules.append(terms)

    def match(self, doc: Document) -> int:
        text = f"{doc.title}\n{doc.summary}\n{doc.content}"
        return sum(all(p.search(text) for p in terms) for terms in self.rules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    rng = random.Random(7)
    on = date(2024, 10, 6)
    seeded = load_watchlists(ROOT / "watchlists")
    docs = load_items(rng, args.items, [])
    chars = sum(len(d.title) + len(d.summary) for d in docs) / len(docs)
    print(f"items: {len(docs)} (mean {chars:.0f} characters: headline + summary)")
    print(f"{'watchlists':>10} {'rules':>6} {'compile s':>10} {'items/s':>10} {'µs/item':>8} {'vs seeded':>9}"
          f" {'regex items/s':>14} {'speed-up':>9}")
    base_rate = 0.0
    for n in (0, 30, 300, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            if n:
                cues = synthetic_folder(n, Path(tmp), rng)
                for name in ("delegation_visits.yaml", "anniversaries.yaml", "defense_treaties.yaml"):
                    (Path(tmp) / name).write_text((ROOT / "watchlists" / name).read_text("utf-8"), "utf-8")
                result = load_watchlists(Path(tmp))
                items = load_items(rng, args.items, cues)
            else:
                result, items = seeded, docs
            assert not result.errors, result.errors
            t0 = time.perf_counter()
            matcher = Matcher.compile(result)
            compile_s = time.perf_counter() - t0
            per_s = rate(lambda d, m=matcher: m.match(d, on=on), items, args.seconds)
            if n == 0:
                base_rate = per_s
            baseline = RegexBaseline(result)
            sample = items[: max(50, args.items // (1 + n // 10))]
            regex_s = rate(baseline.match, sample, min(args.seconds, 3.0))
            rules = sum(len(w.rules) for w in result.watchlists)
            print(f"{len(result.watchlists):>10} {rules:>6} {compile_s:>10.2f} {per_s:>10.0f} {1e6 / per_s:>8.1f}"
                  f" {base_rate / per_s:>8.2f}x {regex_s:>14.0f} {per_s / regex_s:>8.1f}x")


if __name__ == "__main__":
    main()
