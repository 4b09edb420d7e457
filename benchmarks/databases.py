"""Where a measurement runs: a fresh, empty database for every workload mode.

Nothing measured may inherit rows, caches or bloat from an earlier measurement, so each mode
gets its own database: on SQLite a new file (WAL and ``synchronous=NORMAL``, treeflow's
defaults, which the peer and the floor set too) in a scratch folder, deleted afterwards; on
PostgreSQL a new schema ``bench_<random>`` reached through ``?options=-csearch_path=...`` and
dropped afterwards, so the benchmark never touches the tables of the database it is given.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


class Target(Protocol):
    """One kind of database the harness measures on."""

    name: str  # the key in the JSON result: "sqlite" or "postgresql"
    label: str  # the column heading in the Markdown tables

    def fresh(self, purpose: str) -> AbstractContextManager[str]:
        """A context manager yielding the SQLAlchemy URL of a new, empty database."""
        ...


class SqliteTarget:
    """Fresh SQLite files in ``folder``; each is deleted (with its WAL) when its mode ends."""

    name = "sqlite"
    label = "SQLite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = 0

    @contextmanager
    def fresh(self, purpose: str) -> Iterator[str]:
        self._count += 1
        path = self.folder / f"{self._count:03d}-{purpose}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresTarget:
    """Fresh schemas in the PostgreSQL database ``url`` names; each is dropped afterwards."""

    name = "postgresql"
    label = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def fresh(self, purpose: str) -> Iterator[str]:
        schema = f"bench_{secrets.token_hex(6)}"
        admin = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with admin.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            try:
                yield with_search_path(self.url, schema)
            finally:
                with admin.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()

    def server_settings(self) -> dict[str, str]:
        """The server's version and the settings a commit's cost depends on."""
        admin = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with admin.connect() as connection:
                return {
                    name: str(connection.execute(sa.text(f"SHOW {name}")).scalar_one())
                    for name in ("server_version", "synchronous_commit", "fsync")
                }
        finally:
            admin.dispose()


def with_search_path(url: str, schema: str) -> str:
    """``url`` with its connections' search_path set to ``schema`` (replacing any given)."""
    parsed = make_url(url)
    query = dict(parsed.query)
    query["options"] = f"-csearch_path={schema}"
    return parsed.set(query=query).render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it: without the ``+driver`` suffix."""
    return "postgresql://" + url.split("://", 1)[1]


def sqlite_file(url: str) -> str:
    """The file a ``sqlite:///PATH`` URL names, for code that opens it with ``sqlite3``."""
    database = make_url(url).database
    if not database:
        raise ValueError(f"not a SQLite file URL: {url!r}")
    return database


__all__ = [
    "PostgresTarget",
    "SqliteTarget",
    "Target",
    "libpq_url",
    "sqlite_file",
    "with_search_path",
]
