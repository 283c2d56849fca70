"""The built wheel works on its own: installed (not editable) into a fresh venv, it polls and writes a digest.

Slow (about a minute: it builds a wheel and installs the dependencies into a new
venv from the package index or pip's cache), and it runs in the normal suite,
because a wheel without its templates or migrations is a release that cannot
send a single digest.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import venv
from email.policy import default
from pathlib import Path

import yaml

from tests.e2e.conftest import RELEVANT, ROOT, rss


def run(args: list[str], *, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_") and k not in ("PYTHONPATH",
                                                                                            "VIRTUAL_ENV")}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_wheel_installed_in_a_fresh_venv_runs_a_cycle_and_writes_a_digest(tmp_path: Path) -> None:
    # Build from a copy holding only what a source distribution holds, so nothing outside the package can help.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "monitor", source / "monitor", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
        cwd=tmp_path)
    [wheel] = dist.glob("monitor-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)

    work = tmp_path / "work"  # not the checkout: only the installed package can be imported
    work.mkdir()
    (work / "wire.xml").write_bytes(rss(RELEVANT))
    (work / "monitor.yaml").write_text(yaml.safe_dump({
        "database_url": "sqlite:///var/monitor.db",
        "watchlists_dir": str(ROOT / "watchlists"),
        "outbox_dir": "outbox",
        "parse_processes": 0,
        "feeds": [{"url": "file://wire.xml", "name": "Wire"}],
        "subscriptions": [{"name": "desk", "watchlists": ["delegation_visits"], "email": ["desk@example.org"]}],
    }), encoding="utf-8")
    (work / "var").mkdir()

    result = run([str(env_dir / "bin" / "monitor"), "--config", "monitor.yaml", "run", "--once"], cwd=work)

    assert "digests written: 1" in result.stdout, result.stdout + result.stderr
    [eml] = (work / "outbox").rglob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Zhao Leji" in text and "Zhao Leji" in html
