"""Per-watchlist precision, recall and F1 of the seeded watchlists on a labelled set (tests/data/labelled.jsonl).

Items are matched on title, summary and content, with their published date as the reference date.

Usage: python bench/quality.py [LABELLED.jsonl] [--watchlists DIR] [--errors] [--by-lang]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from monitor.domain import Document
from monitor.match import Matcher, load_watchlists

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(labelled: Path, watchlists: Path, lang: str | None = None) -> dict[str, Counts]:
    result = load_watchlists(watchlists)
    if result.errors:
        raise SystemExit("\n".join(str(e) for e in result.errors))
    matcher = Matcher.compile(result)
    counts = {name: Counts() for name in matcher.watchlist_names}
    for line in labelled.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if lang is not None and item.get("lang") != lang:
            continue
        doc = Document(title=item["title"], summary=item.get("summary", ""), content=item.get("content", ""))
        got = {m.watchlist for m in matcher.match(doc, on=date.fromisoformat(item["published"]))}
        expected = set(item["labels"])
        for name, c in counts.items():
            if name in got and name in expected:
                c.tp += 1
            elif name in got:
                c.fp += 1
                c.errors.append(f"FP {item['id']}: {item['title']}")
            elif name in expected:
                c.fn += 1
                c.errors.append(f"FN {item['id']}: {item['title']}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("labelled", nargs="?", type=Path, default=ROOT / "tests" / "data" / "labelled.jsonl")
    parser.add_argument("--watchlists", type=Path, default=ROOT / "watchlists")
    parser.add_argument("--errors", action="store_true", help="list every false positive and negative")
    parser.add_argument("--by-lang", action="store_true", help="also per language (items with a 'lang' field)")
    args = parser.parse_args()
    report(evaluate(args.labelled, args.watchlists), errors=args.errors)
    if args.by_lang:
        langs = sorted({json.loads(line).get("lang", "") for line in args.labelled.read_text(encoding="utf-8")
                        .splitlines() if line.strip()} - {""})
        for lang in langs:
            print(f"\n[{lang}]")
            report(evaluate(args.labelled, args.watchlists, lang), errors=False)


def report(counts: dict[str, Counts], *, errors: bool) -> None:
    print(f"{'watchlist':<20} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8} {'F1':>6}")
    for name, c in counts.items():
        print(f"{name:<20} {c.tp:>4} {c.fp:>4} {c.fn:>4} {c.precision:>10.3f} {c.recall:>8.3f} {c.f1:>6.3f}")
        if errors:
            for e in c.errors:
                print(f"    {e}")


if __name__ == "__main__":
    main()
