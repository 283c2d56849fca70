"""subscriber preferences: watchlists, cadence, time zone and quiet hours chosen by one address

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

A new table only; existing rows are untouched. An address's own delivery state lives in an ordinary
``subscriptions`` row (named ``<subscription>~<hash>``), created by the planner when first needed.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import monitor.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subscriber_preferences',
    sa.Column('subscription', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('watchlists', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('schedule', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('quiet_hours', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('subscription', 'address')
    )


def downgrade() -> None:
    op.drop_table('subscriber_preferences')
