"""A daemon stuck on a slow feed: ``status`` says so, and SIGTERM still stops it within seconds."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.conftest import Cli, write_config
from tests.helpers.feed_server import FeedServer, RecordedRequest, Route

SLOW_SECONDS = 100  # the feed answers after this long: longer than the whole test needs


def test_status_flags_a_stuck_poll_and_sigterm_stops_within_seconds(tmp_path: Path, feed_server: FeedServer) -> None:
    release = threading.Event()

    def slow(_request: RecordedRequest) -> Route:
        release.wait(SLOW_SECONDS)
        return Route(503, b"too late\n")

    feed_server.set_handler("/slow.xml", slow)
    config = write_config(tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/slow.xml")}],
                          fetch_timeout=SLOW_SECONDS + 20, fetch_deadline=SLOW_SECONDS + 20, parse_processes=0)
    cli = Cli(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # The heartbeat thread keeps beating while the poll waits on the feed; status must still say unhealthy.
        deadline = time.monotonic() + 120  # a bound on waiting, not a performance assertion
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = cli("status", "--stuck-after", "2", check=False)
            if "poll cycle running" in status.stdout:
                break
            time.sleep(1)
        assert status is not None and proc.poll() is None
        assert status.returncode == 1, status.stdout + status.stderr
        assert "alive" in status.stdout and "poll cycle running for" in status.stdout
        assert "without finishing (limit 2 s)" in status.stdout
        relaxed = cli("status", check=False)  # default limit: 15 minutes, not reached
        assert relaxed.returncode == 0, relaxed.stdout
        assert feed_server.requests_to("/slow.xml")

        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)  # far below the feed's 100 s: the request was cancelled
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "monitor stopped" in err
    assert "Traceback" not in err

    db = sqlite3.connect(tmp_path / "monitor.db")
    try:
        [(lease_until, lease_owner, error_count)] = db.execute(
            "SELECT lease_until, lease_owner, error_count FROM feeds").fetchall()
    finally:
        db.close()
    assert lease_until is None and lease_owner is None  # given back, not left to expire
    assert error_count == 0  # stopping is not the feed's fault
