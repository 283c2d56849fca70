"""``monitor deliveries``: the outbox, and queueing dead or failing deliveries again."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import deliveries_app, fail, require_schema, row, settings, show, table, utcnow, when

DELIVERY_STATUSES = ("pending", "sent", "dead")


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[str | None, typer.Option(help="pending, sent or dead.")] = None,
) -> None:
    """Deliveries with attempts, last error and next attempt."""
    from monitor import store
    from monitor.db import make_engine, read_scope
    from monitor.redact import redact

    if status is not None and status not in DELIVERY_STATUSES:
        fail(f"--status {status!r}: write one of {', '.join(DELIVERY_STATUSES)}", 2)
    engine = make_engine(settings().database_url)
    require_schema(engine)
    with read_scope(engine) as session:
        rows = store.list_deliveries(session, status=status)
    if not rows:
        return
    grid = table("id", "status", "transport", "attempts", "hits", "next attempt", "key", "last error",
                 right=("id", "attempts", "hits"))
    for d in rows:
        nxt = when(d.next_attempt_at) if d.next_attempt_at and d.status == "pending" else "-"
        row(grid, d.id, d.status, d.transport, d.attempts, d.hit_count, nxt, d.key,
            redact(d.last_error) if d.last_error else "")
    show(grid)


@deliveries_app.command("retry")
def deliveries_retry(
    delivery_id: Annotated[int | None, typer.Argument(help="A delivery id from 'deliveries list'.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
) -> None:
    """Queue a dead or failing delivery again, due now (same payload and idempotency key)."""
    from monitor import store
    from monitor.db import make_engine, session_scope

    if (delivery_id is None) == (not all_dead):
        fail("give a delivery id or --all-dead", 2)
    engine = make_engine(settings().database_url)
    require_schema(engine)
    with session_scope(engine) as session:
        count = store.retry_deliveries(session, now=utcnow(), delivery_id=delivery_id)
    if delivery_id is not None and count == 0:
        fail(f"no unsent delivery with id {delivery_id}", 1)
    typer.echo(f"queued {count} deliveries; they go out at the next delivery cycle")
