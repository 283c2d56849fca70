"""Latency of the web front door on a large archive: the hits page, /api/v1/hits and search.

Fills a fresh database (SQLite file or a new PostgreSQL database) with N items in four
scripts and M hits, serves it with uvicorn on loopback, and measures sequential requests:
the first page of hits, pages deep in the archive (random cursors), filtered pages, the
operator's hits page, and item searches in English, Korean, Chinese and Russian.

    .venv/bin/python bench/api.py [--items 1000000] [--hits 100000] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import operations  # noqa: E402
from monitor.config import Settings  # noqa: E402
from monitor.db import make_engine, session_scope, upgrade  # noqa: E402
from monitor.lang import script_language  # noqa: E402
from monitor.models import Feed  # noqa: E402
from monitor.web.app import create_app  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS = {
    "en": "delegation talks treaty visit minister cooperation border trade railway bridge summit army navy "
          "anniversary friendship economic agreement port tourism energy grain fertiliser".split(),
    "ko": "대표단 회담 조약 방문 외무상 협력 국경 무역 철도 다리 정상회담 군대 해군 기념일 "
          "친선 경제 협정 항구 관광".split(),
    "zh": "代表团 会谈 条约 访问 外长 合作 边境 贸易 铁路 大桥 峰会 军队 海军 周年 友谊 经济 协定 港口 旅游".split(),
    "ru": "делегация переговоры договор визит министр сотрудничество граница торговля железная мост саммит армия "
          "флот годовщина дружба экономика соглашение порт туризм".split(),
}
PLACES = {"en": ["Pyongyang", "Beijing", "Moscow", "Vladivostok", "Dandong"],
          "ko": ["평양", "베이징", "모스크바", "블라디보스토크", "단둥"],
          "zh": ["平壤", "北京", "莫斯科", "符拉迪沃斯托克", "丹东"],
          "ru": ["Пхеньян", "Пекин", "Москва", "Владивосток", "Даньдун"]}
SEARCHES = ["Vladivostok", "railway bridge", "블라디보스토크", "정상회담", "符拉迪沃斯托克", "铁路", "Владивосток",
            "железная дорога", "zzzznothing"]


def sentence(rng: random.Random, lang: str, words: int) -> str:
    parts = [rng.choice(WORDS[lang]) for _ in range(words)] + [rng.choice(PLACES[lang])]
    rng.shuffle(parts)
    return " ".join(parts)


def _rows(items: int, rng: random.Random, now: datetime, stamp: Callable[[datetime], Any]) -> Iterator[tuple[Any, ...]]:
    """Items as the product stores them, oldest first with ids 1..N: about one in eight retells an earlier
    item's story (a second outlet), the others lead their own."""
    langs = ["en", "en", "ko", "zh", "ru"]
    for n in range(1, items + 1):
        lang = rng.choice(langs)
        title, summary = sentence(rng, lang, 6), sentence(rng, lang, 25)
        when = stamp(now - timedelta(seconds=(items - n) * 30))
        story = n - rng.randint(1, 20) if n > 20 and rng.random() < 0.125 else n
        yield (n, f"fp{n}", 1 + n % 200, f"https://news.example.org/{n}", title, summary, "", when, when, True,
               False, script_language(f"{title} {summary}"), story)


ITEM_COLUMNS = ("id", "fingerprint", "feed_id", "link", "title", "summary", "content", "published_at",
                "fetched_at", "alertable", "pruned", "lang", "story_id")


def fill(url: str, items: int, hits: int, seed: int = 7) -> None:
    """Bulk-load the archive. Not the product's write path (that is measured by bench/ingest.py): rows go in
    with executemany (SQLite, search triggers dropped and the FTS index rebuilt once at the end) or COPY
    (PostgreSQL, the trigram index created after), so a million items take minutes, not hours. The queries
    measured afterwards are the product's."""
    rng = random.Random(seed)
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    sqlite = engine.dialect.name == "sqlite"

    def stamp(when: datetime) -> Any:  # as SQLAlchemy writes times on each database
        return when.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else when

    with session_scope(engine) as session:
        session.execute(sa.insert(Feed.__table__), [  # type: ignore[attr-defined]
            dict(url=f"https://feed{n}.example.org/rss", name=f"Feed {n}", interval_seconds=900,
                 alert_window_seconds=86400, active=True, error_count=0, origin="config") for n in range(200)])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:
            cursor.execute("PRAGMA synchronous=OFF")
            for trigger in ("items_fts_delete", "items_fts_update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        else:
            cursor.execute("DROP INDEX IF EXISTS ix_items_text_trgm")
        raw.commit()
        rows = _rows(items, rng, now, stamp)
        while chunk := list(itertools.islice(rows, 50_000)):
            if sqlite:
                cursor.executemany(f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) VALUES "
                                   f"({', '.join('?' * len(ITEM_COLUMNS))})", chunk)
            else:
                with cursor.copy(f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            raw.commit()
            if chunk[-1][0] % 200_000 == 0:
                print(f"  {chunk[-1][0]} items ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        chosen = sorted(rng.sample(range(1, items + 1), hits))
        lists = ["delegation_visits", "anniversaries", "defense_treaties"]
        evidence = json.dumps([{"kind": "actor", "field": "title", "start": 0, "end": 5, "text": "x"}])
        hit_rows = [(item_id, lists[item_id % 3], "1", 2.0, evidence,
                     stamp(now - timedelta(seconds=(items - item_id) * 30)))
                    for item_id in chosen]
        marker = "?" if sqlite else "%s"
        cursor.executemany("INSERT INTO hits (item_id, watchlist, watchlist_version, score, evidence, created_at) "
                           f"VALUES ({', '.join([marker] * 6)})", hit_rows)
        raw.commit()
        print(f"  rows in: {time.perf_counter() - started:.0f} s; building the search index", file=sys.stderr)
        if sqlite:
            # The delete and update triggers again (migration 0010 dropped the insert trigger: the code
            # indexes new items itself), then one rebuild.
            for statement in _migration_0005().SQLITE_SEARCH[1:]:
                if "items_fts_insert" not in statement:
                    cursor.execute(statement)
        else:
            cursor.execute("SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items))")
            cursor.execute("SET maintenance_work_mem = '512MB'")  # the trigram index builds in memory
            cursor.execute(_migration_0005().PG_TRGM_INDEX)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    print(f"  filled {items} items, {hits} hits in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    engine.dispose()


def _migration_0005() -> Any:
    """The search structures as migration 0005 creates them (one definition)."""
    import importlib.util

    path = ROOT / "monitor" / "migrations" / "versions" / "0005_web.py"
    spec = importlib.util.spec_from_file_location("monitor_migration_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(call: Callable[[], httpx.Response], runs: int) -> tuple[float, float, float]:
    """p50 and p99 wall time, and the CPU time this process spent per request (server and client together;
    PostgreSQL's own work excluded): the figure a loaded machine does not inflate."""
    times = []
    cpu = time.process_time()
    for _ in range(runs):
        began = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (response.status_code, response.text[:200])
    cpu_ms = (time.process_time() - cpu) * 1000 / runs
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], cpu_ms


def run(url: str, label: str, runs: int, items: int) -> list[tuple[str, str, float, float, float]]:
    engine = make_engine(url)
    settings = Settings(database_url=url, watchlists_dir=ROOT / "watchlists", web_secret="bench")
    with session_scope(engine) as session:
        token = operations.create_api_token(session, f"bench-{uuid.uuid4().hex[:6]}", read_only=True,
                                            now=datetime.now(UTC))
        operations.set_operator_password(session, "bench", "bench password", now=datetime.now(UTC))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=0,
                                           log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    rng = random.Random(1)
    results = []
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    page = httpx.Client(base_url=base, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.get("/login").text)
    assert csrf
    page.post("/login", data={"name": "bench", "password": "bench password", "csrf": csrf.group(1)})

    from monitor.web.api import encode_cursor

    def deep() -> httpx.Response:
        return api.get("/api/v1/hits", params={"cursor": encode_cursor(rng.randint(1, items))})

    cases: list[tuple[str, Callable[[], httpx.Response]]] = [
        ("GET /api/v1/hits (first page, 50)", lambda: api.get("/api/v1/hits")),
        ("GET /api/v1/hits (random deep cursor)", deep),
        ("GET /api/v1/hits?watchlist=&lang=ko", lambda: api.get("/api/v1/hits", params={
            "watchlist": "anniversaries", "lang": "ko"})),
        ("GET / (hits page, logged in)", lambda: page.get("/")),
        ("GET /?watchlist=anniversaries (hits page)", lambda: page.get("/", params={"watchlist": "anniversaries"})),
        ("GET /api/v1/stories (first page, 50)", lambda: api.get("/api/v1/stories")),
        ("GET /api/v1/stories (random deep cursor)", lambda: api.get("/api/v1/stories", params={
            "cursor": encode_cursor(rng.randint(1, items))})),
    ]
    for term in SEARCHES:
        cases.append((f"GET /api/v1/items?q={term}", lambda term=term: api.get("/api/v1/items", params={"q": term})))
    for name, call in cases:
        call()  # warm
        p50, p99, cpu = measure(call, runs)
        results.append((label, name, p50, p99, cpu))
        print(f"  {label:<10} {name:<48} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  cpu {cpu:6.1f} ms", file=sys.stderr)
    api.close()
    page.close()
    server.should_exit = True
    thread.join()
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both", "none"], default="both")
    parser.add_argument("--keep", action="store_true", help="Keep the filled databases.")
    parser.add_argument("--url", help="Measure this already filled database (kept with --keep) instead.")
    args = parser.parse_args()
    results: list[tuple[str, str, float, float, float]] = []
    if args.url:
        label = "sqlite" if args.url.startswith("sqlite") else "postgresql"
        engine = make_engine(args.url)
        upgrade(engine)  # a database kept by an earlier version of this code gets the newer indexes
        engine.dispose()
        results += run(args.url, label, args.runs, args.items)
        args.db = "none"
    if args.db in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="monitor-bench-api-"))
        url = f"sqlite:///{folder / 'bench.db'}"
        print(f"SQLite: filling {url}", file=sys.stderr)  # kept with --keep: measure it again with --url
        fill(url, args.items, args.hits)
        results += run(url, "sqlite", args.runs, args.items)
        if not args.keep:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
    if args.db in ("postgresql", "both"):
        name = f"monitor_bench_api_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        print(f"PostgreSQL: filling {name}", file=sys.stderr)
        try:
            fill(url, args.items, args.hits)
            results += run(url, "postgresql", args.runs, args.items)
        finally:
            if not args.keep:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(f"\n{args.items} items, {args.hits} hits, {args.runs} sequential requests per row\n")
    print("| database | request | p50 ms | p99 ms | CPU ms/request |\n| --- | --- | ---: | ---: | ---: |")
    for label, name, p50, p99, cpu in results:
        print(f"| {label} | `{name}` | {p50:.1f} | {p99:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
