"""Short commands load only what they use: ``--help``, ``hits`` and ``status`` run every few seconds in
health checks and by hand, so the database, HTTP, parsing, matching and scheduling stacks stay unloaded
unless the command needs them. Checked by the modules a real run leaves in ``sys.modules``, not by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import RELEVANT, rss, write_config
from tests.helpers.feed_server import FeedServer

RSS = {"Content-Type": "application/rss+xml"}

# Runs the CLI as ``python -m monitor`` does, then writes the names of the loaded modules to a file. The CLI
# ends the process itself once its exit handlers have run (monitor.cli._leave): the file is written by one.
DRIVER = """
import atexit, json, runpy, sys
out, sys.argv = sys.argv[1], ["monitor", *sys.argv[2:]]

def write_modules():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)

atexit.register(write_modules)
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""

HEAVY = {"sqlalchemy", "sqlmodel", "alembic", "apscheduler", "pydantic", "pydantic_settings", "yaml", "httpx",
         "jinja2", "feedparser", "psycopg"}


def loaded(tmp_path: Path, *args: str, config: Path | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``monitor ARGS``; its result and the modules it had loaded when it exited."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    prefix = ["--config", str(config)] if config is not None else []
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(out), *prefix, *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    return proc, set(json.loads(out.read_text(encoding="utf-8")))


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_loads_no_database_config_or_scheduling_library(tmp_path: Path) -> None:
    proc, modules = loaded(tmp_path, "--help")
    assert proc.returncode == 0 and "hits" in proc.stdout and "status" in proc.stdout
    assert packages(modules) & HEAVY == set()
    assert not any(name.startswith(("monitor.store", "monitor.db", "monitor.config")) for name in modules)


def test_a_commands_help_loads_no_database_config_or_scheduling_library(tmp_path: Path) -> None:
    proc, modules = loaded(tmp_path, "hits", "--help")
    assert proc.returncode == 0 and "--watchlist" in proc.stdout
    # pydantic itself is loaded by Typer, which checks option values with it.
    assert packages(modules) & (HEAVY - {"pydantic"}) == set()


def test_hits_and_status_load_neither_migrations_nor_schedules_nor_pipeline(tmp_path: Path,
                                                                             feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers=RSS)
    config = write_config(tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}], subscriptions=[
        {"name": "desk", "watchlists": ["delegation_visits"], "schedule": "weekly mon 07:00 Europe/Berlin",
         "email": ["desk@example.org"]},
    ])
    subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll", "--once"], check=True,
                   capture_output=True, timeout=120, cwd=tmp_path)
    unused = {"alembic", "apscheduler", "httpx", "jinja2", "feedparser", "mako"}
    not_here = ("monitor.pipeline", "monitor.match", "monitor.ingest.cluster", "monitor.deliver", "monitor.net",
                "monitor.store.config_sync", "monitor.store.items", "monitor.store.stories")

    proc, modules = loaded(tmp_path, "hits", "--format", "jsonl", config=config)
    assert proc.returncode == 0, proc.stderr
    assert "delegation_visits" in {json.loads(line)["watchlist"] for line in proc.stdout.splitlines()}
    assert packages(modules) & unused == set()
    assert not any(name.startswith(not_here) for name in modules)

    proc, modules = loaded(tmp_path, "status", config=config)
    assert proc.returncode == 1 and "no worker has sent a heartbeat" in proc.stdout  # nothing runs the daemon
    assert "at revision" in proc.stdout and "(empty)" not in proc.stdout
    assert packages(modules) & unused == set()
    assert not any(name.startswith(not_here) for name in modules)


def test_a_command_leaves_with_its_status_its_output_and_its_exit_handlers_run(tmp_path: Path) -> None:
    # The CLI skips the interpreter's object-by-object teardown at the end: what a command printed, its
    # exit status and what exit handlers do (here: the driver's file) must be exactly as with a plain exit.
    proc, modules = loaded(tmp_path, "--config", str(tmp_path / "missing.yaml"), "status")
    assert proc.returncode == 2 and "config file not found" in proc.stderr and modules
    proc, modules = loaded(tmp_path, "hits", "--no-such-option")
    assert proc.returncode == 2 and "No such option" in proc.stderr and modules
    proc, modules = loaded(tmp_path, "--help")
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("─╯") and modules


def test_a_profiled_command_leaves_its_profile(tmp_path: Path) -> None:
    # Under a profiler the CLI exits the ordinary way, so ``python -m cProfile`` can write what it measured.
    out = tmp_path / "help.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "monitor", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and "status" in proc.stdout
    assert out.stat().st_size > 0
