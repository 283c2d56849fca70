"""The daemon: APScheduler ticks the poll and delivery cycles; the database holds the state.

The scheduler keeps nothing that matters after a restart: due-ness lives in the
database (``feeds.next_poll_at``, ``subscriptions.next_due_at``,
``deliveries.next_attempt_at``). SIGTERM and SIGINT stop new ticks and tell the
cycle in flight to stop where it is: a poll cancels its requests in flight and gives
its unfinished feeds back (they keep their due time), so the process exits within
seconds, not after the slowest feed. While a cycle runs, the heartbeat carries its
start time, so ``monitor status`` can tell a stuck cycle from a live process.
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
from monitor.pipeline import Context, CycleStopped, beat, delivery_cycle, poll_cycle, prune_cycle, utcnow

log = logging.getLogger("monitor")

POLL_TICK_SECONDS = 30
DELIVERY_TICK_SECONDS = 15
HEARTBEAT_SECONDS = 30
PRUNE_SECONDS = 24 * 3600


def _guarded(name: str, job: Callable[[], object], ctx: Context | None = None) -> Callable[[], None]:
    """Run one cycle; with ``ctx``, record it as running (for the heartbeat) while it runs."""

    def run() -> None:
        if ctx is not None:
            ctx.running[name] = utcnow()
        try:
            job()
        except CycleStopped:
            log.info("%s cycle stopped for shutdown", name)
        except Exception:  # a failed cycle (database down, ...) is logged; the next tick retries
            log.exception("%s cycle failed; retrying at the next tick", name)
        finally:
            if ctx is not None:
                ctx.running.pop(name, None)

    return run


def run_daemon(ctx: Context, *, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(_guarded("poll", lambda: poll_cycle(ctx, now=utcnow()), ctx), "interval",
                      seconds=POLL_TICK_SECONDS, id="poll", next_run_time=utcnow())
    scheduler.add_job(_guarded("delivery", lambda: delivery_cycle(ctx, now=utcnow()), ctx), "interval",
                      seconds=DELIVERY_TICK_SECONDS, id="deliver", next_run_time=utcnow())
    scheduler.add_job(_guarded("heartbeat", lambda: beat(ctx, now=utcnow())), "interval",
                      seconds=HEARTBEAT_SECONDS, id="heartbeat", next_run_time=utcnow())
    # Retention runs a while after start (not in the way of the first poll), then daily.
    scheduler.add_job(_guarded("prune", lambda: prune_cycle(ctx, now=utcnow())), "interval",
                      seconds=PRUNE_SECONDS, id="prune", next_run_time=utcnow() + timedelta(minutes=10))

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping in-flight work", signal.Signals(signum).name)
        ctx.stopping.set()
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    scheduler.start()
    log.info("monitor running: %d feeds, %d subscriptions", len(ctx.settings.feeds),
             len(ctx.settings.subscriptions))
    stop.wait()
    ctx.stopping.set()
    scheduler.shutdown(wait=True)
    try:
        with session_scope(ctx.engine) as session:
            store.release_feed_leases(session, owner=ctx.owner)
            store.remove_worker(session, ctx.owner)
    except Exception:
        log.warning("could not remove this worker's heartbeat row; it will show as stale")
    ctx.close()
    log.info("monitor stopped")
