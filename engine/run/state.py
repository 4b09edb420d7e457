"""The in-memory state of one run while a worker holds it, and what a step changed.

A worker loads a run's rows once, executes nodes against this state (no database access while
handlers run), and then writes only what changed: new task rows, changed task rows, new error
rows, scheduled trigger rows and the run's own columns, all in the transaction that closes the
trigger. What changed is listed as it changes (new tasks are appended, a changed task lists
itself once), so taking a step's changes costs what the step did, not the size of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.handlers.handler import SourceInfo
from engine.records import ROOT_LOOP_INDEX
from engine.statuses import RunStatus, TaskStatus, transition
from engine.tree.model import Tree


@dataclass(slots=True)
class TaskState:
    id: str
    node: str
    handler_id: str
    loop_index: str
    status: TaskStatus
    results: dict[str, Any]
    token: str | None
    arrived: list[str]
    created_at: float
    updated_at: float
    is_new: bool = False
    dirty: bool = False
    completing: bool = False  # a Complete for its token was accepted and is queued
    # Its run state's list of changed tasks, which it joins when it first changes.
    changes: list[TaskState] | None = field(default=None, repr=False, compare=False)

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

    def row(self, run_id: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": run_id,
            "node": self.node,
            "handler_id": self.handler_id,
            "loop_index": self.loop_index,
            "status": self.status.value,
            "results": self.results,
            "token": self.token,
            "arrived": self.arrived,
            "completing": False,
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
    # A routine's run: who called it (engine.tree.routines), and how deep calls nest.
    parent_run_id: int | None = None
    parent_task_id: str | None = None
    call_depth: int = 0
    # Tasks read from rows that changed since the last take_changes; tasks from index
    # ``_inserted`` on are new since then.
    _changed: list[TaskState] = field(default_factory=list)
    _inserted: int = 0

    @classmethod
    def from_rows(
        cls,
        run: Mapping[str, Any],
        tree: Tree,
        task_rows: Iterable[Mapping[str, Any]],
        error_nodes: Mapping[str, int],
    ) -> RunState:
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
            error_nodes=dict(error_nodes),
            parent_run_id=run["parent_run_id"],
            parent_task_id=run["parent_task_id"],
            call_depth=run["call_depth"],
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
                    arrived=list(row["arrived"]),
                    created_at=row["created_at"],
                    updated_at=row["updated_at"],
                    completing=row["completing"],
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

    def task_by_id(self, task_id: str | None) -> TaskState | None:
        return None if task_id is None else self.by_id.get(task_id)

    def set_results(self, task: TaskState, results: dict[str, Any]) -> None:
        task.results = results
        task.mark_changed()
        if task.loop_index == ROOT_LOOP_INDEX:
            self.results[task.node] = results
        else:
            self.loop_results.setdefault(task.loop_index, {})[task.node] = results

    def forget_error(self, node: str) -> None:
        """An active error of ``node`` was resolved: it keeps neither the run nor a junction."""
        self.active_errors = max(self.active_errors - 1, 0)
        left = self.error_nodes.get(node, 0) - 1
        if left > 0:
            self.error_nodes[node] = left
        else:
            self.error_nodes.pop(node, None)

    def final_status(self, *, other_open_triggers: bool) -> RunStatus:
        """Started while anything is pending; then Failed if an error is active, else Completed."""
        pending = other_open_triggers or any(t.status is TaskStatus.DEFERRED for t in self.tasks)
        if pending:
            return RunStatus.STARTED
        return RunStatus.FAILED if self.active_errors else RunStatus.COMPLETED

    def take_changes(self, run_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """New task rows and changed task rows since the last call; marks them clean.

        It costs what changed since the last call, not the size of the run.
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
                    "b_status": task.status.value,
                    "b_results": task.results,
                    "b_arrived": task.arrived,
                    "b_updated_at": task.updated_at,
                }
            )
            task.dirty = False
        self._changed.clear()
        self._inserted = len(self.tasks)
        return inserts, updates


__all__ = ["RunState", "TaskState"]
