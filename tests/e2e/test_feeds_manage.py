"""Feeds added, paused, resumed and removed from the command line; config feeds stay the config's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import RELEVANT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer

RSS = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def page(*links: tuple[str, str]) -> bytes:
    tags = "".join(f'<link rel="alternate" type="{kind}" title="Wire" href="{href}">' for href, kind in links)
    return (f"<!doctype html><html><head><title>News</title>{tags}</head><body><p>News</p></body></html>").encode()


def listing(cli: Cli) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = [json.loads(line) for line in cli("feeds", "list", "--format", "jsonl").stdout.splitlines()]
    return {row["url"]: row for row in rows}


def test_feeds_add_finds_a_pages_feed_and_pause_resume_remove_manage_it(tmp_path: Path,
                                                                         feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers=RSS)
    feed_server.set_route("/news/", body=page(("/wire.xml", "application/rss+xml")), headers=HTML)
    cli = Cli(write_config(tmp_path / "monitor.yaml"))
    wire = feed_server.url("/wire.xml")

    added = cli("feeds", "add", feed_server.url("/news/"), "--name", "Loopback wire", "--interval", "30m")
    assert added.stdout.splitlines() == [
        f"{feed_server.url('/news/')} is a web page; it names the feed {wire}: adding that",
        f"added feed {wire} (polled every 30 min from the next cycle)",
    ]
    row = listing(cli)[wire]
    assert (row["origin"], row["name"], row["active"], row["paused"]) == ("cli", "Loopback wire", True, False)
    assert "3 new items" in cli("poll", "--once").stdout
    assert cli("feeds", "add", wire).stdout.strip() == f"{wire} is already a feed; nothing changed"

    assert cli("feeds", "pause", wire).stdout.strip() == f"paused feed {wire}"
    assert listing(cli)[wire]["paused"] is True
    assert "polled 0 feeds" in cli("poll", "--once", "--all").stdout
    assert f"{wire}" in cli("feeds", "list").stdout and "paused" in cli("feeds", "list").stdout
    assert cli("feeds", "resume", wire).stdout.strip() == f"resumed feed {wire}: polled at the next cycle"
    assert "polled 1 feeds" in cli("poll", "--once").stdout

    assert cli("feeds", "remove", wire).stdout.strip() == f"removed feed {wire} (its items and hits are kept)"
    assert wire not in listing(cli)
    assert "polled 0 feeds" in cli("poll", "--once", "--all").stdout
    assert len(cli("hits", "--format", "jsonl").stdout.splitlines()) == 3  # kept
    assert cli("feeds", "add", wire).stdout.startswith(f"restored feed {wire}")
    assert listing(cli)[wire]["active"] is True

    gone = cli("feeds", "remove", feed_server.url("/nothing.xml"), check=False)
    assert gone.returncode == 2
    assert gone.stderr.strip() == (f"monitor: no feed with URL {feed_server.url('/nothing.xml')} "
                                   "('monitor feeds list' shows them)")


def test_config_feeds_stay_config_owned(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers=RSS)
    wire = feed_server.url("/wire.xml")
    config = write_config(tmp_path / "monitor.yaml", feeds=[{"url": wire}])
    cli = Cli(config)
    cli("poll", "--once")
    for command in ("pause", "resume", "remove"):
        refused = cli("feeds", command, wire, check=False)
        assert refused.returncode == 2, command
        assert refused.stderr.strip() == (f"monitor: {wire} comes from the config file {config}; config feeds stay "
                                          "config-owned: change or delete its entry there")
    assert listing(cli)[wire]["active"] is True


def test_feeds_add_refuses_what_is_not_a_feed(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/two/", body=page(("/a.xml", "application/rss+xml"), ("/b.json", "application/feed+json")),
                          headers=HTML)
    feed_server.set_route("/plain/", body=b"<html><body>no feed here</body></html>", headers=HTML)
    feed_server.set_route("/missing.xml", status=404, body=b"not here")
    cli = Cli(write_config(tmp_path / "monitor.yaml"))

    two = cli("feeds", "add", feed_server.url("/two/"), check=False)
    assert two.returncode == 2
    assert two.stderr.splitlines() == [
        f"monitor: {feed_server.url('/two/')} is a web page naming 2 feeds; add one of them:",
        f"  {feed_server.url('/a.xml')}  (Wire)",
        f"  {feed_server.url('/b.json')}  (Wire)",
    ]
    plain = cli("feeds", "add", feed_server.url("/plain/"), check=False)
    assert plain.returncode == 2
    assert plain.stderr.strip() == (f"monitor: {feed_server.url('/plain/')} is not a feed and names no feed "
                                    '(no <link rel="alternate"> to RSS, Atom or JSON Feed)')
    missing = cli("feeds", "add", feed_server.url("/missing.xml"), check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"monitor: cannot add {feed_server.url('/missing.xml')}: ")
    local = cli("feeds", "add", "file:///etc/passwd", check=False)
    assert local.returncode == 2 and local.stderr.startswith("monitor: cannot add file:///etc/passwd: ")
    interval = cli("feeds", "add", feed_server.url("/plain/"), "--interval", "often", check=False)
    assert interval.returncode == 2 and interval.stderr.startswith("monitor: --interval: ")
    assert listing(cli) == {}
