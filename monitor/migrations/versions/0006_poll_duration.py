"""how long each feed's last poll took (fetch start to stored), for the web's metrics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

A plain ``ADD COLUMN`` on ``feeds``: SQLite does not rebuild the table, so nothing else
(``items`` and its search triggers included) is touched.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('feeds', sa.Column('last_poll_ms', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('last_poll_ms')
