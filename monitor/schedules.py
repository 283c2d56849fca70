"""Subscription schedules: parsing and the next due time.

``immediate``, ``hourly``, ``daily HH:MM [TZ]``, ``weekly DAY HH:MM [TZ]`` or a
five-field cron expression. Next fire times come from APScheduler's
``CronTrigger``, which handles DST changes; the time is always a parameter.

Loading the config checks every subscription's schedule, and commands that only read (``hits``,
``status``) load the config: ``hourly``, ``daily`` and ``weekly`` are checked here without APScheduler,
whose trigger is built when a due time is first asked for. A cron expression is checked by
APScheduler itself, so its messages stay those of the cron parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_DAYS = {"mon": "mon", "tue": "tue", "wed": "wed", "thu": "thu", "fri": "fri", "sat": "sat", "sun": "sun"}
_DAILY = re.compile(r"^daily\s+(\d{1,2}):(\d{2})(?:\s+(\S+))?$", re.IGNORECASE)
_WEEKLY = re.compile(r"^weekly\s+([a-z]+)\s+(\d{1,2}):(\d{2})(?:\s+(\S+))?$", re.IGNORECASE)


def load_zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class Schedule:
    text: str
    immediate: bool
    # The ``CronTrigger`` fields (hour=..., timezone=...), or a trigger already built (a cron expression).
    cron: dict[str, Any] | CronTrigger | None = field(default=None, repr=False, compare=False)

    @cached_property
    def trigger(self) -> CronTrigger | None:
        """APScheduler's trigger, built on first use (``None`` when immediate)."""
        if self.cron is None or not isinstance(self.cron, dict):
            return self.cron
        from apscheduler.triggers.cron import CronTrigger

        return CronTrigger(**self.cron)

    def next_due(self, after: datetime) -> datetime | None:
        """The first due time strictly after ``after`` (UTC-aware in, aware out); None when immediate."""
        if self.trigger is None:
            return None
        # The trigger counts a fire time equal to ``now`` as due; we want the next one.
        fire = self.trigger.get_next_fire_time(None, after + timedelta(seconds=1))
        return fire.astimezone(UTC) if fire is not None else None


def parse_schedule(text: str, default_zone: str = "UTC") -> Schedule:
    """Parse a schedule; raises ValueError saying what is wrong."""
    spec = " ".join(text.split())
    lowered = spec.lower()
    if lowered == "immediate":
        return Schedule(spec, True, None)
    if lowered == "hourly":
        return Schedule(spec, False, {"minute": 0, "timezone": load_zone(default_zone)})
    if match := _DAILY.match(spec):
        hour, minute = _clock(match.group(1), match.group(2))
        zone = load_zone(match.group(3) or default_zone)
        return Schedule(spec, False, {"hour": hour, "minute": minute, "timezone": zone})
    if match := _WEEKLY.match(spec):
        day = match.group(1).lower()[:3]
        if day not in _DAYS:
            raise ValueError(f"{match.group(1)!r} is not a day of the week")
        hour, minute = _clock(match.group(2), match.group(3))
        zone = load_zone(match.group(4) or default_zone)
        return Schedule(spec, False, {"day_of_week": day, "hour": hour, "minute": minute, "timezone": zone})
    if len(spec.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            return Schedule(spec, False, CronTrigger.from_crontab(spec, timezone=load_zone(default_zone)))
        except ValueError as exc:
            raise ValueError(f"bad cron expression {spec!r}: {exc}") from exc
    raise ValueError(
        f"{text!r} is not a schedule: use immediate, hourly, 'daily HH:MM [TZ]', "
        "'weekly DAY HH:MM [TZ]' or a cron expression"
    )


def _clock(hour: str, minute: str) -> tuple[int, int]:
    h, m = int(hour), int(minute)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"{hour}:{minute} is not a time of day")
    return h, m


_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """``"22:00-07:00"`` → (start, end); the span may cross midnight."""
    match = _QUIET.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a span of hours; write e.g. 22:00-07:00")
    start = time(*_clock(match.group(1), match.group(2)))
    end = time(*_clock(match.group(3), match.group(4)))
    if start == end:
        raise ValueError(f"{text!r}: quiet hours start and end at the same time")
    return start, end


def in_quiet_hours(text: str | None, now: datetime, zone: tzinfo) -> bool:
    if not text:
        return False
    start, end = parse_quiet_hours(text)
    local = now.astimezone(zone).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end
