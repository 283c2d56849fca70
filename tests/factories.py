"""Factories for test values."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from monitor.domain import StoredHit

_ids = count(1)


def stored_hit(**overrides: Any) -> StoredHit:
    n = next(_ids)
    values: dict[str, Any] = dict(
        hit_id=n, item_id=n, watchlist="delegation_visits", score=2.5,
        evidence=[{"kind": "actor", "field": "title", "text": "Xi Jinping", "start": 0, "end": 10},
                  {"kind": "cue", "field": "title", "text": "arrives", "start": 11, "end": 18}],
        title=f"Story {n}", link=f"https://news.example.org/story/{n}", summary="A summary.",
        published_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC), feed_name="Example wire",
        feed_url="https://news.example.org/rss", created_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )
    values.update(overrides)
    return StoredHit(**values)
