"""Matching output pinned item by item: every labelled item and seed article, full evidence.

The matcher's speed work (shared compile caches, one automaton pass, rule candidates) must not
change a single match, score or evidence offset. ``tests/data/match_golden.json`` holds the
output of the seeded watchlists on every item of ``tests/data/*.jsonl`` (as title + summary,
as title + content, and joined three at a time) and on the seed articles; this test
recomputes it and compares everything. The seed articles live outside the repository
(``../shared/seeds``); their part is skipped when they are absent.

Regenerate only for an intended change of matching results:
``python tests/unit/test_match_equivalence.py --write``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from monitor.domain import Document
from monitor.match import Matcher, load_watchlists

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
GOLDEN = DATA / "match_golden.json"
SEEDS = ROOT.parent / "shared" / "seeds"


def _items() -> Iterator[tuple[str, Document, date | None]]:
    """Labelled items in several shapes, keyed by a stable id."""
    for path in sorted(DATA.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for i, row in enumerate(rows):
            on = date.fromisoformat(str(row["published"])[:10]) if row.get("published") else None
            title, summary = str(row.get("title", "")), str(row.get("summary", ""))
            key = f"{path.stem}:{i}"
            yield f"{key}:summary", Document(title=title, summary=summary), on
            yield f"{key}:content", Document(title=title, content=summary), None
            joined = " ".join(str(r.get("title", "")) + ". " + str(r.get("summary", ""))
                              for r in rows[i:i + 3])
            yield f"{key}:joined", Document(title=title, summary=joined, content=joined.upper()), on


def _seed_items() -> Iterator[tuple[str, Document, date | None]]:
    for path in sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []:
        title, _, body = path.read_text(encoding="utf-8").partition("\n")
        yield f"seed:{path.stem}:summary", Document(title=title, summary=body), date(2025, 8, 1)
        yield f"seed:{path.stem}:content", Document(title=title, content=body), None


def _output(matcher: Matcher, doc: Document, on: date | None) -> list[Any]:
    return [[m.watchlist, m.version, m.score, [dict(sorted(e.items())) for e in m.evidence]]
            for m in matcher.match(doc, on=on)]


def _compute(items: Iterator[tuple[str, Document, date | None]]) -> dict[str, Any]:
    matcher = Matcher.compile(load_watchlists(ROOT / "watchlists"))
    return {key: _output(matcher, doc, on) for key, doc, on in items}


def test_fast_folding_equals_the_translation_table() -> None:
    """Normalisation folds dashes, quotes and spaces by replacement; it must equal the table."""
    import random

    from monitor.match import text as normalisation

    mapped = [chr(k) for k in normalisation._TRANSLATE]
    alphabet = mapped + list("aZ 9'.,\n") + ["\u00e9", "\u4e2d", "\uac00", "\U0001f600", "\u00df"]
    rng = random.Random(3)
    for length in (0, 1, 2, 5, 40, 300):
        for _ in range(200):
            text = "".join(rng.choice(alphabet) for _ in range(length))
            assert normalisation._fold(text) == text.translate(normalisation._TRANSLATE), repr(text)
    for text in ("plain ascii", "two-part_name `x`\t\r", "Workers\u2019 Party \u2014 Kim\u00a0Jong-un"):
        assert normalisation._fold(text) == text.translate(normalisation._TRANSLATE)


def _normal(value: Any) -> Any:
    """JSON round trip, so tuples and lists compare alike."""
    return json.loads(json.dumps(value, sort_keys=True))


def test_every_labelled_item_matches_exactly_as_pinned() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = _normal(_compute(_items()))
    expected = {k: v for k, v in golden.items() if not k.startswith("seed:")}
    assert got.keys() == expected.keys()
    differing = [k for k in got if got[k] != expected[k]]
    assert not differing, f"{len(differing)} items differ, first {differing[0]}: {got[differing[0]]} " \
                          f"!= {expected[differing[0]]}"
    assert sum(1 for v in got.values() if v) > 100  # the pin covers real matches, not only misses


def test_seed_articles_match_exactly_as_pinned() -> None:
    got = _normal(_compute(_seed_items()))
    if not got:
        pytest.skip(f"seed articles not found in {SEEDS} (they are not part of the repository)")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for key, value in got.items():
        assert value == golden[key], key


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    out = _normal({**_compute(_items()), **_compute(_seed_items())})
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, ensure_ascii=False)}" for k, v in sorted(out.items())]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"wrote {len(out)} items, {sum(1 for v in out.values() if v)} with matches, to {GOLDEN}")
