"""Fixtures: every store test runs on SQLite and on PostgreSQL through one fixture.

PostgreSQL comes from ``TREEFLOW_TEST_POSTGRES_URL``; each test gets its own schema, dropped
afterwards. Without that variable the PostgreSQL cases are skipped, except in CI (``CI=true``),
where a missing database is a failure, not a skip. Tests marked ``graphviz`` are treated the
same way when Graphviz's ``dot`` is not installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine

REPO = Path(__file__).resolve().parents[1]
TREES = REPO / "trees"
POSTGRES_URL = os.environ.get("TREEFLOW_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Drawing tests need Graphviz's ``dot``: skipped on a machine without it, failed in CI."""
    if item.get_closest_marker("graphviz") and shutil.which("dot") is None:
        if IN_CI:
            pytest.fail("Graphviz's dot is not installed: CI must run the drawing tests")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")


def postgres_schema_url() -> Iterator[str]:
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("TREEFLOW_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("TREEFLOW_TEST_POSTGRES_URL is not set")
    schema = f"tf_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at TREEFLOW_TEST_POSTGRES_URL is unreachable: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'treeflow.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite file for commands run as subprocesses (the CLI tests)."""
    return f"sqlite:///{tmp_path / 't.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine with the example trees loaded, on each database."""
    with Engine(database_url, trees=TREES) as eng:
        yield eng
