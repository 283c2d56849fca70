"""Polling and matching: the matcher runs with no write lock held; broken watchlist edits never stop polling."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from monitor import store
from monitor.config import FeedConfig, Settings
from monitor.db import read_scope
from monitor.domain import Document, Match
from monitor.match import Matcher
from monitor.pipeline import Context, WatchlistSource, open_context, poll_cycle
from tests.e2e.conftest import IRRELEVANT, RELEVANT, rss
from tests.helpers.feed_server import FeedServer, RecordedRequest, Route

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def context(tmp_path: Path, urls: list[str], watchlists: Path = ROOT / "watchlists",
            parse_processes: int = 0) -> Context:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", watchlists_dir=watchlists, outbox_dir=tmp_path / "outbox",
        feeds=[FeedConfig(url=u, alert_window="3650d") for u in urls], allowed_networks=["127.0.0.0/8"],
        parse_processes=parse_processes,
    )
    return open_context(settings, now=datetime.now(UTC))


class LockProbe:
    """Wraps the real matcher; on every item, checks from a second real connection whether the
    database's write lock is free at that moment."""

    def __init__(self, matcher: Matcher, db: Path) -> None:
        self.matcher, self.db = matcher, db
        self.lock_free: list[bool] = []

    def match(self, doc: Document, on: date | None = None) -> list[Match]:
        other = sqlite3.connect(self.db, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            self.lock_free.append(True)
        except sqlite3.OperationalError:  # "database is locked": the poll holds the write lock
            self.lock_free.append(False)
        finally:
            other.close()
        return self.matcher.match(doc, on=on)


def test_matching_runs_while_other_writers_can_write(tmp_path: Path, server: FeedServer) -> None:
    server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    ctx = context(tmp_path, [server.url("/wire.xml")])
    assert ctx.watchlists.matcher is not None
    probe = LockProbe(ctx.watchlists.matcher, tmp_path / "m.db")
    ctx.watchlists.matcher = probe  # type: ignore[assignment]
    summary = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
    assert summary.new_items == len(RELEVANT)
    assert probe.lock_free and all(probe.lock_free)
    with read_scope(ctx.engine) as session:
        stored = {h.watchlist for h in store.list_hits(session)}
    assert {"delegation_visits", "anniversaries", "defense_treaties"} <= stored

    again = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)  # nothing new: nothing matched again
    assert again.new_items == 0 and len(probe.lock_free) == len(RELEVANT)
    ctx.close()


def touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


VISIT = Document(title="Chinese delegation led by Zhao Leji arrives in Pyongyang for talks with Kim Jong Un")


HOSTILE_HEAD = "kind: watchlist\nname: hostile\ntitle: H\nversion: '1'\nseverity: low\n"


@pytest.mark.parametrize(("name", "text"), [
    # An edit of a working list: a term that contains itself (endless recursion when walked).
    ("delegation_visits.yaml", None),
    # A new list whose one alias stands for 67 million spellings.
    ("hostile.yaml", HOSTILE_HEAD + "cues:\n  c: [\"" + "{a|b}" * 26 + "\"]\nrules:\n  - id: a\n    all: [c]\n"),
    # A new list nested deep enough to exhaust the parser's recursion.
    ("hostile.yaml", HOSTILE_HEAD + "rules: " + "[" * 5000 + "]" * 5000 + "\n"),
])
def test_a_hostile_watchlist_keeps_the_good_ones_running_and_polling_goes_on(
        tmp_path: Path, server: FeedServer, name: str, text: str | None) -> None:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    server.set_route("/wire.xml", body=rss(RELEVANT), headers={"Content-Type": "application/rss+xml"})
    ctx = context(tmp_path, [server.url("/wire.xml")], watchlists=folder)

    path = folder / name
    if text is None:
        good = path.read_text(encoding="utf-8")
        text = good.replace("rules:\n", "rules:\n  - id: loop\n    all: &loop\n      - any: *loop\n", 1)
        assert text != good
    path.write_text(text, encoding="utf-8")
    touch_later(path)

    summary = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)  # reloads the folder first
    assert summary.feeds_failed == 0 and summary.new_items == len(RELEVANT)
    assert summary.hits["delegation_visits"] >= 1  # the good (or last good) version still matched
    ctx.close()


def test_an_unforeseen_failure_while_reloading_keeps_the_last_good_matcher(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    source = WatchlistSource(folder)
    good = source.get()

    def broken(_folder: Path) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("monitor.pipeline.context.load_watchlists", broken)
    touch_later(folder / "anniversaries.yaml")
    assert source.get() is good
    assert "delegation_visits" in {m.watchlist for m in good.match(VISIT)}
    assert "disk on fire" in caplog.text and "keeping the previous ones" in caplog.text


def _hits_and_stories(ctx: Context) -> tuple[dict[str, list[tuple[str, float, str]]], list[list[str]]]:
    """Hits by item link (list, score, evidence), and the stories as groups of links (ids differ by run)."""
    with read_scope(ctx.engine) as session:
        hits = store.list_hits(session, limit=10_000)
    found: dict[str, list[tuple[str, float, str]]] = {}
    stories: dict[int | None, set[str]] = {}
    for h in hits:
        found.setdefault(h.link or "", []).append((h.watchlist, h.score, repr(h.evidence)))
        stories.setdefault(h.story_id, set()).add(h.link or "")
    return ({link: sorted(f) for link, f in found.items()},
            sorted(sorted(links) for story, links in stories.items() if story is not None))


def test_parse_workers_match_exactly_as_this_process_does(tmp_path: Path, server: FeedServer) -> None:
    # A cycle of PARALLEL_MIN_FEEDS feeds or more parses and matches in worker processes; the hits, their
    # scores and evidence, and the stories are the same as when everything runs in this process.
    from monitor.pipeline.poll import PARALLEL_MIN_FEEDS

    urls = []
    for n in range(PARALLEL_MIN_FEEDS + 4):
        items = [{**it, "link": f"{it['link']}-{n}"} for it in (RELEVANT + IRRELEVANT)[n % 3:]]
        server.set_route(f"/f{n}.xml", body=rss(items), headers={"Content-Type": "application/rss+xml"})
        urls.append(server.url(f"/f{n}.xml"))
    results = []
    for processes in (0, 1):
        folder = tmp_path / f"p{processes}"
        folder.mkdir()
        ctx = context(folder, urls, parse_processes=processes)
        summary = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
        assert (ctx._pool is not None) == (processes == 1)
        results.append((summary.new_items, dict(summary.hits), *_hits_and_stories(ctx)))
        ctx.close()
    here, workers = results
    assert here[2] and sum(here[1].values()) > 2 * PARALLEL_MIN_FEEDS and here[3]
    assert workers == here


def test_a_parse_worker_that_loads_another_watchlist_version_leaves_matching_to_this_process(
        tmp_path: Path) -> None:
    # The worker loads the lists from the folder itself; when they are not the version the cycle uses
    # (edited since it began, or broken), it returns no matches and this process matches.
    from monitor.ingest.prepare import MatchPlan, prepare_in_worker, versions_key

    source = WatchlistSource(ROOT / "watchlists")
    source.get()
    body = rss(RELEVANT)
    now = datetime.now(UTC)
    window = datetime(2000, 1, 1, tzinfo=UTC)
    same = MatchPlan(str(source.folder), versions_key(source.versions), first_poll=False, window_start=window)
    prepared = prepare_in_worker(body, "http://x.test/f", "application/rss+xml", "http://x.test/f", now, same)
    assert prepared.matches is not None
    assert all(prepared.matches[it.fingerprint] for it in prepared.items)
    # only the hit items get a story signature, and they all do
    assert set(prepared.signatures) == set(prepared.matches)

    edited = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", edited)
    path = edited / "delegation_visits.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("threshold: 0.75", "threshold: 0.8"), encoding="utf-8")
    assert WatchlistSource(edited).get() is not None  # a valid edit, of another version
    other = MatchPlan(str(edited), versions_key(source.versions), first_poll=False, window_start=window)
    fallback = prepare_in_worker(body, "http://x.test/f", "application/rss+xml", "http://x.test/f", now, other)
    assert fallback.matches is None and fallback.items == prepared.items


def test_a_parse_worker_that_dies_is_reported_once_and_new_workers_take_over(
        tmp_path: Path, server: FeedServer, caplog: pytest.LogCaptureFixture) -> None:
    # A worker killed from outside (the OOM killer, an operator) breaks its pool for good: the feeds
    # that were waiting for it are parsed in this process, the loss is logged once (not once per
    # feed), and new workers start for the next feeds, in this cycle and the next.
    from monitor.pipeline.poll import PARALLEL_MIN_FEEDS

    urls = []
    for n in range(PARALLEL_MIN_FEEDS + 4):
        items = [{**it, "link": f"{it['link']}-{n}"} for it in RELEVANT]
        server.set_route(f"/d{n}.xml", body=rss(items), headers={"Content-Type": "application/rss+xml"})
        urls.append(server.url(f"/d{n}.xml"))
    ctx = context(tmp_path, urls, parse_processes=1)
    broken = ctx.parse_pool()
    assert broken is not None
    with pytest.raises(BrokenProcessPool):
        broken.submit(os._exit, 1).result(timeout=60)
    with caplog.at_level(logging.INFO, logger="monitor"):
        summary = poll_cycle(ctx, now=datetime.now(UTC), all_feeds=True)
    assert (summary.feeds_polled, summary.feeds_failed) == (len(urls), 0)
    assert summary.new_items == len(urls) * len(RELEVANT)
    with read_scope(ctx.engine) as session:
        assert len({h.link for h in store.list_hits(session, limit=10_000)}) == len(urls) * len(RELEVANT)
    died = [r for r in caplog.records if "parse worker process died" in r.getMessage()]
    assert len(died) == 1 and died[0].levelno == logging.ERROR
    assert not [r for r in caplog.records if "parse worker failed" in r.getMessage()]
    fresh = ctx.parse_pool()
    assert fresh is not None and fresh is not broken
    assert fresh.submit(sum, [1, 2]).result(timeout=60) == 3
    ctx.close()


def test_a_cycle_with_nothing_to_parse_starts_no_worker_processes(tmp_path: Path, server: FeedServer) -> None:
    # Workers start when the first feed of a large cycle needs parsing: an all-304 cycle (most cycles
    # of a steady day) pays neither their start nor their shutdown.
    from monitor.pipeline.poll import PARALLEL_MIN_FEEDS

    body = rss(RELEVANT)

    def unchanged(request: RecordedRequest) -> Route:
        if request.headers.get("if-none-match") == '"v1"':
            return Route(304, b"", {"ETag": '"v1"'})
        return Route(200, body, {"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    urls = []
    for n in range(PARALLEL_MIN_FEEDS + 4):
        server.set_handler(f"/u{n}.xml", unchanged)
        urls.append(server.url(f"/u{n}.xml"))
    first = context(tmp_path, urls, parse_processes=1)
    assert poll_cycle(first, now=datetime.now(UTC), all_feeds=True).feeds_polled == len(urls)
    assert first._pool is not None  # the first cycle parsed in workers
    first.close()
    again = context(tmp_path, urls, parse_processes=1)
    summary = poll_cycle(again, now=datetime.now(UTC), all_feeds=True)
    assert (summary.feeds_polled, summary.not_modified, summary.feeds_failed) == (len(urls), len(urls), 0)
    assert again._pool is None
    again.close()
