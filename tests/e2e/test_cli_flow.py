"""The whole pipeline through the CLI: loopback feeds, a real SMTP server, a real webhook receiver."""

from __future__ import annotations

import base64
import email
import json
import shutil
from email.policy import default
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.conftest import SmtpServer, WebhookReceiver
from tests.e2e.conftest import IRRELEVANT, RELEVANT, ROOT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer

ALL_LISTS = ["delegation_visits", "anniversaries", "defense_treaties"]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def hits(cli: Cli) -> list[dict]:  # type: ignore[type-arg]
    out = cli("hits", "--format", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def text_part(envelope: object) -> str:
    message = email.message_from_bytes(envelope.original_content, policy=default)  # type: ignore[attr-defined]
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def test_poll_then_deliver_by_smtp_names_each_hit_once_and_never_repeats(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer, db_url: str
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT + IRRELEVANT),
                          headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        database_url=db_url,
        feeds=[{"url": feed_server.url("/wire.xml"), "name": "Loopback wire"}],
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "schedule": "immediate",
                        "email": ["desk@example.org"]}],
        smtp={"host": smtp_server.host, "port": smtp_server.port, "from": "monitor@example.org", "security": "none"},
    ))
    polled = cli("poll", "--once")
    assert "polled 1 feeds (0 failed" in polled.stdout and "5 new items" in polled.stdout
    stored = hits(cli)
    hit_links = {h["link"] for h in stored}
    assert hit_links == {item["link"] for item in RELEVANT}
    assert all(h["feed"] == "Loopback wire" and h["score"] > 0 for h in stored)

    delivered = cli("deliver", "--once")
    assert "1 sent" in delivered.stdout
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["desk@example.org"]
    body = text_part(envelope)
    for link in hit_links:
        assert body.count(link) == 1, link
    for item in IRRELEVANT:
        assert item["link"] not in body

    assert "nothing new to deliver" in cli("deliver", "--once").stdout
    again = cli("poll", "--once", "--all")
    assert "0 new items" in again.stdout
    assert len(hits(cli)) == len(stored)
    assert "nothing new to deliver" in cli("deliver", "--once").stdout
    assert len(smtp_server.messages) == 1


def test_webhook_retried_after_500_carries_same_id_and_verifies(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    webhook_receiver.script = [(500, {})]
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "team", "watchlists": ALL_LISTS, "schedule": "immediate",
                        "webhook": {"url": webhook_receiver.url, "format": "json", "secret": SECRET}}],
        delivery_retry={"first_delay": "0s"},
    ))
    cli("poll", "--once")
    first = cli("deliver", "--once")
    assert "1 to retry" in first.stdout and "HTTP 500" in first.stdout
    second = cli("deliver", "--once")
    assert "1 sent" in second.stdout
    assert "nothing new to deliver" in cli("deliver", "--once").stdout

    failed, ok = webhook_receiver.requests
    assert failed.headers["webhook-id"] == ok.headers["webhook-id"]
    assert failed.body == ok.body
    payload = Webhook(SECRET).verify(ok.body, ok.headers)
    links = [item["link"] for item in payload["items"]]
    assert sorted(links) == sorted(item["link"] for item in RELEVANT)


def test_bad_feeds_are_reported_and_the_cycle_goes_on(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    feed_server.set_route("/broken.xml", body=b"<?xml version='1.0'?><rss><channel><item><title>x",
                          headers={"Content-Type": "application/rss+xml"})
    feed_server.set_route("/missing.xml", status=404, body=b"not here")
    closed_port = FeedServer()
    closed_port.start()
    dead_url = closed_port.url("/feed.xml")
    closed_port.stop()
    bad = [feed_server.url("/missing.xml"), feed_server.url("/html"), feed_server.url("/broken.xml"), dead_url]
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": u} for u in [*bad, feed_server.url("/wire.xml")]],
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"]}],
    ))
    result = cli("poll", "--once")
    assert "polled 5 feeds (4 failed" in result.stdout
    for url in bad:
        assert url in result.stderr, url
    assert {h["link"] for h in hits(cli)} == {item["link"] for item in RELEVANT}
    listing = cli("feeds", "list", "--format", "jsonl").stdout
    rows = {row["url"]: row for row in map(json.loads, listing.splitlines())}
    for url in bad:
        assert rows[url]["error_count"] == 1 and rows[url]["last_error"], url
    assert rows[feed_server.url("/missing.xml")]["last_status"] == 404
    assert rows[feed_server.url("/wire.xml")]["last_error"] is None


def test_refusing_smtp_server_keeps_the_digest_until_it_accepts(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    smtp_server.refuse_with = "451 4.3.0 try again later"
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"]}],
        smtp={"host": smtp_server.host, "port": smtp_server.port, "from": "monitor@example.org", "security": "none"},
        delivery_retry={"first_delay": "0s"},
    ))
    cli("poll", "--once")
    refused = cli("deliver", "--once")
    assert "1 to retry" in refused.stdout and f"SMTP 127.0.0.1:{smtp_server.port}" in refused.stdout
    assert "last error" in cli("deliveries", "list").stdout
    smtp_server.refuse_with = None
    assert "1 sent" in cli("deliver", "--once").stdout
    [envelope] = smtp_server.messages
    body = text_part(envelope)
    assert all(body.count(item["link"]) == 1 for item in RELEVANT)


def test_config_with_a_wrong_key_fails_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.yaml", feedz=[])
    result = Cli(config)("poll", "--once", check=False)
    assert result.returncode == 2
    assert f"{config}: key 'feedz': unknown key" in result.stderr


def test_database_unreachable_is_a_failed_cycle(tmp_path: Path) -> None:
    config = write_config(tmp_path / "monitor.yaml",
                          database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    result = Cli(config)("poll", "--once", check=False)
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr


def test_run_once_on_the_default_config_writes_one_digest_then_none(tmp_path: Path) -> None:
    shutil.copy(ROOT / "monitor.yaml", tmp_path / "monitor.yaml")
    shutil.copytree(ROOT / "watchlists", tmp_path / "watchlists")
    cli = Cli(tmp_path / "monitor.yaml")
    first = cli("run", "--once")
    assert "feeds polled: 1 (0 failed" in first.stdout
    assert "new items: 20" in first.stdout
    assert "digests written: 1" in first.stdout
    [eml] = sorted((tmp_path / "outbox").glob("*.eml"))
    assert str(eml) in first.stdout
    message = email.message_from_bytes(eml.read_bytes(), policy=default)
    assert message["To"] == "analysts@example.org"
    assert "news.example.org" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    second = cli("run", "--once")
    assert "new items: 0" in second.stdout
    assert "digests written: 0 (nothing new since the last run)" in second.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_recipient_refused_for_good_goes_dead_at_once(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    smtp_server.refuse_with = "550 5.1.1 no such user"
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["nobody@example.org"]}],
        smtp={"host": smtp_server.host, "port": smtp_server.port, "from": "monitor@example.org", "security": "none"},
    ))
    cli("poll", "--once")
    assert "1 dead" in cli("deliver", "--once").stdout
    listing = cli("deliveries", "list", "--status", "dead").stdout
    assert "550" in listing


def test_slack_webhook_gets_block_kit_with_feed_markup_made_inert(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    # Escaped twice in the XML, so the item text itself reads "<!channel> …" after HTML-to-text.
    hostile = dict(RELEVANT[0], title="&amp;lt;!channel&amp;gt; " + RELEVANT[0]["title"])
    feed_server.set_route("/wire.xml", body=rss([hostile, *RELEVANT[1:]]),
                          headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "chat", "watchlists": ALL_LISTS, "schedule": "immediate",
                        "webhook": {"url": webhook_receiver.url, "format": "slack"}}],
    ))
    cli("poll", "--once")
    assert "1 sent" in cli("deliver", "--once").stdout
    [request] = webhook_receiver.requests
    body = request.json()
    assert body["blocks"]
    raw = request.body.decode()
    assert "<!channel>" not in raw and "&lt;!channel&gt;" in raw
    for item in RELEVANT:
        assert raw.count(item["link"]) == 1


WIRE = {"title": "Chinese delegation led by Zhao Leji arrives in Pyongyang",
        "link": "http://wire.test/zhao-leji",
        "summary": "A Chinese party and government delegation led by Zhao Leji, chairman of the NPC Standing "
                   "Committee, arrived in Pyongyang on Thursday for talks with Kim Jong Un, state media said, "
                   "opening a year of friendship events between China and North Korea."}
REWRITE = {"title": "China's top legislator Zhao Leji lands in Pyongyang",
           "link": "http://outlet.test/zhao-leji-lands",
           "summary": "A Chinese party and government delegation led by Zhao Leji, chairman of the NPC Standing "
                      "Committee, arrived in Pyongyang on Thursday for talks with Kim Jong Un, state media said, "
                      "opening a year of friendship events between the two countries."}


def test_one_story_from_two_outlets_alerts_once_and_a_late_report_follows_up(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    feed_server.set_route("/a.xml", body=rss([WIRE]), headers={"Content-Type": "application/rss+xml"})
    feed_server.set_route("/b.xml", body=rss([REWRITE]), headers={"Content-Type": "application/rss+xml"})
    late = dict(REWRITE, link="http://third.test/zhao", title="Zhao Leji in Pyongyang for friendship year talks")
    feed_server.set_route("/c.xml", body=rss([]), headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(
        tmp_path / "monitor.yaml",
        feeds=[{"url": feed_server.url(p), "name": n} for p, n in
               [("/a.xml", "Wire A"), ("/b.xml", "Outlet B"), ("/c.xml", "Third C")]],
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"]}],
        smtp={"host": smtp_server.host, "port": smtp_server.port, "from": "monitor@example.org", "security": "none"},
    ))
    cli("poll", "--once")
    cli("deliver", "--once")
    [first] = smtp_server.messages
    body = text_part(first)
    assert body.count(WIRE["link"]) == 1 and body.count(REWRITE["link"]) == 1
    assert "1 new item" in body and "Also reported by" in body

    feed_server.set_route("/c.xml", body=rss([late]), headers={"Content-Type": "application/rss+xml"})
    cli("poll", "--once", "--all")
    cli("deliver", "--once")
    _, second = smtp_server.messages
    follow = text_part(second)
    assert follow.count(late["link"]) == 1 and "Follow-up" in follow
    assert WIRE["link"] not in follow and REWRITE["link"] not in follow
