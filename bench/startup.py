"""Start-up cost of the CLI: wall and CPU time of short commands, and what they import.

Each command (``--help``, ``hits``, ``status``) runs as a subprocess on the bundled config
(``monitor.yaml`` at the repository root), whose SQLite database is made first, untimed, by
``monitor run --once`` when it does not exist yet (the sample feed gives it items and hits).
Runs alternate between the commands (and between this checkout and ``--base``, when given), so
a burst of load on a shared machine costs every variant alike; the median and the minimum of
``--repeat`` runs are reported, wall and CPU (user + system of the child).

``--base DIR`` times another checkout of monitor (e.g. ``git worktree add /tmp/base main``) with
the same interpreter, so a change is measured as a ratio within one run. Its own ``monitor.yaml``
and database are used.

Last, ``python -X importtime`` lists, for each command, the slowest imports (cumulative).

Usage: python bench/startup.py [--repeat 10] [--top 15] [--base DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [["--help"], ["hits"], ["status"]]


def _env(checkout: Path) -> dict[str, str]:
    # The checkout's package first on the path, whatever the interpreter has installed in editable mode.
    return {**os.environ, "PYTHONPATH": str(checkout)}


def prepare(checkout: Path) -> None:
    """A small database with items and hits, made once (``make run`` does the same)."""
    if not (checkout / "var" / "monitor.db").exists():
        subprocess.run([sys.executable, "-m", "monitor", "run", "--once"], cwd=checkout, env=_env(checkout),
                       capture_output=True, check=True)


def run_once(checkout: Path, args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``python -m monitor ARGS`` in ``checkout``."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=checkout, env=_env(checkout),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, _status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = 0  # reaped by wait4
    return wall, usage.ru_utime + usage.ru_stime


def import_offenders(checkout: Path, args: list[str], top: int) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the slowest imports of one command, largest cumulative first."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "monitor", *args], cwd=checkout,
                          env=_env(checkout), capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative), int(self_us), name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--base", type=Path, help="another checkout of monitor to time in the same run")
    args = parser.parse_args()
    checkouts = {"this": ROOT}
    if args.base is not None:
        checkouts = {"base": args.base.resolve(), "this": ROOT}
    for checkout in checkouts.values():
        prepare(checkout)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    print(f"load average {os.getloadavg()[0]:.1f}; bare interpreter start {time.perf_counter() - started:.3f} s")
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for command in COMMANDS:
            for label, checkout in checkouts.items():
                runs.setdefault((label, " ".join(command)), []).append(run_once(checkout, command))
    print("| command | checkout | wall median | wall min | CPU median | CPU min |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (label, command), timings in runs.items():
        walls, cpus = [w for w, _ in timings], [c for _, c in timings]
        print(f"| `monitor {command}` | {label} | {statistics.median(walls):.3f} s | {min(walls):.3f} s "
              f"| {statistics.median(cpus):.3f} s | {min(cpus):.3f} s |")
    if args.base is not None:
        print("\nratio this/base (medians):")
        for command in COMMANDS:
            name = " ".join(command)
            base, this = runs[("base", name)], runs[("this", name)]
            wall = statistics.median(w for w, _ in this) / statistics.median(w for w, _ in base)
            cpu = statistics.median(c for _, c in this) / statistics.median(c for _, c in base)
            print(f"  monitor {name}: wall {wall:.2f}, CPU {cpu:.2f}")
    for command in COMMANDS:
        print(f"\nslowest imports of `monitor {' '.join(command)}` (cumulative, self; µs), top {args.top}:")
        for cumulative, self_us, name in import_offenders(ROOT, command, args.top):
            print(f"{cumulative:>9} {self_us:>8}  {name}")


if __name__ == "__main__":
    main()
