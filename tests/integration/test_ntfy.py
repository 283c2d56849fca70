"""ntfy subscriptions: a hit becomes a short push notification POSTed to the topic URL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.config import NtfyConfig, SubscriptionConfig
from monitor.deliver.digest import Digest, DigestEntry, DigestSection
from monitor.deliver.ntfy import MAX_MESSAGE_BYTES, render_ntfy
from monitor.pipeline import delivery_cycle
from tests.conftest import WebhookReceiver
from tests.helpers.outbox import WATCHLIST, by_subscription, context_with_hit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def phones(url: str, **ntfy: object) -> SubscriptionConfig:
    return SubscriptionConfig(name="phones", watchlists=[WATCHLIST], ntfy=NtfyConfig(url=url, **ntfy))  # type: ignore[arg-type]


def test_a_hit_reaches_the_topic_with_title_priority_and_token(
    tmp_path: Path, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NTFY_TOKEN", "tk_secret")
    ctx = context_with_hit(tmp_path, [phones(webhook_receiver.url, token="env:NTFY_TOKEN", priority=4)],
                           now=T0)
    summary = delivery_cycle(ctx, now=T0)
    assert summary.sent == 1
    [request] = webhook_receiver.requests
    assert request.path == "/hook"
    assert request.headers["title"] == "1 new item for phones"
    assert request.headers["priority"] == "4"
    assert request.headers["authorization"] == "Bearer tk_secret"
    text = request.body.decode("utf-8")
    assert "Story" in text and "https://example.org/s/1" in text
    assert by_subscription(ctx)["phones"].status == "sent"
    assert "tk_secret" not in (by_subscription(ctx)["phones"].last_error or "")


def test_a_refused_token_is_final_and_a_busy_server_is_retried(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script = [(503, {"Retry-After": "120"})]
    ctx = context_with_hit(tmp_path, [phones(webhook_receiver.url)], now=T0)
    assert delivery_cycle(ctx, now=T0).failed == 1
    row = by_subscription(ctx)["phones"]
    assert row.status == "pending" and "HTTP 503" in (row.last_error or "")
    assert delivery_cycle(ctx, now=T0 + timedelta(seconds=121)).sent == 1

    webhook_receiver.script = [(403, {})]
    other = context_with_hit(tmp_path / "second", [phones(webhook_receiver.url)], now=T0)
    assert delivery_cycle(other, now=T0).dead == 1
    assert "HTTP 403" in (by_subscription(other)["phones"].last_error or "")
    assert "authorization" not in webhook_receiver.requests[-1].headers


def _digest(titles: list[str]) -> Digest:
    entries = tuple(
        DigestEntry(item_id=i, title=title, link=f"https://example.org/{i}", source="Wire", published=None,
                    summary="", watchlists=(WATCHLIST,), reasons=(), hit_ids=(i,))
        for i, title in enumerate(titles)
    )
    return Digest(subscription="phones", generated_at=T0, timezone="UTC",
                  sections=(DigestSection(watchlist=WATCHLIST, title="Visits", entries=entries),))


def test_a_long_digest_is_clipped_to_ntfy_s_size_and_says_how_many_are_left_out() -> None:
    title, body = render_ntfy(_digest([f"Délégation numéro {i}\r\nInjected: header" for i in range(500)]))
    assert title == "500 new items for phones"
    assert len(body) <= MAX_MESSAGE_BYTES
    text = body.decode("utf-8")
    shown = text.count("https://example.org/")
    assert 0 < shown < 500 and text.endswith(f"… and {500 - shown} more")
    assert "\r" not in text and "\nInjected" not in text


def test_a_title_outside_ascii_is_sent_as_an_encoded_word() -> None:
    from monitor.deliver.ntfy import header_text

    word = header_text("Délégation\r\nX-Evil: 1")
    assert word.isascii() and "\n" not in word
    assert base64.b64decode(word.removeprefix("=?utf-8?b?").removesuffix("?=")).decode() == "Délégation X-Evil: 1"


def test_config_needs_exactly_one_channel_and_a_topic() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        SubscriptionConfig(name="x", watchlists=[WATCHLIST], email=["a@example.org"],
                           ntfy=NtfyConfig(url="https://ntfy.sh/t"))
    with pytest.raises(ValidationError, match="topic"):
        NtfyConfig(url="https://ntfy.sh/")
    with pytest.raises(ValidationError):
        NtfyConfig(url="https://ntfy.sh/t", priority=9)
