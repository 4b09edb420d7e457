"""Run Again and manual triggers: what an operator does to a run from outside its tree.

**Run Again** (Kinetic's console action) starts a new run of the same tree for the same source
record, with the first run's inputs or edited ones (each edit replaces one input; the others are
kept), on the first run's tree version (``version="same"``, the default: the run is repeated as it
was) or on the tree's current one (``"current"``: a fixed tree, run for a record that failed). The
new run names the first in ``again_of``; its Root trigger's message says whose run again it is.
A routine's run is started by its caller and cannot be run again on its own.

A **manual trigger** (Kinetic's "Create Manual Trigger") resumes a run that stalled, at a node an
admin names, with results the admin gives: processed like any trigger (``engine.run.manual``), it
completes the node's deferred task if it has one, or else records a task of the node, Closed with
those results, and follows its Complete connectors. Who asked and why are the trigger's
``requested_by`` and ``message``. It is accepted for a run that is Started or Failed, at a node of
the run's own tree version outside any loop; the run's active errors stay active (resolve them
with Do Nothing, or Skip Task, to let the run complete).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rows
from engine.errors import BadRequest, RunNotFound, RunNotOpen
from engine.handlers.handler import Behaviour
from engine.records import TreeKey, Trigger
from engine.results_xml import parse_results
from engine.rows import RowValues
from engine.run import manual
from engine.run.execution import Execution
from engine.run.state import RunState
from engine.statuses import RunStatus, TriggerAction
from engine.store import runs as run_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.steps import RunWrite
from engine.store.tables import runs
from engine.store.trees import StoredVersion
from engine.tree.model import Tree

VERSIONS = ("same", "current")
MANUAL_STATUSES = (RunStatus.STARTED, RunStatus.FAILED)


def _run_row(connection: Connection, run_id: int) -> RowValues:
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise RunNotFound(run_id=run_id)
    return row


def accept_run_again(
    database: Database,
    *,
    run_id: int,
    edits: Mapping[str, str],
    version: str,
    created_by: str | None,
    now: float,
    current_version: Callable[[Connection, TreeKey], StoredVersion],
    insert_start: Callable[..., dict[str, Any]],
) -> Trigger:
    """Write the new run and its Root trigger in one transaction; see the module docstring."""
    if version not in VERSIONS:
        raise BadRequest(field="version", reason=f"{version!r} is not one of {', '.join(VERSIONS)}")
    with database.write() as connection:
        first = _run_row(connection, run_id)
        if first["parent_run_id"] is not None:
            raise BadRequest(
                field="run_id",
                reason=f"run {run_id} is a routine's run, started by run {first['parent_run_id']};"
                " run that one again instead",
            )
        key = TreeKey(first["source_name"], first["source_group"], first["tree_name"])
        version_id = first["tree_version_id"]
        if version == "current":
            version_id = current_version(connection, key).id
        run = rows.run_row(
            tree_version_id=version_id,
            key=key,
            source_id=first["source_id"],
            inputs={**first["inputs"], **edits},
            source_data=first["source_data"],
            now=now,
            again_of=run_id,
        )
        trigger = insert_start(
            connection,
            run,
            created_by=created_by,
            results=None,
            message=f"Run again of run {run_id}",
            idempotency_key=None,
        )
        return run_store.trigger_record(trigger)


def apply_manual(
    state: RunState, execution: Execution, trigger: ClaimedTrigger, write: RunWrite
) -> str | None:
    """Process a Manual trigger (``engine.run.manual``); why it was refused, or None.

    Completing a deferred task is fenced as a wait's timer is: a createDeferred Complete
    accepted meanwhile makes the commit fail, and the trigger is taken up again.
    """
    refused, completed = manual.resume(
        state, execution, trigger.node, parse_results(trigger.results)
    )
    if completed is not None:
        write.timer_completions.append(completed.id)
        if state.tree.nodes[completed.node].handler.behaviour is Behaviour.WAIT:
            write.cancelled_timers.append(rows.timer_key(completed.id))
    return refused


def check_manual_node(tree: Tree, node: str) -> None:
    """A manual trigger's node: one of the run's tree version, outside any loop."""
    if node not in tree.nodes:
        known = ", ".join(sorted(tree.nodes))
        raise BadRequest(field="node", reason=f"{node!r} is not a node of the run's tree ({known})")
    if tree.loop_depths.get(node):
        raise BadRequest(
            field="node",
            reason=f"{node!r} is inside a loop; a manual trigger resumes a run at a"
            " node outside loops",
        )


def accept_manual(
    database: Database,
    *,
    run_id: int,
    node: str,
    results: str | None,
    reason: str,
    requested_by: str,
    now: float,
    tree_of_version: Callable[[int], Tree],
) -> Trigger:
    """Write a Manual trigger for a Started or Failed run, at a node of its tree version."""
    with database.write() as connection:
        run = _run_row(connection, run_id)
        status = RunStatus(run["status"])
        if status not in MANUAL_STATUSES:
            allowed = [s.value for s in MANUAL_STATUSES]
            raise RunNotOpen(
                run_id=run_id, status=status.value, action="a manual trigger", allowed=allowed
            )
        check_manual_node(tree_of_version(run["tree_version_id"]), node)
        trigger = rows.trigger_row(
            TriggerAction.MANUAL,
            run_id=run_id,
            now=now,
            results=results,
            message=reason,
            requested_by=requested_by,
            node=node,
        )
        trigger["id"] = run_store.insert_trigger(connection, trigger)
        return run_store.trigger_record(trigger)


__all__ = [
    "MANUAL_STATUSES",
    "VERSIONS",
    "accept_manual",
    "accept_run_again",
    "apply_manual",
    "check_manual_node",
]
