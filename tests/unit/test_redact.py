"""One redaction for every URL monitor shows: userinfo, secret parameters, secret webhook paths."""

from __future__ import annotations

import pytest

from monitor.errors import DeliveryError, FetchError
from monitor.redact import display_host, redact, redact_url


@pytest.mark.parametrize(("url", "expected"), [
    ("https://user:pw@feeds.example.org/rss", "https://***@feeds.example.org/rss"),
    ("https://TOKEN@feeds.example.org/rss", "https://***@feeds.example.org/rss"),
    ("https://feeds.example.org/rss?api_key=k1&lang=en", "https://feeds.example.org/rss?api_key=***&lang=en"),
    ("https://feeds.example.org/rss?apiKey=k1", "https://feeds.example.org/rss?apiKey=***"),
    ("https://e.org/r?token=t&key=k&secret=s&sig=g", "https://e.org/r?token=***&key=***&secret=***&sig=***"),
    ("https://e.org/r?access_token=a#access_token=b", "https://e.org/r?access_token=***#access_token=***"),
    ("https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx", "https://hooks.slack.com/services/***"),
    ("https://discord.com/api/webhooks/1234/AbCdEf-token", "https://discord.com/api/webhooks/***"),
    ("https://chat.example.org/hooks/3ebr5dmdd7ncmrcvb6cpbcxkbr", "https://chat.example.org/hooks/***"),
    ("https://x.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d", "https://x.webhook.office.com/webhookb2/***"),
    ("https://e.org/feeds/aB3dE5fG7hJ9kL1mN3pQ5rS7", "https://e.org/feeds/***"),
    ("https://e.org/u/0123456789abcdef0123456789abcdef/rss", "https://e.org/u/***/rss"),
    # Nothing secret: unchanged.
    ("https://news.example.org/2024/06/10/kim-visits-beijing-for-talks?page=2",
     "https://news.example.org/2024/06/10/kim-visits-beijing-for-talks?page=2"),
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
    ("file:///srv/feeds/local.xml", "file:///srv/feeds/local.xml"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_finds_urls_in_text_and_keeps_the_punctuation_around_them() -> None:
    text = "https://u:p@a.example/x?token=t: HTTP 500 (redirected from https://b.example/y?key=k)."
    assert redact(text) == "https://***@a.example/x?token=***: HTTP 500 (redirected from https://b.example/y?key=***)."
    assert redact("desk@example.org refused") == "desk@example.org refused"


def test_every_error_message_is_redacted_when_the_error_is_made() -> None:
    assert "pw" not in str(FetchError("https://u:pw@e.org/: HTTP 500", url="https://u:pw@e.org/"))
    assert "abc" not in str(DeliveryError("webhook https://discord.com/api/webhooks/1/abc answered HTTP 404"))


def test_display_host_names_the_host_only() -> None:
    assert display_host("https://u:p@feeds.example.org:8443/rss?key=k") == "feeds.example.org:8443"
    assert display_host("file:///srv/x.xml") == "file:///srv/x.xml"


def test_redaction_is_linear_on_hostile_text() -> None:
    text = "https://" + "a" * 200_000 + " " + "http://x/" * 20_000 + "?" + "&token=1" * 20_000
    assert "token=1" not in redact(text)
