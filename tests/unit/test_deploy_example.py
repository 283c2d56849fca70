from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql+psycopg://monitor@db/monitor")
    monkeypatch.setenv("MONITOR_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", "pw")
    settings = load_settings(ROOT / "deploy" / "monitor.example.yaml")
    assert settings.smtp is not None and settings.smtp.security == "starttls"
    assert {s.name for s in settings.subscriptions} == {"morning-digest", "desk-webhook"}
