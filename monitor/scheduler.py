"""The daemon: APScheduler ticks the poll and delivery cycles; the database holds the state.

The scheduler keeps nothing that matters after a restart: due-ness lives in the
database (``feeds.next_poll_at``, ``subscriptions.next_due_at``,
``deliveries.next_attempt_at``). SIGTERM and SIGINT stop new ticks, let the
cycle in flight finish, and exit.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler

from monitor import store
from monitor.db import session_scope
from monitor.pipeline import Context, beat, delivery_cycle, poll_cycle, prune_cycle, utcnow

log = logging.getLogger("monitor")

POLL_TICK_SECONDS = 30
DELIVERY_TICK_SECONDS = 15
HEARTBEAT_SECONDS = 30
PRUNE_SECONDS = 24 * 3600


def _guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a failed cycle (database down, ...) is logged; the next tick retries
            log.exception("%s cycle failed; retrying at the next tick", name)

    return run


def run_daemon(ctx: Context, *, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded("poll", lambda: poll_cycle(ctx, now=utcnow())), "interval",
                      seconds=POLL_TICK_SECONDS, id="poll", next_run_time=utcnow())
    scheduler.add_job(_guarded("delivery", lambda: delivery_cycle(ctx, now=utcnow())), "interval",
                      seconds=DELIVERY_TICK_SECONDS, id="deliver", next_run_time=utcnow())
    scheduler.add_job(_guarded("heartbeat", lambda: beat(ctx, now=utcnow())), "interval",
                      seconds=HEARTBEAT_SECONDS, id="heartbeat", next_run_time=utcnow())
    # Retention runs a while after start (not in the way of the first poll), then daily.
    scheduler.add_job(_guarded("prune", lambda: prune_cycle(ctx, now=utcnow())), "interval",
                      seconds=PRUNE_SECONDS, id="prune", next_run_time=utcnow() + timedelta(minutes=10))

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing in-flight work", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    scheduler.start()
    log.info("monitor running: %d feeds, %d subscriptions", len(ctx.settings.feeds),
             len(ctx.settings.subscriptions))
    stop.wait()
    scheduler.shutdown(wait=True)
    try:
        with session_scope(ctx.engine) as session:
            store.remove_worker(session, ctx.owner)
    except Exception:
        log.warning("could not remove this worker's heartbeat row; it will show as stale")
    ctx.close()
    log.info("monitor stopped")
