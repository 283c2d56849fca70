"""Matching and watchlist-loading time on worst-case inputs: time per KB, with a hard limit.

Each case builds a hostile input of a given size and times one ``Matcher.match`` (or one
``load_watchlists`` / ``load_settings``) on it, in a child process with a wall-clock limit
and a memory limit, so a quadratic or exponential path shows as "> limit" instead of hanging
the run. Linear cases show a flat time per KB as the size grows; per-field caps flatten the
total once the input is past the cap.

Cases:
  dots        a hit, then a run of dots with no space after it (sentence splitting)
  hits        the same two actors and a cue repeated: many hits in one sentence
  events      one sentence holding many anniversary mentions (ordinal lookup per mention)
  near        "Xi Jinping in Pyongyang with the embassy staff, " repeated: a within-8-words rule whose
              exclusion sits in every window, so every window is tried
  blocked     the same as separate sentences: a sentence rule tried and excluded in every sentence
  tags        "<!--<a" repeated (tag blanking in normalisation)
  words       "a " repeated after a hit (word windows)
  user_regex  a watchlist regex ``(\\w+\\s?)+:`` on a title of N characters
  alternation an alias of ``{a|b}`` repeated N times (size = repetitions), loaded and compiled
  yaml_fanout a watchlist whose ``any:`` terms use an N-level alias fan-out (size = levels)
  config_bomb monitor.yaml with an N-level alias fan-out (size = levels)

Usage: python bench/match_budget.py [--cases dots,hits] [--limit 60] [--memory-mb 2048]
Run it from another folder with PYTHONPATH pointing at a checkout to measure that checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES_KB = (16, 64, 256)
CASES: dict[str, tuple[int, ...]] = {
    "dots": SIZES_KB,
    "hits": SIZES_KB,
    "events": SIZES_KB,
    "near": SIZES_KB,
    "blocked": SIZES_KB,
    "tags": SIZES_KB,
    "words": SIZES_KB,
    "user_regex": (32, 64, 1024),  # characters of title
    "alternation": (16, 20, 26),  # repetitions of {a|b}
    "yaml_fanout": (6, 8, 11),  # alias levels, 10 references each
    "config_bomb": (6, 7, 9),
}
TEXT_CASES = ("dots", "hits", "events", "near", "blocked", "tags", "words")  # sizes in KB of content
HIT = "Kim Jong Un met Xi Jinping in Beijing for talks on the friendship treaty"


def _seeded_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="match-budget-"))
    for path in (ROOT / "watchlists").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    return folder


def _match_case(content: str, *, title: str = HIT) -> Callable[[], object]:
    from monitor.domain import Document
    from monitor.match import Matcher, load_watchlists

    matcher = Matcher.compile(load_watchlists(_seeded_folder()))
    doc = Document(title=title, summary="", content=content)
    return lambda: matcher.match(doc)


def _fill(unit: str, kb: int) -> str:
    return (unit * (kb * 1024 // len(unit) + 1))[: kb * 1024]


HEAD = """kind: watchlist
name: budget
title: Budget
version: "1"
severity: low
"""


def _folder_with(text: str) -> Path:
    folder = _seeded_folder()
    (folder / "budget.yaml").write_text(text, encoding="utf-8")
    return folder


def _fanout(levels: int, indent: str = "") -> str:
    lines = [f"{indent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _term_fanout(levels: int) -> str:
    """Rules whose ``any:`` terms each hold ten aliases of the level below: 10**levels terms when walked."""
    rules = ["rules:", "  - id: r0", "    all: [&t0 {phrase: [x]}]"]
    for i in range(1, levels + 1):
        rules += [f"  - id: r{i}", f"    all: [&t{i} {{any: [" + ", ".join([f"*t{i - 1}"] * 10) + "]}]"]
    return "\n".join(rules) + "\n"


def build(case: str, size: int) -> Callable[[], object]:
    """The timed call for one case and size (setup happens here, untimed)."""
    if case == "dots":
        return _match_case(HIT + _fill(".", size) + "x")
    if case == "hits":
        return _match_case(_fill("Kim Jong Un and Xi Jinping held talks in Beijing, ", size))
    if case == "events":
        return _match_case(_fill("Kim Jong Un and Xi Jinping mark the 64th anniversary of the treaty of friendship, ",
                                 size))
    if case == "near":
        return _match_case(_fill("Xi Jinping in Pyongyang with the embassy staff, ", size), title="x")
    if case == "blocked":
        return _match_case(_fill("Xi Jinping visited Pyongyang with the embassy staff. ", size), title="x")
    if case == "tags":
        return _match_case(HIT + _fill("<!--<a", size))
    if case == "words":
        return _match_case(HIT + " " + _fill("a ", size))
    from monitor.match import Matcher, load_watchlists

    if case == "user_regex":
        folder = _folder_with(HEAD + "rules:\n  - id: r\n    prefilter: [said]\n    all:\n"
                              "      - regex: '(\\w+\\s?)+:'\n")
        result = load_watchlists(folder)
        matcher = Matcher.compile(result)
        from monitor.domain import Document

        doc = Document(title="said " + "a" * size + " ")  # no colon: a backtracking engine tries every split
        return lambda: matcher.match(doc)
    if case == "alternation":
        folder = _folder_with(HEAD + f'cues:\n  bomb: ["{"{a|b}" * size}"]\nrules:\n  - id: r\n    all:\n'
                              "      - actor: kim_jong_un\n      - bomb\n")
        return lambda: Matcher.compile(load_watchlists(folder))
    if case == "yaml_fanout":
        folder = _folder_with(HEAD + _term_fanout(size))
        return lambda: Matcher.compile(load_watchlists(folder))
    if case == "config_bomb":
        from monitor.config import load_settings

        path = Path(tempfile.mkdtemp(prefix="match-budget-")) / "monitor.yaml"
        path.write_text(_fanout(size), encoding="utf-8")

        def load() -> object:
            try:
                return load_settings(path)
            except Exception as exc:  # the refusal is the expected outcome
                return exc

        return load
    raise SystemExit(f"unknown case {case!r}")


def child(case: str, size: int, memory_mb: int) -> None:
    """Run one case in this (child) process and print its time as JSON."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    call = build(case, size)
    started = time.perf_counter()
    try:
        outcome = call()
        error = None
    except MemoryError:
        outcome, error = None, "out of memory"
    except RecursionError:
        outcome, error = None, "RecursionError"
    seconds = time.perf_counter() - started
    note = error or (type(outcome).__name__ if isinstance(outcome, Exception) else "")
    print(json.dumps({"seconds": seconds, "note": note}))


def run(case: str, size: int, limit: float, memory_mb: int) -> tuple[str, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", case, str(size), str(memory_mb)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        return f"> {limit:g} s", "killed at the limit"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return "failed", last[:60]
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return f"{data['seconds']:.4f} s", data["note"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--limit", type=float, default=60.0, help="wall-clock limit per run (seconds)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit per run")
    args = parser.parse_args()
    import monitor

    print(f"monitor from {Path(monitor.__file__).parent}")
    print(f"{'case':<12} {'size':>8} {'time':>14} {'per KB':>12}  note")
    for case in args.cases.split(","):
        for size in CASES[case]:
            shown, note = run(case, size, args.limit, args.memory_mb)
            unit = "KB" if case in TEXT_CASES else ""
            per_kb = ""
            if unit and shown.endswith(" s") and not shown.startswith(">"):
                per_kb = f"{float(shown[:-2]) / size * 1000:.3f} ms"
            label = f"{size} {unit}" if unit else {"user_regex": f"{size} ch", "alternation": f"x{size}"}.get(
                case, f"{size} lv")
            print(f"{case:<12} {label:>8} {shown:>14} {per_kb:>12}  {note}", flush=True)


if __name__ == "__main__":
    main()
