"""Routines at run time: a call starts a child run, and the child's return completes the caller.

A node whose handler is a routine's id defers, and its step writes a child run of the routine's
current version (parent run and task recorded on it) with a Root trigger keyed
``call:<caller task>`` (``engine.rows.call_key``), so a step retried after a lost lease calls
once. When the child reaches ``system_tree_return_v1``, that node's parameters (the routine's
outputs) become a Complete of the caller's task with no token, keyed ``return:<caller task>``,
which the runner treats as it treats a wait's timer: it completes the task unless it was
completed first, fenced on the task row. Only the first return of a child completes its
caller; a later one (another branch) only closes. Both moves are triggers written in the step
that causes them, never work done across runs in one step.

The id is looked up again when the call runs: the routine the caller was checked against at load
may since have been made Inactive, or a newer version of its file may provide another id. Then
the caller's task fails with a Missing Routine Error (as in Kinetic Task), which Retry Task
resolves once a routine with that id is active again; the inputs are checked again against the
routine's current version: a required input not given is a Node Parameter Error, a parameter it
does not declare (any more) is not passed, as in Kinetic. Calls nest (a routine may call routines,
itself included); :data:`MAX_CALL_DEPTH` bounds the depth, so runaway recursion fails one task
with a Handler Error instead of creating runs forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine import rows
from engine.handlers.handler import Behaviour
from engine.records import TreeKey
from engine.results_xml import write_results
from engine.run.state import RunState, TaskState
from engine.statuses import ErrorType, TaskStatus, TriggerAction
from engine.tree.routines import CalledRoutine

MAX_CALL_DEPTH = 20  # a top-level run is depth 0; its routines' runs 1, theirs 2, ...

RoutineLookup = Callable[[str], CalledRoutine | None]


@dataclass(frozen=True)
class CallRefused:
    """Why a call cannot start: recorded as an error of the calling task."""

    type: ErrorType
    summary: str


def prepare_call(
    state: RunState,
    node: str,
    definition_id: str,
    parameters: Mapping[str, str],
    lookup: RoutineLookup | None,
) -> CalledRoutine | CallRefused:
    """Look the routine up and check the inputs against its current version."""
    depth = state.call_depth + 1
    if depth > MAX_CALL_DEPTH:
        return CallRefused(
            ErrorType.HANDLER,
            f"Routine call {node!r} refused: calling {definition_id!r} would nest routine runs"
            f" {depth} deep; the limit is {MAX_CALL_DEPTH} (a routine that calls itself"
            " without end?)",
        )
    routine = None if lookup is None else lookup(definition_id)
    if routine is None:
        return CallRefused(
            ErrorType.MISSING_ROUTINE,
            f"Routine {definition_id!r} called by node {node!r} is not available: no active"
            " routine has that definition id",
        )
    signature = routine.signature
    for wanted in signature.inputs or ():
        if wanted.required and wanted.default is None and wanted.name not in parameters:
            return CallRefused(
                ErrorType.NODE_PARAMETER,
                f"Routine {definition_id!r} requires the input {wanted.name!r}, which node"
                f" {node!r} does not give",
            )
    return routine


def child_run(
    state: RunState, routine: CalledRoutine, parameters: Mapping[str, str], task_id: str, now: float
) -> dict[str, Any]:
    """The row of a child run: on the caller's source, pinned to the routine's version now."""
    signature = routine.signature
    inputs = {i.name: i.default for i in signature.inputs or () if i.default is not None}
    # A parameter the routine does not declare (any more) is not passed, as in Kinetic; the
    # loader warned of it (engine.tree.leniency).
    inputs.update((k, v) for k, v in parameters.items() if signature.input(k) is not None)
    return rows.run_row(
        tree_version_id=routine.version_id,
        key=TreeKey(state.source.name, state.source.group, routine.tree.key.name),
        source_id=state.source.id,
        inputs=inputs,
        source_data=state.source.data,
        parent_run_id=state.id,
        parent_task_id=task_id,
        call_depth=state.call_depth + 1,
        root_run_id=state.call_tree,
        now=now,
    )


def return_trigger(state: RunState, task: TaskState, now: float) -> dict[str, Any] | None:
    """The Complete of the caller's task a return writes; None if there is no caller to tell.

    Raises BadResults for an output XML cannot carry (a NUL in it), before anything changed.
    """
    results = write_results(task.results)
    if state.parent_run_id is None or state.parent_task_id is None:
        return None  # the routine was started on its own: nobody waits for it
    for other in state.tasks:
        if other is task or other.status is not TaskStatus.CLOSED:
            continue
        if state.tree.nodes[other.node].handler.behaviour is Behaviour.RETURN:
            return None  # the first return of a run is the one the caller gets
    return rows.trigger_row(
        TriggerAction.COMPLETE,
        run_id=state.parent_run_id,
        now=now,
        task_id=state.parent_task_id,
        results=results,
        idempotency_key=rows.return_key(state.parent_task_id),
    )


__all__ = [
    "MAX_CALL_DEPTH",
    "CallRefused",
    "RoutineLookup",
    "child_run",
    "prepare_call",
    "return_trigger",
]
