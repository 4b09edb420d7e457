"""The floor: a raw driver loop writing exactly the rows treeflow writes for a linear10 run.

No engine, no SQLAlchemy, no templates: per run, in one transaction, ``INSERT`` the run (status
Staged) and its Root trigger (New), ``INSERT`` the 12 task rows (Start and End with results
``{}``, each step ``{"output": "run-N-1-...-k"}``, ``arrived`` ``[]``, the values treeflow stores),
``UPDATE`` the trigger to Closed and the run to Completed, then commit. One commit per run,
on treeflow's own schema (created with ``Database(url).create_schema()``, so the same indexes
and constraints are maintained) with treeflow's connection settings: WAL, ``synchronous=NORMAL``
and ``foreign_keys=ON`` on SQLite (``sqlite3``), autocommit off on PostgreSQL (psycopg).

It is the fastest a durable, one-run-per-commit engine could write these rows from Python, so
treeflow's throughput as a percentage of it says how much the engine itself costs.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import psycopg

from benchmarks.databases import libpq_url, sqlite_file
from benchmarks.measure import LINEAR10, BenchmarkError, Progress, Ticker
from engine.store.database import Database

STEPS = 10
SOURCE = ("Benchmarks", "Throughput", "Linear 10")
_RUN_COLUMNS = (
    'tree_version_id, source_name, source_group, tree_name, source_id, status, inputs, "values",'
    " source_data, lease_owner, lease_until, created_at, updated_at"
)
_TRIGGER_COLUMNS = (
    "action, status, run_id, task_id, token, results, message, idempotency_key, due_at,"
    " lease_owner, lease_until, attempts, engine, error, created_at, closed_at"
)
_TASK_COLUMNS = (
    "id, run_id, node, handler_id, loop_index, status, results, token, arrived, completing,"
    " created_at, updated_at"
)


def _statements(mark: str) -> dict[str, str]:
    def marks(count: int) -> str:
        return ", ".join([mark] * count)

    return {
        "run": f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({marks(13)}) RETURNING id",
        "trigger": f"INSERT INTO triggers ({_TRIGGER_COLUMNS}) VALUES ({marks(16)}) RETURNING id",
        "tasks": f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({marks(12)})",
        "close": f"UPDATE triggers SET status = 'Closed', attempts = 1, engine = {mark},"
        f" closed_at = {mark} WHERE id = {mark}",
        "complete": f"UPDATE runs SET status = 'Completed', updated_at = {mark} WHERE id = {mark}",
    }


def _task_rows(run_id: int, source_id: str, now: float) -> list[tuple[Any, ...]]:
    """Start, Step 1..10, End, with the results and ids treeflow would give them."""
    nodes = [("Start", "system_start_v1", "{}")]
    output = source_id
    for step in range(1, STEPS + 1):
        output = f"{output}-{step}"
        nodes.append((f"Step {step}", "utilities_echo_v1", f'{{"output":"{output}"}}'))
    nodes.append(("End", "system_noop_v1", "{}"))
    millis = int(now * 1000)
    return [
        # id, run_id, node, handler_id, loop_index, status, results, token, arrived,
        # completing, created_at, updated_at: the columns of the INSERT, in order
        (
            f"{millis:012x}{index:06x}{run_id:014x}",
            run_id,
            node,
            handler,
            "/",
            "Closed",
            results,
            None,
            "[]",
            False,
            now,
            now,
        )
        for index, (node, handler, results) in enumerate(nodes)
    ]


def _loop(connection: Any, mark: str, version_id: int, runs: int, progress: Progress) -> float:
    """Seconds to write ``runs`` linear10 runs, one commit each, through a DB-API connection."""
    sql = _statements(mark)
    tick = Ticker(progress, runs)
    began = time.perf_counter()
    for number in range(runs):
        now = time.time()
        source_id = f"run-{number}"
        run_values = (version_id, *SOURCE, source_id, "Staged", "{}", "{}", "{}", None, None)
        run_id = connection.execute(sql["run"], (*run_values, now, now)).fetchone()[0]
        trigger_values = ("Root", "New", run_id, None, None, None, None, None, now, None, None)
        trigger_id = connection.execute(
            sql["trigger"], (*trigger_values, 0, None, None, now, None)
        ).fetchone()[0]
        connection.cursor().executemany(sql["tasks"], _task_rows(run_id, source_id, now))
        connection.execute(sql["close"], ("floor", now, trigger_id))
        connection.execute(sql["complete"], (now, run_id))
        connection.commit()
        tick(number + 1)
    return time.perf_counter() - began


def _schema(url: str) -> int:
    """Create treeflow's schema and one tree version (the runs' foreign key); its id."""
    database = Database(url)
    try:
        database.create_schema()
        with database.write() as connection:
            return int(
                connection.exec_driver_sql(
                    "INSERT INTO tree_versions (source_name, source_group, name, version, digest,"
                    " status, definition, created_at) VALUES ('Benchmarks', 'Throughput',"
                    " 'Linear 10', 1, 'floor', 'Active', '{}', 0) RETURNING id"
                ).scalar_one()
            )
    finally:
        database.dispose()


def _count_completed(connection: Any, runs: int) -> None:
    completed = connection.execute("SELECT count(*) FROM runs WHERE status = 'Completed'")
    tasks = connection.execute("SELECT count(*) FROM tasks").fetchone()[0]
    done = completed.fetchone()[0]
    if done != runs or tasks != runs * LINEAR10.nodes_per_run:
        raise BenchmarkError(f"floor wrote {done} completed runs and {tasks} tasks for {runs}")


def measure(url: str, runs: int, progress: Progress) -> dict[str, float]:
    """The floor on the database ``url`` names (SQLite file or PostgreSQL), ``runs`` runs."""
    version_id = _schema(url)
    connection: Any
    if url.startswith("sqlite"):
        connection = sqlite3.connect(sqlite_file(url), isolation_level="DEFERRED")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        mark = "?"
    else:
        connection = psycopg.connect(libpq_url(url))  # autocommit off: one transaction a run
        mark = "%s"
    try:
        elapsed = _loop(connection, mark, version_id, runs, progress)
        _count_completed(connection, runs)
    finally:
        connection.close()
    return {"runs": runs, "runs_per_s": runs / elapsed}


__all__ = ["measure"]
