"""Subscriptions as operators see them: the config's definition with the database's progress.

The next digest preview and the test message run the same code as ``monitor digest preview`` and
``monitor notify test`` (``monitor.pipeline``): what the page shows is what the subscribers get.
Webhook and ntfy URLs are shown redacted (their paths are often the secret); secrets are never read here
except by the test message, which needs them to send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.operations import OperationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.config import Settings, SubscriptionConfig
    from monitor.pipeline.context import Context


PENDING_CAP = 1000  # pending hits are counted up to this many (a count past it would cost a scan)


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """What a subscription sends, to whom, and what is waiting for it (the web page and the API)."""

    name: str
    channel: str  # email | webhook | ntfy
    channel_label: str  # "email", "email (outbox folder)", "webhook (slack)", "ntfy"
    schedule: str
    timezone: str
    quiet_hours: str | None
    watchlists: list[str]
    min_score: float
    recipients: list[str]  # email addresses; a webhook's URL with its secrets masked; ntfy as host/***
    unsubscribed: int  # recipients that left through an unsubscribe link
    unsubscribed_addresses: list[str]
    pending_hits: int | None  # hits waiting for the next message (None: not in the database yet)
    pending_hits_capped: bool  # pending_hits stopped counting at PENDING_CAP
    pending_deliveries: int  # rendered messages in the outbox, not yet sent
    dead_deliveries: int
    next_digest_at: datetime | None  # None: immediate (the next delivery cycle)
    last_planned_at: datetime | None
    overdue: bool = False  # the due time has passed: the next delivery cycle sends it


def channel_of(settings: Settings, cfg: SubscriptionConfig) -> tuple[str, str, list[str]]:
    """The subscription's channel, its label, and where it sends, safe to show: addresses, or URLs with
    their secrets masked (a webhook's path is often its secret; an ntfy topic's name is)."""
    from monitor.redact import display_host, redact_url

    if cfg.webhook is not None:
        return "webhook", f"webhook ({cfg.webhook.format})", [redact_url(cfg.webhook.url)]
    if cfg.ntfy is not None:
        return "ntfy", "ntfy", [f"{display_host(cfg.ntfy.url)}/***"]
    return "email", ("email" if settings.smtp else "email (outbox folder)"), list(cfg.email or [])


def _config(settings: Settings, name: str) -> SubscriptionConfig:
    for cfg in settings.subscriptions:
        if cfg.name == name:
            return cfg
    raise OperationError(f"no subscription named {name!r} in the configuration")


def _context(settings: Settings, engine: Engine) -> Context:
    """What the delivery code needs, without syncing the config or migrating (the workers do that)."""
    from monitor.errors import WatchlistError
    from monitor.pipeline.context import Context, WatchlistSource

    source = WatchlistSource(settings.watchlists_dir)
    try:
        source.get()
    except WatchlistError as exc:
        raise OperationError(str(exc)) from None
    return Context(settings=settings, engine=engine, watchlists=source, owner="web")


def _pending(session: Any, cfg: SubscriptionConfig, row: Any, *, now: datetime) -> list[Any]:
    """The hits the next digest would carry, as the planner reads them."""
    from monitor.pipeline import MAX_HITS_PER_PLAN

    if row is None or row.id is None:  # not synced yet: the workers create the row at their next start
        return []
    return list(store.undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                       limit=MAX_HITS_PER_PLAN, min_score=cfg.min_score))


def subscription_views(session: Any, settings: Settings, *, now: datetime,
                       names: Sequence[str] | None = None) -> list[SubscriptionView]:
    """The configured subscriptions (all, or those named), in config order, with their progress read from
    the database: a fixed number of queries for the outbox, one count per subscription."""
    import sqlalchemy as sa
    from sqlmodel import col

    from monitor.models import Delivery
    from monitor.schedules import parse_schedule

    rows = store.get_subscriptions(session)
    outbox: dict[tuple[int, str], int] = {}
    for sub_id, status, count in session.execute(
            sa.select(Delivery.subscription_id, Delivery.status, sa.func.count())  # type: ignore[call-overload]
            .where(col(Delivery.status).in_(["pending", "dead"]))
            .group_by(Delivery.subscription_id, Delivery.status)):
        outbox[(sub_id, status)] = int(count)
    views = []
    for cfg in settings.subscriptions:
        if names is not None and cfg.name not in names:
            continue
        row = rows.get(cfg.name)
        channel, label, recipients = channel_of(settings, cfg)
        gone = sorted(store.unsubscribed_addresses(session, cfg.name)) if channel == "email" else []
        pending: int | None = None
        if row is not None and row.id is not None:
            pending = store.count_undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                                   min_score=cfg.min_score, cap=PENDING_CAP + 1)
        schedule = parse_schedule(cfg.schedule, cfg.timezone)
        next_at = None
        if not schedule.immediate:
            next_at = row.next_due_at if row is not None and row.next_due_at is not None else schedule.next_due(now)
        sub_id = row.id if row is not None and row.id is not None else -1
        left = {a.lower() for a in gone}
        views.append(SubscriptionView(
            name=cfg.name, channel=channel, channel_label=label, schedule=cfg.schedule, timezone=cfg.timezone,
            quiet_hours=cfg.quiet_hours, watchlists=list(cfg.watchlists), min_score=cfg.min_score,
            recipients=recipients, unsubscribed=sum(1 for a in recipients if a.lower() in left),
            unsubscribed_addresses=gone,
            pending_hits=min(pending, PENDING_CAP) if pending is not None else None,
            pending_hits_capped=pending is not None and pending > PENDING_CAP,
            pending_deliveries=outbox.get((sub_id, "pending"), 0), dead_deliveries=outbox.get((sub_id, "dead"), 0),
            next_digest_at=next_at, last_planned_at=row.last_planned_at if row is not None else None,
            overdue=next_at is not None and next_at <= now,
        ))
    return views


def subscription_view(session: Any, settings: Settings, name: str, *, now: datetime) -> SubscriptionView:
    views = subscription_views(session, settings, now=now, names=[name])
    if not views:
        raise OperationError(f"no subscription named {name!r} in the configuration")
    return views[0]


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """The next message a subscription would get: email (subject, text, HTML) or chat bodies."""

    name: str
    channel: str
    pending: int
    example: bool  # nothing pending: made-up entries in the subscription's layout
    subject: str = ""
    text: str = ""
    html: str = ""
    bodies: list[str] = field(default_factory=list)  # webhook and ntfy payloads, as sent


def digest_preview(session: Any, settings: Settings, engine: Engine, name: str, *, now: datetime) -> DigestPreview:
    """Render the subscription's next digest as ``monitor digest preview`` does; sends and records nothing."""
    from monitor.deliver.chat import render_chat
    from monitor.deliver.ntfy import render_ntfy
    from monitor.deliver.render import render_email, render_webhook
    from monitor.pipeline import build_subscription_digest, example_for, watchlist_titles

    cfg = _config(settings, name)
    ctx = _context(settings, engine)
    pending = _pending(session, cfg, store.get_subscriptions(session).get(cfg.name), now=now)
    if pending:
        digest = build_subscription_digest(session, ctx, cfg, pending, watchlist_titles(ctx), now=now)
    else:
        digest = example_for(ctx, cfg, now=now, test=False)
    _channel, channel, _recipients = channel_of(settings, cfg)
    if cfg.webhook is not None:
        raw = ([render_webhook(digest, delivery_key="msg_preview")] if cfg.webhook.format == "json"
               else render_chat(digest, cfg.webhook.format, delivery_key="msg_preview"))
        return DigestPreview(name=cfg.name, channel=channel, pending=len(pending), example=not pending,
                             bodies=[b.decode("utf-8") for b in raw])
    if cfg.ntfy is not None:
        title, text = render_ntfy(digest)
        return DigestPreview(name=cfg.name, channel=channel, pending=len(pending), example=not pending,
                             subject=title, bodies=[text.decode("utf-8")])
    rendered = render_email(digest)
    return DigestPreview(name=cfg.name, channel=channel, pending=len(pending), example=not pending,
                         subject=rendered.subject, text=rendered.text, html=rendered.html)


def send_test(settings: Settings, engine: Engine, name: str, *, now: datetime) -> str:
    """Send the subscription a clearly marked test message through its real transport (``monitor notify test``).

    Returns where it went; raises :class:`OperationError` with the reason (secrets masked) when it could not.
    """
    from monitor.errors import ConfigError, MonitorError
    from monitor.pipeline import send_test_message
    from monitor.redact import redact

    cfg = _config(settings, name)
    try:
        settings.check_secrets()
    except ConfigError as exc:
        raise OperationError(str(exc)) from None
    ctx = _context(settings, engine)
    try:
        return redact(send_test_message(ctx, cfg, now=now))
    except MonitorError as exc:
        raise OperationError(f"test message to {cfg.name} failed: {redact(str(exc))}") from None
