"""Several workers on one PostgreSQL database: one dies holding leases, the others finish its work.

The end-to-end test runs three ``monitor run`` processes against real loopback feeds, a
counting webhook receiver and an SMTP server, SIGKILLs the worker that holds the feed
leases while it is in the middle of a poll cycle, and checks what users rely on: every hit
reaches every subscription exactly once, no item is stored twice, nothing is left pending.

Leases last ``FEED_LEASE_SECONDS`` (300 s) and are not configurable. Instead of waiting five
minutes, the end-to-end test moves the dead worker's own feed leases into the past once it
is dead (the same state the database reaches 300 s later); the surviving workers' rows are
never touched. The test decides on what the database and the receivers show, not on log
lines. The integration tests below drive ``pipeline`` with an explicit clock instead, so real
lease expiry is covered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor import store
from monitor.config import FeedConfig, Settings, SubscriptionConfig, WebhookConfig
from monitor.db import make_engine, session_scope
from monitor.pipeline import (
    DELIVERY_LEASE_SECONDS,
    FEED_LEASE_SECONDS,
    Context,
    DeliverySummary,
    delivery_cycle,
    open_context,
    plan_deliveries,
    poll_cycle,
    send_due,
)
from tests.conftest import PG_ADMIN_URL, SmtpServer, WebhookReceiver, _pg_admin
from tests.e2e.conftest import IRRELEVANT, RELEVANT, ROOT, Cli, rss, write_config
from tests.helpers.feed_server import FeedServer, RecordedRequest, Route

pytestmark = pytest.mark.postgres

ALL_LISTS = ["delegation_visits", "anniversaries", "defense_treaties"]
RSS_HEADERS = {"Content-Type": "application/rss+xml"}
LINK = re.compile(r"http://news\.test/\S+")
OPEN_FEEDS = 24  # answered at once, on host 127.0.0.1
HELD_FEEDS = 6  # answered only when the test opens the gate, on host "localhost" (the fetcher limits per host)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh database cloned from the migrated template, dropped afterwards."""
    name = f"monitor_workers_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    assert admin is not None
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- feeds: distinct items per feed, some items carried by two feeds --------------------------------


def relevant_item(feed: int, k: int) -> dict[str, str]:
    base = RELEVANT[(feed + k) % len(RELEVANT)]
    return {"title": f"{base['title']} (dispatch {feed}-{k})", "link": f"http://news.test/f{feed:02d}/{k}.html",
            "summary": base["summary"]}


def shared_item(pair: int) -> dict[str, str]:
    base = RELEVANT[pair % len(RELEVANT)]
    return {"title": f"{base['title']} (pool report {pair})", "link": f"http://news.test/shared/{pair:02d}.html",
            "summary": base["summary"]}


def feed_items(feed: int) -> list[dict[str, str]]:
    """Two items of its own, one item shared with its neighbour (2j and 2j+1), one that matches nothing."""
    other = dict(IRRELEVANT[feed % len(IRRELEVANT)], link=f"http://news.test/f{feed:02d}/other.html")
    return [relevant_item(feed, 0), shared_item(feed // 2), relevant_item(feed, 1), other]


def serve_feeds(server: FeedServer, gate: threading.Event, held_requests: Counter[str]) -> list[str]:
    """Route every feed; return their URLs (the last ``HELD_FEEDS`` wait for ``gate``)."""
    urls = []
    for n in range(OPEN_FEEDS + HELD_FEEDS):
        path, body = f"/feed/{n}.xml", rss(feed_items(n))
        if n < OPEN_FEEDS:
            server.set_route(path, body=body, headers=RSS_HEADERS)
            urls.append(server.url(path))
        else:
            server.set_handler(path, held_handler(path, body, gate, held_requests))
            urls.append(f"http://localhost:{server.port}{path}")
    return urls


def held_handler(path: str, body: bytes, gate: threading.Event,
                 requests: Counter[str]) -> Callable[[RecordedRequest], Route]:
    def answer(_request: RecordedRequest) -> Route:
        requests[path] += 1
        if not gate.wait(90):
            return Route(503, b"gate never opened\n")
        return Route(200, body, RSS_HEADERS)

    return answer


def expected_links(feeds: int = OPEN_FEEDS + HELD_FEEDS) -> tuple[set[str], set[str]]:
    """(every distinct link the first ``feeds`` feeds serve, the links among them that match the watchlists)."""
    items = [it for n in range(feeds) for it in feed_items(n)]
    return {it["link"] for it in items}, {it["link"] for it in items if "/other" not in it["link"]}


# --- worker processes ----------------------------------------------------------------------------


class Worker:
    """A ``monitor run`` subprocess logging to a file.

    A file, not a pipe: a worker killed with SIGKILL leaves its parse processes behind for a
    moment, and they hold an inherited pipe open.
    """

    def __init__(self, config: Path, index: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env["MONITOR_LOG_LEVEL"] = "INFO"
        self.path = config.parent / f"worker-{index}.log"
        with self.path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run"],
                                         stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=config.parent)

    @property
    def log(self) -> str:
        """The worker's log, shown when a wait times out (the test decides on the database and receivers)."""
        return self.path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: signal.Signals) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def wait_for(condition: Callable[[], bool], what: str, *, seconds: float, workers: list[Worker]) -> None:
    """Poll ``condition`` until it holds; a bound on waiting, not a performance assertion."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- worker {w.proc.pid}\n{w.log[-3000:]}" for w in workers)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)


# --- what the receivers got -----------------------------------------------------------------------


def webhook_links(receiver: WebhookReceiver) -> Counter[str]:
    links: Counter[str] = Counter()
    with receiver.lock:
        bodies = [r.json() for r in receiver.requests]
    for body in bodies:
        for entry in body["items"]:
            links[entry["link"]] += 1
            links.update(other["link"] for other in entry["also_reported_by"])
    return links


def webhook_hit_ids(receiver: WebhookReceiver) -> Counter[int]:
    ids: Counter[int] = Counter()
    with receiver.lock:
        bodies = [r.json() for r in receiver.requests]
    for body in bodies:
        for entry in body["items"]:
            ids.update(entry["hit_ids"])
            for other in entry["also_reported_by"]:
                ids.update(other["hit_ids"])
    return ids


def mails(smtp: SmtpServer) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.original_content, policy=default)  # type: ignore[misc]
            for m in list(smtp.messages)]


def email_links(smtp: SmtpServer) -> Counter[str]:
    links: Counter[str] = Counter()
    for message in mails(smtp):
        links.update(LINK.findall(message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    return links


def db_rows(engine: sa.Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))


# --- the kill test --------------------------------------------------------------------------------


def test_worker_killed_mid_poll_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, pg_url: str, webhook_receiver: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    gate, held_requests = threading.Event(), Counter[str]()
    with FeedServer() as server:
        urls = serve_feeds(server, gate, held_requests)
        cli = Cli(write_config(
            tmp_path / "monitor.yaml", database_url=pg_url,
            feeds=[{"url": url, "name": f"Wire {n}"} for n, url in enumerate(urls)],
            subscriptions=[
                {"name": "hook", "watchlists": ALL_LISTS, "schedule": "immediate",
                 "webhook": {"url": webhook_receiver.url, "format": "json"}},
                {"name": "desk", "watchlists": ALL_LISTS, "schedule": "immediate", "email": ["desk@example.org"]},
            ],
            smtp={"host": smtp_server.host, "port": smtp_server.port, "from": "monitor@example.org",
                  "security": "none"},
            poll_concurrency=50, fetch_timeout=60, fetch_deadline=90,
        ))
        assert "database at revision" in cli("db", "upgrade").stdout
        engine = make_engine(pg_url)
        workers = [Worker(cli.config, i) for i in range(3)]
        try:
            def delivered(links: set[str]) -> Callable[[], bool]:
                return lambda: (set(webhook_links(webhook_receiver)) >= links
                                and set(email_links(smtp_server)) >= links)

            run_kill_scenario(engine, workers, gate, held_requests, delivered)
            survivors = [w for w in workers if w.proc.returncode is None]
            assert len(survivors) == 2
            codes = [w.stop(signal.SIGTERM) for w in survivors]
            assert codes == [0, 0], "\n".join(w.log[-3000:] for w in survivors)
            # A clean stop gives back its leases and removes its heartbeat row; only the dead worker's stays.
            assert db_rows(engine, "select pid from workers") == [(w.proc.pid,) for w in workers
                                                                  if w not in survivors]
        finally:
            gate.set()
            for w in workers:
                w.stop(signal.SIGKILL)

        # The dead worker had asked for some held feeds; a survivor asked for every one of them again.
        assert all(held_requests[f"/feed/{n}.xml"] >= 1 for n in range(OPEN_FEEDS, OPEN_FEEDS + HELD_FEEDS))
        assert sum(held_requests.values()) > HELD_FEEDS
        served, relevant = expected_links()
        hits = [json.loads(line) for line in cli("hits", "--format", "jsonl").stdout.splitlines() if line]
        hit_links = {h["link"] for h in hits}
        assert hit_links == relevant
        once = Counter(hit_links)
        assert webhook_links(webhook_receiver) == once
        assert email_links(smtp_server) == once
        assert webhook_hit_ids(webhook_receiver) == Counter(h["hit_id"] for h in hits)
        # Each message was sent once: the receivers saw no idempotency key twice.
        keys = [r.headers["webhook-id"] for r in webhook_receiver.requests]
        assert len(keys) == len(set(keys))
        message_ids = [m["Message-ID"] for m in mails(smtp_server)]
        assert len(message_ids) == len(set(message_ids))

        # No item stored twice (a link carried by two feeds is one item), none lost.
        assert db_rows(engine, "select count(*), count(distinct fingerprint), count(distinct link) from items") == [
            (len(served), len(served), len(served))]
        assert db_rows(engine, "select link from items group by link having count(*) > 1") == []
        assert {r[0] for r in db_rows(engine, "select link from items")} == served
        assert db_rows(engine, "select status, count(*) from deliveries group by status") == [
            ("sent", len(webhook_receiver.requests) + len(smtp_server.messages))]
        assert db_rows(engine, "select count(*) from feeds where last_polled_at is null or lease_until is not null") \
            == [(0,)]
        engine.dispose()


def leases_held_for_delivery(engine: sa.Engine) -> int:
    """Subscriptions being planned and deliveries being sent right now, by any worker."""
    return int(db_rows(engine, "select (select count(*) from subscriptions where lease_until > now())"
                               " + (select count(*) from deliveries where lease_until > now())")[0][0])


def run_kill_scenario(engine: sa.Engine, workers: list[Worker], gate: threading.Event, held_requests: Counter[str],
                      delivered: Callable[[set[str]], Callable[[], bool]]) -> None:
    # All feeds are due at start; the first poll cycle to run claims them. The open feeds are
    # stored at once, the held ones keep the claiming worker in the middle of its cycle.
    wait_for(lambda: sum(held_requests.values()) >= 1 and db_rows(
        engine, "select count(*) from feeds where last_polled_at is not null")[0][0] == OPEN_FEEDS,
        "the open feeds to be stored while the held ones are being fetched", seconds=60, workers=workers)
    holders = db_rows(engine, "select lease_owner, count(*) from feeds where lease_until > now() "
                              "and last_polled_at is null group by lease_owner order by count(*) desc")
    assert holders, "no worker holds a feed lease"
    victim_owner = holders[0][0]
    victim_pid = int(victim_owner.rsplit(":", 2)[1])  # owner is hostname:pid:tag
    [victim] = [w for w in workers if w.proc.pid == victim_pid]

    # Kill it once everything the open feeds brought has reached both receivers and no digest is being
    # planned or sent: no new hit can appear while the gate is shut, so its delivery job holds nothing
    # and the one thing it dies holding is its feed leases.
    _, open_relevant = expected_links(OPEN_FEEDS)
    open_delivered = delivered(open_relevant)
    wait_for(lambda: open_delivered() and leases_held_for_delivery(engine) == 0
             and db_rows(engine, "select count(*) from deliveries where status <> 'sent'")[0][0] == 0,
             "the open feeds' hits to be delivered", seconds=60, workers=workers)
    assert victim.stop(signal.SIGKILL) == -signal.SIGKILL

    held = db_rows(engine, "select id from feeds where lease_owner = :owner and lease_until > now()",
                   owner=victim_owner)
    assert held, "the worker died holding no lease: the kill missed the cycle"
    assert db_rows(engine, "select count(*) from feeds where lease_owner = :owner and last_polled_at is not null "
                           "and lease_until is not null", owner=victim_owner) == [(0,)]
    survivors = [w for w in workers if w is not victim]
    # The survivors' delivery ticks take and give back their leases within moments; one that stays held
    # would be the dead worker's, caught mid-plan (the test would then wait for its expiry).
    wait_for(lambda: leases_held_for_delivery(engine) == 0, "the survivors to hold no delivery lease", seconds=20,
             workers=survivors)
    # 300 s later the dead worker's leases are expired; get there without waiting (only its rows).
    with engine.begin() as conn:
        conn.execute(sa.text("update feeds set lease_until = now() - interval '1 second' "
                             "where lease_owner = :owner and lease_until is not null"), {"owner": victim_owner})
    gate.set()

    _, relevant = expected_links()
    wait_for(lambda: all_polled(engine) and delivered(relevant)(), "the survivors to poll the dead worker's feeds "
             "and deliver every hit", seconds=100, workers=survivors)


def all_polled(engine: sa.Engine) -> bool:
    return bool(db_rows(engine, "select count(*) from feeds where last_polled_at is null")[0][0] == 0
                and db_rows(engine, "select count(*) from deliveries where status <> 'sent'")[0][0] == 0)


# --- lease expiry with an explicit clock -----------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # the workers' clock; feed items are dated hours before it


@contextlib.contextmanager
def two_workers(tmp_path: Path, pg_url: str, server: FeedServer, feeds: int, webhook: WebhookReceiver,
                smtp: SmtpServer, *, first_knows: int | None = None) -> Iterator[tuple[Context, Context]]:
    """Two in-process workers (own engine, own lease owner) on one database.

    The first starts at T0 with the first ``first_knows`` feeds in its config; the second a
    second later with all of them (the feeds it adds are due from then on).
    """
    for n in range(feeds):
        server.set_route(f"/feed/{n}.xml", body=rss(feed_items(n), now=T0), headers=RSS_HEADERS)
    settings = Settings(
        database_url=pg_url, watchlists_dir=ROOT / "watchlists", outbox_dir=tmp_path / "outbox",
        allow_private_networks=True,
        feeds=[FeedConfig(url=server.url(f"/feed/{n}.xml"), name=f"Wire {n}") for n in range(feeds)],
        subscriptions=[SubscriptionConfig(name="hook", watchlists=ALL_LISTS, webhook=WebhookConfig(url=webhook.url)),
                       SubscriptionConfig(name="desk", watchlists=ALL_LISTS, email=["desk@example.org"])],
        smtp={"host": smtp.host, "port": smtp.port, "from": "monitor@example.org", "security": "none"},  # type: ignore[arg-type]
    )
    known = settings.feeds[:feeds if first_knows is None else first_knows]
    first = open_context(settings.model_copy(update={"feeds": known}), now=T0)
    try:
        second = open_context(settings, now=T0 + timedelta(seconds=1))
        try:
            yield first, second
        finally:
            second.engine.dispose()
    finally:
        first.engine.dispose()


def test_dead_workers_leases_expire_and_a_live_worker_delivers_every_hit_once(
    tmp_path: Path, pg_url: str, webhook_receiver: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    with FeedServer() as server, two_workers(tmp_path, pg_url, server, 6, webhook_receiver, smtp_server,
                                             first_knows=3) as (live, dead):
        assert poll_cycle(live, now=T0).feeds_polled == 3
        # The dead worker claimed the three feeds due next and never polled them ...
        claimed = store.claim_due_feeds(dead.engine, now=T0 + timedelta(seconds=1), owner=dead.owner,
                                        lease_seconds=FEED_LEASE_SECONDS, limit=100)
        assert len(claimed) == 3
        dead_paths = {f.url.removeprefix(server.base_url) for f in claimed}
        # ... and died planning the email digest and holding the webhook delivery the live worker planned.
        with session_scope(dead.engine) as session:
            subs = store.get_subscriptions(session)
            assert subs["desk"].id is not None
            assert store.claim_subscription(session, subs["desk"].id, now=T0 + timedelta(seconds=2),
                                            lease_seconds=DELIVERY_LEASE_SECONDS)
        plan_deliveries(live, now=T0 + timedelta(seconds=2), flush=False, summary=DeliverySummary())
        assert len(store.claim_due_deliveries(dead.engine, now=T0 + timedelta(seconds=2),
                                              lease_seconds=DELIVERY_LEASE_SECONDS, limit=10)) == 1

        # While its leases hold, the live worker leaves that work alone.
        almost = T0 + timedelta(seconds=FEED_LEASE_SECONDS)
        assert poll_cycle(live, now=almost).feeds_polled == 0
        assert delivery_cycle(live, now=almost).sent == 0
        assert not webhook_receiver.requests and not smtp_server.messages
        assert not any(r.path in dead_paths for r in server.requests)

        # Once they expire, it does it, once.
        after = T0 + timedelta(seconds=max(FEED_LEASE_SECONDS, DELIVERY_LEASE_SECONDS) + 10)
        assert poll_cycle(live, now=after).feeds_polled == 3
        summary = delivery_cycle(live, now=after)
        assert summary.sent >= 3 and not summary.errors  # the dead worker's webhook, then both new digests
        assert delivery_cycle(live, now=after + timedelta(hours=1)).sent == 0
        with session_scope(live.engine) as session:
            hits = store.list_hits(session)
            deliveries = store.list_deliveries(session)
        rows = db_rows(live.engine, "select count(*), count(distinct link) from items")

    served = {it["link"] for n in range(6) for it in feed_items(n)}
    relevant = {link for link in served if "/other" not in link}
    assert {h.link for h in hits} == relevant
    once = Counter({link: 1 for link in relevant})
    assert webhook_links(webhook_receiver) == once
    assert email_links(smtp_server) == once
    assert webhook_hit_ids(webhook_receiver) == Counter(h.hit_id for h in hits)
    assert {d.status for d in deliveries} == {"sent"}
    assert len(deliveries) == len(webhook_receiver.requests) + len(smtp_server.messages)
    assert rows == [(len(served), len(served))]


def test_a_delivery_another_worker_sent_meanwhile_is_not_claimed_again(
    tmp_path: Path, pg_url: str, webhook_receiver: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    with FeedServer() as server, two_workers(tmp_path, pg_url, server, 1, webhook_receiver, smtp_server) as (
            first, second):
        poll_cycle(first, now=T0)
        plan_deliveries(first, now=T0, flush=False, summary=DeliverySummary())
        # The second worker is about to claim the pending rows; just before, the first sends them all.
        interleaved = threading.Event()

        def first_sends_everything(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if statement.lstrip().lower().startswith("update deliveries") and not interleaved.is_set():
                interleaved.set()
                sender = threading.Thread(target=lambda: asyncio.run(
                    send_due(first, now=T0, summary=DeliverySummary())))
                sender.start()
                sender.join()

        sa.event.listen(second.engine, "before_cursor_execute", first_sends_everything)
        asyncio.run(send_due(second, now=T0, summary=DeliverySummary()))
        assert interleaved.is_set()
        statuses = db_rows(first.engine, "select status, count(*) from deliveries group by status")
    # The first worker sent one webhook and one email; nothing else may go out.
    assert len(webhook_receiver.requests) == 1, [r.headers.get("webhook-id") for r in webhook_receiver.requests]
    assert len(smtp_server.messages) == 1
    assert statuses == [("sent", 2)]


def test_a_claim_takes_at_most_limit_feeds(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, feeds=[FeedConfig(url=f"http://feeds.test/{n}.xml") for n in range(6)])
    ctx = open_context(settings, now=T0)
    try:
        claimed = store.claim_due_feeds(ctx.engine, now=T0, owner="a", lease_seconds=FEED_LEASE_SECONDS, limit=3)
        assert len(claimed) == 3
    finally:
        ctx.engine.dispose()
