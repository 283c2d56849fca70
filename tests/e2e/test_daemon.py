"""``monitor run``: the daemon polls and delivers on its own and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import RELEVANT, rss, write_config
from tests.helpers.feed_server import FeedServer


def test_daemon_delivers_then_exits_cleanly_on_sigterm(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    config = write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "desk", "watchlists": ["delegation_visits", "anniversaries", "defense_treaties"],
                        "schedule": "immediate", "email": ["desk@example.org"]}],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    outbox = tmp_path / "outbox"
    try:
        deadline = time.monotonic() + 90  # a bound on waiting, not a performance assertion
        while not list(outbox.glob("*.eml")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert list(outbox.glob("*.eml")), "the daemon wrote no digest"
        healthy = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "status", "--this-host"],
                                 capture_output=True, text=True, env=env, timeout=60)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "alive" in healthy.stdout and "healthy" in healthy.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "monitor stopped" in err
    assert len(list(outbox.glob("*.eml"))) == 1

    after = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "status"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert after.returncode == 1 and "no worker has sent a heartbeat" in after.stdout
