"""Precision and recall of the seeded watchlists on labelled sets of items.

The sets in tests/data/ hold items written in the manner of real 2000–2026 reporting in
English, Korean, Chinese and Russian, many of them hard negatives full of trigger words;
each names the watchlists it should match, labelled from the scope in the watchlists'
descriptions (docs/watchlists.md), not from the rules' output:

- labelled.jsonl (109 items) and holdout.jsonl (120): the first two sets;
- holdout2.jsonl (100, two fifths non-English) and holdout3.jsonl (100);
- holdout4.jsonl (independently written and labelled; measured once before any rule was
  changed for it, see bench/results/quality-2026-11-25-holdout4-first.md).

A label that disagrees with the first reading of the scope carries a ``label_note`` saying
why it was changed; no label is changed to agree with the rules' output.

The gate. Each item is matched on title, summary and content, with its published date as
the reference date. For every set and every list, precision and recall are checked
*separately* against the target of 0.93, in a way that accounts for how many items the
figure rests on: a set fails the gate when its one-sided 95 % Wilson score interval lies
wholly below the target — that is, when the set is evidence that the list is worse than
0.93, not merely that it made one mistake among seven treaty items. (With 7 positives one
miss is 0.86 and passes; with 40 positives 0.85 fails.) F1 must also be at least 0.9 on
every set, as before.
"""

from __future__ import annotations

import json
import math
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.domain import Document
from monitor.match import Matcher, load_watchlists

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
LABELLED = DATA / "labelled.jsonl"
SETS = {
    "labelled": LABELLED,
    "holdout": DATA / "holdout.jsonl",
    "holdout2": DATA / "holdout2.jsonl",  # two fifths in Korean, Chinese and Russian
    "holdout3": DATA / "holdout3.jsonl",
    "holdout4": DATA / "holdout4.jsonl",  # independently labelled; first measurement in bench/results/
}
WATCHLISTS = ("delegation_visits", "anniversaries", "defense_treaties")
TARGET = 0.93  # precision and recall, each
MIN_F1 = 0.9
Z = 1.645  # one-sided 95 %


def load_items(path: Path = LABELLED) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wilson_upper(successes: int, n: int, z: float = Z) -> float:
    """Upper end of the Wilson score interval for a rate of ``successes`` out of ``n``."""
    if n == 0:
        return 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


@cache
def _matcher() -> Matcher:
    result = load_watchlists(ROOT / "watchlists")
    assert result.errors == []
    return Matcher.compile(result)


@cache
def _outcomes(dataset: str) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """(id, labels, lists matched) for every item of a set, matching title, summary and content."""
    out = []
    for item in load_items(SETS[dataset]):
        doc = Document(title=str(item["title"]), summary=str(item.get("summary", "")),
                       content=str(item.get("content", "")))
        got = {m.watchlist for m in _matcher().match(doc, on=date.fromisoformat(str(item["published"])))}
        out.append((str(item["id"]), frozenset(item["labels"]), frozenset(got)))
    return tuple(out)


def test_wilson_bound_accounts_for_set_size() -> None:
    assert wilson_upper(6, 7) > TARGET  # one miss among seven is no evidence of a bad list
    assert wilson_upper(34, 40) < TARGET  # six among forty is
    assert wilson_upper(0, 0) == 1.0


def test_labelled_set_is_large_varied_and_well_formed() -> None:
    items = load_items()
    assert len(items) >= 80
    assert len({i["id"] for i in items}) == len(items)
    non_latin = [i for i in items if not str(i["title"]).isascii()]
    assert len(non_latin) >= len(items) // 6
    negatives = [i for i in items if not i["labels"]]
    assert len(negatives) >= 20
    assert all(set(i["labels"]) <= set(WATCHLISTS) for i in items)


@pytest.mark.parametrize("dataset", list(SETS))
def test_every_set_is_well_formed(dataset: str) -> None:
    items = load_items(SETS[dataset])
    assert len({i["id"] for i in items}) == len(items)
    for item in items:
        assert set(item["labels"]) <= set(WATCHLISTS), item["id"]
        date.fromisoformat(str(item["published"]))


@pytest.mark.parametrize("dataset", list(SETS))
@pytest.mark.parametrize("watchlist", WATCHLISTS)
def test_precision_and_recall_reach_the_target(watchlist: str, dataset: str) -> None:
    tp = fp = fn = 0
    wrong = []
    for item_id, labels, got in _outcomes(dataset):
        expected = watchlist in labels
        if watchlist in got and expected:
            tp += 1
        elif watchlist in got:
            fp += 1
            wrong.append(f"FP {item_id}")
        elif expected:
            fn += 1
            wrong.append(f"FN {item_id}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    figures = f"{dataset}/{watchlist}: P={precision:.3f} ({tp}/{tp + fp}) R={recall:.3f} ({tp}/{tp + fn}) " \
              f"F1={f1:.3f}; {wrong}"
    assert tp + fn > 0, f"{figures}: the set has no positives for this list"
    assert wilson_upper(tp, tp + fp) >= TARGET, f"precision below {TARGET} beyond chance: {figures}"
    assert wilson_upper(tp, tp + fn) >= TARGET, f"recall below {TARGET} beyond chance: {figures}"
    assert f1 >= MIN_F1, f"F1 below {MIN_F1}: {figures}"


def test_the_independent_set_is_big_enough_to_decide() -> None:
    """holdout4: at least 150 items, a third not in English, 30 positives for every list."""
    items = load_items(SETS["holdout4"])
    assert len(items) >= 150
    assert sum(1 for i in items if i.get("lang") != "en") * 3 >= len(items)
    for name in WATCHLISTS:
        assert sum(1 for i in items if name in i["labels"]) >= 30, name
