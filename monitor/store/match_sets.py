"""Which watchlist versions stored items were matched against."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.models import Item as ItemRow
from monitor.models import MatchSet
from monitor.store._sql import _insert


def match_set_key(versions: Mapping[str, str]) -> str:
    """A short stable key for a set of ``{watchlist: version}``."""
    return hashlib.sha256(json.dumps(sorted(versions.items())).encode()).hexdigest()[:32]


def ensure_match_set(session: Session, versions: Mapping[str, str], *, now: datetime) -> str:
    """Record this set of watchlist versions (once; several workers may race) and return its key."""
    key = match_set_key(versions)
    table = MatchSet.__table__  # type: ignore[attr-defined]
    session.execute(_insert(session, table).values(key=key, lists=json.dumps(dict(sorted(versions.items()))),
                                                   created_at=now).on_conflict_do_nothing(index_elements=["key"]))
    return key


def match_sets(session: Session, keys: Iterable[str]) -> dict[str, dict[str, str]]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(sa.select(MatchSet.key, MatchSet.lists).where(  # type: ignore[call-overload]
        col(MatchSet.key).in_(wanted)))
    return {key: json.loads(lists) for key, lists in rows}


def mark_matched(session: Session, item_ids: Sequence[int], key: str) -> None:
    """Record that these items were matched against the watchlist versions of match set ``key``."""
    for start in range(0, len(item_ids), 5000):
        session.execute(sa.update(ItemRow).where(col(ItemRow.id).in_(list(item_ids[start:start + 5000])))
                        .values(matched_with=key))
