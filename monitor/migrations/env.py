"""Alembic environment: runs on the connection monitor.db hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import monitor.models

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("monitor's migrations run through monitor.db.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=monitor.models.is_modelled,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
