"""Database tables (SQLModel). The schema itself is created by Alembic migrations.

Every timestamp is stored as UTC and read back timezone-aware (:class:`UTCDateTime`),
on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Feed(SQLModel, table=True):
    __tablename__ = "feeds"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column_kwargs={"unique": True}, max_length=2048)
    name: str | None = Field(default=None, max_length=512)
    interval_seconds: int = 900
    alert_window_seconds: int = 86400
    active: bool = True
    etag: str | None = Field(default=None, max_length=1024)
    last_modified: str | None = Field(default=None, max_length=256)
    last_status: int | None = None
    last_error: str | None = None
    error_count: int = 0
    first_polled_at: datetime | None = _ts()
    last_polled_at: datetime | None = _ts()
    last_success_at: datetime | None = _ts()
    next_poll_at: datetime | None = _ts(index=True)
    lease_until: datetime | None = _ts()
    lease_owner: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = _ts()
    # Where the feed came from: "config" (monitor.yaml; synced every start) or "import" (OPML).
    origin: str = Field(default="config", max_length=16)
    category: str | None = Field(default=None, max_length=512)
    # A permanent redirect seen since moved_since; polled at moved_to once it has held for a while.
    moved_to: str | None = Field(default=None, max_length=2048)
    moved_since: datetime | None = _ts()
    # Publishing rhythm: when the last new item appeared, and a moving average of the gap between new items.
    last_entry_at: datetime | None = _ts()
    entry_gap_seconds: float | None = None
    # How long the last poll took, from the start of the fetch until its outcome was stored (milliseconds).
    last_poll_ms: int | None = None
    # Set by ``feeds pause`` (not polled until ``feeds resume``) and ``feeds remove`` (hidden; items and hits stay).
    paused: bool = False
    removed_at: datetime | None = _ts()


class StoryKey(SQLModel, table=True):
    """LSH band keys of recent items, for finding a new item's story without scanning the archive."""

    __tablename__ = "story_keys"

    key: str = Field(primary_key=True, max_length=64)
    item_id: int = Field(primary_key=True, foreign_key="items.id")
    story_id: int
    published_at: datetime | None = _ts(index=True)


class Worker(SQLModel, table=True):
    """A running monitor process and its last heartbeat (``monitor status``)."""

    __tablename__ = "workers"

    owner: str = Field(primary_key=True, max_length=128)
    hostname: str = Field(default="", max_length=256)
    pid: int = 0
    started_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts(index=True)
    info: str = "{}"  # JSON: the last cycles' summaries


class Item(SQLModel, table=True):
    __tablename__ = "items"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(sa_column_kwargs={"unique": True}, max_length=128)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    guid: str | None = Field(default=None, max_length=2048)
    link: str | None = Field(default=None, max_length=2048)
    title: str = ""
    summary: str = ""
    content: str = ""
    author: str | None = Field(default=None, max_length=512)
    published_at: datetime | None = _ts(index=True)
    fetched_at: datetime | None = _ts(index=True)
    # False for the backlog recorded by a feed's first poll: stored, never alerted.
    alertable: bool = True
    # The story is named after its first item: story_id is that item's id (its own id when it leads).
    story_id: int | None = Field(default=None, index=True)
    signature: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # MinHash, for story grouping
    # Retention blanks old items' text but keeps the row, so a feed re-serving it never alerts again.
    pruned: bool = False
    # The watchlist versions this item was matched against (a key of match_sets); None: not matched yet.
    matched_with: str | None = Field(default=None, max_length=32)
    # The item's language guessed from its script (ko, zh, ja, ru, en, …; monitor.lang), for filters.
    lang: str | None = Field(default=None, max_length=8)


class MatchSet(SQLModel, table=True):
    """A set of watchlist versions items were matched against: ``{name: "version:fingerprint"}`` as JSON.

    Few distinct sets exist (one per change of the watchlists), so each item names its set by key.
    """

    __tablename__ = "match_sets"

    key: str = Field(primary_key=True, max_length=32)
    lists: str = "{}"
    created_at: datetime | None = _ts()


class Hit(SQLModel, table=True):
    __tablename__ = "hits"
    __table_args__ = (sa.UniqueConstraint("item_id", "watchlist", name="uq_hits_item_watchlist"),
                      # a watchlist's hits newest first: one backward range scan (migration 0009)
                      sa.Index("ix_hits_watchlist_id", "watchlist", "id"))

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="items.id", index=True)
    watchlist: str = Field(max_length=128)
    watchlist_version: str = Field(default="", max_length=64)
    score: float = 0.0
    evidence: str = "[]"  # JSON list of evidence dicts
    created_at: datetime | None = _ts(index=True)


class Subscription(SQLModel, table=True):
    """A subscription's progress; its definition lives in the config file."""

    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column_kwargs={"unique": True}, max_length=64)
    schedule: str = Field(default="immediate", max_length=128)
    next_due_at: datetime | None = _ts()
    last_planned_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    created_at: datetime | None = _ts()


class Delivery(SQLModel, table=True):
    """One rendered message in the outbox: email (SMTP or .eml file) or webhook POST."""

    __tablename__ = "deliveries"
    # The outbox claim reads pending rows in due order (no sort, stops at its limit).
    __table_args__ = (sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscriptions.id", index=True)
    key: str = Field(sa_column_kwargs={"unique": True}, max_length=128)  # idempotency key
    transport: str = Field(max_length=16)  # smtp | file | webhook
    status: str = Field(default="pending", max_length=16, index=True)  # pending | sent | dead
    subject: str = ""
    payload: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    recipients: str = "[]"  # JSON list (email) or the webhook URL
    hit_count: int = 0
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = _ts(index=True)
    lease_until: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    created_at: datetime | None = _ts()
    target: str | None = None  # where it went (file path, SMTP host, URL), for operators


class DeliveryHit(SQLModel, table=True):
    """Which hits a delivery carries; unique per (subscription, hit): at most once."""

    __tablename__ = "delivery_hits"
    __table_args__ = (sa.UniqueConstraint("subscription_id", "hit_id", name="uq_delivery_hits_sub_hit"),)

    delivery_id: int = Field(foreign_key="deliveries.id", primary_key=True)
    hit_id: int = Field(foreign_key="hits.id", primary_key=True, index=True)
    subscription_id: int = Field(foreign_key="subscriptions.id")


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API; only its SHA-256 is stored (``monitor tokens create``)."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column_kwargs={"unique": True}, max_length=64)
    token_hash: str = Field(sa_column_kwargs={"unique": True}, max_length=64)
    read_only: bool = False
    created_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()


class Operator(SQLModel, table=True):
    """Who may log in to the web pages; the password is stored as an argon2 hash (``monitor web passwd``)."""

    __tablename__ = "operators"

    name: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=256)
    updated_at: datetime | None = _ts()


class Unsubscribe(SQLModel, table=True):
    """An address that left a subscription (one-click link); it wins over the config's address list."""

    __tablename__ = "unsubscribes"

    subscription: str = Field(primary_key=True, max_length=64)
    address: str = Field(primary_key=True, max_length=320)  # lower-cased
    created_at: datetime | None = _ts()



class SubscriberPreference(SQLModel, table=True):
    """What one address of a subscription chose on its preferences page; it wins over the config for that address.

    ``None`` in a field means "as the subscription says". ``watchlists`` is a JSON list that can only narrow the
    subscription's lists (names the config does not grant are ignored when planning). The address's own delivery
    state lives in the ``subscriptions`` row named by ``monitor.preferences.own_row_name``.
    """

    __tablename__ = "subscriber_preferences"

    subscription: str = Field(primary_key=True, max_length=64)
    address: str = Field(primary_key=True, max_length=320)  # lower-cased
    watchlists: str | None = None  # JSON list of names, or None for all of the subscription's lists
    schedule: str | None = Field(default=None, max_length=128)
    timezone: str | None = Field(default=None, max_length=64)
    quiet_hours: str | None = Field(default=None, max_length=32)  # "" = none, whatever the subscription says
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()

# Search structures the migrations create by hand (FTS5 tables, a trigram index): schema comparisons skip them.
UNMODELLED_PREFIXES = ("items_fts", "ix_items_text_trgm")


def is_modelled(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: False for the hand-made search structures."""
    return not (name or "").startswith(UNMODELLED_PREFIXES)
