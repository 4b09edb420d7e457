"""Utility nodes: echo a value, defer until resumed, and resume another deferred task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.handlers.handler import Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl


def _echo(context: HandlerContext) -> Mapping[str, str]:
    return {"output": context.parameters["input"]}


def _defer(context: HandlerContext) -> Mapping[str, str]:
    # Kinetic's parameter is deferral_value; deferred_value (treeflow's first name) is kept as
    # an alias. The result keeps its name either way: deferred_value.
    given = context.parameters.get("deferral_value", "")
    return {
        "deferral_token": context.deferral_token or "",
        "deferred_value": given or context.parameters.get("deferred_value", ""),
    }


def _create_trigger(context: HandlerContext) -> Mapping[str, str]:
    # The task id keys the trigger, so running this handler again after a crash returns the
    # trigger the first attempt created instead of resuming the other task twice.
    receipt = context.triggers.create_deferred(
        token=context.parameters["deferral_token"],
        action=context.parameters["action_type"],
        results=context.parameters.get("deferred_variables") or None,
        message=context.parameters.get("message") or None,
        idempotency_key=f"task:{context.task_id}",
    )
    return {"trigger_id": str(receipt.trigger_id), "run_id": str(receipt.run_id)}


ECHO = Handler(
    definition_id="utilities_echo_v1",
    execute=_echo,
    parameters=(Parameter("input", required=True),),
    results=("output",),
    description="Returns its input as the result 'output'.",
)

DEFER = Handler(
    definition_id="utilities_defer_v1",
    execute=_defer,
    parameters=(
        Parameter("deferral_value", default="", description="Kinetic's name: the value to keep"),
        Parameter("deferred_value", default="", description="alias of deferral_value"),
    ),
    results=("deferral_token", "deferred_value"),
    deferrable=True,
    description=(
        "Defers at once; createDeferred with its token resumes it. Its result deferred_value "
        "is the parameter deferral_value (or its alias deferred_value)."
    ),
)

CREATE_TRIGGER = Handler(
    definition_id="utilities_create_trigger_v1",
    execute=_create_trigger,
    parameters=(
        Parameter("action_type", required=True, menu=("Update", "Complete")),
        Parameter("deferral_token", required=True),
        Parameter("deferred_variables", default="", description="results XML for the task"),
        Parameter("message", default=""),
    ),
    results=("trigger_id", "run_id"),
    description="Completes or updates another deferred task, as createDeferred does.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [ECHO, DEFER, CREATE_TRIGGER]
