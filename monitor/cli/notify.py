"""``monitor notify test``: check that a subscription reaches its recipients."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import fail, notify_app, open_context, utcnow
from monitor.errors import ConfigError, MonitorError


@notify_app.command("test")
def notify_test(
    subscription: Annotated[str, typer.Argument(help="The subscription's name.")],
) -> None:
    """Send a clearly marked test message to the subscription's recipients through its real transport."""
    from monitor.pipeline import send_test_message

    ctx = open_context(now=utcnow(), secrets=True)
    try:
        try:
            cfg = ctx.settings.subscription(subscription)
        except ConfigError as exc:
            names = ", ".join(s.name for s in ctx.settings.subscriptions) or "(none)"
            fail(f"{exc}; the subscriptions are: {names}", 2)
        try:
            target = send_test_message(ctx, cfg, now=utcnow())
        except MonitorError as exc:
            fail(f"test message to {cfg.name} failed: {exc}", 1)
    finally:
        ctx.close()
    typer.echo(f"test message for {cfg.name} sent: {target}")
