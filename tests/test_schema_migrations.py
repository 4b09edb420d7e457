"""Schema revisions: databases of earlier releases are refused, upgraded with their data, and
run on; the revisions build exactly the tables the code declares; newer databases are refused.

On SQLite and PostgreSQL. The first release's database is real: SQLite's from the DDL that
release created (``fixtures/schema_first_release.sqlite.sql``), PostgreSQL's from the first
revision with its stamp removed, both holding the rows that release wrote
(``fixtures/first_release_data.sql``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from sqlmodel import SQLModel

from engine import Engine
from engine.errors import SchemaMismatch, SchemaUpgradeFailed
from engine.store import schema
from engine.store.database import Database
from tests.conftest import TREES, postgres_schema_url
from tests.support import APPROVED, REGISTRATION, race, run_treeflow, start

FIXTURES = Path(__file__).parent / "fixtures"
HEAD = schema.head()
OLD_TOKEN = "9e23a7ddc6dd623b61ac0d5f8e0708b1d6a64208"  # run 1's Review, in the data fixture


def _statements(name: str) -> list[str]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("--")]
    return [statement for statement in "\n".join(lines).split(";\n") if statement.strip()]


def _sqlite_file(url: str, ddl: str) -> None:
    with closing(sqlite3.connect(sa.make_url(url).database or "")) as connection:
        connection.executescript((FIXTURES / ddl).read_text(encoding="utf-8"))


def _first_release(url: str) -> None:
    """A database as the first release left it: its schema, no stamp, the rows it wrote."""
    if url.startswith("sqlite"):
        _sqlite_file(url, "schema_first_release.sqlite.sql")
    else:
        database = Database(url)
        schema.upgrade_schema(database, target="0001")
        with database.write() as connection:
            connection.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
        database.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in _statements("first_release_data.sql"):
            connection.exec_driver_sql(statement)
        if engine.dialect.name == "postgresql":  # the release's inserts advanced these
            for table in ("tree_versions", "runs", "triggers"):
                connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _drift(url: str) -> list[object]:
    database = Database(url)
    try:
        with database.read() as connection, schema.comparison(connection) as context:
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        database.dispose()


def test_first_release_database_is_refused_then_upgraded_and_its_run_finishes(
    database_url: str,
) -> None:
    _first_release(database_url)

    with pytest.raises(SchemaMismatch) as refused:
        Engine(database_url, trees=TREES)
    message = str(refused.value)
    assert "revision 0001" in message and f"revision {HEAD}" in message
    assert "treeflow db upgrade" in message
    assert "revision" not in _columns(database_url, "runs")  # refusing changed nothing
    assert Engine.schema_state(database_url).revision == "0001"
    assert not Engine.schema_state(database_url).stamped

    before, after = Engine.upgrade_schema(database_url)
    assert (before.revision, before.stamped) == ("0001", False)
    assert (after.revision, after.stamped, after.current) == (HEAD, True, True)
    assert _drift(database_url) == []

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        run = connection.execute(
            sa.text("SELECT status, revision, call_depth, parent_run_id, root_run_id FROM runs")
        ).one()
        assert tuple(run) == ("Started", 0, 0, None, None)
        tokens = connection.execute(
            sa.text("SELECT node, token FROM tasks WHERE token IS NOT NULL")
        ).all()
        assert [tuple(row) for row in tokens] == [("Review", OLD_TOKEN)]
        error = connection.execute(
            sa.text("SELECT type, summary, resolution_action FROM errors")
        ).one()
        assert tuple(error) == ("Handler Error", "mail server away", None)
        labels = connection.execute(sa.text("SELECT selection FROM triggers")).scalars().all()
        assert labels == [""]
    engine.dispose()

    with Engine(database_url, trees=TREES) as upgraded:
        old = upgraded.get_run(1)
        assert old.status.value == "Started" and old.tree_version == 1
        upgraded.create_deferred(token=OLD_TOKEN, action="Complete", results=APPROVED)
        upgraded.run_until_idle()
        finished = upgraded.get_run(1)
        assert finished.status.value == "Completed"
        assert "Approved" in {task.name for task in finished.tasks}
        new_run = upgraded.get_run(start(upgraded, source_id="after upgrade"))
        assert new_run.id == 2 and new_run.tasks  # ids go on after the release's


def test_the_issue_example_a_file_made_before_runs_revision(tmp_path: Path) -> None:
    """The reported failure: createStart on a file made before runs.revision."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _sqlite_file(url, "schema_before_run_revision.sqlite.sql")
    assert Engine.schema_state(url).revision == "0008"
    with pytest.raises(SchemaMismatch, match="revision 0008"):
        Engine(url, trees=TREES)

    with Engine(url, trees=TREES, upgrade=True) as engine:
        run = engine.get_run(start(engine, source_id="no revision column"))
        assert run.status.value == "Started"
    assert Engine.schema_state(url).current
    assert _drift(url) == []


def test_revisions_from_nothing_build_the_declared_tables(database_url: str) -> None:
    database = Database(database_url)
    before, after = schema.upgrade_schema(database, target="head")
    database.dispose()
    assert before.revision is None and after.revision == HEAD
    assert _drift(database_url) == []
    if database_url.startswith("sqlite"):
        with closing(sqlite3.connect(sa.make_url(database_url).database or "")) as connection:
            query = "SELECT sql FROM sqlite_master WHERE name = 'tasks'"
            (ddl,) = connection.execute(query).fetchone()
        assert "WITHOUT ROWID" in ddl


def _index_predicates(database: Database, table: str) -> dict[str, str | None]:
    """Each index of ``table`` and its WHERE clause (None: not partial), as the database has it.

    The drift check (Alembic's comparison) does not compare predicates, so a revision that built
    a partial index as a full one would pass it."""
    with database.read() as connection:
        if database.is_postgresql:
            rows = connection.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"),
                {"table": table},
            ).all()
        else:
            rows = connection.execute(
                sa.text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
                    " AND sql IS NOT NULL"
                ),
                {"table": table},
            ).all()
    found: dict[str, str | None] = {}
    for name, ddl in rows:
        where = ddl.partition(" WHERE ")[2]
        found[name] = where.strip().strip("()") or None
    return found


@pytest.mark.parametrize("made_by", ["revisions", "create_all"])
def test_runs_references_to_runs_are_indexed_partially(database_url: str, made_by: str) -> None:
    """Revision 0015 and the declared tables agree: only runs that have a parent, or were run
    again from a run, are in those indexes."""
    database = Database(database_url)
    try:
        if made_by == "revisions":
            schema.upgrade_schema(database, target="head")
        else:
            schema.prepare(database)
        predicates = _index_predicates(database, "runs")
    finally:
        database.dispose()
    assert predicates["ix_runs_parent_run_id"] == "parent_run_id IS NOT NULL"
    assert predicates["ix_runs_again_of"] == "again_of IS NOT NULL"
    assert predicates["ix_runs_root_run_id"] == "root_run_id IS NOT NULL"


def test_the_drift_check_sees_a_column_without_a_revision(database_url: str) -> None:
    """What keeps a schema change without a revision out of CI: the comparison names it."""
    Engine(database_url).close()
    changed = sa.MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["runs"].append_column(sa.Column("retry_of", sa.Integer()))
    database = Database(database_url)
    try:
        with database.read() as connection, schema.comparison(connection) as context:
            found = compare_metadata(context, changed)
    finally:
        database.dispose()
    added = [diff for diff in found if diff[0] == "add_column"]
    assert [(diff[2], diff[3].name) for diff in added] == [("runs", "retry_of")]


def test_a_new_database_gets_the_schema_and_its_stamp(database_url: str) -> None:
    assert Engine.schema_state(database_url).revision is None
    with Engine(database_url, trees=TREES) as engine:
        start(engine)
    found = Engine.schema_state(database_url)
    assert (found.revision, found.stamped, found.current) == (HEAD, True, True)
    before, after = Engine.upgrade_schema(database_url)  # nothing to do
    assert before == after


def test_an_older_stamped_database_needs_upgrade_true(database_url: str) -> None:
    database = Database(database_url)
    schema.upgrade_schema(database, target="0009")
    database.dispose()
    with pytest.raises(SchemaMismatch, match=f"revision 0009, this treeflow needs revision {HEAD}"):
        Engine(database_url)
    assert "fingerprint" not in _columns(database_url, "triggers")
    assert Engine.schema_state(database_url).revision == "0009"
    with Engine(database_url, trees=TREES, upgrade=True) as engine:
        start(engine)
    assert Engine.schema_state(database_url).current


def test_a_database_of_a_newer_release_is_refused(database_url: str) -> None:
    Engine(database_url).close()
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0999'"))
    engine.dispose()
    for attempt in (lambda: Engine(database_url), lambda: Engine.upgrade_schema(database_url)):
        with pytest.raises(SchemaMismatch) as refused:
            attempt()
        assert "0999" in str(refused.value) and "newer treeflow" in str(refused.value)
    assert Engine.schema_state(database_url).revision == "0999"


def test_user_names_that_fold_together_stop_the_upgrade_unchanged(database_url: str) -> None:
    database = Database(database_url)
    schema.upgrade_schema(database, target="0010")
    with database.write() as connection:
        for user_id, name in (("u1", "Ada"), ("u2", "ADA"), ("u3", "Grace")):
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, name, role, password_hash, security_stamp, disabled,"
                    " created_at, updated_at) VALUES (:id, :name, 'user', 'x', 's', FALSE, 0, 0)"
                ),
                {"id": user_id, "name": name},
            )
    database.dispose()
    with pytest.raises(SchemaUpgradeFailed) as failed:
        Engine.upgrade_schema(database_url)
    assert "'Ada', 'ADA'" in str(failed.value) and "0011" in str(failed.value)
    assert Engine.schema_state(database_url).revision == "0010"  # every revision rolled back
    assert "name_key" not in _columns(database_url, "users")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.postgres
def test_processes_upgrading_together_upgrade_once(postgres_url: str) -> None:
    """The advisory lock: three processes starting on an old database upgrade it once."""
    _first_release(postgres_url)
    results = race(3, lambda: Engine.upgrade_schema(postgres_url))
    befores = sorted(str(result[0].revision) for result in results)  # type: ignore[index]
    assert befores == ["0001", HEAD, HEAD]
    assert _drift(postgres_url) == []


def test_db_current_and_upgrade_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _sqlite_file(url, "schema_first_release.sqlite.sql")
    env = {"TREEFLOW_DATABASE_URL": url}

    checked = run_treeflow("db", "current", "--check", cwd=tmp_path, env=env)
    assert checked.returncode == 1
    assert "0001" in checked.stdout and "older" in checked.stdout

    refused = run_treeflow("runs", "list", cwd=tmp_path, env=env)
    assert refused.returncode == 1 and "treeflow db upgrade" in refused.stderr

    upgraded = run_treeflow("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded from 0001 (not stamped: read from its tables) to revision {HEAD}" in (
        upgraded.stdout.replace("\n", " ")
    )
    again = run_treeflow("db", "upgrade", cwd=tmp_path, env=env)
    assert again.stdout.strip() == f"already at revision {HEAD}"
    current = run_treeflow("db", "current", "--check", cwd=tmp_path, env=env)
    assert current.returncode == 0 and "up to date" in current.stdout

    bad = run_treeflow("db", "current", "--database", "mysql://nowhere/x", cwd=tmp_path)
    assert bad.returncode == 1 and "--database" in bad.stderr
    assert REGISTRATION  # the CLI shares the example tree's names with the engine tests
