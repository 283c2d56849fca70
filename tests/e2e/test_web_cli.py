"""`monitor web`, `monitor web passwd` and `monitor tokens` as an operator runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Cli, write_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(write_config(tmp_path / "monitor.yaml", web_secret="e2e-secret"))


@pytest.fixture
def server(cli: Cli) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cli.config), "web", "--port", str(port)],
                            cwd=cli.config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"monitor web did not start:\n{out}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()


def test_an_operator_logs_in_and_a_tool_reads_the_api(cli: Cli, server: str) -> None:
    cli("web", "passwd", "admin", "--password-stdin", input="a long enough password\n")
    token = cli("tokens", "create", "grafana", "--read-only").stdout.strip()
    assert token.startswith("mon_")
    assert "grafana" in cli("tokens", "list").stdout and token not in cli("tokens", "list").stdout

    with httpx.Client(base_url=server) as client:
        login = client.get("/login")
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        landed = client.post("/login", data={"name": "admin", "password": "a long enough password", "csrf": csrf},
                             follow_redirects=True)
        assert landed.status_code == 200 and "Recent hits" in landed.text
        api = client.get("/api/v1/hits", headers={"Authorization": f"Bearer {token}"})
        assert api.json() == {"hits": [], "next_cursor": None}

    cli("tokens", "revoke", "grafana")
    assert httpx.get(f"{server}/api/v1/hits", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_bad_input_gets_one_clear_message(cli: Cli) -> None:
    short = cli("web", "passwd", "admin", "--password-stdin", input="short\n", check=False)
    assert short.returncode == 2 and "at least 10 characters" in short.stderr and "Traceback" not in short.stderr
    cli("tokens", "create", "ci")
    again = cli("tokens", "create", "ci", check=False)
    assert again.returncode == 2 and "exists" in again.stderr
    missing = cli("tokens", "revoke", "nobody", check=False)
    assert missing.returncode == 1 and "no token named 'nobody'" in missing.stderr
