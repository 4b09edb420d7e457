"""SpiffWorkflow 3.2 running treeflow's benchmark workloads, so the harness can compare the two.

The BPMN files next to this module are the same three shapes as treeflow's trees: ``linear10``
(ten script tasks in a row), ``defer_resume`` (a user task that waits for a decision from outside)
and ``fanout_join`` (eight script tasks between two parallel gateways). The rules below keep the
comparison fair, that is, Spiff does what a user of Spiff would do to get the same guarantees:

- Each BPMN file is parsed (and validated) once per benchmark, before the clock starts.
- A run's state is what Spiff itself persists: ``BpmnWorkflowSerializer.serialize_json``, one row
  per workflow in ``spiff_workflows(id, status, state)``, dropped and created afresh by every
  benchmark. The column is TEXT on SQLite and JSON, not JSONB, on PostgreSQL: Spiff stores each
  task's data as a delta from its parent and restores tasks in the order of the ``tasks`` object,
  so it needs the keys in the order it wrote them; JSONB sorts keys and the restored runs silently
  lose inherited data (``source_id`` and ``before`` are gone when ``After`` runs).
- Durability matches treeflow's: SQLite in WAL mode with ``synchronous=NORMAL``, PostgreSQL through
  psycopg 3 with autocommit off; one commit per run (linear10, fanout_join), one per start and one
  per completion (defer_resume), and a completion loads and deserializes the stored row by id.
- Every run must end completed (``is_completed()`` before it is saved, and the number of rows with
  status ``completed`` equals ``runs``) and its last stored state must hold the expected data;
  otherwise the benchmark raises ``RuntimeError`` instead of reporting a rate.
- linear10 counts 12 node executions per run (start event, ten steps, end event), as treeflow
  does; Spiff's internal ``Start``/``EndJoin``/``End`` tasks are not counted.

``progress(n)`` receives the number of items finished so far: runs, or for defer_resume starts
plus completions (up to ``2 * runs``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from SpiffWorkflow.bpmn.parser import BpmnParser, BpmnValidator
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

Progress = Callable[[int], None]

TABLE = "spiff_workflows"
LINEAR_NODES_PER_RUN = 12  # start event, ten steps, end event
BRANCHES = 8
DECISION = "approved"


class _Store:
    """The ``spiff_workflows`` table on SQLite or PostgreSQL; the caller decides when to commit."""

    def __init__(self, database: str) -> None:
        self.connection: sqlite3.Connection | psycopg.Connection[Any]
        if database.startswith("postgresql"):
            # psycopg takes libpq URLs: drop a SQLAlchemy driver suffix such as "+psycopg".
            self.connection = psycopg.connect("postgresql://" + database.split("://", 1)[1])
            # JSON keeps the text as written; JSONB reorders keys (see the module docstring).
            columns = "id BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, state JSON NOT NULL"
            mark, state_in, state_out = "%s", "CAST(%s AS json)", "state::text"
        else:
            self.connection = sqlite3.connect(database)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            columns = "id INTEGER PRIMARY KEY, status TEXT NOT NULL, state TEXT NOT NULL"
            mark, state_in, state_out = "?", "?", "state"
        values = f"VALUES ({mark}, {state_in}) RETURNING id"
        self._insert = f"INSERT INTO {TABLE} (status, state) {values}"
        self._update = f"UPDATE {TABLE} SET status = {mark}, state = {state_in} WHERE id = {mark}"
        self._load = f"SELECT {state_out} FROM {TABLE} WHERE id = {mark}"
        self._count = f"SELECT count(*) FROM {TABLE} WHERE status = {mark}"
        self.connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.connection.execute(f"CREATE TABLE {TABLE} ({columns})")
        self.connection.commit()

    def __enter__(self) -> _Store:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.connection.close()

    def insert(self, status: str, state: str) -> int:
        return int(self._one(self._insert, (status, state)))

    def update(self, workflow_id: int, status: str, state: str) -> None:
        self.connection.execute(self._update, (status, state, workflow_id))

    def load(self, workflow_id: int) -> str:
        row = self.connection.execute(self._load, (workflow_id,)).fetchone()
        if row is None:
            raise RuntimeError(f"no stored workflow with id {workflow_id!r}")
        return str(row[0])

    def count(self, status: str) -> int:
        return int(self._one(self._count, (status,)))

    def _one(self, statement: str, parameters: tuple[object, ...]) -> Any:
        """The first column of the one row ``statement`` returns."""
        row = self.connection.execute(statement, parameters).fetchone()
        if row is None:  # pragma: no cover - INSERT ... RETURNING and COUNT return a row
            raise RuntimeError(f"{statement!r} returned no row")
        return row[0]

    def commit(self) -> None:
        self.connection.commit()


def _load_spec(name: str) -> BpmnProcessSpec:
    """Parse and validate ``<name>.bpmn`` once per benchmark, as a user caches a parsed spec."""
    parser = BpmnParser(validator=BpmnValidator())
    parser.add_bpmn_file(str(Path(__file__).with_name(f"{name}.bpmn")))
    return parser.get_spec(name)


def _start(spec: BpmnProcessSpec, source_id: str) -> BpmnWorkflow:
    """Create a workflow for ``source_id`` and run its engine steps until it ends or waits."""
    workflow = BpmnWorkflow(spec)
    # Scripts read and write task data, not workflow.data: seed the Start task, whose data every
    # later task inherits (workflow.data only receives the end event's data on completion).
    workflow.task_tree.set_data(source_id=source_id)
    workflow.do_engine_steps()
    return workflow


def _require_completed(workflow: BpmnWorkflow, source_id: str) -> None:
    if not workflow.is_completed():
        raise RuntimeError(f"run {source_id!r} stopped before its end event")


def _waiting_approval(workflow: BpmnWorkflow, source_id: str) -> Task:
    """The one READY user task a defer_resume run stops at; anything else is a broken run."""
    tasks = workflow.get_tasks(state=TaskState.READY, manual=True)
    if [task.task_spec.name for task in tasks] != ["approval"]:
        raise RuntimeError(f"run {source_id!r} waits at {tasks!r}, expected only the approval")
    return tasks[0]


def _verify(
    store: _Store,
    serializer: BpmnWorkflowSerializer,
    runs: int,
    last_id: int,
    expected: dict[str, str],
) -> None:
    """Check the table, not only memory: every row completed and the last one round-trips."""
    completed = store.count("completed")
    if completed != runs:
        raise RuntimeError(f"only {completed} of {runs} stored workflows are completed")
    if runs == 0:
        return
    data = serializer.deserialize_json(store.load(last_id)).data
    wrong = {key: data.get(key) for key, value in expected.items() if data.get(key) != value}
    if wrong:
        raise RuntimeError(f"last run's stored data {wrong!r}, expected {expected!r}")


def _progress_step(total: int) -> int:
    return max(1, min(50, total // 100))


def _completed_runs(
    name: str,
    database: str,
    runs: int,
    progress: Progress,
    expected: Callable[[str], dict[str, str]],
) -> float:
    """Seconds to run ``runs`` workflows of ``name`` to their end, one commit per run."""
    spec = _load_spec(name)
    serializer = BpmnWorkflowSerializer()
    step = _progress_step(runs)
    with _Store(database) as store:
        last_id = 0
        began = time.perf_counter()
        for number in range(runs):
            source_id = f"run-{number}"
            workflow = _start(spec, source_id)
            _require_completed(workflow, source_id)
            last_id = store.insert("completed", serializer.serialize_json(workflow))
            store.commit()
            if (number + 1) % step == 0 or number + 1 == runs:
                progress(number + 1)
        elapsed = time.perf_counter() - began
        _verify(store, serializer, runs, last_id, expected(f"run-{runs - 1}"))
    return elapsed


def linear10(database: str, runs: int, progress: Progress) -> dict[str, float]:
    """Start event, ten chained script tasks, end event; each run saved in its own commit."""

    def expected(source_id: str) -> dict[str, str]:
        return {"step_10": "-".join([source_id, *(str(n) for n in range(1, 11))])}

    elapsed = _completed_runs("linear10", database, runs, progress, expected)
    return {
        "runs_per_s": runs / elapsed,
        "node_executions_per_s": runs * LINEAR_NODES_PER_RUN / elapsed,
    }


def fanout_join(database: str, runs: int, progress: Progress) -> dict[str, float]:
    """Eight script tasks between a diverging and a converging parallel gateway, per run."""

    def expected(source_id: str) -> dict[str, str]:
        return {f"branch_{k}": f"{source_id}-{k}" for k in range(1, BRANCHES + 1)}

    elapsed = _completed_runs("fanout_join", database, runs, progress, expected)
    return {"runs_per_s": runs / elapsed}


def defer_resume(database: str, runs: int, progress: Progress) -> dict[str, float]:
    """Start ``runs`` workflows up to the approval and store them, then complete each from its row.

    A completion is what a second process would do: load the state by id, deserialize it, give
    the waiting user task its data, run it and the engine steps to the end, update the row.
    """
    spec = _load_spec("defer_resume")
    serializer = BpmnWorkflowSerializer()
    step = _progress_step(2 * runs)
    ids: list[int] = []
    with _Store(database) as store:
        began = time.perf_counter()
        for number in range(runs):
            source_id = f"run-{number}"
            workflow = _start(spec, source_id)
            _waiting_approval(workflow, source_id)
            ids.append(store.insert("waiting", serializer.serialize_json(workflow)))
            store.commit()
            if (number + 1) % step == 0:
                progress(number + 1)
        started = time.perf_counter()
        for number, workflow_id in enumerate(ids):
            source_id = f"run-{number}"
            workflow = serializer.deserialize_json(store.load(workflow_id))
            approval = _waiting_approval(workflow, source_id)
            approval.set_data(decision=DECISION)
            approval.run()
            workflow.do_engine_steps()
            _require_completed(workflow, source_id)
            store.update(workflow_id, "completed", serializer.serialize_json(workflow))
            store.commit()
            done = runs + number + 1
            if done % step == 0 or done == 2 * runs:
                progress(done)
        finished = time.perf_counter()
        expected = {"after": f"run-{runs - 1}-before-{DECISION}"}
        _verify(store, serializer, runs, ids[-1] if ids else 0, expected)
    return {
        "starts_per_s": runs / (started - began),
        "completes_per_s": runs / (finished - started),
        "end_to_end_per_s": runs / (finished - began),
    }
