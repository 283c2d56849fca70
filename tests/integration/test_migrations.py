"""The migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import monitor.db
import monitor.models
from monitor.db import SQLITE_SCHEMA, current_revision, head_revision, make_engine, upgrade, write_sqlite_schema


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


def _schema(engine: sa.Engine) -> dict[str, object]:
    """What a SQLite schema is, read back through SQLite itself: columns in order, foreign keys, indexes by
    what they index, triggers, search tables. (Alembic writes a recreated table's constraints, and so the
    names of the indexes behind them, in no fixed order: two migrated databases differ in that text.)"""
    schema: dict[str, object] = {}
    with engine.connect() as conn:
        run = conn.exec_driver_sql
        for kind, name, sql in run("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL").all():
            if kind == "trigger" or sql.upper().startswith("CREATE VIRTUAL TABLE"):
                schema[name] = " ".join(sql.split())
            elif kind == "table":
                indexes = []
                for _seq, index, unique, origin, partial in run(f'PRAGMA index_list("{name}")').all():
                    columns = tuple(row[2] for row in run(f'PRAGMA index_info("{index}")').all())
                    indexes.append((index if origin == "c" else origin, bool(unique), bool(partial), columns))
                schema[name] = (run(f'PRAGMA table_info("{name}")').all(),
                                sorted(tuple(row[2:]) for row in run(f'PRAGMA foreign_key_list("{name}")').all()),
                                sorted(indexes))
        schema["(revision)"] = run("SELECT version_num FROM alembic_version").scalar_one()
    return schema


def test_an_empty_sqlite_database_gets_exactly_the_schema_the_migrations_build(tmp_path: Path) -> None:
    # A first start creates the head schema from sqlite_schema.sql (no Alembic): every table, index,
    # trigger and search index, with the constraint names and column order the migrations leave.
    scripted, migrated = (make_engine(f"sqlite:///{tmp_path / name}.db") for name in ("scripted", "migrated"))
    upgrade(scripted)  # "head": from the script
    upgrade(migrated, head_revision() or "head")  # a named revision: through Alembic, migration by migration
    assert _schema(scripted) == _schema(migrated)
    assert current_revision(scripted) == current_revision(migrated) == head_revision()
    with scripted.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM items_fts").scalar() == 0
    upgrade(scripted, "head")  # at the head already: nothing to do
    scripted.dispose()
    migrated.dispose()


def test_the_bundled_sqlite_schema_is_of_the_head_revision(tmp_path: Path) -> None:
    # After a new migration the file must be written again (else a first start runs Alembic: slower, not wrong).
    header = SQLITE_SCHEMA.read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(f"revision {head_revision()}"), "run 'make sqlite-schema' after adding a migration"
    written = tmp_path / "schema.sql"
    write_sqlite_schema(written)
    assert written.read_text(encoding="utf-8").splitlines()[0] == header


def test_a_schema_file_of_another_revision_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A migration added without rewriting the file: an empty database is migrated by Alembic instead.
    stale = tmp_path / "stale.sql"
    stale.write_text(SQLITE_SCHEMA.read_text(encoding="utf-8").replace(
        f"revision {head_revision()}", "revision 0001", 1), encoding="utf-8")
    monkeypatch.setattr(monitor.db, "SQLITE_SCHEMA", stale)
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    reference = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(reference, head_revision() or "head")
    assert _schema(engine) == _schema(reference)
    engine.dispose()
    reference.dispose()
