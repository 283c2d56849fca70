"""Operator mistakes are refused with one clear line, never swallowed; watchlist changes reach stored items."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import WebhookReceiver
from tests.e2e.conftest import IRRELEVANT, RELEVANT, ROOT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer

ALL_LISTS = ["delegation_visits", "anniversaries", "defense_treaties"]
TREATY = RELEVANT[2]

CUSTOM = """\
kind: watchlist
name: custom
title: A list edited in place
version: 1
severity: low
cues:
  act: ["{cue}"]
rules:
  - id: r1
    all:
      - side: dprk
      - side: [china, russia]
      - cue: act
"""


def copy_watchlists(tmp_path: Path, *, without: tuple[str, ...] = ()) -> Path:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    for name in without:
        (folder / name).unlink()
    return folder


def links_sent(receiver: WebhookReceiver) -> list[list[str]]:
    return [[item["link"] for item in request.json()["items"]] for request in receiver.requests]


def one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal: exit 2, no traceback, one line on stderr (returned)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- config -----------------------------------------------------------------------------------


def test_a_subscription_naming_an_unknown_watchlist_is_refused_at_start(tmp_path: Path,
                                                                         feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(
        tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "desk", "watchlists": ["delegation_visit", "anniversaries"],
                        "email": ["desk@example.org"]}],
    ))
    for command in (["poll", "--once"], ["deliver", "--once"], ["run", "--once"], ["run"]):
        line = one_line_refusal(cli(*command, check=False))
        assert line == (f"monitor: subscription 'desk' follows watchlist 'delegation_visit', which does not exist "
                        f"in {ROOT / 'watchlists'}; the watchlists are: anniversaries, defense_treaties, "
                        "delegation_visits"), command
    assert not feed_server.requests  # refused before anything was fetched


def test_without_a_config_file_it_says_where_it_looked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    for command in (["hits"], ["poll", "--once"], ["feeds", "list"]):
        result = subprocess.run([sys.executable, "-m", "monitor", *command], capture_output=True, text=True,
                                cwd=tmp_path, env=env, timeout=60)
        line = one_line_refusal(result)
        assert line == (f"monitor: no config found: looked for monitor.yaml in {tmp_path}; pass --config FILE or "
                        "set MONITOR_CONFIG (copy deploy/monitor.example.yaml to start)")
    assert not (tmp_path / "var").exists()  # no database created behind the operator's back


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_as_hosting_services_write_them(tmp_path: Path, feed_server: FeedServer, scheme: str) -> None:
    import uuid

    import sqlalchemy as sa

    from tests.conftest import PG_ADMIN_URL, pg_admin_or_skip

    admin = pg_admin_or_skip()
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{scheme}://" + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
        feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
        cli = Cli(write_config(tmp_path / "monitor.yaml", database_url=url,
                               feeds=[{"url": feed_server.url("/wire.xml")}]))
        assert "database at revision" in cli("db", "upgrade").stdout
        assert "3 new items" in cli("poll", "--once").stdout
        assert len(cli("hits", "--format", "jsonl").stdout.splitlines()) >= 3
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_an_unusable_sqlite_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be\n")
    cli = Cli(write_config(tmp_path / "monitor.yaml", database_url=f"sqlite:///{blocker / 'monitor.db'}"))
    for command in (["poll", "--once"], ["hits"], ["db", "upgrade"], ["status"]):
        result = cli(*command, check=False)
        assert result.returncode == 1, command
        assert "Traceback" not in result.stderr
        [line] = [line for line in result.stderr.splitlines() if line.strip()]
        assert line.startswith(f"monitor: cannot use {blocker} as the database folder"), line


def test_a_database_url_monitor_cannot_use_is_one_line_without_its_password(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    for url, shown in (("mysql://user:pw-s3cret@db/monitor", "mysql://***@db/monitor"),
                       ("nonsense-pw-s3cret", "(no scheme://)")):
        result = cli("hits", check=False, env={"MONITOR_DATABASE_URL": url})
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith(f"monitor: database_url {shown}: not a database"), line
        assert "s3cret" not in line


def test_read_only_commands_run_without_the_delivery_secrets(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(
        tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}],
        smtp={"host": "127.0.0.1", "port": 1, "from": "monitor@example.org", "password": "env:TEST_SMTP_PASSWORD"},
        subscriptions=[{"name": "team", "watchlists": ALL_LISTS,
                        "webhook": {"url": "http://127.0.0.1:1/hook", "secret": "env:TEST_HOOK_SECRET"}}],
    ))
    cli("poll", "--once")  # polling sends nothing: no secret needed
    assert len(cli("hits", "--format", "jsonl").stdout.splitlines()) == 3
    assert feed_server.url("/wire.xml") in cli("feeds", "list").stdout
    status = cli("status", check=False)
    assert "TEST_" not in status.stderr + status.stdout and "database:" in status.stdout
    line = one_line_refusal(cli("deliver", "--once", check=False))
    assert line == "monitor: key 'smtp.password': environment variable TEST_SMTP_PASSWORD is not set"
    line = one_line_refusal(cli("deliver", "--once", check=False, env={"TEST_SMTP_PASSWORD": "x"}))
    assert line == ("monitor: key 'subscriptions.team.webhook.secret': environment variable TEST_HOOK_SECRET "
                    "is not set")


def test_an_environment_override_error_names_the_variable(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    line = one_line_refusal(cli("hits", check=False, env={"MONITOR_POLL_INTERVAL": "soon"}))
    assert line == ("monitor: environment variable MONITOR_POLL_INTERVAL: 'soon' is not a duration; "
                    "write e.g. 30s, 15m, 24h or 7d")
    line = one_line_refusal(cli("hits", check=False, env={"MONITOR_SMTP": "{host: mail"}))
    assert line == ("monitor: environment variable MONITOR_SMTP: expected JSON (an object for a key with nested "
                    "values, a list for a list)")
    line = one_line_refusal(cli("hits", check=False, env={"MONITOR_ALLOW_PRIVATE_NETWORKS": "maybe"}))
    assert line.startswith("monitor: environment variable MONITOR_ALLOW_PRIVATE_NETWORKS: ")
    assert str(tmp_path) not in line


# --- wrong values -----------------------------------------------------------------------------


def test_wrong_values_are_refused(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    cli = Cli(write_config(tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}]))
    cli("poll", "--once")
    assert one_line_refusal(cli("anniversaries", "--upcoming", "3m", check=False)) == (
        "monitor: --upcoming '3m': write the window in days or weeks, e.g. 90d or 12w "
        "(m and h are not calendar units here)")
    assert "2025-" in cli("anniversaries", "--upcoming", "52w", "--today", "2025-01-01").stdout
    assert one_line_refusal(cli("hits", "--watchlist", "nosuch", check=False)) == (
        "monitor: --watchlist 'nosuch': no such watchlist; the watchlists are: anniversaries, defense_treaties, "
        "delegation_visits")
    assert cli("hits", "--watchlist", "defense_treaties").stdout.strip()
    assert one_line_refusal(cli("deliveries", "list", "--status", "bogus", check=False)) == (
        "monitor: --status 'bogus': write one of pending, sent, dead")
    cli("deliveries", "list", "--status", "dead")


def test_opml_entries_that_are_not_http_urls_are_counted_and_named(tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="Good" xmlUrl="https://news.example.org/rss"/>'
        '<outline text="Local" xmlUrl="file:///etc/passwd"/>'
        '<outline text="Script" xmlUrl="javascript:alert(1)"/>'
        '<outline text="Relative" xmlUrl="feeds/rss.xml"/>'
        "</body></opml>", encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    result = cli("feeds", "import", str(opml))
    assert result.stdout.strip() == f"imported 1 feeds (0 already known, 3 refused) from {opml}"
    assert result.stderr.splitlines() == [
        f"monitor: {opml}: refused 3 entries:",
        "  refused file:///etc/passwd: not an http(s) URL (file: URLs are refused)",
        "  refused javascript:alert(1): not an http(s) URL (javascript: URLs are refused)",
        "  refused feeds/rss.xml: not an http(s) URL (no scheme)",
    ]


def test_flags_show_no_type_in_help(tmp_path: Path) -> None:
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    for command in (["poll"], ["deliver"], ["run"], ["prune"], ["deliveries", "retry"], ["match"]):
        shown = cli(*command, "--help").stdout
        assert "<bool>" not in shown, command
    assert "<int>" in cli("deliveries", "retry", "--help").stdout or "INTEGER" in cli("deliveries", "retry",
                                                                                    "--help").stdout


# --- watchlists: broken, missing, fixed, edited, added -----------------------------------------


def test_a_broken_or_missing_watchlist_stops_one_shot_commands(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    folder = copy_watchlists(tmp_path)
    broken = folder / "defense_treaties.yaml"
    good = broken.read_text(encoding="utf-8")
    broken.write_text(good.replace("rules:", "rules: [", 1), encoding="utf-8")
    cli = Cli(write_config(tmp_path / "monitor.yaml", watchlists_dir=str(folder),
                           feeds=[{"url": feed_server.url("/wire.xml")}]))
    for command in (["poll", "--once"], ["run", "--once"], ["deliver", "--once"], ["rematch"]):
        result = cli(*command, check=False)
        assert result.returncode == 2, command
        assert f"monitor: watchlist error: {broken}:" in result.stderr
        assert result.stderr.rstrip().endswith(
            f"monitor: the watchlists in {folder} have errors; fix them ('monitor watchlists validate' lists "
            "them) and run again")
    assert not feed_server.requests

    shutil.rmtree(folder)
    result = cli("poll", "--once", check=False)
    assert result.returncode == 2
    assert f"monitor: watchlist error: {folder}: cannot read watchlist folder" in result.stderr


def test_items_stored_while_a_watchlist_was_missing_are_matched_once_it_is_added(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT + IRRELEVANT),
                          headers={"Content-Type": "application/rss+xml"})
    folder = copy_watchlists(tmp_path, without=("defense_treaties.yaml",))
    config = tmp_path / "monitor.yaml"
    sub = {"name": "team", "watchlists": ["delegation_visits", "anniversaries"], "schedule": "immediate",
           "webhook": {"url": webhook_receiver.url, "format": "json"}}
    cli = Cli(write_config(config, watchlists_dir=str(folder), feeds=[{"url": feed_server.url("/wire.xml")}],
                           subscriptions=[sub]))
    cli("poll", "--once")
    assert "1 sent" in cli("deliver", "--once").stdout
    [first] = links_sent(webhook_receiver)
    assert TREATY["link"] not in first

    shutil.copy(ROOT / "watchlists" / "defense_treaties.yaml", folder)
    write_config(config, watchlists_dir=str(folder), feeds=[{"url": feed_server.url("/wire.xml")}],
                 subscriptions=[{**sub, "watchlists": ALL_LISTS}])
    polled = cli("poll", "--once")  # nothing new on the feed: the stored items meet the added list
    assert "0 new items" in polled.stdout and "defense_treaties 1" in polled.stdout
    assert "1 sent" in cli("deliver", "--once").stdout
    _first, second = links_sent(webhook_receiver)
    assert second == [TREATY["link"]]
    # Matched once: nothing more on the next cycles, and nothing already sent goes out again.
    assert "hits: no hits" in cli("poll", "--once", "--all").stdout
    assert "nothing new to deliver" in cli("deliver", "--once").stdout
    assert len(webhook_receiver.requests) == 2


def test_items_stored_by_the_daemon_while_a_watchlist_was_broken_are_matched_once_it_is_fixed(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    folder = copy_watchlists(tmp_path)
    treaties = folder / "defense_treaties.yaml"
    good = treaties.read_text(encoding="utf-8")
    treaties.write_text(good.replace("rules:", "rules: [", 1), encoding="utf-8")
    cli = Cli(write_config(
        tmp_path / "monitor.yaml", watchlists_dir=str(folder), feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "team", "watchlists": ALL_LISTS, "schedule": "immediate",
                        "webhook": {"url": webhook_receiver.url, "format": "json"}}],
    ))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(cli.config), "run"], cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for(lambda: len(webhook_receiver.requests) >= 1, daemon)  # the daemon runs on the good lists
    finally:
        daemon.terminate()
        _out, log = daemon.communicate(timeout=60)
    assert "watchlist invalid" in log and "defense_treaties.yaml" in log
    assert all(TREATY["link"] not in links for links in links_sent(webhook_receiver))

    treaties.write_text(good, encoding="utf-8")  # fixed
    assert "defense_treaties 1" in cli("poll", "--once").stdout
    cli("deliver", "--once")
    assert links_sent(webhook_receiver)[-1] == [TREATY["link"]]


def _wait_for(condition: object, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        if process.poll() is not None:
            raise AssertionError(f"the daemon exited: {process.communicate()}")
        time.sleep(0.2)
    raise AssertionError("the daemon did not deliver in time")


def test_an_edited_watchlist_is_applied_to_stored_items_once_and_rematch_does_it_by_hand(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver
) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    folder = copy_watchlists(tmp_path)
    custom = folder / "custom.yaml"
    custom.write_text(CUSTOM.format(cue="visitz*"), encoding="utf-8")
    cli = Cli(write_config(
        tmp_path / "monitor.yaml", watchlists_dir=str(folder), feeds=[{"url": feed_server.url("/wire.xml")}],
        subscriptions=[{"name": "team", "watchlists": ["custom"], "schedule": "immediate",
                        "webhook": {"url": webhook_receiver.url, "format": "json"}}],
    ))
    assert "custom" not in cli("poll", "--once").stdout
    custom.write_text(CUSTOM.format(cue="ratif*"), encoding="utf-8")  # edited, same version string
    assert "custom 1" in cli("poll", "--once").stdout
    cli("deliver", "--once")
    assert links_sent(webhook_receiver) == [[TREATY["link"]]]
    listed = cli("hits", "--format", "jsonl", "--watchlist", "custom").stdout
    stored = [json.loads(line) for line in listed.splitlines()]
    assert [h["link"] for h in stored] == [TREATY["link"]]

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    by_hand = cli("rematch", "--since", today, "--watchlist", "custom")
    assert by_hand.stdout.strip() == (f"matched 3 stored items fetched since {today} 00:00 UTC against custom: "
                                      "0 new hits")
    assert "nothing new to deliver" in cli("deliver", "--once").stdout
    assert one_line_refusal(cli("rematch", "--watchlist", "nosuch", check=False)) == (
        "monitor: --watchlist 'nosuch': no such watchlist; the watchlists are: anniversaries, custom, "
        "defense_treaties, delegation_visits")
    assert one_line_refusal(cli("rematch", "--since", "last week", check=False)) == (
        "monitor: --since 'last week': write a date as YYYY-MM-DD")


def test_rematch_by_hand_finds_what_a_new_list_would_have_caught(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    folder = copy_watchlists(tmp_path)
    cli = Cli(write_config(tmp_path / "monitor.yaml", watchlists_dir=str(folder),
                           feeds=[{"url": feed_server.url("/wire.xml")}]))
    cli("poll", "--once")
    (folder / "custom.yaml").write_text(CUSTOM.format(cue="ratif*"), encoding="utf-8")
    result = cli("rematch", "--watchlist", "custom")
    assert result.stdout.strip().endswith("against custom: 1 new hits (custom 1)")
    assert "0 new hits" in cli("rematch", "--watchlist", "custom").stdout
