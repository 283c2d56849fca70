"""Start-up cost of the CLI: wall time of short commands and the slowest imports of ``monitor.cli``.

Each command runs as a subprocess on the bundled config (``monitor.yaml`` at the repository
root, its SQLite database migrated first by one untimed ``monitor status``), ``--repeat``
times; the median and the minimum are reported (the minimum is the least disturbed by other
work on a shared machine). Then ``python -X importtime -c 'import monitor.cli'`` is run once
and the modules with the largest cumulative import time are listed.

Usage: python bench/startup.py [--repeat 7] [--top 20]
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


def time_command(args: list[str], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT, capture_output=True, check=False)
        runs.append(time.perf_counter() - started)
    return runs


def import_offenders(top: int) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the slowest imports, largest cumulative first."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import monitor.cli"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative), int(self_us), name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "monitor", "status"], cwd=ROOT, capture_output=True, check=False)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=ROOT, check=True)
    print(f"load average {os.getloadavg()[0]:.1f}; bare interpreter start {time.perf_counter() - started:.3f} s")
    print("| command | median | min |")
    print("| --- | --- | --- |")
    for command in COMMANDS:
        runs = time_command(command, args.repeat)
        print(f"| `monitor {' '.join(command)}` | {statistics.median(runs):.2f} s | {min(runs):.2f} s |")
    print(f"\nslowest imports of monitor.cli (cumulative, self; µs), top {args.top}:")
    for cumulative, self_us, name in import_offenders(args.top):
        print(f"{cumulative:>9} {self_us:>8}  {name}")


if __name__ == "__main__":
    main()
