"""``--json`` for the commands that list or show things: one JSON document on standard output.

Scripts read these instead of scraping tables, so the keys are part of the CLI's interface:
they are listed here and in the README ("The CLI in scripts"), new keys may be added, and none
is renamed or removed without a major version. Every timestamp is ISO 8601 in UTC
(``2026-12-01T13:45:00+00:00``), or null. A list command prints a JSON array, a show command a
JSON object; errors still go to standard error as one line with exit status 1.

- run (``runs list`` items): ``id, status, source_name, source_group, tree_name,
  tree_version, source_id, parent_run_id, created_at, updated_at``; ``runs show`` adds
  ``inputs, values, tasks, errors, children, open_tokens``.
- task: ``id, name, handler_id, status, loop_index, results, token, created_at, updated_at``.
- error (``errors list`` items): ``id, run_id, type, status, node, loop_index, summary,
  task_id, trigger_id, connector_to, created_at, resolution`` (null, or ``action, message,
  by, at, trigger_id``).
- child (a routine's run): ``run_id, task_id, tree_name, status``.
- schedule (``schedules list`` items): ``id, name, source_name, source_group, tree_name,
  process, instance, fields, source_id, results, when, timezone, enabled, grace_seconds,
  coalesce, next_fire_time, created_at, updated_at``; ``schedules show`` adds ``history``,
  a list of firings: ``id, fire_time, outcome, slots, run_id, instance, reason, manual``.
- user (``users list`` items): ``id, name, role, disabled, created_at``.
- ``validate``: ``{"trees": [{"file", "source", "group", "name", "version_digest",
  "nodes"}], "warnings": [...], "notes": [...], "problems": [{"file", "line", "node",
  "message", "rule"}]}`` (a warning and a note have a problem's keys; ``rule`` is the
  reference check's name, or null).
- handler (``handlers`` items): ``id, description, behaviour, deferrable, parameters`` (each
  ``name, required, default, menu, description``) and ``results``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from engine.errors import Problem
from engine.handlers.handler import Handler
from engine.records import Firing, Run, RunError, RunLink, Schedule, Task
from engine.tree.model import Tree

if TYPE_CHECKING:
    from engine.auth import User

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """``--json``: the command prints JSON (keys listed in ``engine.cli.output``) not a table."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON for scripts instead of a table (stable keys, see the README).",
    )(function)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on standard output (never through rich: no markup, no wrap)."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def timestamp(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "source_name": run.source_name,
        "source_group": run.source_group,
        "tree_name": run.tree_name,
        "tree_version": run.tree_version,
        "source_id": run.source_id,
        "parent_run_id": run.parent_run_id,
        "created_at": timestamp(run.created_at),
        "updated_at": timestamp(run.updated_at),
    }


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "handler_id": task.handler_id,
        "status": task.status.value,
        "loop_index": task.loop_index,
        "results": dict(task.results) if isinstance(task.results, Mapping) else task.results,
        "token": task.token,
        "created_at": timestamp(task.created_at),
        "updated_at": timestamp(task.updated_at),
    }


def error_json(error: RunError) -> dict[str, Any]:
    resolution = None
    if error.resolution_action is not None:
        resolution = {
            "action": error.resolution_action,
            "message": error.resolution_message,
            "by": error.resolved_by,
            "at": timestamp(error.resolved_at),
            "trigger_id": error.resolution_trigger_id,
        }
    return {
        "id": error.id,
        "run_id": error.run_id,
        "type": error.type,
        "status": error.status,
        "node": error.node,
        "loop_index": error.loop_index,
        "summary": error.summary,
        "task_id": error.task_id,
        "trigger_id": error.trigger_id,
        "connector_to": error.connector_to,
        "created_at": timestamp(error.created_at),
        "resolution": resolution,
    }


def child_json(child: RunLink) -> dict[str, Any]:
    return {
        "run_id": child.run_id,
        "task_id": child.task_id,
        "tree_name": child.tree_name,
        "status": child.status.value,
    }


def run_json(run: Run) -> dict[str, Any]:
    """A run with its tasks, errors, routine runs and open tokens (``runs show --json``)."""
    return {
        **run_summary(run),
        "inputs": dict(run.inputs),
        "values": dict(run.values),
        "tasks": [task_json(task) for task in run.tasks],
        "errors": [error_json(error) for error in run.errors],
        "children": [child_json(child) for child in run.children],
        "open_tokens": {task.name: task.token for task in run.tasks if task.token and
                        task.status.value == "Deferred"},
    }  # fmt: skip


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "name": schedule.name,
        "source_name": schedule.source_name,
        "source_group": schedule.source_group,
        "tree_name": schedule.tree_name,
        "process": schedule.process,
        "instance": schedule.instance,
        "fields": None if schedule.fields is None else dict(schedule.fields),
        "source_id": schedule.source_id,
        "results": schedule.results,
        "when": dict(schedule.when),
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "grace_seconds": schedule.grace_seconds,
        "coalesce": schedule.coalesce,
        "next_fire_time": timestamp(schedule.next_fire_time),
        "created_at": timestamp(schedule.created_at),
        "updated_at": timestamp(schedule.updated_at),
    }


def firing_json(firing: Firing) -> dict[str, Any]:
    return {
        "id": firing.id,
        "fire_time": timestamp(firing.fire_time),
        "outcome": firing.outcome,
        "slots": firing.slots,
        "run_id": firing.run_id,
        "instance": firing.instance,
        "reason": firing.reason,
        "manual": firing.manual,
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": timestamp(user.created_at),
    }


def tree_json(tree: Tree) -> dict[str, Any]:
    return {
        "file": tree.file,
        "source": tree.key.source_name,
        "group": tree.key.source_group,
        "name": tree.key.name,
        "version_digest": tree.digest,
        "nodes": len(tree.nodes),
    }


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "node": problem.node,
        "message": problem.message,
        "rule": problem.rule,
    }


def handler_json(handler: Handler) -> dict[str, Any]:
    return {
        "id": handler.definition_id,
        "description": handler.description,
        "behaviour": handler.behaviour.value,
        "deferrable": handler.deferrable,
        "parameters": [
            {
                "name": parameter.name,
                "required": parameter.required,
                "default": parameter.default,
                "menu": list(parameter.menu) if parameter.menu else None,
                "description": parameter.description,
            }
            for parameter in handler.parameters
        ],
        "results": list(handler.results),
    }


__all__ = [
    "error_json",
    "firing_json",
    "handler_json",
    "json_option",
    "print_json",
    "problem_json",
    "run_json",
    "run_summary",
    "schedule_json",
    "task_json",
    "timestamp",
    "tree_json",
    "user_json",
]
