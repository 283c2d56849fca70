"""The subscriptions page against a real server: state, the next digest's preview (its own CSP), test messages."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, SmtpConfig, SubscriptionConfig, WebhookConfig
from monitor.config_specs import config_specs
from monitor.db import session_scope
from monitor.web.pages_subscriptions import PREVIEW_CSP
from monitor.web.security import CSP
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, Story, Web, form_csrf
from tests.web.pages_support import custom_web

SECRET_HOOK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXsecretXXXXXXXX"
HOSTILE = '<script>alert("digest")</script> Kim Jong Un <img src=x onerror=alert(1)> meets Xi'


def _subscriptions(tmp_path: Path, smtp: SmtpServer | None = None) -> dict[str, object]:
    values: dict[str, object] = dict(
        outbox_dir=tmp_path / "outbox",
        feeds=[FeedConfig(url="https://wire.example.org/rss", name="Wire")],
        subscriptions=[
            SubscriptionConfig(name="desk", watchlists=["delegation_visits"], email=["desk@example.org",
                                                                                     "chief@example.org"],
                               schedule="daily 08:00 Asia/Seoul"),
            SubscriptionConfig(name="chat", watchlists=["anniversaries"], schedule="immediate",
                               webhook=WebhookConfig(url=SECRET_HOOK, format="slack")),
        ],
    )
    if smtp is not None:
        values["smtp"] = SmtpConfig.model_validate({"host": smtp.host, "port": smtp.port,
                                                    "from": "monitor@example.org", "security": "none"})
    return values


@pytest.fixture
def subscribed(db_url: str, tmp_path: Path) -> Iterator[Web]:
    with custom_web(db_url, **_subscriptions(tmp_path)) as web:
        with session_scope(web.engine) as session:  # what a worker's start does
            store.sync_config(session, *config_specs(web.settings), NOW - timedelta(days=1))
        yield web


def test_the_subscriptions_page_shows_channels_schedules_and_pending_hits_without_secrets(subscribed: Web) -> None:
    web = subscribed
    web.seed([Story(title="Zhao Leji arrives in Pyongyang"), Story(title="Choe Son Hui arrives in Moscow")])
    with session_scope(web.engine) as session:
        store.record_unsubscribe(session, "desk", "chief@example.org", now=NOW)
    client = web.logged_in()
    page = client.get("/subscriptions")
    assert page.status_code == 200
    text = page.text
    assert "desk@example.org" in text and "unsubscribed: chief@example.org" in text
    assert "email (outbox folder)" in text and "webhook (slack)" in text
    assert "daily 08:00 Asia/Seoul" in text and "next delivery cycle" in text
    assert "secret" not in text and "https://hooks.slack.com/services/" in text  # the path is masked
    rows = {row.split("</strong>")[0].rsplit(">", 1)[1]: row for row in text.split("<tr>")[2:]}
    assert "<td>2</td>" in rows["desk"] and "<td>0</td>" in rows["chat"]  # pending hits


def test_the_preview_renders_the_real_email_in_a_sandboxed_frame_with_its_own_policy(subscribed: Web) -> None:
    web = subscribed
    web.seed([Story(title=HOSTILE, link="https://wire.example.org/1")])
    client = web.logged_in()
    page = client.get("/subscriptions/desk/preview")
    assert page.status_code == 200
    assert '<iframe class="email" sandbox src="/subscriptions/desk/preview.html"' in page.text
    assert page.headers["content-security-policy"] == CSP + "; frame-src 'self'"
    assert "1 pending hits" in page.text and "<script>" not in page.text

    frame = client.get("/subscriptions/desk/preview.html")
    assert frame.status_code == 200
    assert frame.headers["content-security-policy"] == PREVIEW_CSP
    assert frame.headers["content-security-policy"].startswith("sandbox; default-src 'none'; img-src data:; "
                                                               "style-src 'unsafe-inline'")
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert "Kim Jong Un" in frame.text and "https://wire.example.org/1" in frame.text
    assert "<script>alert" not in frame.text and "<img src=x" not in frame.text  # escaped, as in the sent email

    # The other pages keep their policy; chat channels show their payloads as text; strangers see nothing.
    assert client.get("/subscriptions").headers["content-security-policy"] == CSP
    chat = client.get("/subscriptions/chat/preview")
    assert chat.status_code == 200 and "made-up entries" in chat.text and "<iframe" not in chat.text
    assert chat.headers["content-security-policy"] == CSP
    assert client.get("/subscriptions/chat/preview.html").status_code == 404
    assert client.get("/subscriptions/nobody/preview").status_code == 404
    assert web.client().get("/subscriptions/desk/preview.html").status_code == 303


def test_send_a_test_message_goes_through_the_real_transport(subscribed: Web) -> None:
    web = subscribed
    client = web.logged_in()
    csrf = form_csrf(client.get("/subscriptions").text)
    outbox = web.settings.outbox_dir
    for data in ({}, {"csrf": "forged"}):
        assert client.post("/subscriptions/desk/test", data=data).status_code == 403
    assert not outbox.exists() or not list(outbox.iterdir())
    response = client.post("/subscriptions/desk/test", data={"csrf": csrf})
    assert response.status_code == 200
    assert "Test message for desk sent" in response.text
    [sent] = list(outbox.glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes(), policy=default)
    assert "test" in str(message["Subject"]).lower()
    assert client.post("/subscriptions/nobody/test", data={"csrf": csrf}).status_code == 404
    with session_scope(web.engine) as session:
        assert store.list_deliveries(session) == []  # a test is not recorded in the outbox


def test_a_refused_test_message_shows_the_reason(db_url: str, tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.refuse_with = "550 no such user here"
    with custom_web(db_url, **_subscriptions(tmp_path, smtp_server)) as web:
        client = web.logged_in()
        csrf = form_csrf(client.get("/subscriptions").text)
        response = client.post("/subscriptions/desk/test", data={"csrf": csrf})
        assert response.status_code == 502
        assert "test message to desk failed" in response.text and "550" in response.text
        assert smtp_server.messages == []
