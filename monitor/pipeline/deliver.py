"""One delivery cycle: plan digests for due subscriptions (in batches), then send what is due.

Sending and recording outcomes live in :mod:`monitor.pipeline.sending`; test messages and
examples are here. A subscription that fails to plan is logged once and left for the next cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from monitor import store
from monitor.config import SubscriptionConfig
from monitor.db import session_scope
from monitor.deliver.chat import render_chat, render_chat_parts
from monitor.deliver.digest import ComingUp, Digest, SourceProblem, build_digest, example_digest, split_digest
from monitor.deliver.email import compose
from monitor.deliver.ntfy import render_ntfy
from monitor.deliver.render import render_email, render_webhook, webhook_payload
from monitor.deliver.transport import Outgoing, TransportDeps, Transports
from monitor.domain import StoredHit
from monitor.ingest.fetch import build_client
from monitor.match.anniversaries import upcoming
from monitor.pipeline.context import (
    Context,
)
from monitor.pipeline.sending import DELIVERY_LEASE_SECONDS, DeliverySummary, send_due
from monitor.pipeline.subscribers import plan_targets, subscriber_links
from monitor.redact import display_host, redact
from monitor.schedules import Schedule, in_quiet_hours, load_zone, parse_schedule

log = logging.getLogger("monitor")

MAX_HITS_PER_PLAN = 2000  # hits planned per subscription per cycle; the rest follow next cycle
PLAN_BATCH = 100  # subscriptions claimed, planned and advanced in one transaction


# --- delivery -----------------------------------------------------------------------------------


def delivery_cycle(ctx: Context, *, now: datetime, flush: bool = False) -> DeliverySummary:
    summary = DeliverySummary()
    plan_deliveries(ctx, now=now, flush=flush, summary=summary)
    asyncio.run(send_due(ctx, now=now, summary=summary))
    ctx.last["delivery"] = {"at": now.isoformat(), **summary.as_dict(), "errors": len(summary.errors),
                            "targets": len(summary.targets)}
    log.info("delivery cycle done: %d planned, %d sent, %d failed, %d dead",
             summary.planned, summary.sent, summary.failed, summary.dead)
    return summary


@dataclass(frozen=True, slots=True)
class _Due:
    """A subscription due for planning: its configuration, row id and parsed schedule."""

    cfg: SubscriptionConfig
    sub_id: int
    schedule: Schedule


def plan_deliveries(ctx: Context, *, now: datetime, flush: bool, summary: DeliverySummary) -> None:
    """Render and enqueue the messages of every due subscription that has undelivered hits.

    Due subscriptions are planned ``PLAN_BATCH`` at a time, each batch in one transaction: claim,
    read the pending hits (one query per set of subscriptions that follow the same lists), render,
    enqueue, advance. A subscription whose digest cannot be built or rendered is left unplanned
    (its lease given back) while the rest of its batch goes ahead; a batch whose statements fail is
    planned again one subscription at a time, so one bad row never blocks the others.
    """
    titles = watchlist_titles(ctx)
    extras = _DigestExtras(ctx, now)
    with session_scope(ctx.engine) as session:
        targets = plan_targets(session, ctx.settings, now=now)  # subscribers' preferences win for their address
        rows = store.get_subscriptions(session)
    due: list[_Due] = []
    for target in targets:
        cfg, row = target.config, rows.get(target.row_name)
        if row is None or row.id is None:
            continue
        schedule = parse_schedule(cfg.schedule, cfg.timezone)
        is_due = schedule.immediate or flush or (row.next_due_at is not None and row.next_due_at <= now)
        if not is_due or in_quiet_hours(cfg.quiet_hours, now, load_zone(cfg.timezone)):
            continue  # a digest due in quiet hours stays due and goes out when they end
        due.append(_Due(cfg, row.id, schedule))
    for start in range(0, len(due), PLAN_BATCH):
        ctx.check_stop()
        batch = due[start:start + PLAN_BATCH]
        try:
            _plan_batch(ctx, batch, now=now, titles=titles, extras=extras, summary=summary)
        except Exception:
            if len(batch) == 1:
                _planning_failed(batch[0], summary)
                continue
            log.warning("planning %d subscriptions together failed; planning them one by one", len(batch),
                        exc_info=True)
            for one in batch:
                try:
                    _plan_batch(ctx, [one], now=now, titles=titles, extras=extras, summary=summary)
                except Exception:
                    _planning_failed(one, summary)


def _planning_failed(due: _Due, summary: DeliverySummary) -> None:
    exc = sys.exc_info()[1]
    log.exception("planning failed", extra={"subscription": due.cfg.name})
    summary.errors.append(f"{due.cfg.name}: {exc}")


def _plan_batch(ctx: Context, batch: list[_Due], *, now: datetime, titles: dict[str, str], extras: _DigestExtras,
                summary: DeliverySummary) -> None:
    """Claim, plan and advance these subscriptions in one transaction (see :func:`plan_deliveries`).

    Another worker's claim on the same rows waits for this commit and then finds the leases taken
    (or, after a crash, free again). The summary changes only once the transaction has committed.
    """
    planned = 0
    errors: list[str] = []
    with session_scope(ctx.engine) as session:
        claimed = store.claim_subscriptions(session, [d.sub_id for d in batch], now=now,
                                            lease_seconds=DELIVERY_LEASE_SECONDS)
        mine = [d for d in batch if d.sub_id in claimed]
        pending: dict[int, list[StoredHit]] = {}
        sets: dict[tuple[tuple[str, ...], float], list[_Due]] = {}
        for d in mine:
            sets.setdefault((tuple(d.cfg.watchlists), d.cfg.min_score), []).append(d)
        for (watchlists, min_score), members in sets.items():
            pending.update(store.undelivered_hits_for(session, [d.sub_id for d in members], watchlists, now=now,
                                                      limit=MAX_HITS_PER_PLAN, min_score=min_score))
        emailed = [d.cfg.name for d in mine if d.cfg.webhook is None and d.cfg.ntfy is None and pending[d.sub_id]]
        gone = store.unsubscribed_by_subscription(session, emailed) if emailed else {}
        messages: list[store.NewDelivery] = []
        finished: list[tuple[int, datetime | None]] = []
        failed: list[int] = []
        for d in mine:
            try:
                hits = pending[d.sub_id]
                if hits:
                    digest = build_subscription_digest(session, ctx, d.cfg, hits, titles, now=now, extras=extras)
                    messages.extend(_messages(ctx, d.cfg, d.sub_id, digest, now=now,
                                              gone=gone.get(d.cfg.name, set())))
            except Exception as exc:  # one subscription's failure never blocks the others
                log.exception("planning failed", extra={"subscription": d.cfg.name})
                errors.append(f"{d.cfg.name}: {exc}")
                failed.append(d.sub_id)
                continue
            finished.append((d.sub_id, None if d.schedule.immediate else d.schedule.next_due(now)))
        planned = len(store.enqueue_deliveries(session, messages, now=now))
        store.finish_subscription_plans(session, finished, now=now)
        store.release_subscriptions(session, failed)
    summary.planned += planned
    summary.errors.extend(errors)


def watchlist_titles(ctx: Context) -> dict[str, str]:
    result = ctx.watchlists.result
    if result is None:
        return {}
    return {w.name: w.title for w in result.watchlists if getattr(w, "title", None)}


class _DigestExtras:
    """The calendar and sources notes, computed once per cycle (per time zone for the calendar)."""

    def __init__(self, ctx: Context, now: datetime) -> None:
        self.ctx, self.now = ctx, now
        self._sources: tuple[SourceProblem, ...] | None = None
        self._coming: dict[str, tuple[ComingUp, ...]] = {}

    def sources(self, session: Session) -> tuple[SourceProblem, ...]:
        if self._sources is None:
            self._sources = tuple(
                SourceProblem(name=f.name or display_host(f.url), host=display_host(f.url), problem=redact(problem))
                for f, problem in store.problem_feeds(session, now=self.now,
                                                      failing_for=self.ctx.settings.source_problem_after)
            )
        return self._sources

    def coming_up(self, zone_name: str) -> tuple[ComingUp, ...]:
        if zone_name not in self._coming:
            result, days = self.ctx.watchlists.result, self.ctx.settings.coming_up_days
            today = self.now.astimezone(load_zone(zone_name)).date()
            self._coming[zone_name] = tuple(
                ComingUp(u.date, u.name, u.years) for u in upcoming(result.calendar, today, days)
            ) if result is not None and days else ()
        return self._coming[zone_name]


def build_subscription_digest(
    session: Session, ctx: Context, cfg: SubscriptionConfig, hits: list[StoredHit], titles: dict[str, str], *,
    now: datetime, extras: _DigestExtras | None = None,
) -> Digest:
    """The digest value for these hits, with the calendar's coming-up notes and failing sources."""
    extras = extras or _DigestExtras(ctx, now)
    digest = build_digest(cfg.name, hits, now=now, zone=load_zone(cfg.timezone), zone_name=cfg.timezone,
                          titles=titles, order=cfg.watchlists, language=cfg.language)
    return replace(digest, coming_up=extras.coming_up(cfg.timezone), sources=extras.sources(session))


def example_for(ctx: Context, cfg: SubscriptionConfig, *, now: datetime, test: bool) -> Digest:
    """Made-up entries in the subscription's own layout, zone and spelling (a test or an example)."""
    return example_digest(cfg.name, cfg.watchlists, now=now, zone=load_zone(cfg.timezone), zone_name=cfg.timezone,
                          titles=watchlist_titles(ctx), language=cfg.language, test=test)


def send_test_message(ctx: Context, cfg: SubscriptionConfig, *, now: datetime) -> str:
    """Send a clearly marked test message through the subscription's real transport; returns where it went.

    Nothing is recorded in the outbox: a test carries no hits and is never retried.
    Raises DeliveryError when the transport refuses it.
    """
    digest = example_for(ctx, cfg, now=now, test=True)
    key = f"test_{uuid.uuid4().hex}"
    if cfg.webhook is not None:
        if cfg.webhook.format == "json":
            payload = webhook_payload(digest, delivery_key=key)
            payload.update(type="monitor.test", test=True, notice=digest.notice)
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        else:
            body = render_chat(digest, cfg.webhook.format, delivery_key=key)[0]
        return asyncio.run(_send_once(ctx, "webhook", Outgoing(key=key, subscription=cfg.name, target=cfg.webhook.url,
                                                               payload=body, created_at=now, config=cfg), now=now))
    if cfg.ntfy is not None:
        title, text = render_ntfy(digest)
        return asyncio.run(_send_once(ctx, "ntfy", Outgoing(key=key, subscription=cfg.name, target=cfg.ntfy.url,
                                                            payload=text, created_at=now, subject=title, config=cfg),
                                      now=now))
    settings = ctx.settings
    sender = settings.smtp.from_ if settings.smtp else "monitor@localhost"
    recipients = list(cfg.email or [])
    rendered = render_email(digest)
    payload_bytes = compose(subject=rendered.subject, text=rendered.text, html=rendered.html, sender=sender,
                            recipients=recipients, key=key, date=now,
                            extra_headers=subscriber_links(settings, cfg.name, recipients, now=now)[0])
    return asyncio.run(_send_once(ctx, "email", Outgoing(key=key, subscription=cfg.name, target=json.dumps(recipients),
                                                         payload=payload_bytes, created_at=now, config=cfg), now=now))


async def _send_once(ctx: Context, kind: str, message: Outgoing, *, now: datetime) -> str:
    policy = ctx.webhook_policy
    async with build_client(policy) as client:
        return await Transports(TransportDeps(ctx.settings, client, policy)).send(kind, message, now=now)


def _messages(ctx: Context, cfg: SubscriptionConfig, sub_id: int, digest: Digest, *, now: datetime,
              gone: set[str]) -> list[store.NewDelivery]:
    """Render the messages of one digest for the outbox (``gone``: lower-cased addresses that left)."""
    if cfg.webhook is not None:
        if cfg.webhook.format == "json":
            key = f"msg_{uuid.uuid4().hex}"
            parts = [(render_webhook(digest, delivery_key=key), digest.hit_ids, key)]
        else:  # chat platforms: one delivery per message, split to the platform's limits
            parts = [(body, hit_ids, f"msg_{uuid.uuid4().hex}")
                     for body, hit_ids in render_chat_parts(digest, cfg.webhook.format)]
        return [store.NewDelivery(subscription_id=sub_id, key=key, transport="webhook", subject=f"{len(hit_ids)} hits",
                                  payload=body, recipients=cfg.webhook.url, hit_ids=hit_ids)
                for body, hit_ids, key in parts]
    if cfg.ntfy is not None:
        messages = []
        for part in split_digest(digest, cfg.max_items):
            title, text = render_ntfy(part)
            messages.append(store.NewDelivery(subscription_id=sub_id, key=f"msg_{uuid.uuid4().hex}", transport="ntfy",
                                              subject=title, payload=text, recipients=cfg.ntfy.url,
                                              hit_ids=part.hit_ids))
        return messages
    settings = ctx.settings
    sender = settings.smtp.from_ if settings.smtp else "monitor@localhost"
    # An address that unsubscribed (stored in the database) wins over the config's list.
    recipients = [address for address in cfg.email or [] if address.lower() not in gone]
    if not recipients:
        return []
    headers, preferences_url = subscriber_links(settings, cfg.name, recipients, now=now)
    messages = []
    for part in split_digest(replace(digest, preferences_url=preferences_url), cfg.max_items):
        key = f"msg_{uuid.uuid4().hex}"
        rendered = render_email(part)
        payload = compose(subject=rendered.subject, text=rendered.text, html=rendered.html, sender=sender,
                          recipients=recipients, key=key, date=now, extra_headers=headers)
        messages.append(store.NewDelivery(subscription_id=sub_id, key=key, transport="email",
                                          subject=rendered.subject, payload=payload,
                                          recipients=json.dumps(recipients), hit_ids=part.hit_ids))
    return messages

