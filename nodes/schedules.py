"""``system_schedule_create_v1``: a tree creates a scheduled task, as Kianda lets a process do.

The node's parameters are the fields of ``Engine.schedules.create`` as text (a node's
parameters are rendered templates): ``kind`` chooses the schedule and the fields it uses are
given, the others left empty. ``days`` is comma-separated (``mon,thu``); ``values`` is not
offered, ``inputs`` takes results XML. Instead of a tree (``source_name``, ``source_group``,
``tree_name``) the node may name a ``process``, whose instances each firing creates: ``fields``
is then a JSON object of name: value, and ``instance`` an instance whose fields are copied.

The creation is keyed by the task id, so a retry of the node (handlers run at least once) finds
the schedule the first attempt created instead of creating a second. A refused field fails the
node with the engine's message, naming it.

It is a ``system_`` node because it asks the engine itself for something, as the join and the
wait do, rather than calling another system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from engine.errors import BadRequest
from engine.handlers.handler import Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl
from engine.json_input import parse_json
from engine.schedule.kinds import Kind, Unit

_WHEN_TEXT = ("at", "time", "day", "cron", "start", "end", "unit")
_FLAGS = ("true", "false")


def _flag(context: HandlerContext, name: str) -> bool:
    return context.parameters[name] == "true"


def _whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadRequest(field=name, reason=f"expected a whole number, got {text!r}") from None


def _when(parameters: Mapping[str, str]) -> dict[str, Any]:
    when: dict[str, Any] = {"kind": parameters["kind"]}
    for name in _WHEN_TEXT:
        if parameters.get(name):
            when[name] = parameters[name]
    if parameters.get("every"):
        when["every"] = _whole("when.every", parameters["every"])
    if parameters.get("days"):
        when["days"] = [day.strip() for day in parameters["days"].split(",") if day.strip()]
    return when


def _fields(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    fields = parse_json(text, field="fields")
    if not isinstance(fields, dict):
        raise BadRequest(field="fields", reason="expected a JSON object of name: value")
    return fields


def _create_schedule(context: HandlerContext) -> Mapping[str, str]:
    parameters = context.parameters
    receipt = context.triggers.create_schedule(
        creation_key=f"task:{context.task_id}",
        name=parameters["name"],
        source_name=parameters.get("source_name", ""),
        source_group=parameters.get("source_group", ""),
        tree_name=parameters.get("tree_name", ""),
        process=parameters.get("process") or None,
        fields=_fields(parameters.get("fields", "")),
        instance=parameters.get("instance") or None,
        source_id=parameters.get("source_id", ""),
        results=parameters.get("inputs") or None,
        when=_when(parameters),
        timezone=parameters.get("timezone") or "UTC",
        grace_seconds=_whole("grace_seconds", parameters.get("grace_seconds") or "300"),
        coalesce=_flag(context, "coalesce"),
        enabled=_flag(context, "enabled"),
        created_by=f"run {context.run_id}",
    )
    upcoming = receipt.next_fire_time
    return {
        "schedule_id": str(receipt.schedule_id),
        "next_fire_time": ""
        if upcoming is None
        else datetime.fromtimestamp(upcoming, UTC).isoformat(),
    }


SCHEDULE_CREATE = Handler(
    definition_id="system_schedule_create_v1",
    execute=_create_schedule,
    parameters=(
        Parameter("name", required=True, description="the scheduled task's name"),
        Parameter("source_name", default="", description="the tree it starts: its source"),
        Parameter("source_group", default=""),
        Parameter("tree_name", default=""),
        Parameter("process", default="", description="instead of a tree: a process"),
        Parameter("fields", default="", description="a process's fields, a JSON object"),
        Parameter("instance", default="", description="an instance whose fields are copied"),
        Parameter("source_id", default=""),
        Parameter("inputs", default="", description="results XML the runs start with"),
        Parameter("kind", required=True, menu=tuple(kind.value for kind in Kind)),
        Parameter("at", default="", description="once: the ISO 8601 date-time"),
        Parameter("every", default="", description="interval: how many units"),
        Parameter("unit", default="", menu=("", *(unit.value for unit in Unit))),
        Parameter("time", default="", description="weekdays, weekly, monthly: HH:MM"),
        Parameter("days", default="", description="weekly: days, comma-separated (mon,thu)"),
        Parameter("day", default="", description="monthly: 1 to 31, or last"),
        Parameter("cron", default="", description="cron: 5 fields, or 6 with seconds first"),
        Parameter("start", default="", description="recurring: not before this date-time"),
        Parameter("end", default="", description="recurring: not after this date-time"),
        Parameter("timezone", default="UTC", description="an IANA time zone"),
        Parameter("grace_seconds", default="300", description="how late a firing may start"),
        Parameter("coalesce", default="true", menu=_FLAGS),
        Parameter("enabled", default="true", menu=_FLAGS),
    ),
    results=("schedule_id", "next_fire_time"),
    description="Creates a scheduled task that starts a tree, or creates an instance of a "
    "process, at set times.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [SCHEDULE_CREATE]
