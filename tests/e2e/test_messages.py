"""What subscribers receive, read back the way their clients read it: real SMTP, real webhooks, the CLI."""

from __future__ import annotations

import email
import json
import re
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from monitor.deliver.tokens import verify_token
from tests.conftest import SmtpServer, WebhookReceiver
from tests.e2e.conftest import RELEVANT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer

ALL_LISTS = ["delegation_visits", "anniversaries", "defense_treaties"]
TREATY = RELEVANT[2]
UNSUBSCRIBE_SECRET = "a-long-random-unsubscribe-signing-secret"
HOOK_SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def smtp(server: SmtpServer) -> dict[str, object]:
    return {"host": server.host, "port": server.port, "from": "monitor@example.org", "security": "none"}


def parsed(envelope: object) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content, policy=default)  # type: ignore[attr-defined,return-value]


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def html_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr,no-any-return]


def test_list_unsubscribe_reaches_the_mail_client_as_a_url(tmp_path: Path, feed_server: FeedServer,
                                                           smtp_server: SmtpServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    base = "https://monitor.example.org/a-rather-long-path-prefix-for-the-public-endpoints"
    cli = Cli(write_config(
        tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}], smtp=smtp(smtp_server),
        base_url=base, unsubscribe_secret=UNSUBSCRIBE_SECRET,
        subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["analyst.with.a.long.name@example.org"]}],
    ))
    cli("poll", "--once")
    assert "1 sent" in cli("deliver", "--once").stdout
    [envelope] = smtp_server.messages
    raw_head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in raw_head.split(b"List-Unsubscribe:", 1)[1].split(b"\r\nList-Unsubscribe-Post")[0]
    message = parsed(envelope)
    value = str(message["List-Unsubscribe"])
    assert value.startswith("<") and value.endswith(">")
    url = urlsplit(value[1:-1])
    assert (url.scheme, url.netloc) == ("https", "monitor.example.org")
    assert url.path.startswith("/a-rather-long-path-prefix-for-the-public-endpoints/unsubscribe/")
    token = url.path.rsplit("/", 1)[1]
    found = verify_token(UNSUBSCRIBE_SECRET.encode(), token, now=datetime.now(UTC))
    assert found is not None and found.subscription == "desk"
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_a_digest_names_every_followed_list_zoned_times_one_spelling_and_the_words_of_the_item(
    tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    feed_server.set_route("/wire.xml", body=rss([TREATY]), headers={"Content-Type": "application/rss+xml"})
    config = tmp_path / "monitor.yaml"
    sub = {"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"], "timezone": "Asia/Seoul"}
    cli = Cli(write_config(config, feeds=[{"url": feed_server.url("/wire.xml")}], smtp=smtp(smtp_server),
                           subscriptions=[sub]))
    cli("poll", "--once")
    cli("deliver", "--once")
    message = parsed(smtp_server.messages[0])
    text = text_of(message)
    # The footer names all three lists, though only one had a hit.
    footer = text.rsplit("--", 1)[1]
    for title in ("DPRK–China/Russia delegations", "Anniversaries tying the DPRK", "defence treaties"):
        assert title in footer, (title, footer)
    # Times carry their zone.
    assert re.search(r"· \d{4}-\d\d-\d\d \d\d:\d\d KST", text), text
    # One spelling (en-GB by default) in everything monitor writes; the item's own words are quoted.
    own = text.replace(TREATY["title"], "").replace(TREATY["summary"], "").replace(TREATY["link"], "")
    assert "defense" not in own.lower() and "defence" in own.lower()
    assert "defense" not in str(message["Subject"]).lower()
    # Evidence shows the words as the item has them, not the stems the list matches with.
    why = next(line for line in text.splitlines() if line.strip().startswith("Why"))
    assert "ratifies" in why and not re.search(r"\bratif\b", why), why

    write_config(config, feeds=[{"url": feed_server.url("/wire.xml")}], smtp=smtp(smtp_server),
                 subscriptions=[{**sub, "language": "en-US"}])
    preview = cli("digest", "preview", "desk").stdout  # nothing pending: an example in the subscription's spelling
    own = preview.replace(TREATY["title"], "").replace(TREATY["summary"], "")
    assert "defence" not in own.lower() and "defense" in own.lower()


def test_dark_mode_leaves_no_dark_inline_colour_on_the_dark_card(tmp_path: Path, feed_server: FeedServer,
                                                                   smtp_server: SmtpServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}],
                           smtp=smtp(smtp_server), coming_up_days=366,
                           subscriptions=[{"name": "desk", "watchlists": ALL_LISTS, "email": ["d@example.org"]}]))
    cli("poll", "--once")
    cli("deliver", "--once")
    html = html_of(parsed(smtp_server.messages[0]))
    dark_rules = html.split("@media (prefers-color-scheme: dark)", 1)[1].split("</style>", 1)[0]
    overridden = set(re.findall(r"\.([a-z]+) \{[^}]*color:", dark_rules))
    # Every element that sets a text colour inline carries a class the dark palette overrides.
    for tag in re.findall(r"<[a-z]+ [^>]*style=\"[^\"]*(?<![-a-z])color:[^\"]*\"[^>]*>", html):
        classes = set(re.search(r'class="([^"]*)"', tag).group(1).split()) if 'class="' in tag else set()
        assert classes & overridden, tag


def test_a_later_report_of_a_story_already_sent_is_a_follow_up_naming_the_story(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_route("/first.xml", body=rss([TREATY]), headers={"Content-Type": "application/rss+xml"})
    later = {**TREATY, "link": "http://other.test/news/duma-treaty",
             "title": "Russia ratifies mutual defence treaty with North Korea, Duma says"}
    feed_server.set_route("/second.xml", body=rss([]), headers={"Content-Type": "application/rss+xml"})
    config = tmp_path / "monitor.yaml"
    feeds = [{"url": feed_server.url("/first.xml"), "name": "First wire"},
             {"url": feed_server.url("/second.xml"), "name": "Second wire", "alert_window": "7d"}]
    cli = Cli(write_config(config, feeds=feeds, subscriptions=[
        {"name": "team", "watchlists": ALL_LISTS, "webhook": {"url": webhook_receiver.url, "format": "json"}}]))
    cli("poll", "--once")
    cli("deliver", "--once")
    feed_server.set_route("/second.xml", body=rss([later]), headers={"Content-Type": "application/rss+xml"})
    cli("poll", "--once", "--all")
    cli("deliver", "--once")
    first, second = (request.json() for request in webhook_receiver.requests)
    [lead] = first["items"]
    assert lead["link"] == TREATY["link"] and lead["follow_up"] is False
    [follow] = second["items"]
    assert follow["link"] == later["link"] and follow["follow_up"] is True
    assert follow["follow_up_of"] == {"item_id": lead["item_id"], "title": TREATY["title"],
                                      "link": TREATY["link"], "source": "First wire"}


def test_notify_test_sends_a_marked_message_through_the_real_transports(
    tmp_path: Path, smtp_server: SmtpServer, webhook_receiver: WebhookReceiver
) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml", smtp=smtp(smtp_server), subscriptions=[
        {"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"]},
        {"name": "team", "watchlists": ["defense_treaties"],
         "webhook": {"url": webhook_receiver.url, "format": "json", "secret": HOOK_SECRET}},
    ]))
    sent = cli("notify", "test", "desk")
    assert sent.stdout.strip() == f"test message for desk sent: SMTP {smtp_server.host}:{smtp_server.port}"
    [envelope] = smtp_server.messages
    message = parsed(envelope)
    assert envelope.rcpt_tos == ["desk@example.org"]
    assert str(message["Subject"]).startswith("[monitor] TEST: ")
    assert "TEST MESSAGE from monitor for the subscription desk: not an alert" in text_of(message)

    assert cli("notify", "test", "team").stdout.startswith("test message for team sent: ")
    [request] = webhook_receiver.requests
    payload = Webhook(HOOK_SECRET).verify(request.body, request.headers)
    assert payload["type"] == "monitor.test" and payload["test"] is True and payload["subscription"] == "team"
    # A test is not a delivery: the outbox stays empty and nothing is retried.
    assert cli("deliveries", "list").stdout == ""

    refused = cli("notify", "test", "nobody", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("monitor: no subscription named 'nobody' in the configuration; the "
                                      "subscriptions are: desk, team")
    smtp_server.refuse_with = "550 no such user"
    failed = cli("notify", "test", "desk", check=False)
    assert failed.returncode == 1 and failed.stderr.startswith("monitor: test message to desk failed: SMTP ")


def test_digest_preview_with_nothing_pending_renders_an_example(tmp_path: Path, webhook_receiver: WebhookReceiver
                                                                ) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml", subscriptions=[
        {"name": "desk", "watchlists": ALL_LISTS, "email": ["desk@example.org"]},
        {"name": "team", "watchlists": ["defense_treaties"], "webhook": {"url": webhook_receiver.url}},
    ]))
    html = tmp_path / "preview.html"
    shown = cli("digest", "preview", "desk", "--html", str(html)).stdout
    assert shown.startswith("nothing pending for desk: no undelivered hits. An example of its messages follows")
    assert "Subject: [monitor] EXAMPLE: 3 new items" in shown
    assert "Example entry for DPRK–China/Russia defence treaties" in shown
    assert "EXAMPLE of the messages of desk" in html.read_text(encoding="utf-8")
    hook = cli("digest", "preview", "team").stdout
    body = json.loads(hook.split("\n", 2)[2])
    assert body["type"] == "monitor.digest" and body["items"][0]["watchlists"] == ["defense_treaties"]
    assert not webhook_receiver.requests
