from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings, parse_duration
from monitor.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "database_url: sqlite:///x.db\nfeedz: []\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert "'feedz'" in str(err.value) and "unknown key" in str(err.value)


def test_unknown_nested_key_names_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - url: https://example.org/rss\n    intervall: 5m\n")
    with pytest.raises(ConfigError, match=r"feeds\.0\.intervall': unknown key"):
        load_settings(path)


def test_bad_schedule_is_reported_with_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "subscriptions:\n  - name: a\n    watchlists: [x]\n    schedule: sometimes\n"
                           "    email: [a@example.org]\n")
    with pytest.raises(ConfigError, match=r"subscriptions\.0\.schedule.*not a schedule"):
        load_settings(path)


def test_subscription_needs_exactly_one_target(tmp_path: Path) -> None:
    path = write(tmp_path, "subscriptions:\n  - name: a\n    watchlists: [x]\n")
    with pytest.raises(ConfigError, match="exactly one of"):
        load_settings(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - url: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path.name}:\d+: not valid YAML"):
        load_settings(path)


def test_env_secret_is_resolved_and_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "whsec_c2VjcmV0")
    path = write(tmp_path, "subscriptions:\n  - name: team\n    watchlists: [x]\n"
                           "    webhook: {url: 'https://hooks.example.org/x', secret: 'env:HOOK_SECRET'}\n")
    settings = load_settings(path)
    webhook = settings.subscriptions[0].webhook
    assert webhook is not None and webhook.secret is not None
    assert webhook.secret.get_secret_value() == "whsec_c2VjcmV0"
    assert "c2VjcmV0" not in repr(settings)


def test_missing_env_secret_is_an_error_when_a_delivery_needs_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Read-only commands load the file without the delivery secrets; delivery commands check them at start.
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = write(tmp_path, "smtp: {host: mail, from: a@example.org, password: 'env:NOPE_SECRET'}\n")
    settings = load_settings(path)
    with pytest.raises(ConfigError, match=r"smtp\.password.*NOPE_SECRET is not set"):
        settings.check_secrets()
    monkeypatch.setenv("NOPE_SECRET", "s3cret")
    settings.check_secrets()
    assert settings.smtp is not None and settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "s3cret"


def test_environment_overrides_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql+psycopg://db.example/monitor")
    settings = load_settings(write(tmp_path, "database_url: sqlite:///var/a.db\n"))
    assert settings.database_url == "postgresql+psycopg://db.example/monitor"


def test_relative_paths_are_anchored_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    path = write(tmp_path, "database_url: sqlite:///var/a.db\nfeeds:\n  - url: file://feeds/x.xml\n")
    monkeypatch.chdir("/")
    settings = load_settings(path)
    assert settings.database_url == f"sqlite:///{tmp_path}/var/a.db"
    assert settings.watchlists_dir == tmp_path / "watchlists"
    assert settings.feeds[0].url == (tmp_path / "feeds" / "x.xml").as_uri()


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.yaml")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), (90, 90)])
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30s"):
        parse_duration("soon")


def test_committed_default_config_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "monitor.yaml")
    assert settings.feeds and settings.subscriptions
    assert settings.feeds[0].url.startswith("file://")
