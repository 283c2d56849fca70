"""Matching stored items again when the watchlists change."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor import store
from monitor.db import session_scope
from monitor.domain import Match
from monitor.ingest.prepare import document_for, reference_date
from monitor.pipeline.context import (
    STORY_THRESHOLD,
    STORY_WINDOW,
    Context,
)

if TYPE_CHECKING:
    from monitor.pipeline.poll import PollSummary

log = logging.getLogger("monitor")

# --- matching stored items again when watchlists change ------------------------------------------


@dataclass
class RematchSummary:
    items: int = 0  # items matched again
    hits: Counter[str] = field(default_factory=Counter)  # new hits per watchlist


def catch_up(ctx: Context, *, now: datetime, summary: PollSummary | None = None) -> str:
    """Match the stored items of the alert window against the watchlist versions they have not met.

    A watchlist that was fixed, edited or added since an item was stored is applied to it
    once; new hits flow to subscriptions like any other, and hits already stored (and sent)
    stay as they are. Runs when this process first sees a set of watchlist versions; the
    items record the set they were matched against, so every worker does it at most once per change.
    Returns the key of the current set, for the cycle to record on the items it stores.
    """
    with session_scope(ctx.engine) as session:
        key = store.ensure_match_set(session, ctx.watchlists.versions, now=now)
    if ctx.rematched == key:
        return key
    since = now - timedelta(seconds=ctx.settings.new_feed_alert_window)
    result = rematch_stored(ctx, now=now, since=since)
    if result.items:
        log.info("matched %d stored items against changed watchlists: %d new hits", result.items,
                 sum(result.hits.values()), extra={"hits": dict(result.hits)})
    if summary is not None:
        summary.hits.update(result.hits)
    ctx.rematched = key
    return key


def rematch_stored(ctx: Context, *, now: datetime, since: datetime, names: Sequence[str] | None = None,
                   force: bool = False, batch: int = 500) -> RematchSummary:
    """Match alertable stored items fetched since ``since`` against the current watchlists (``names``: only
    these) they were not matched against yet; ``force``: whatever the items' record says.

    Hits are unique per (item, watchlist), so an item that already hit a list keeps its hit and
    is never sent again.
    """
    matcher = ctx.watchlists.get()
    versions = ctx.watchlists.versions
    wanted = {n: v for n, v in versions.items() if names is None or n in names}
    summary = RematchSummary()
    sets: dict[str | None, dict[str, str]] = {None: {}}
    with session_scope(ctx.engine) as session:
        current = store.ensure_match_set(session, versions, now=now)
    sets[current] = dict(versions)
    after = 0
    while True:
        with session_scope(ctx.engine) as session:
            rows = store.items_to_rematch(session, since=since, after_id=after, limit=batch,
                                          skip_key=None if force else current)
            if not rows:
                break
            after = rows[-1].id
            sets.update(store.match_sets(session, {r.matched_with for r in rows if r.matched_with not in sets
                                                   and r.matched_with is not None}))
            hits: list[tuple[int, Match]] = []
            marks: dict[str, list[int]] = {}
            for row in rows:
                done = sets.get(row.matched_with, {})
                todo = {n for n, v in wanted.items() if force or done.get(n) != v}
                if not todo:
                    continue
                summary.items += 1
                found = matcher.match(document_for(row.item), on=reference_date(row.item, row.item.fetched_at))
                hits.extend((row.id, m) for m in found if m.watchlist in todo)
                merged = {**done, **{n: versions[n] for n in todo}}
                key = store.ensure_match_set(session, merged, now=now) if merged != done else row.matched_with
                sets.setdefault(key, merged)
                if key is not None:
                    marks.setdefault(key, []).append(row.id)
            new = store.insert_hits_reporting(session, hits, now=now)
            for key, ids in marks.items():
                store.mark_matched(session, ids, key)
            hit_items = {item_id for item_id, _name in new}
            store.assign_stories(session, [(r.id, r.item) for r in rows if r.id in hit_items and r.story_id is None],
                                 now=now, window=STORY_WINDOW, threshold=STORY_THRESHOLD)
            summary.hits.update(name for _item_id, name in new)
        if len(rows) < batch:
            break
    return summary

