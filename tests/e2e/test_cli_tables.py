"""Listings for people are tables with a header row and the feed's name; reading commands leave the database be."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import RELEVANT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer

RSS = {"Content-Type": "application/rss+xml"}


def test_feeds_list_and_hits_are_tables_with_names_and_times_to_the_second(tmp_path: Path,
                                                                          feed_server: FeedServer) -> None:
    marked = [dict(RELEVANT[0], title="[bold]Chinese delegation[/bold] led by Zhao Leji arrives in Pyongyang")]
    feed_server.set_route("/wire.xml", body=rss(marked + RELEVANT[1:]), headers=RSS)
    cli = Cli(write_config(tmp_path / "monitor.yaml",
                           feeds=[{"url": feed_server.url("/wire.xml"), "name": "Loopback wire"}]))
    cli("poll", "--once")

    feeds = cli("feeds", "list").stdout.splitlines()
    assert feeds[0].split()[:4] == ["id", "name", "state", "http"]
    assert "Loopback wire" in feeds[2] and feed_server.url("/wire.xml") in feeds[2]
    assert "." not in feeds[2].split("Loopback wire")[1].split("http://")[0]  # no microseconds in the times

    hits = cli("hits").stdout
    assert hits.splitlines()[0].split() == ["id", "watchlist", "score", "published", "feed", "title"]
    assert "Loopback wire" in hits
    assert "[bold]Chinese delegation[/bold]" in hits  # markup in a title is shown as it is, never interpreted


def test_reading_commands_neither_migrate_nor_sync_the_config(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set_route("/wire.xml", body=rss(RELEVANT), headers=RSS)
    config = write_config(tmp_path / "monitor.yaml", feeds=[{"url": feed_server.url("/wire.xml")}])
    cli = Cli(config)
    assert cli("feeds", "list").stdout == ""  # nothing stored yet: an empty listing, not an error
    assert cli("feeds", "export").stdout.count("<outline") == 0
    cli("db", "upgrade")
    assert cli("feeds", "list").stdout == ""  # the config's feed is synced by the commands that write
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("SELECT count(*) FROM feeds").fetchone() == (0,)
    cli("poll", "--once")
    assert feed_server.url("/wire.xml") in cli("feeds", "list").stdout
