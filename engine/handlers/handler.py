"""What a node handler declares and what it receives: the contract a plugin implements.

A handler is declarative first (definition id, parameters, result names, ``deferrable``) and
behaviour second (``execute``). It knows nothing of the database: it gets a
:class:`HandlerContext` with its rendered parameters and returns its results as a mapping of
strings. Whether the task then defers is the node's choice (``defers: true`` in the tree), which
is only allowed for a deferrable handler. :func:`check_contract` is applied to every handler when
it is registered (``engine.handlers.registry``), so a bad plugin fails when an engine starts.

This module is what plugin authors import (through ``from engine import Handler, ...``), so it
imports nothing but the standard library and the error hierarchy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from engine.errors import HandlerContractError

DEFINITION_ID = re.compile(r"^[a-z][a-z0-9_]*_v[0-9]+$")


class Behaviour(StrEnum):
    """How the runner treats a node, beyond calling its handler."""

    PLAIN = "plain"
    START = "start"  # the single entry of a tree
    JOIN = "join"  # fires once its incoming connectors satisfy its type
    JUNCTION = "junction"  # fires once every branch of its region has gone as far as it can
    WAIT = "wait"  # always defers; a trigger scheduled for later completes it
    ROUTINE = (
        "routine"  # calls a routine: defers until the child run returns (engine.tree.routines)
    )
    RETURN = "return"  # ends a routine: its parameters complete the caller's task
    LOOP_HEAD = "loop head"  # one Iteration trigger per element of its data source
    LOOP_TAIL = "loop tail"  # fires once when enough iterations of its head reached it


@dataclass(frozen=True)
class Parameter:
    """A parameter a handler accepts; ``menu`` restricts the values it may take."""

    name: str
    required: bool = False
    default: str | None = None
    menu: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class SourceInfo:
    """Who started the run: the source application and the record it ran for."""

    name: str
    group: str
    id: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerReceipt:
    """What creating a trigger from inside a handler gives back."""

    trigger_id: int
    run_id: int


@dataclass(frozen=True)
class ScheduleReceipt:
    """What creating a schedule from inside a handler gives back."""

    schedule_id: int
    next_fire_time: float | None


class TriggerGateway(Protocol):
    """What a handler may ask of the engine: a Complete or Update trigger, or a schedule."""

    def create_deferred(
        self,
        *,
        token: str,
        action: str,
        results: str | None,
        message: str | None,
        idempotency_key: str | None,
    ) -> TriggerReceipt: ...

    def create_schedule(self, *, creation_key: str, **fields: Any) -> ScheduleReceipt: ...


@dataclass(frozen=True, init=False)
class HandlerContext:
    """Everything a handler may know about the node it runs for.

    ``task_id`` is stable across retries of the same task, so a handler that calls another
    system should use it as that call's idempotency key: handlers run at least once.
    """

    parameters: Mapping[str, str]
    node_name: str
    task_id: str
    deferral_token: str | None
    run_id: int
    loop_index: str
    source: SourceInfo
    inputs: Mapping[str, str]
    logger: logging.Logger
    triggers: TriggerGateway

    def __init__(
        self,
        parameters: Mapping[str, str],
        node_name: str,
        task_id: str,
        deferral_token: str | None,
        run_id: int,
        loop_index: str,
        source: SourceInfo,
        inputs: Mapping[str, str],
        logger: logging.Logger,
        triggers: TriggerGateway,
    ) -> None:
        # One is made for every node executed. A frozen dataclass's own __init__ sets each field
        # through object.__setattr__, three times the cost of filling the instance's dict at once.
        self.__dict__.update(
            parameters=parameters,
            node_name=node_name,
            task_id=task_id,
            deferral_token=deferral_token,
            run_id=run_id,
            loop_index=loop_index,
            source=source,
            inputs=inputs,
            logger=logger,
            triggers=triggers,
        )


Execute = Callable[[HandlerContext], Mapping[str, str] | None]


@dataclass(frozen=True)
class Handler:
    """A node handler as a plugin declares it."""

    definition_id: str
    execute: Execute
    parameters: tuple[Parameter, ...] = ()
    results: tuple[str, ...] = ()
    deferrable: bool = False
    behaviour: Behaviour = Behaviour.PLAIN
    description: str = ""
    # The codes it fails with (raising ``engine.errors.HandlerFailed(..., code=...)``): what a
    # node's retry policy may name in ``on`` besides exception class names (engine.tree.retry).
    error_codes: tuple[str, ...] = ()

    def parameter(self, name: str) -> Parameter | None:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


def check_contract(handler: object, *, plugin: str) -> Handler:
    """Return ``handler`` if it satisfies the contract, else raise naming what is wrong."""
    name = getattr(handler, "definition_id", repr(handler))
    if not isinstance(handler, Handler):
        raise HandlerContractError(
            handler=str(name), reason=f"plugin {plugin!r} returned {type(handler).__name__}"
        )
    if not DEFINITION_ID.match(handler.definition_id):
        raise HandlerContractError(
            handler=handler.definition_id,
            reason="a definition id is lower_snake_case ending in a version such as _v1",
        )
    if not callable(handler.execute):
        raise HandlerContractError(handler=handler.definition_id, reason="execute is not callable")
    names = [p.name for p in handler.parameters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HandlerContractError(
            handler=handler.definition_id, reason=f"parameters declared twice: {duplicates}"
        )
    for parameter in handler.parameters:
        if (
            parameter.menu
            and parameter.default is not None
            and parameter.default not in parameter.menu
        ):
            raise HandlerContractError(
                handler=handler.definition_id,
                reason=f"default {parameter.default!r} of {parameter.name!r} is not in its menu",
            )
    return handler


__all__ = [
    "Behaviour",
    "Execute",
    "Handler",
    "HandlerContext",
    "Parameter",
    "ScheduleReceipt",
    "SourceInfo",
    "TriggerGateway",
    "TriggerReceipt",
    "check_contract",
]
