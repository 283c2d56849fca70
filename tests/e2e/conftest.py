"""Helpers for driving the ``monitor`` CLI as a subprocess against real loopback servers."""

from __future__ import annotations

import email.utils
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.feed_server import FeedServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    config: Path

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")} | (env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=120, env=env, input=input, cwd=self.config.parent,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"monitor {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc


def write_config(path: Path, **values: Any) -> Path:
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{path.parent / 'monitor.db'}",
        "watchlists_dir": str(ROOT / "watchlists"),
        "outbox_dir": str(path.parent / "outbox"),
        "allow_private_networks": True,
    }
    base.update(values)
    path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    return path


def rss(items: list[dict[str, str]], *, now: datetime | None = None) -> bytes:
    """An RSS document whose items are dated within the last hours (so a first poll alerts)."""
    now = now or datetime.now(UTC)
    parts = []
    for i, item in enumerate(items):
        date = email.utils.format_datetime(now - timedelta(hours=i + 1))
        parts.append(
            f"<item><title>{item['title']}</title><link>{item['link']}</link>"
            f"<guid>{item['link']}</guid><pubDate>{date}</pubDate>"
            f"<description>{item.get('summary', '')}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Loopback wire</title>'
        "<link>http://127.0.0.1/</link><description>t</description>" + "".join(parts) + "</channel></rss>"
    ).encode()


RELEVANT = [
    {"title": "Chinese delegation led by Zhao Leji arrives in Pyongyang",
     "link": "http://news.test/a/zhao-leji-pyongyang",
     "summary": "The Chinese delegation was greeted at the airport by Choe Ryong Hae and held talks with "
                "Kim Jong Un on the DPRK-China friendship."},
    {"title": "North Korea and China mark 75th anniversary of diplomatic ties",
     "link": "http://news.test/a/75-years-ties",
     "summary": "Kim Jong Un and Xi Jinping exchanged messages on the 75th anniversary of the establishment "
                "of diplomatic relations between the DPRK and China."},
    {"title": "Russia ratifies mutual defence treaty with North Korea",
     "link": "http://news.test/a/treaty-ratified",
     "summary": "The State Duma ratified the comprehensive strategic partnership treaty signed by Vladimir Putin "
                "and Kim Jong Un, which obliges each side to provide military assistance if the other is attacked."},
]
IRRELEVANT = [
    {"title": "North Korea fires ballistic missile into the sea", "link": "http://news.test/a/missile",
     "summary": "South Korea's military said the launch came from near Pyongyang."},
    {"title": "Markets close higher", "link": "http://news.test/a/markets", "summary": "Stocks rose."},
]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
