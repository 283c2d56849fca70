"""Webhook settings checked when the config loads: the network guard, and secrets receivers can verify."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
import yaml

from monitor.config import load_settings
from monitor.errors import ConfigError

WHSEC = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-tests!!").decode()


def config(tmp_path: Path, webhook: dict[str, str], **top: object) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({
        **top, "subscriptions": [{"name": "team", "watchlists": ["delegation_visits"], "webhook": webhook}],
    }), encoding="utf-8")
    return path


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/latest",
    "http://localhost:9000/hook", "http://api.localhost/hook", "http://[::ffff:10.0.0.1]/hook",
])
def test_a_webhook_to_a_private_address_is_refused_at_load_naming_the_subscription(
    tmp_path: Path, url: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, {"url": url}))
    message = str(caught.value)
    assert "subscription 'team'" in message and "allow_private_networks" in message and "allowed_networks" in message
    assert "Error" not in message


def test_allowed_networks_and_allow_private_networks_let_a_private_webhook_load(tmp_path: Path) -> None:
    cases: list[tuple[str, dict[str, object]]] = [
        ("http://10.1.2.3/hook", {"allowed_networks": ["10.0.0.0/8"]}),
        ("http://127.0.0.1/hook", {"allow_private_networks": True}),
        ("https://hooks.example.org/monitor", {}),
    ]
    for url, allowance in cases:
        [sub] = load_settings(config(tmp_path, {"url": url}, **allowance)).subscriptions
        assert sub.name == "team" and sub.webhook is not None and str(sub.webhook.url) == url


def test_the_refusal_does_not_print_a_secret_webhook_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, {"url": "http://10.0.0.5/hooks/3ebr5dmdd7ncmrcvb6cpbcxkbr"}))
    assert "3ebr5dmdd7ncmrcvb6cpbcxkbr" not in str(caught.value)


def test_a_plain_secret_loads_with_a_warning_and_a_whsec_secret_without(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        load_settings(config(tmp_path, {"url": "https://hooks.example.org/m", "secret": "correct horse"}))
    [record] = caplog.records
    assert "'team'" in record.getMessage() and "whsec_" in record.getMessage()
    assert "correct horse" not in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        load_settings(config(tmp_path, {"url": "https://hooks.example.org/m", "secret": WHSEC}))
    assert caplog.records == []


def test_a_whsec_secret_that_is_not_base64_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base64"):
        load_settings(config(tmp_path, {"url": "https://hooks.example.org/m", "secret": "whsec_not*base64!"}))
