"""web front door: API tokens, operators, unsubscribes, item language, full-text search

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-25

Full-text search over items:
- SQLite: an FTS5 table with the trigram tokenizer (any substring of three or more characters
  is found, whatever the script: Korean, Chinese and Russian alike), kept in step with ``items``
  by triggers. A later migration that rebuilds ``items`` (batch mode copies the table) drops
  those triggers and must call ``create_sqlite_search`` again.
- PostgreSQL: a trigram GIN index (pg_trgm) on the items' text, used by ILIKE '%term%'.
  When the extension cannot be installed, search still works, by a scan.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import monitor.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, summary, content, content='items', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, title, summary, content) VALUES (new.id, new.title, new.summary, new.content); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, summary, content) "
    "VALUES ('delete', old.id, old.title, old.summary, old.content); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary, content ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, summary, content) "
    "VALUES ('delete', old.id, old.title, old.summary, old.content); "
    "INSERT INTO items_fts(rowid, title, summary, content) VALUES (new.id, new.title, new.summary, new.content); END",
    "INSERT INTO items_fts(items_fts) VALUES ('rebuild')",
]
PG_TRGM_INDEX = ("CREATE INDEX IF NOT EXISTS ix_items_text_trgm ON items USING gin "
                 "((title || ' ' || summary || ' ' || content) gin_trgm_ops)")


def create_sqlite_search() -> None:
    for statement in SQLITE_SEARCH:
        op.execute(statement)


def _create_pg_search() -> None:
    bind = op.get_bind()
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first()
    if not installed:
        available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
        if not available:
            return
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            savepoint.commit()
        except sa.exc.DBAPIError:  # not allowed to: search scans instead
            savepoint.rollback()
            return
    op.execute(PG_TRGM_INDEX)


def _backfill_languages() -> None:
    from monitor.lang import script_language

    bind = op.get_bind()
    items = sa.table('items', sa.column('id', sa.Integer), sa.column('title', sa.String),
                     sa.column('summary', sa.String), sa.column('lang', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, items.c.title, items.c.summary)
                            .where(items.c.id > last).order_by(items.c.id).limit(2000)).all()
        if not rows:
            return
        updates = [{"_id": r[0], "_lang": script_language(f"{r[1]} {r[2]}")} for r in rows]
        bind.execute(sa.update(items).where(items.c.id == sa.bindparam("_id")).values(lang=sa.bindparam("_lang")),
                     updates)
        last = rows[-1][0]


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('read_only', sa.Boolean(), nullable=False),
    sa.Column('created_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('operators',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('updated_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('unsubscribes',
    sa.Column('subscription', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('created_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('subscription', 'address')
    )
    # A plain ADD COLUMN (not batch mode): on SQLite a batch rebuild of items would take hours on a big archive.
    op.add_column('items', sa.Column('lang', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    _backfill_languages()
    if op.get_bind().dialect.name == 'sqlite':
        create_sqlite_search()
    else:
        _create_pg_search()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('items_fts_insert', 'items_fts_delete', 'items_fts_update'):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS items_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_items_text_trgm")
    op.drop_column('items', 'lang')
    op.drop_table('unsubscribes')
    op.drop_table('operators')
    op.drop_table('api_tokens')
