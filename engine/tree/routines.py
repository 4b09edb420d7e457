"""Routines: trees with declared inputs and outputs, called from other trees like a handler.

A routine file adds ``type: routine``, a ``definition_id`` and its ``inputs`` and ``outputs``
(SPEC section 2). A node whose handler is that id calls it: the node's parameters are the
routine's inputs, its task defers, and a child run of the routine starts, with the parent run
and task recorded on it. When the child reaches ``system_tree_return_v1``, that node's
parameters (the routine's outputs) complete the caller's task as its results.

Both moves are triggers written in the step that causes them, never work done across runs in
one step: the caller's step inserts the child run with its Root trigger (idempotency key
``call:<caller task>``), and the child's step that returns inserts a Complete of the caller's
task with no token (``return:<caller task>``), which the runner treats as it treats a wait's
timer: it completes the task unless it was completed first, fenced on the task row. Only the
first return of a child completes its caller; a later one (another branch) only closes.

When is a routine id checked? At load, a caller naming an id that is neither a handler nor a
known routine is refused like any unknown handler (SPEC: a typo is caught before anything
runs), and its parameters must be the routine's inputs. At run time the id is looked up again,
in the database: the routine the caller was checked against may since have been made
Inactive, or a newer version of its file may provide another id. Then the caller's task fails
with a Missing Routine Error (as in Kinetic Task), which Retry Task resolves once a routine
with that id is active again. For the same reason the inputs are checked again, against the
routine's current version, as a Node Parameter Error. A stored tree version is rebuilt without
these load-time checks (``unchecked``): it was valid when loaded, and what changed since is
the run-time check's to report, at the node that calls.

Routine calls nest (a routine may call routines, itself included); :data:`MAX_CALL_DEPTH`
bounds the depth, so runaway recursion fails one task with a Handler Error instead of
creating runs forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.handlers.builtin import RETURN_HANDLER
from engine.handlers.handler import DEFINITION_ID, Behaviour, Handler, HandlerContext, Parameter
from engine.results_xml import write_results
from engine.statuses import ErrorType, RunStatus, TaskStatus, TriggerAction
from engine.store.trigger_rows import new_trigger_row

if TYPE_CHECKING:
    from engine.run.state import RunState, TaskState
    from engine.tree.model import Tree

ROUTINE_KEYS = ("definition_id", "inputs", "outputs")
INPUT_KEYS = frozenset({"name", "required", "default", "description"})
MAX_CALL_DEPTH = 20  # a top-level run is depth 0; its routines' runs 1, theirs 2, ...

Report = Callable[..., None]  # the loader's problem(message, *path)


@dataclass(frozen=True)
class RoutineInput:
    """An input a routine declares; a bare name in the file is a required input."""

    name: str
    required: bool = True
    default: str | None = None
    description: str = ""


@dataclass(frozen=True)
class RoutineSignature:
    """What callers see of a routine. ``inputs`` None: not checked (a stored version rebuilt)."""

    definition_id: str
    inputs: tuple[RoutineInput, ...] | None
    outputs: tuple[str, ...] | None

    def input(self, name: str) -> RoutineInput | None:
        return next((i for i in self.inputs or () if i.name == name), None)


def unchecked(definition_ids: Iterable[str]) -> dict[str, RoutineSignature]:
    """Routine ids whose callers are rebuilt without checking their parameters."""
    return {i: RoutineSignature(i, None, None) for i in definition_ids}


def _names(raw: Any, key: str, report: Report) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        report(f"{key!r} must be a list of names, not {type(raw).__name__}", key)
        return []
    return raw


def _input(item: Any, index: int, report: Report) -> RoutineInput | None:
    if isinstance(item, str) and item.strip():
        return RoutineInput(item)
    if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
        unknown = sorted(set(item) - INPUT_KEYS)
        if unknown:
            known = ", ".join(sorted(INPUT_KEYS))
            report(f"unknown key {unknown[0]!r} in an input; known keys: {known}", "inputs", index)
        required, default = item.get("required", True), item.get("default")
        if not isinstance(required, bool):
            report(f"'required' must be true or false, not {required!r}", "inputs", index)
            required = True
        if default is not None and not isinstance(default, str | int | float):
            report(f"the default of input {item['name']!r} must be a text", "inputs", index)
            default = None
        text = None if default is None else str(default)
        return RoutineInput(item["name"], required, text, str(item.get("description", "")))
    report("an input is a name, or a mapping with 'name' (and 'required', 'default')", "inputs")
    return None


def routine_header(
    data: Mapping[str, Any], report: Report, handler_ids: Iterable[str] = ()
) -> RoutineSignature | None:
    """The signature a tree's header declares, or None for a plain tree; problems reported."""
    kind = data.get("type", "tree")
    if kind not in ("tree", "routine"):
        report(f"type {kind!r} is not 'tree' or 'routine'", "type")
        return None
    if kind == "tree":
        for key in ROUTINE_KEYS:
            if key in data:
                report(f"{key!r} is only for a routine: add 'type: routine'", key)
        return None
    definition_id = data.get("definition_id")
    if not isinstance(definition_id, str) or not DEFINITION_ID.match(definition_id):
        report(
            f"a routine needs a 'definition_id' in lower_snake_case ending in a version such as"
            f" routine_greet_v1, not {definition_id!r}",
            "definition_id",
        )
        definition_id = str(definition_id)
    elif definition_id in set(handler_ids):
        report(
            f"definition id {definition_id!r} is a handler's id: a routine needs its own",
            "definition_id",
        )
    inputs = []
    for index, item in enumerate(_names(data.get("inputs"), "inputs", report)):
        found = _input(item, index, report)
        if found is not None:
            inputs.append(found)
    outputs = []
    raw_outputs = data.get("outputs")
    for index, item in enumerate(_names(raw_outputs, "outputs", report)):
        if isinstance(item, str) and item.strip():
            outputs.append(item)
        else:
            report(f"an output is a name, not {item!r}", "outputs", index)
    for key, names in (("inputs", [i.name for i in inputs]), ("outputs", outputs)):
        for twice in sorted({n for n in names if names.count(n) > 1}):
            report(f"{key[:-1]} {twice!r} is declared twice", key)
    # Outputs not given as a list are unknown: return nodes are then not judged by them.
    readable = raw_outputs is None or isinstance(raw_outputs, list)
    return RoutineSignature(definition_id, tuple(inputs), tuple(outputs) if readable else None)


def signature_of(data: Any) -> RoutineSignature | None:
    """The signature of a routine definition, ignoring its problems (the build reports them)."""
    if not isinstance(data, dict) or data.get("type") != "routine":
        return None
    found = routine_header(data, lambda *_: None)
    return found if found is not None and DEFINITION_ID.match(found.definition_id) else None


def _no_results(context: HandlerContext) -> Mapping[str, str]:
    return {}


def return_outputs(context: HandlerContext) -> Mapping[str, str]:
    """What a return node does: its rendered parameters are its results (the outputs)."""
    return dict(context.parameters)


def call_handler(signature: RoutineSignature, given: Iterable[str] = ()) -> Handler:
    """The handler a calling node runs: its parameters are the routine's inputs.

    Unchecked, it accepts the parameters ``given`` (the node's own), whatever they are.
    """
    if signature.inputs is None:
        parameters = tuple(Parameter(str(name)) for name in given)
    else:
        parameters = tuple(
            Parameter(i.name, required=i.required and i.default is None, default=i.default)
            for i in signature.inputs
        )
    return Handler(
        definition_id=signature.definition_id,
        execute=_no_results,
        parameters=parameters,
        results=signature.outputs or (),
        deferrable=True,
        behaviour=Behaviour.ROUTINE,
        description=f"Calls the routine {signature.definition_id}.",
    )


def return_handler(signature: RoutineSignature, given: Iterable[str] = ()) -> Handler:
    """The return node of this routine: its parameters are the routine's outputs, all given.

    With outputs unknown (not declared well, or not a routine) it accepts those ``given``.
    """
    if signature.outputs is None:
        parameters = tuple(Parameter(str(name)) for name in given)
    else:
        parameters = tuple(Parameter(name, required=True) for name in signature.outputs)
    return Handler(
        definition_id=RETURN_HANDLER,
        execute=return_outputs,
        parameters=parameters,
        results=signature.outputs or (),
        behaviour=Behaviour.RETURN,
        description=f"Returns the outputs of {signature.definition_id} to its caller.",
    )


# -- run time -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalledRoutine:
    """The routine an id names now: the tree of its current version, that version's id, and
    what that version declares."""

    tree: Tree
    version_id: int
    signature: RoutineSignature


RoutineLookup = Callable[[str], CalledRoutine | None]


@dataclass(frozen=True)
class CallRefused:
    """Why a call cannot start: recorded as an error of the calling task."""

    type: ErrorType
    summary: str


def call_key(caller_task_id: str) -> str:
    """The idempotency key of a child run's Root trigger: one child per calling task."""
    return f"call:{caller_task_id}"


def return_key(caller_task_id: str) -> str:
    """The idempotency key of the Complete a child's return writes: one per calling task."""
    return f"return:{caller_task_id}"


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
    for name in parameters:
        if signature.input(name) is None:
            declared = ", ".join(i.name for i in signature.inputs or ()) or "none"
            return CallRefused(
                ErrorType.NODE_PARAMETER,
                f"Routine {definition_id!r} has no input {name!r}, which node {node!r} gives"
                f" (its inputs: {declared})",
            )
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
    inputs = {i.name: i.default for i in routine.signature.inputs or () if i.default is not None}
    inputs.update(parameters)
    return {
        "tree_version_id": routine.version_id,
        "source_name": state.source.name,
        "source_group": state.source.group,
        "tree_name": routine.tree.key.name,
        "source_id": state.source.id,
        "status": RunStatus.STAGED.value,
        "inputs": inputs,
        "values": {},
        "source_data": dict(state.source.data),
        "parent_run_id": state.id,
        "parent_task_id": task_id,
        "call_depth": state.call_depth + 1,
        "created_at": now,
        "updated_at": now,
    }


def return_trigger(state: RunState, task: TaskState, now: float) -> dict[str, Any] | None:
    """The Complete of the caller's task a return writes; None if there is no caller to tell.

    Raises BadResults for an output XML cannot carry (a NUL in it), before anything changed.
    """
    results = write_results(task.results)
    if state.parent_task_id is None:
        return None  # the routine was started on its own: nobody waits for it
    for other in state.tasks:
        if other is task or other.status is not TaskStatus.CLOSED:
            continue
        if state.tree.nodes[other.node].handler.behaviour is Behaviour.RETURN:
            return None  # the first return of a run is the one the caller gets
    return new_trigger_row(
        TriggerAction.COMPLETE,
        run_id=state.parent_run_id,
        now=now,
        task_id=state.parent_task_id,
        results=results,
        idempotency_key=return_key(state.parent_task_id),
    )


__all__ = [
    "MAX_CALL_DEPTH",
    "CallRefused",
    "CalledRoutine",
    "RoutineInput",
    "RoutineLookup",
    "RoutineSignature",
    "call_handler",
    "call_key",
    "child_run",
    "prepare_call",
    "return_handler",
    "return_key",
    "return_outputs",
    "return_trigger",
    "routine_header",
    "signature_of",
    "unchecked",
]
