"""outbox claim index: pending deliveries in the order they are due

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

A delivery cycle claims pending deliveries whose next attempt is due, oldest due first. With an
index on ``status`` alone SQLite sorts every pending row for each claim; on
``(status, next_attempt_at)`` it reads them in order and stops at the claim's limit.
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_deliveries_status_next_attempt_at', 'deliveries', ['status', 'next_attempt_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_deliveries_status_next_attempt_at', table_name='deliveries')
