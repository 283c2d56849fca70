"""/healthz, /readyz and /metrics against a real server, and the headers every response carries."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from monitor import store
from monitor.db import session_scope
from tests.web.conftest import NOW, Story, Web
from tests.web.test_api import _dead_delivery


def test_healthz_answers_and_readyz_waits_for_a_live_worker(web: Web) -> None:
    client = web.client()
    assert client.get("/healthz").text == "ok\n"
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    assert waiting.json()["problems"] == ["no worker has sent a heartbeat in the last 300 s"]
    with session_scope(web.engine) as session:
        store.heartbeat(session, owner="w1", hostname="h", pid=1, started_at=NOW, now=datetime.now(UTC))
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "problems": []})


def test_readyz_reports_an_unmigrated_database(web: Web) -> None:
    import sqlalchemy as sa

    with web.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    response = web.client().get("/readyz")
    assert response.status_code == 503
    assert "at revision 0003" in response.json()["problems"][0]


def test_metrics_count_feeds_hits_and_deliveries(web: Web) -> None:
    web.seed([Story(title="a", watchlist="treaties"), Story(title="b", watchlist="treaties"),
              Story(title="c", watchlist="anniversaries"), Story(title="d", watchlist=None)])
    _dead_delivery(web)
    with session_scope(web.engine) as session:
        feed = store.list_feeds(session)[0]
        assert feed.id is not None
        store.record_poll_failure(session, feed.id, now=NOW, status=500, error="500", next_poll_at=NOW)
        store.heartbeat(session, owner="w1", hostname="h", pid=1, started_at=NOW, now=datetime.now(UTC),
                        info={"poll": {"feeds_polled": 7, "new_items": 3}})
    response = web.client().get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    assert samples[("monitor_feeds", (("state", "failing"),))] == 1
    assert samples[("monitor_items", (("origin", "import"),))] == 4
    assert samples[("monitor_hits_total", (("watchlist", "treaties"),))] == 2
    assert samples[("monitor_hits_total", (("watchlist", "anniversaries"),))] == 1
    assert samples[("monitor_deliveries", (("status", "dead"),))] == 1
    assert samples[("monitor_deliveries", (("status", "pending"),))] == 0
    assert samples[("monitor_workers_alive", ())] == 1
    assert samples[("monitor_last_poll_cycle", (("figure", "feeds_polled"), ("worker", "w1")))] == 7


def test_metrics_histogram_of_the_feeds_last_poll_durations(web: Web) -> None:
    import sqlalchemy as sa

    web.seed([Story(title="a", feed="https://a.example/rss"), Story(title="b", feed="https://b.example/rss"),
              Story(title="c", feed="https://c.example/rss")])
    with session_scope(web.engine) as session:
        ids = [feed.id for feed in store.list_feeds(session)]
        assert len(ids) >= 3
        for feed_id, ms in zip(ids, (40, 700, 12_000), strict=False):  # any further feed: never polled
            session.execute(sa.update(store.Feed).where(store.Feed.id == feed_id).values(last_poll_ms=ms))
    response = web.client().get("/metrics")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    bucket = "monitor_feed_poll_duration_seconds_bucket"
    assert samples[(bucket, (("le", "0.05"),))] == 1
    assert samples[(bucket, (("le", "0.5"),))] == 1
    assert samples[(bucket, (("le", "1.0"),))] == 2
    assert samples[(bucket, (("le", "10.0"),))] == 2
    assert samples[(bucket, (("le", "30.0"),))] == 3
    assert samples[(bucket, (("le", "+Inf"),))] == 3
    assert samples[("monitor_feed_poll_duration_seconds_count", ())] == 3
    assert samples[("monitor_feed_poll_duration_seconds_sum", ())] == 12.74


def test_every_response_carries_the_security_headers(web: Web) -> None:
    client = web.client()
    for path in ("/healthz", "/login", "/api/v1/hits", "/unsubscribe/x.y", "/static/style.css", "/nowhere"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
