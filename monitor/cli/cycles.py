"""``monitor poll``, ``deliver`` and ``run``: one cycle at a time, or the daemon."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from monitor.cli.common import app, fail, hits_line, open_context, utcnow


@app.command()
def poll(
    once: Annotated[bool, typer.Option("--once", help="One poll cycle, then exit.")] = False,
    all_feeds: Annotated[bool, typer.Option("--all", help="Poll every active feed, due or not.")] = False,
) -> None:
    """Fetch due feeds, store new items, match them, store hits."""
    from monitor.pipeline import poll_cycle

    if not once:
        fail("use 'monitor poll --once' for one cycle, or 'monitor run' for the daemon", 2)
    ctx = open_context(now=utcnow(), one_shot=True)
    try:
        summary = poll_cycle(ctx, now=utcnow(), all_feeds=all_feeds)
    finally:
        ctx.close()
    typer.echo(f"polled {summary.feeds_polled} feeds ({summary.feeds_failed} failed, "
               f"{summary.not_modified} unchanged): {summary.new_items} new items; "
               f"hits: {hits_line(summary.hits)}")


@app.command()
def deliver(
    once: Annotated[bool, typer.Option("--once", help="Plan and send what is due now, then exit.")] = False,
    flush: Annotated[bool, typer.Option("--flush", help="Treat every digest as due now.")] = False,
) -> None:
    """Plan digests that are due and send every delivery whose attempt is due."""
    from monitor.pipeline import delivery_cycle

    if not once:
        fail("use 'monitor deliver --once' for one cycle, or 'monitor run' for the daemon", 2)
    ctx = open_context(now=utcnow(), one_shot=True, secrets=True)
    summary = delivery_cycle(ctx, now=utcnow(), flush=flush)
    _print_delivery(summary)


def _print_delivery(summary: Any) -> None:
    if summary.planned == 0 and summary.sent == 0 and summary.failed == 0 and summary.dead == 0:
        typer.echo("nothing new to deliver: no digest written")
        return
    typer.echo(f"deliveries: {summary.planned} planned, {summary.sent} sent, {summary.failed} to retry, "
               f"{summary.dead} dead")
    for target in summary.targets:
        typer.echo(f"  sent: {target}")
    for error in summary.errors:
        typer.echo(f"  failed: {error}")


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One poll cycle (all feeds) and one delivery "
                                                      "cycle (digests flushed), then exit.")] = False,
) -> None:
    """The daemon: poll and deliver on schedule until SIGTERM/SIGINT."""
    from monitor.pipeline import delivery_cycle, poll_cycle

    ctx = open_context(now=utcnow(), daemon=not once, one_shot=once, secrets=True)
    if not once:
        from monitor.scheduler import run_daemon

        run_daemon(ctx)
        return
    try:
        polled = poll_cycle(ctx, now=utcnow(), all_feeds=True)
    finally:
        ctx.close()
    typer.echo(f"feeds polled: {polled.feeds_polled} ({polled.feeds_failed} failed, "
               f"{polled.not_modified} unchanged)")
    typer.echo(f"new items: {polled.new_items}")
    typer.echo(f"hits: {hits_line(polled.hits)}")
    for error in polled.errors:
        typer.echo(f"  feed error: {error}")
    delivered = delivery_cycle(ctx, now=utcnow(), flush=True)
    if delivered.planned == 0 and delivered.sent == 0:
        typer.echo("digests written: 0 (nothing new since the last run)")
    else:
        typer.echo(f"digests written: {delivered.sent} (planned {delivered.planned}, "
                   f"{delivered.failed} to retry, {delivered.dead} dead)")
        for target in delivered.targets:
            typer.echo(f"  {target}")
        for error in delivered.errors:
            typer.echo(f"  delivery error: {error}")
