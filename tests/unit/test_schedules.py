from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.schedules import parse_schedule


def test_immediate_has_no_due_time() -> None:
    schedule = parse_schedule("immediate")
    assert schedule.immediate and schedule.next_due(datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_daily_in_a_zone_follows_dst() -> None:
    schedule = parse_schedule("daily 07:00 Europe/Berlin")
    # The night of 28/29 March 2026 Berlin moves from UTC+1 to UTC+2.
    before = schedule.next_due(datetime(2026, 3, 28, 7, 0, tzinfo=UTC))
    after = schedule.next_due(before)  # type: ignore[arg-type]
    assert before == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    assert after == datetime(2026, 3, 30, 5, 0, tzinfo=UTC)
    assert schedule.next_due(datetime(2026, 3, 27, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 6, 0, tzinfo=UTC)


def test_weekly_and_hourly_and_cron() -> None:
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_schedule("weekly fri 17:30").next_due(monday) == datetime(2026, 11, 27, 17, 30, tzinfo=UTC)
    assert parse_schedule("hourly").next_due(monday) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert parse_schedule("*/15 * * * *").next_due(monday) == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize("text", ["daily 25:00", "weekly someday 10:00", "daily 07:00 Mars/Base", "often"])
def test_bad_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(text)
