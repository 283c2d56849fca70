"""Read-only commands work while another process holds a long SQLite write transaction.

Only writers take the write lock: ``status``, ``hits`` and ``deliveries list`` read a WAL
snapshot instead of queueing behind the writer (and failing with "database is locked").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, write_config


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    cli("db", "upgrade")
    return cli


@pytest.fixture
def long_writer(tmp_path: Path, cli: Cli) -> Iterator[sqlite3.Connection]:
    """A second, real connection in the middle of a write transaction for the whole test."""
    conn = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO workers (owner, hostname, pid, info) VALUES ('writer', 'elsewhere', 1, '{}')")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_status_hits_and_deliveries_list_read_behind_a_writer(cli: Cli, long_writer: sqlite3.Connection) -> None:
    status = cli("status", check=False)
    assert "locked" not in status.stdout + status.stderr
    assert "feeds: 0 active" in status.stdout  # it read the database
    assert status.returncode == 1 and "no worker has sent a heartbeat" in status.stdout  # nothing runs; honest
    assert "writer" not in status.stdout  # the writer's uncommitted row is not visible

    hits = cli("hits")
    assert hits.stdout.strip() in ("", "no hits") and hits.stderr == ""

    deliveries = cli("deliveries", "list")
    assert "locked" not in deliveries.stdout + deliveries.stderr
