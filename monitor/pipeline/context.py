"""What every cycle runs in: settings, the database, the watchlists, this worker's identity.

Opening a context connects, checks or applies migrations, loads the watchlists and syncs the
config into the database; the heartbeat and retention run on it too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from monitor import store
from monitor.config import Settings
from monitor.config_specs import config_specs
from monitor.db import current_revision, head_revision, make_engine, redact_url, session_scope, upgrade
from monitor.deliver.outbox import RetryPolicy
from monitor.errors import (
    ConfigError,
    DatabaseError,
    WatchlistError,
)
from monitor.ingest.cluster import DEFAULT_THRESHOLD
from monitor.ingest.fetch import FetchPolicy
from monitor.match import LoadResult, Matcher, load_watchlists, watchlist_versions

log = logging.getLogger("monitor")

STORY_WINDOW = timedelta(hours=48)  # near-identical items this close in time form one story
STORY_THRESHOLD = DEFAULT_THRESHOLD


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the matcher, reloaded when watchlist files change -----------------------------------------


class WatchlistSource:
    """Holds the compiled matcher; reloads it when a file in the folder changes.

    A reload that finds an invalid file keeps the last good matcher and logs why,
    so a typo in one watchlist never silences the others.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self.result: LoadResult | None = None
        self.matcher: Matcher | None = None
        self._versions: dict[str, str] = {}
        self._versions_of: LoadResult | None = None

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        try:
            paths = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml"))
        except OSError:
            return ()
        out = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def get(self) -> Matcher:
        """The matcher for the folder as it is now, or the last good one when the folder is broken.

        Never raises once a good version has been loaded: whatever goes wrong while loading
        or compiling (a bad file, an unforeseen bug) is logged and the last good matcher runs on.
        """
        stamp = self._files_stamp()
        if self.matcher is not None and stamp == self._stamp:
            return self.matcher
        try:
            return self._reload(stamp)
        except Exception as exc:
            if self.matcher is None:
                raise WatchlistError(f"the watchlists in {self.folder} could not be loaded: {exc}") from exc
            self._stamp = stamp  # report once per change, not on every cycle
            log.error("watchlists could not be loaded (%s); keeping the previous ones", exc)
            return self.matcher

    def _reload(self, stamp: tuple[tuple[str, int, int], ...]) -> Matcher:
        result = load_watchlists(self.folder)
        for error in result.errors:
            log.error("watchlist invalid: %s", error, extra={"watchlist": error.path})
        self._stamp = stamp
        if self.result is not None and self.matcher is not None and result.errors:
            merged = self._keep_last_good(result)
            if merged is None:
                log.warning("keeping the previous watchlists until the errors above are fixed")
                return self.matcher
            result = merged
        matcher = Matcher.compile(result)
        self.result, self.matcher = result, matcher
        return self.matcher

    @property
    def versions(self) -> dict[str, str]:
        """``{name: "version:fingerprint"}`` of the watchlists in use; the fingerprint changes with any edit
        that can change what matches (rules, cues, threshold, or the shared actors and calendar)."""
        if self.result is None:
            return {}
        if self._versions_of is not self.result:
            self._versions = watchlist_versions(self.result)
            self._versions_of = self.result
        return self._versions

    def _keep_last_good(self, result: LoadResult) -> LoadResult | None:
        """The new lists, plus the last good version of each list whose file is now broken.

        None when a shared file (actors, calendar) is broken: then nothing new is trusted.
        """
        assert self.result is not None
        previous = {w.path: w for w in self.result.watchlists}
        loaded = {w.name for w in result.watchlists}
        kept = []
        for error in result.errors:
            old = previous.get(str(error.path)) if error.path else None
            if old is None:
                if error.path and any(str(error.path).endswith(n) for n in ("actors.yaml", "calendar.yaml")):
                    return None
                continue
            if old.name not in loaded:
                kept.append(old)
                log.warning("keeping the last good version of %s", old.name, extra={"watchlist": old.name})
        return replace(result, watchlists=[*result.watchlists, *kept])


# --- context ------------------------------------------------------------------------------------


class CycleStopped(Exception):
    """The process is shutting down: the cycle stops where it is; unfinished feeds' leases are released."""


@dataclass
class Context:
    """What the cycles need, built once at the entry point."""

    settings: Settings
    engine: Engine
    watchlists: WatchlistSource
    owner: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rand: Callable[[], float] = random.random
    monotonic: Callable[[], float] = time.monotonic  # elapsed time within a cycle (injectable for tests)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last: dict[str, object] = field(default_factory=dict)  # last cycles' summaries, for the heartbeat
    # Cycles in flight and when they started (the heartbeat carries them; ``status`` flags one stuck).
    running: dict[str, datetime] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: wind down now
    rematched: str | None = None  # the match set whose stored items this process has matched up
    _pool: ProcessPoolExecutor | None = None
    _feed_options: dict[str, tuple[str | None, str | None]] | None = None

    def check_stop(self) -> None:
        """Raise :class:`CycleStopped` once shutdown has begun (called between units of work)."""
        if self.stopping.is_set():
            raise CycleStopped()

    def parse_pool(self) -> ProcessPoolExecutor | None:
        """Worker processes for parsing, started on first use and kept for later cycles."""
        if self.settings.parse_processes == 0:
            return None
        if self._pool is None:
            # spawn, not fork: this process runs threads (scheduler, event loop) that fork would copy mid-flight.
            self._pool = ProcessPoolExecutor(max_workers=self.settings.parse_processes,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def discard_parse_pool(self, pool: ProcessPoolExecutor) -> bool:
        """Forget ``pool`` when one of its workers died (it is broken for good); the next
        :meth:`parse_pool` starts new workers. True the first time for that pool, so its loss is
        reported once, not once per feed that was waiting for it."""
        if self._pool is not pool:
            return False
        self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)
        return True

    def feed_options(self, url: str) -> tuple[str | None, str | None]:
        """A config feed's ``encoding:`` and ``timezone:`` settings by URL (other feeds have none).

        Built once from the settings: a poll asks for every feed it fetches.
        """
        if self._feed_options is None:
            options: dict[str, tuple[str | None, str | None]] = {}
            for cfg in self.settings.feeds:
                options.setdefault(cfg.url, (cfg.encoding, cfg.timezone))  # the first entry wins, as before
            self._feed_options = options
        return self._feed_options.get(url, (None, None))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.engine.dispose()

    @property
    def fetch_policy(self) -> FetchPolicy:
        # file: URLs only ever come from the config file (never from feed content).
        return FetchPolicy.from_settings(self.settings, allow_file_urls=True)

    @property
    def webhook_policy(self) -> FetchPolicy:
        return FetchPolicy.for_webhooks(self.settings)


def open_context(settings: Settings, *, now: datetime, migrate: bool | None = None) -> Context:
    """Connect, check or apply migrations, load watchlists, and sync config into the database.

    ``migrate=None`` (the default) upgrades a SQLite database in place (one process owns it)
    and refuses to start on a PostgreSQL database that is not at the code's revision: with
    several workers, migrations run once, by ``monitor db upgrade``, not by whichever starts first.
    """
    # Watchlists first: a subscription following a list that does not exist is refused before anything
    # touches the database.
    source = WatchlistSource(settings.watchlists_dir)
    source.get()
    check_subscribed_watchlists(settings, source.result)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    if migrate is None:
        migrate = engine.dialect.name == "sqlite"
    current, head = current_revision(engine), head_revision()
    if current != head:  # at head (most starts), Alembic is not even loaded
        if migrate:
            upgrade(engine)
        else:
            raise DatabaseError(
                f"the database {redact_url(engine.url)} is at revision {current or '(empty)'}, the code "
                f"needs {head}: run 'monitor db upgrade' once, then start the workers"
            )
    retry = settings.delivery_retry
    ctx = Context(settings=settings, engine=engine, watchlists=source,
                  owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
                  retry=RetryPolicy(first_delay=retry.first_delay, max_delay=retry.max_delay, horizon=retry.horizon))
    with session_scope(engine) as session:
        store.sync_config(session, *config_specs(settings), now)
    return ctx


def check_subscribed_watchlists(settings: Settings, result: LoadResult | None) -> None:
    """Refuse a subscription that follows a watchlist that does not exist: it would never receive anything.

    A list whose file is present but broken counts as existing (the daemon keeps its last good
    version; one-shot commands refuse broken files on their own).
    """
    if result is None or any(e.path == str(settings.watchlists_dir) for e in result.errors):
        return  # the folder itself is missing or unreadable: that error is reported on its own
    known = {w.name for w in result.watchlists}
    present = known | {Path(str(e.path)).stem for e in result.errors if e.path}
    for sub in settings.subscriptions:
        missing = [name for name in sub.watchlists if name not in present]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            raise ConfigError(
                f"subscription {sub.name!r} follows {'watchlist' if len(missing) == 1 else 'watchlists'} {names}, "
                f"which {'does' if len(missing) == 1 else 'do'} not exist in {settings.watchlists_dir}; "
                f"the watchlists are: {', '.join(sorted(known)) or '(none)'}"
            )


def beat(ctx: Context, *, now: datetime) -> None:
    """Record this process's heartbeat (``monitor status`` reads it)."""
    running = {name: started.isoformat() for name, started in list(ctx.running.items())}
    with session_scope(ctx.engine) as session:
        store.heartbeat(session, owner=ctx.owner, hostname=socket.gethostname(), pid=os.getpid(),
                        started_at=ctx.started_at, now=now, info={**ctx.last, "running": running})


def prune_cycle(ctx: Context, *, now: datetime, dry_run: bool = False) -> dict[str, int]:
    r = ctx.settings.retention
    retention = store.Retention(items=r.items, hits=r.hits, deliveries=r.deliveries, fingerprints=r.fingerprints)
    with session_scope(ctx.engine) as session:
        counts = store.prune(session, now=now, retention=retention, dry_run=dry_run, story_window=STORY_WINDOW)
    log.info("prune %s: %s", "dry run" if dry_run else "done", counts)
    return counts


