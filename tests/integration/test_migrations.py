"""The migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import monitor.models
from monitor.db import current_revision, head_revision, make_engine, upgrade


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": monitor.models.is_modelled})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_database_is_at_the_code_head(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_upgrading_a_database_with_data_keeps_it(blank_db_url: str) -> None:
    engine = make_engine(blank_db_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO feeds (id, url, interval_seconds, alert_window_seconds, active, error_count)"
                             " VALUES (1, 'https://example.org/rss', 900, 86400, :yes, 0)"), {"yes": True})
        conn.execute(sa.text("INSERT INTO items (id, fingerprint, feed_id, title, summary, content, alertable)"
                             " VALUES (1, 'link:x', 1, 'Old item', '', '', :yes)"), {"yes": True})
        conn.execute(sa.text("INSERT INTO hits (id, item_id, watchlist, watchlist_version, score, evidence)"
                             " VALUES (1, 1, 'w', '1', 1.0, '[]')"))
    upgrade(engine)
    with engine.connect() as conn:
        title, pruned, story_id = conn.execute(sa.text("SELECT title, pruned, story_id FROM items")).one()
        assert (title, bool(pruned), story_id) == ("Old item", False, None)
        assert conn.execute(sa.text("SELECT origin FROM feeds")).scalar_one() == "config"
        assert conn.execute(sa.text("SELECT watchlist FROM hits WHERE item_id = 1")).scalar_one() == "w"
        if engine.dialect.name == "sqlite":  # PostgreSQL enforces foreign keys on every write; SQLite must be asked
            assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
    assert current_revision(engine) == head_revision()
    engine.dispose()
