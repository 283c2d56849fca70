"""Subscriptions as operators see them: the config's definition with the database's progress.

The next digest preview and the test message run the same code as ``monitor digest preview`` and
``monitor notify test`` (``monitor.pipeline``): what the page shows is what the subscribers get.
Webhook and ntfy URLs are shown redacted (their paths are often the secret); secrets are never read here
except by the test message, which needs them to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.operations import OperationError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.config import Settings, SubscriptionConfig
    from monitor.pipeline.context import Context


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    name: str
    channel: str  # "email", "email (outbox folder)", "webhook (slack)", "ntfy"
    recipients: list[str]  # addresses, or the redacted URL
    watchlists: list[str]
    schedule: str
    timezone: str
    quiet_hours: str | None
    next_digest: datetime | None  # None: sent at the next delivery cycle (immediate)
    pending: int  # undelivered hits, up to ``more_than``
    more_than: bool  # True when there are at least ``pending`` (the planner's cap per message run)
    unsubscribed: list[str] = field(default_factory=list)
    min_score: float = 0.0
    overdue: bool = False  # the due time has passed: the next delivery cycle sends it


def channel_of(settings: Settings, cfg: SubscriptionConfig) -> tuple[str, list[str]]:
    """The subscription's channel and where it sends, safe to show: addresses, or URLs with their secrets masked."""
    from monitor.redact import display_host, redact_url

    if cfg.webhook is not None:
        return f"webhook ({cfg.webhook.format})", [redact_url(cfg.webhook.url)]
    if cfg.ntfy is not None:
        return "ntfy", [f"{display_host(cfg.ntfy.url)}/***"]  # the topic name is the secret
    return ("email" if settings.smtp else "email (outbox folder)"), list(cfg.email or [])


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
    from monitor.pipeline import MAX_HITS_PER_PLAN

    if row is None or row.id is None:  # not synced yet: the workers create the row at their next start
        return []
    return list(store.undelivered_hits(session, row.id, cfg.watchlists, since=row.created_at or now,
                                       limit=MAX_HITS_PER_PLAN, min_score=cfg.min_score))


def subscriptions_overview(session: Any, settings: Settings, *, now: datetime) -> list[SubscriptionView]:
    """Every configured subscription with its next digest time, pending hits and unsubscribed addresses."""
    from monitor.pipeline import MAX_HITS_PER_PLAN
    from monitor.schedules import parse_schedule

    rows = store.get_subscriptions(session)
    views = []
    for cfg in settings.subscriptions:
        row = rows.get(cfg.name)
        channel, recipients = channel_of(settings, cfg)
        schedule = parse_schedule(cfg.schedule, cfg.timezone)
        if schedule.immediate:
            due = None
        elif row is not None and row.next_due_at is not None:
            due = row.next_due_at
        else:
            due = schedule.next_due(now)
        pending = len(_pending(session, cfg, row, now=now))
        views.append(SubscriptionView(
            name=cfg.name, channel=channel, recipients=recipients, watchlists=list(cfg.watchlists),
            schedule=cfg.schedule, timezone=cfg.timezone, quiet_hours=cfg.quiet_hours, next_digest=due,
            pending=pending, more_than=pending >= MAX_HITS_PER_PLAN,
            unsubscribed=sorted(store.unsubscribed_addresses(session, cfg.name)), min_score=cfg.min_score,
            overdue=due is not None and due <= now))
    return views


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
    channel, _recipients = channel_of(settings, cfg)
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
