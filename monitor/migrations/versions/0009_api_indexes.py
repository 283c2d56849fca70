"""API indexes: hits by watchlist in id order

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25

A page of one watchlist's hits, newest first, is a backward range scan of (watchlist, id): without it
PostgreSQL either walks every hit newest first and filters, or gathers all of the list's hits and sorts,
depending on its statistics. The composite index replaces the single-column one (it serves the same
lookups), so hits cost no extra index to write. SQLite's index on watchlist already ended in the rowid.
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_hits_watchlist_id', 'hits', ['watchlist', 'id'], unique=False)
    op.drop_index('ix_hits_watchlist', table_name='hits')


def downgrade() -> None:
    op.create_index('ix_hits_watchlist', 'hits', ['watchlist'], unique=False)
    op.drop_index('ix_hits_watchlist_id', table_name='hits')
