"""Routines at load time: what a routine declares, and the handlers its callers and return run.

A routine file adds ``type: routine``, a ``definition_id`` and its ``inputs`` and ``outputs``
(README, Routines). A node whose handler is that id calls it: the loader gives the node a handler
whose parameters are the routine's inputs (:func:`call_handler`), and the routine's return node
one whose parameters are its outputs (:func:`return_handler`). What happens when a call runs is
``engine.run.routines``'s.

When is a routine id checked? At load, a caller naming an id that is neither a handler nor a
known routine is refused like any unknown handler (a typo is caught before anything runs), and
its parameters must be the routine's inputs. At run time the id is looked up again (the routine
may since have been made Inactive, or a newer version may provide another id). A stored tree
version is rebuilt without these load-time checks (:func:`unchecked`): it was valid when loaded,
and what changed since is the run-time check's to report, at the node that calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.handlers.builtin import RETURN_HANDLER
from engine.handlers.handler import Behaviour, Handler, HandlerContext, Parameter

if TYPE_CHECKING:
    from engine.tree.model import Tree

ROUTINE_KEYS = ("definition_id", "inputs", "outputs")
# Kinetic accepts any lower_snake_case definition id for a routine (real exports call
# routine_approval and routine_send_email_template); only handlers must end in a version (_vN).
ROUTINE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
INPUT_KEYS = frozenset({"name", "required", "default", "description"})

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
    if not isinstance(definition_id, str) or not ROUTINE_ID.match(definition_id):
        report(
            f"a routine needs a 'definition_id' in lower_snake_case such as routine_greet_v1"
            f" or routine_approval, not {definition_id!r}",
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
    return found if found is not None and ROUTINE_ID.match(found.definition_id) else None


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


@dataclass(frozen=True)
class CalledRoutine:
    """The routine an id names now: the tree of its current version, that version's id, and
    what that version declares."""

    tree: Tree
    version_id: int
    signature: RoutineSignature


__all__ = [
    "ROUTINE_ID",
    "CalledRoutine",
    "RoutineInput",
    "RoutineSignature",
    "call_handler",
    "return_handler",
    "return_outputs",
    "routine_header",
    "signature_of",
    "unchecked",
]
