"""Search index: new items are added to the SQLite full-text index a statement at a time, not by a trigger

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26

The row trigger made FTS5 index every inserted item on its own, which cost five times what one
``INSERT INTO items_fts … SELECT`` per batch of items costs (1.3 s against 0.25 s of CPU for 10,000
items of a poll cycle): the trigram index was the largest single cost of storing a cycle. The code
that inserts items (``store.insert_new_items``, ``store.index_for_search``) now adds them to the index
in the same transaction. The delete and update triggers stay. PostgreSQL has no such index (its
trigram index is a GIN index on the table) and is unchanged.
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

INSERT_TRIGGER = (
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, title, summary, content) VALUES (new.id, new.title, new.summary, new.content); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS items_fts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(INSERT_TRIGGER)
