"""Sending the outbox: claim due deliveries with a lease, send them, record each outcome.

The guarantees (docs/architecture.md, "Sending"): a delivery is claimed just before it is sent, so
its lease starts at most one send before it goes out; its outcome is committed before its sender
takes the next one, so a crash re-sends at most the deliveries in flight, with the same idempotency
keys, and never skips one. Outcomes that complete while an earlier commit is running are committed
together in the next transaction (a group commit, in a worker thread so the sends go on meanwhile);
with one sender that is one transaction per outcome, as before.

On shutdown (``ctx.stopping``) no new delivery is claimed, the sends in flight are cancelled and
their leases given back: they stay pending, due as they were, and go out in a later cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor import store
from monitor.config import SubscriptionConfig
from monitor.db import session_scope
from monitor.deliver.outbox import next_attempt_at
from monitor.deliver.transport import Outgoing, TransportDeps, Transports
from monitor.errors import DeliveryError
from monitor.ingest.fetch import build_client
from monitor.models import Delivery
from monitor.pipeline.context import Context, CycleStopped

log = logging.getLogger("monitor")

DELIVERY_LEASE_SECONDS = 300
STOP_CHECK_SECONDS = 0.2  # how often a delivery cycle in flight looks for a shutdown request
# Sends in flight to one receiver host at a time: a few kept-alive connections carry a long batch
# to one endpoint as fast as many would, without crowding the receiver or the connection pool.
SENDS_PER_HOST = 8
HTTP_CHANNELS = frozenset({"webhook", "ntfy"})


@dataclass
class DeliverySummary:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    targets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"planned": self.planned, "sent": self.sent, "failed": self.failed, "dead": self.dead,
                "targets": self.targets, "errors": self.errors}


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery: Delivery
    sub_name: str
    at: datetime  # when the attempt ended: the time recorded with it
    target: str | None = None
    error: DeliveryError | None = None


class _SendClock:
    """The time of one step of a delivery cycle: the cycle's ``now`` plus the time elapsed since.

    Claims, signatures and records use it, so a long batch signs each webhook with a fresh
    timestamp and each lease starts when its delivery is claimed, while the cycle's start
    stays a parameter (tests and replays pass it; ``monotonic`` is injectable).
    """

    def __init__(self, start: datetime, monotonic: Callable[[], float]) -> None:
        self.start, self.monotonic, self.origin = start, monotonic, monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=max(0.0, self.monotonic() - self.origin))


@dataclass(frozen=True)
class _Senders:
    """What one delivery cycle sends with: transports, the configured subscriptions, names by id."""

    transports: Transports
    names: dict[int, str]
    configured: dict[str, SubscriptionConfig]


async def send_due(ctx: Context, *, now: datetime, summary: DeliverySummary,
                   ids: list[int] | None = None) -> None:
    """Send every delivery that was due when the cycle began; never waits for a later retry.

    ``delivery_concurrency`` senders send and record one delivery at a time; deliveries are
    claimed a few at a time (one per sender), just before they are sent, so a lease starts at
    most one send before its delivery goes out and a long batch never lets another worker
    re-claim what is still being sent. Each outcome is committed before its sender goes on:
    a crash re-sends at most the deliveries in flight, with the same idempotency keys. One
    delivery's failure, of whatever kind, is that delivery's outcome and never stops the others.
    Raises :class:`CycleStopped` when shutdown began meanwhile.
    """
    settings = ctx.settings
    clock = _SendClock(now, ctx.monotonic)
    with session_scope(ctx.engine) as session:
        names = {row.id: row.name for row in store.get_subscriptions(session).values() if row.id is not None}
    policy = ctx.webhook_policy
    recorder = _Recorder(ctx, summary)
    held: set[int] = set()  # claimed by this cycle and not yet recorded
    async with build_client(policy) as client:
        senders = _Senders(
            transports=Transports(TransportDeps(settings, client, policy)),
            names=names, configured={sub.name: sub for sub in settings.subscriptions},
        )

        # Claimed but not yet started: never more than one delivery per sender, so none waits longer
        # than one send for a free sender, far inside its lease. One claim at a time (the lock); the
        # checks are repeated under it, since another sender may have claimed while this one waited.
        waiting: list[Delivery] = []
        exhausted = False
        claiming = asyncio.Lock()
        slots: dict[str, asyncio.Semaphore] = {}
        chunk = min(settings.delivery_concurrency, settings.delivery_batch)

        async def sender() -> None:
            nonlocal exhausted
            while not ctx.stopping.is_set():
                if not waiting and not exhausted:
                    async with claiming:
                        if not waiting and not exhausted:
                            claimed = await asyncio.to_thread(
                                store.claim_due_deliveries, ctx.engine, now=clock(), due_by=now, limit=chunk,
                                ids=ids, lease_seconds=DELIVERY_LEASE_SECONDS)
                            held.update(d.id for d in claimed if d.id is not None)
                            waiting.extend(claimed)
                            exhausted = not claimed
                if not waiting:
                    return
                delivery = waiting.pop(0)
                async with _host_slot(slots, delivery):
                    outcome = await _send_one(delivery, senders, clock)
                await recorder.record(outcome)
                held.discard(delivery.id or 0)

        try:
            await _until_stopped(ctx, asyncio.gather(*(sender() for _ in range(settings.delivery_concurrency))))
        finally:
            await recorder.close()  # what was sent is recorded, whatever stopped the cycle
    if ctx.stopping.is_set():
        unsent = sorted(held - recorder.recorded)
        if unsent:
            with session_scope(ctx.engine) as session:
                store.release_deliveries(session, unsent)
        log.info("delivery cycle stopped for shutdown; %d deliveries in flight left pending", len(unsent))
        raise CycleStopped()


def _host_slot(slots: dict[str, asyncio.Semaphore],
               delivery: Delivery) -> asyncio.Semaphore | contextlib.nullcontext[None]:
    """The slot limiting sends to this delivery's receiver host (HTTP channels; email has its own server)."""
    if delivery.transport not in HTTP_CHANNELS:
        return contextlib.nullcontext()
    try:
        parts = urlsplit(delivery.recipients)
        host = f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port}"
    except ValueError:
        return contextlib.nullcontext()  # the transport says what is wrong with the URL
    slot = slots.get(host)
    if slot is None:
        slot = slots[host] = asyncio.Semaphore(SENDS_PER_HOST)
    return slot


async def _until_stopped(ctx: Context, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> None:
    """Run ``work``; once shutdown begins, cancel it (sends in flight included) and return."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
        if not task.done() and ctx.stopping.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
    task.result()


async def _send_one(delivery: Delivery, senders: _Senders, clock: _SendClock) -> _Outcome:
    """Send one delivery; every exception becomes its outcome (a bug or an odd receiver costs one)."""
    sub_name = senders.names.get(delivery.subscription_id, "?")
    try:
        assert delivery.created_at is not None
        message = Outgoing(key=delivery.key, subscription=sub_name, target=delivery.recipients,
                           payload=delivery.payload, created_at=delivery.created_at, subject=delivery.subject or "",
                           config=senders.configured.get(sub_name))
        target = await senders.transports.send(delivery.transport, message, now=clock())
    except DeliveryError as exc:
        return _Outcome(delivery, sub_name, clock(), error=exc)
    except Exception as exc:
        log.debug("unexpected error sending a delivery", exc_info=True,
                  extra={"subscription": sub_name, "delivery_id": delivery.id})
        error = DeliveryError(f"{delivery.transport} delivery failed unexpectedly: {str(exc) or 'no detail'}; "
                              "it will be retried")
        return _Outcome(delivery, sub_name, clock(), error=error)
    return _Outcome(delivery, sub_name, clock(), target=target)


class _Recorder:
    """Commits outcomes as they come: those that arrive while a commit runs go together in the next.

    The writing runs in a worker thread, so sends go on while a transaction commits; a sender
    awaits its own outcome's commit before it takes another delivery.
    """

    def __init__(self, ctx: Context, summary: DeliverySummary) -> None:
        self.ctx, self.summary = ctx, summary
        self.queue: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.recorded: set[int] = set()  # delivery ids whose outcome is committed

    async def record(self, outcome: _Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((outcome, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._write_queued())
        await asyncio.shield(done)  # a cancelled sender leaves its outcome to be committed anyway

    async def close(self) -> None:
        while self.writer is not None and not self.writer.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.writer)

    async def _write_queued(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                written = await asyncio.to_thread(_write_outcomes, self.ctx, [o for o, _ in batch])
                for outcome, retry, problem in written:
                    _report(outcome, retry, problem, self.summary)
                    if problem is None and outcome.delivery.id is not None:
                        self.recorded.add(outcome.delivery.id)
            finally:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


_Written = tuple[_Outcome, datetime | None, str | None]


def _write_outcomes(ctx: Context, outcomes: list[_Outcome]) -> list[_Written]:
    """Commit these outcomes in one transaction; if that fails, each in its own (runs in a worker thread).

    Returns each outcome with its retry time (None: sent, or dead) and, when it could not be
    committed, why.
    """
    planned = [(out, _retry_at(ctx, out)) for out in outcomes]
    try:
        with session_scope(ctx.engine) as session:
            for out, retry in planned:
                _write_one(session, out, retry)
        return [(out, retry, None) for out, retry in planned]
    except Exception as exc:
        if len(planned) == 1:
            return [(planned[0][0], planned[0][1], str(exc) or type(exc).__name__)]
    written: list[_Written] = []
    for out, retry in planned:
        try:
            with session_scope(ctx.engine) as session:
                _write_one(session, out, retry)
            written.append((out, retry, None))
        except Exception as exc:
            written.append((out, retry, str(exc) or type(exc).__name__))
    return written


def _retry_at(ctx: Context, out: _Outcome) -> datetime | None:
    if out.error is None:
        return None
    d = out.delivery
    assert d.created_at is not None
    return next_attempt_at(ctx.retry, attempts=d.attempts + 1, created_at=d.created_at, now=out.at,
                           rand=ctx.rand(), retry_after=out.error.retry_after, permanent=out.error.permanent)


def _write_one(session: Any, out: _Outcome, retry: datetime | None) -> None:
    assert out.delivery.id is not None
    if out.error is None:
        store.record_delivery_sent(session, out.delivery.id, now=out.at, target=out.target or "")
    else:
        store.record_delivery_failure(session, out.delivery.id, error=str(out.error), next_attempt_at=retry)


def _report(out: _Outcome, retry: datetime | None, problem: str | None, summary: DeliverySummary) -> None:
    """Count and log one outcome once its commit has been tried (``problem``: why it was not committed)."""
    d = out.delivery
    if problem is not None:
        # Sent but not recorded: the lease expires and the delivery goes out again with the
        # same idempotency key (webhook-id / Message-ID), so the receiver can drop the repeat.
        log.error("delivery outcome not recorded (%s); it will be re-sent with the same key", problem,
                  extra={"subscription": out.sub_name, "delivery_id": d.id})
        summary.errors.append(f"{out.sub_name}: delivery {d.id} sent but not recorded (will re-send with the "
                              "same key)")
        return
    if out.error is None:
        summary.sent += 1
        summary.targets.append(out.target or "")
        log.info("delivery sent", extra={"subscription": out.sub_name, "delivery_id": d.id})
        return
    if retry is None:
        summary.dead += 1
    else:
        summary.failed += 1
    summary.errors.append(f"{out.sub_name}: {out.error}")
    log.warning("delivery failed: %s", out.error, extra={
        "subscription": out.sub_name, "delivery_id": d.id, "attempt": d.attempts + 1})
