"""One-click unsubscribe from a real sent email (aiosmtpd), and the planner honouring it."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email.policy import default
from pathlib import Path

import pytest

from monitor import operations
from monitor.config import FeedConfig, SmtpConfig, SubscriptionConfig
from monitor.db import session_scope
from monitor.deliver.tokens import make_token
from monitor.pipeline import Context, delivery_cycle, open_context, utcnow
from tests.conftest import SmtpServer
from tests.web.conftest import NOW, UNSUBSCRIBE_SECRET, Story, Web, web_settings

FEED = "https://wire.example.org/rss"


def _context(web: Web, smtp: SmtpServer, tmp_path: Path, addresses: list[str]) -> Context:
    settings = web_settings(
        web.settings.database_url, outbox_dir=tmp_path / "outbox", base_url=web.url,
        feeds=[FeedConfig(url=FEED, name="Wire")],
        subscriptions=[SubscriptionConfig(name="desk", watchlists=["delegation_visits"], email=addresses)],
        smtp=SmtpConfig.model_validate({"host": smtp.host, "port": smtp.port, "from": "monitor@example.org",
                                        "security": "none"}),
    )
    return open_context(settings, now=NOW - timedelta(days=1))


def _unsubscribe_link(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    found = re.fullmatch(r"<(.+)>", str(parsed["List-Unsubscribe"]))
    assert found
    return found.group(1)


def test_one_click_from_a_sent_digest_stops_the_next_ones(web: Web, smtp_server: SmtpServer, tmp_path: Path) -> None:
    ctx = _context(web, smtp_server, tmp_path, ["Desk@Example.org"])
    web.seed([Story(title="Zhao Leji arrives in Pyongyang", feed=FEED)])
    assert delivery_cycle(ctx, now=utcnow(), flush=True).sent == 1
    link = _unsubscribe_link(smtp_server.messages[0].content)
    assert link.startswith(web.url + "/unsubscribe/")

    client = web.client()
    confirm = client.get(link)  # a mail scanner following the link changes nothing
    assert confirm.status_code == 200 and "desk@example.org" in confirm.text
    with session_scope(web.engine) as session:
        assert operations.list_unsubscribes(session) == []
    done = client.post(link, content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    assert client.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # twice is fine
    with session_scope(web.engine) as session:
        assert [(u.subscription, u.address) for u in operations.list_unsubscribes(session)] == [
            ("desk", "desk@example.org")]

    web.seed([Story(title="Choe Son Hui arrives in Moscow", feed=FEED)])
    summary = delivery_cycle(ctx, now=utcnow(), flush=True)
    assert (summary.planned, summary.sent, len(smtp_server.messages)) == (0, 0, 1)
    ctx.close()


def test_the_other_addresses_of_a_subscription_keep_receiving(web: Web, smtp_server: SmtpServer,
                                                               tmp_path: Path) -> None:
    ctx = _context(web, smtp_server, tmp_path, ["a@example.org", "b@example.org"])
    token = make_token(UNSUBSCRIBE_SECRET.encode(), "desk", "a@example.org")
    assert web.client().post(f"/unsubscribe/{token}").status_code == 200
    web.seed([Story(title="Zhao Leji arrives in Pyongyang", feed=FEED)])
    assert delivery_cycle(ctx, now=utcnow(), flush=True).sent == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["b@example.org"]]
    ctx.close()


def _forgeries() -> list[str]:
    good = make_token(UNSUBSCRIBE_SECRET.encode(), "desk", "a@example.org")
    payload, tag = good.split(".")
    other = make_token(UNSUBSCRIBE_SECRET.encode(), "desk", "b@example.org").split(".")[0]
    return [
        f"{payload}.{'A' * len(tag)}",  # tag replaced
        f"{other}.{tag}",  # someone else's address under a's tag
        make_token(b"another secret", "desk", "a@example.org"),  # signed with the wrong key
        payload,  # no tag at all
        "not-a-token",
        "%00." + "x" * 3000,
    ]


@pytest.mark.parametrize("token", _forgeries())
def test_forged_unsubscribe_tokens_are_refused(web: Web, token: str) -> None:
    client = web.client()
    assert client.get(f"/unsubscribe/{token}").status_code in (404, 414)
    assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code in (404, 414)
    with session_scope(web.engine) as session:
        assert operations.list_unsubscribes(session) == []


def test_unsubscribe_requests_are_rate_limited(web: Web) -> None:
    client = web.client()
    codes = [client.get("/unsubscribe/nothing.here").status_code for _ in range(31)]
    assert codes == [404] * 30 + [429]
