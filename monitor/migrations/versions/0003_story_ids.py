"""stories named after their first item

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import monitor.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A story is now named after its first item (items.story_id = that item's id): no stories table.
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_constraint('fk_items_story_id', type_='foreignkey')
    # story_keys' foreign key to stories was unnamed; rebuild the table without it, keeping its rows.
    op.create_table('story_keys_new',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('published_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name='fk_story_keys_item_id'),
    sa.PrimaryKeyConstraint('key', 'item_id')
    )
    op.execute('INSERT INTO story_keys_new (key, item_id, story_id, published_at) '
               'SELECT key, item_id, story_id, published_at FROM story_keys')
    op.drop_table('story_keys')
    op.rename_table('story_keys_new', 'story_keys')
    with op.batch_alter_table('story_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_story_keys_published_at'), ['published_at'], unique=False)
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stories_created_at'))
    op.drop_table('stories')


def downgrade() -> None:
    op.create_table('stories',
    sa.Column('id', sa.INTEGER(), nullable=False),
    sa.Column('created_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', monitor.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('item_count', sa.INTEGER(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stories_created_at'), ['created_at'], unique=False)
    # Story ids were item ids; the old schema cannot hold them. Forget the groupings.
    op.execute('UPDATE items SET story_id = NULL')
    op.execute('DELETE FROM story_keys')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_items_story_id', 'stories', ['story_id'], ['id'])
