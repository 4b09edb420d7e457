"""Alembic's own entry point, for writing a revision: ``alembic revision --autogenerate -m ...``.

The engine never goes through here (``engine.store.schema`` runs the revisions itself). Run from
the checkout (``[tool.alembic]`` in pyproject.toml names this directory), Alembic compares the
tables' metadata with a scratch SQLite database built by every revision so far and writes what
differs as the new revision's first draft, in batch mode. ``-x url=...`` compares with another
database instead (a PostgreSQL one, for a change only it shows).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import context
from sqlmodel import SQLModel

from engine.store import schema
from engine.store.database import Database

with tempfile.TemporaryDirectory() as scratch:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url is None:
        url = f"sqlite:///{Path(scratch) / 'revisions.db'}"
        built = Database(url)
        schema.upgrade_schema(built, target="head")
        built.dispose()
    database = Database(url)
    try:
        with database.migration() as connection:
            context.configure(
                connection=connection,
                target_metadata=SQLModel.metadata,
                version_table=schema.VERSION_TABLE,
                render_as_batch=True,
                compare_type=True,
                include_name=schema.include_name,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()
