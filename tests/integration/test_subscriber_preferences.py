"""The planner honours an address's stored preferences without re-sending or skipping a hit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from monitor import store
from monitor.db import session_scope
from monitor.models import Delivery
from monitor.pipeline import delivery_cycle
from monitor.store.preferences import EARLIER_SUBJECT
from tests.integration.test_delivery_planning import T0, add_hits, body, context, sent_messages


def _stories(message: object) -> set[str]:
    return {line.split("Story ")[1].split()[0] for line in body(message).splitlines()  # type: ignore[arg-type]
            if "Story " in line}


def test_an_address_moving_to_its_own_cadence_gets_what_was_pending_and_nothing_twice(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="daily 08:00", email=["a@example.org", "b@example.org"])
    day1 = T0.replace(hour=8) + timedelta(days=1)
    add_hits(ctx, 1, now=T0 + timedelta(minutes=1))  # Story 0: sent to both in the first digest
    assert delivery_cycle(ctx, now=day1 + timedelta(minutes=1)).sent == 1
    [first] = sent_messages(tmp_path)
    assert _stories(first) == {"0"} and "a@example.org" in first["To"] and "b@example.org" in first["To"]

    add_hits(ctx, 1, now=day1 + timedelta(hours=1), start=1)  # Story 1: delegation visit, pending
    add_hits(ctx, 1, now=day1 + timedelta(hours=1), watchlist="anniversaries", start=2)  # Story 2: pending
    with session_scope(ctx.engine) as session:
        store.save_preference(session, "desk", "A@example.org", watchlists=["anniversaries"], schedule="immediate",
                              timezone=None, quiet_hours=None, now=day1 + timedelta(hours=2))

    # a now gets, at once, only its chosen list, including what the shared digest had not sent yet.
    assert delivery_cycle(ctx, now=day1 + timedelta(hours=2, minutes=1)).sent == 1
    mine = sent_messages(tmp_path)[-1]
    assert str(mine["To"]) == "a@example.org" and _stories(mine) == {"2"}

    # b keeps the daily digest with both lists; a is no longer on it and gets nothing twice.
    assert delivery_cycle(ctx, now=day1 + timedelta(days=1, minutes=1)).sent == 1
    shared = sent_messages(tmp_path)[-1]
    assert str(shared["To"]) == "b@example.org" and _stories(shared) == {"1", "2"}

    add_hits(ctx, 1, now=day1 + timedelta(days=1, hours=1), watchlist="anniversaries", start=3)
    add_hits(ctx, 1, now=day1 + timedelta(days=1, hours=1), start=4)
    assert delivery_cycle(ctx, now=day1 + timedelta(days=1, hours=1, minutes=1)).sent == 1
    last = sent_messages(tmp_path)[-1]
    assert str(last["To"]) == "a@example.org" and _stories(last) == {"3"}
    assert len(sent_messages(tmp_path)) == 4

    with session_scope(ctx.engine) as session:
        records = list(session.exec(select(Delivery).where(Delivery.subject == EARLIER_SUBJECT)))
    assert [(r.hit_count, r.recipients) for r in records] == [(1, '["a@example.org"]')]  # Story 0 counted as sent
    ctx.close()


def test_a_changed_cadence_gives_the_address_a_new_due_time(tmp_path: Path) -> None:
    ctx = context(tmp_path, schedule="immediate", email=["a@example.org"])
    with session_scope(ctx.engine) as session:
        store.save_preference(session, "desk", "a@example.org", watchlists=None, schedule="daily 09:00",
                              timezone="Asia/Seoul", quiet_hours=None, now=T0)
    add_hits(ctx, 1, now=T0 + timedelta(minutes=1))
    assert delivery_cycle(ctx, now=T0 + timedelta(minutes=2)).sent == 0  # 21:02 in Seoul: not due
    seoul_nine = T0.replace(hour=0) + timedelta(days=1)  # 09:00 KST on the next day
    assert delivery_cycle(ctx, now=seoul_nine - timedelta(minutes=1)).sent == 0
    assert delivery_cycle(ctx, now=seoul_nine + timedelta(minutes=1)).sent == 1
    assert "KST" in body(sent_messages(tmp_path)[-1])  # the digest's times are in the address's zone
    ctx.close()
