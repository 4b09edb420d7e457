"""The in-memory state of one run while a worker holds it, and what a step changed.

A worker loads a run's rows once, executes nodes against this state (no database access while
handlers run), and then writes only what changed: new task rows, changed task rows, new error
rows, scheduled trigger rows and the run's own columns, all in the transaction that closes the
trigger. What changed is listed as it changes (new tasks are appended, a changed task lists
itself once), so taking a step's changes costs what the step did, not the size of the run.

A worker may keep a state between batches (``engine.processing.run_cache``), bounded by what
:meth:`RunState.kept_bytes` estimates it costs in memory: its documents as stored (the JSON of
its inputs, values, source data and each task's results and arrivals) plus a measured cost per
value and per task, counted cheaply and kept up to date as tasks change.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.handlers.handler import SourceInfo
from engine.records import ROOT_LOOP_INDEX
from engine.run.source_bindings import SourceBindings
from engine.statuses import ErrorType, RunStatus, TaskStatus, transition
from engine.tree.model import Tree

# What a kept task costs besides its results and arrivals: the object, its id, node, handler id
# and loop index, and its entries in the state's indexes (measured: about 940 bytes).
TASK_BYTES = 900
# What each value of a JSON document costs in memory besides its text: the Python objects and
# the slot holding them (measured: 90 to 130 bytes in objects of short strings, the usual shape;
# such a document takes about 7 times its JSON, a single long string about once).
VALUE_BYTES = 100


# Tasks that keep their run Started: a deferral waits for its Complete, a retry for its attempt.
_PENDING = (TaskStatus.DEFERRED, TaskStatus.RETRYING)


def stored_bytes(document: Any) -> int:
    """What a JSON document costs kept in memory: its JSON as stored, plus VALUE_BYTES a value.

    Values are counted by the separators in the JSON text (a comma inside a string counts too,
    erring on the large side): orjson writes the text and counts in C, so a 4 MB document costs
    milliseconds, once per state, instead of a walk over its objects.
    """
    try:
        text = orjson.dumps(document)
    except TypeError:  # an integer beyond 64 bits: what text it would have is close enough
        text = repr(document).encode()
    return len(text) + VALUE_BYTES * text.count(b",")


@dataclass(slots=True)
class TaskState:
    id: str
    node: str
    handler_id: str
    loop_index: str
    status: TaskStatus
    results: dict[str, Any]
    token: str | None
    # Immutable, so that the many tasks nothing arrives at share the empty tuple (no container
    # of their own for the garbage collector to visit while a batch is held).
    arrived: tuple[str, ...]
    created_at: float
    updated_at: float
    is_new: bool = False
    dirty: bool = False
    completing: bool = False  # a Complete for its token was accepted and is queued
    attempt: int = 1  # which call of its handler (engine.run.retries)
    last_error: str | None = None  # what the last failed call raised, if one failed
    # Its run state's list of changed tasks, which it joins when it first changes.
    changes: list[TaskState] | None = field(default=None, repr=False, compare=False)
    # What RunState.kept_bytes last counted for it.
    kept_bytes: int = field(default=0, repr=False, compare=False)

    def move(self, status: TaskStatus, now: float) -> None:
        self.status = transition(self.status, status)
        self.updated_at = now
        self.mark_changed()

    def mark_changed(self) -> None:
        """Its row is to be written again: a task read from rows lists itself as changed once."""
        if not self.dirty:
            self.dirty = True
            if not self.is_new and self.changes is not None:
                self.changes.append(self)

    def measure(self) -> int:
        arrived = stored_bytes(self.arrived) if self.arrived else 0
        return TASK_BYTES + stored_bytes(self.results) + arrived

    def row(self, run_id: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": run_id,
            "node": self.node,
            "handler_id": self.handler_id,
            "loop_index": self.loop_index,
            "status": str(self.status),  # a StrEnum: str() is its value, without the slow property
            "results": self.results,
            "token": self.token,
            "arrived": self.arrived,
            "completing": False,
            "attempt": self.attempt,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class RunState:
    id: int
    tree: Tree
    tree_version_id: int
    status: RunStatus
    source: SourceInfo
    inputs: dict[str, Any]
    values: dict[str, Any]
    active_errors: int
    # Active errors by node: an error in a junction's region keeps the junction waiting.
    error_nodes: dict[str, int] = field(default_factory=dict)
    # Active Budget Errors: while there is one, the run's other triggers are held back (Paused).
    budget_errors: int = 0
    tasks: list[TaskState] = field(default_factory=list)
    # The latest task per (node, loop index), and node results as templates address them.
    latest: dict[tuple[str, str], TaskState] = field(default_factory=dict)
    results: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # Results of tasks inside loop iterations: loop index -> node -> results (engine.run.loops).
    loop_results: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    by_id: dict[str, TaskState] = field(default_factory=dict)  # a loop's triggers name many
    new_errors: list[dict[str, Any]] = field(default_factory=list)
    new_triggers: list[dict[str, Any]] = field(default_factory=list)  # timers, routine returns
    new_runs: list[dict[str, Any]] = field(default_factory=list)  # routine runs called
    # A routine's run: who called it (engine.tree.routines), how deep calls nest, and the
    # top-level run of its call tree (None: this run is one).
    parent_run_id: int | None = None
    parent_task_id: str | None = None
    call_depth: int = 0
    root_run_id: int | None = None
    # Tasks read from rows that changed since the last take_changes; tasks from index
    # ``_inserted`` on are new since then (engine.processing.runner takes them per trigger).
    _changed: list[TaskState] = field(default_factory=list)
    _inserted: int = 0
    # kept_bytes, kept up to date: tasks from ``_measured`` on are not counted yet, ``_resized``
    # are counted tasks that changed since; -1 until the run's own documents are counted.
    _own_bytes: int = -1
    _task_bytes: int = 0
    _measured: int = 0
    _resized: list[TaskState] = field(default_factory=list)

    @classmethod
    def from_rows(
        cls,
        run: Mapping[str, Any],
        tree: Tree,
        task_rows: Iterable[Mapping[str, Any]],
        active_errors: Mapping[tuple[str, str], int],
    ) -> RunState:
        """The state of a run read from its rows; ``active_errors`` by (node, error type)."""
        error_nodes: dict[str, int] = {}
        budget_errors = 0
        for (node, kind), count in active_errors.items():
            error_nodes[node] = error_nodes.get(node, 0) + count
            if kind == ErrorType.BUDGET:
                budget_errors += count
        state = cls(
            id=run["id"],
            tree=tree,
            tree_version_id=run["tree_version_id"],
            status=RunStatus(run["status"]),
            source=SourceInfo(
                name=run["source_name"],
                group=run["source_group"],
                id=run["source_id"],
                data=run["source_data"],
            ),
            inputs=run["inputs"],
            values=run["values"],
            active_errors=sum(error_nodes.values()),
            error_nodes=error_nodes,
            budget_errors=budget_errors,
            parent_run_id=run["parent_run_id"],
            parent_task_id=run["parent_task_id"],
            call_depth=run["call_depth"],
            root_run_id=run["root_run_id"],
        )
        for row in task_rows:
            state.remember(
                TaskState(
                    id=row["id"],
                    node=row["node"],
                    handler_id=row["handler_id"],
                    loop_index=row["loop_index"],
                    status=TaskStatus(row["status"]),
                    results=row["results"],
                    token=row["token"],
                    arrived=tuple(row["arrived"]),
                    created_at=row["created_at"],
                    updated_at=row["updated_at"],
                    completing=row["completing"],
                    attempt=row["attempt"],
                    last_error=row["last_error"],
                )
            )
        state._inserted = len(state.tasks)
        return state

    def remember(self, task: TaskState) -> None:
        task.changes = self._changed
        self.tasks.append(task)
        self.by_id[task.id] = task
        self.latest[(task.node, task.loop_index)] = task
        if task.loop_index == ROOT_LOOP_INDEX:
            self.results[task.node] = task.results
        else:
            self.loop_results.setdefault(task.loop_index, {})[task.node] = task.results

    @functools.cached_property
    def source_bindings(self) -> SourceBindings:
        """Request CE's bindings of the source data: built once a run, as the data never changes
        (a state kept between batches keeps them)."""
        return SourceBindings(self.source.data)

    @property
    def call_tree(self) -> int:
        """The top-level run of this run's call tree: itself, unless a routine call started it."""
        return self.id if self.root_run_id is None else self.root_run_id

    def task_by_id(self, task_id: str | None) -> TaskState | None:
        return None if task_id is None else self.by_id.get(task_id)

    def set_results(self, task: TaskState, results: dict[str, Any]) -> None:
        task.results = results
        task.mark_changed()
        if task.loop_index == ROOT_LOOP_INDEX:
            self.results[task.node] = results
        else:
            self.loop_results.setdefault(task.loop_index, {})[task.node] = results

    def forget_error(self, node: str, error_type: str) -> None:
        """An active error of ``node`` was resolved: it keeps neither the run nor a junction."""
        self.active_errors = max(self.active_errors - 1, 0)
        if error_type == ErrorType.BUDGET:
            self.budget_errors = max(self.budget_errors - 1, 0)
        left = self.error_nodes.get(node, 0) - 1
        if left > 0:
            self.error_nodes[node] = left
        else:
            self.error_nodes.pop(node, None)

    def final_status(self, *, other_open_triggers: bool) -> RunStatus:
        """Started while anything is pending; then Failed if an error is active, else Completed."""
        pending = other_open_triggers or any(t.status in _PENDING for t in self.tasks)
        if pending:
            return RunStatus.STARTED
        return RunStatus.FAILED if self.active_errors else RunStatus.COMPLETED

    def take_changes(self, run_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """New task rows and changed task rows since the last call; marks them clean.

        It costs what changed since the last call: the runner takes a run's changes after each
        trigger, so that a batch can be committed in more than one transaction.
        """
        new = self.tasks[self._inserted :]
        inserts = [task.row(run_id) for task in new]
        for task in new:
            task.is_new = task.dirty = False
        updates = []
        for task in self._changed:
            updates.append(
                {
                    "b_id": task.id,
                    "b_status": str(task.status),
                    "b_results": task.results,
                    "b_arrived": task.arrived,
                    "b_attempt": task.attempt,
                    "b_last_error": task.last_error,
                    "b_updated_at": task.updated_at,
                }
            )
            task.dirty = False
        self._resized.extend(self._changed)
        self._changed.clear()
        self._inserted = len(self.tasks)
        return inserts, updates

    def kept_bytes(self) -> int:
        """What keeping this state costs in memory, estimated (see :func:`stored_bytes`).

        The run's own documents are counted once (a change to its values bumps the run's
        revision, so a kept state never sees one); each task when first counted and again after
        it changed, so counting a state kept batch after batch costs what the batches changed.
        """
        if self._own_bytes < 0:
            self._own_bytes = (
                stored_bytes(self.inputs)
                + stored_bytes(self.values)
                + stored_bytes(self.source.data)
            )
        for task in self._resized:
            if task.kept_bytes:  # counted before it changed
                size = task.measure()
                self._task_bytes += size - task.kept_bytes
                task.kept_bytes = size
        self._resized.clear()
        for task in self.tasks[self._measured :]:
            task.kept_bytes = task.measure()
            self._task_bytes += task.kept_bytes
        self._measured = len(self.tasks)
        return self._own_bytes + self._task_bytes


__all__ = ["TASK_BYTES", "VALUE_BYTES", "RunState", "TaskState", "stored_bytes"]
