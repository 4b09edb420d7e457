"""The inspection API's JSON bodies, as pydantic models so that ``/openapi.json`` states them.

Each model is built from the engine's read model (:mod:`engine.records`) by a ``of`` class
method; the routes never build a body by hand. Times are UNIX seconds (floats), as the engine
stores them; statuses are the engine's enums, so the document lists their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from engine.records import Run, RunError, RunLink, Task, Trigger
from engine.statuses import RunStatus, TaskStatus, TriggerAction, TriggerStatus


class ErrorBody(BaseModel):
    """What every error of the JSON API looks like."""

    status: int = Field(description="the HTTP status, repeated")
    message: str = Field(description="what was wrong, naming the offending input")


class ErrorOut(BaseModel):
    """An error recorded on a run, with its resolution once one is accepted."""

    id: str
    run_id: int
    type: str = Field(description="e.g. Handler Error, Node Parameter Error, Trigger Error")
    status: str = Field(description="Active, or Handled once its resolution has been applied")
    node: str = Field(description="the node it happened at; empty for a trigger's own error")
    loop_index: str
    summary: str
    text: str = Field(description="the whole message, with the trace when there is one")
    task_id: str | None
    trigger_id: int | None
    connector_to: str | None = Field(description="for a Connector Error: the connector's target")
    created_at: float
    resolution_action: str | None = Field(
        description="the action it was resolved with (e.g. Retry Task, Skip Task); null until then"
    )
    resolution_message: str | None = Field(description="why, as the resolver wrote it")
    resolved_by: str | None = Field(description="who resolved it")
    resolved_at: float | None = Field(description="when the resolution was applied")
    resolution_trigger_id: int | None = Field(
        description="the Resolve trigger that applies (or applied) the resolution"
    )

    @classmethod
    def of(cls, error: RunError, run_id: int | None = None) -> ErrorOut:
        """``run_id`` defaults to the error's own (every error the store reads carries it)."""
        run_id = error.run_id if run_id is None else run_id
        if run_id is None:
            raise ValueError(f"the error {error.id!r} was read without its run id")
        return cls(
            id=error.id,
            run_id=run_id,
            type=error.type,
            status=error.status,
            node=error.node,
            loop_index=error.loop_index,
            summary=error.summary,
            text=error.text,
            task_id=error.task_id,
            trigger_id=error.trigger_id,
            connector_to=error.connector_to,
            created_at=error.created_at,
            resolution_action=error.resolution_action,
            resolution_message=error.resolution_message,
            resolved_by=error.resolved_by,
            resolved_at=error.resolved_at,
            resolution_trigger_id=error.resolution_trigger_id,
        )


class ResolveIn(BaseModel):
    """``POST /api/errors/{id}/resolve``'s body."""

    action: str = Field(
        description="one the error's type allows, as in Kinetic Task: Retry Task, Skip Task or "
        "Do Nothing for a node's error, Continue Branch or Cancel Branch for a Connector Error, "
        "Do Nothing for a Trigger Error"
    )
    message: str | None = Field(default=None, description="why, or what was fixed")


class ResolutionOut(BaseModel):
    """An accepted resolution: the Resolve trigger a worker applies it with."""

    id: int = Field(description="the Resolve trigger's id (see GET /api/triggers/{id})")
    run_id: int
    action: TriggerAction
    status: TriggerStatus

    @classmethod
    def of(cls, trigger: Trigger) -> ResolutionOut:
        return cls(
            id=trigger.id, run_id=trigger.run_id, action=trigger.action, status=trigger.status
        )


class TaskOut(BaseModel):
    """One node executed in a run (per loop index)."""

    id: str
    name: str = Field(description="the node's name")
    handler_id: str
    status: TaskStatus
    results: dict[str, Any]
    token: str | None = Field(description="the deferral token while the task can be resumed")
    loop_index: str
    created_at: float
    updated_at: float
    attempt: int = Field(
        default=1, description="which call of its handler its status is of (its retry policy)"
    )
    last_error: str | None = Field(
        default=None, description="what the last failed call raised, when one failed"
    )

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id,
            name=task.name,
            handler_id=task.handler_id,
            status=task.status,
            results=dict(task.results),
            token=task.token,
            loop_index=task.loop_index,
            created_at=task.created_at,
            updated_at=task.updated_at,
            attempt=task.attempt,
            last_error=task.last_error,
        )


class ChildRunOut(BaseModel):
    """A routine run one of this run's tasks called."""

    run_id: int = Field(description="the routine's run (see GET /api/runs/{id})")
    task_id: str = Field(description="the task of this run that called it, and waits for it")
    tree_name: str = Field(description="the routine's name")
    status: RunStatus

    @classmethod
    def of(cls, link: RunLink) -> ChildRunOut:
        return cls(
            run_id=link.run_id, task_id=link.task_id, tree_name=link.tree_name, status=link.status
        )


class RunSummary(BaseModel):
    """A run as lists show it: without inputs, values, tasks and errors."""

    id: int
    status: RunStatus
    source_name: str
    source_group: str
    tree_name: str
    tree_version: int = Field(description="the tree version the run is pinned to")
    source_id: str
    created_at: float
    updated_at: float
    parent_run_id: int | None = Field(
        description="for a routine's run: the run whose task called it; null otherwise"
    )
    parent_task_id: str | None = Field(description="for a routine's run: the task that called it")
    again_of: int | None = Field(
        default=None, description="Run Again: the run this one is a new run of; null otherwise"
    )

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        return cls(**_summary(run))


class RunOut(RunSummary):
    """A run with its inputs, values, tasks (in the order they were created) and errors."""

    inputs: dict[str, Any]
    values: dict[str, Any]
    tasks: list[TaskOut]
    errors: list[ErrorOut]
    children: list[ChildRunOut] = Field(
        description="the routine runs this run's tasks called, oldest first"
    )

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            **_summary(run),
            inputs=dict(run.inputs),
            values=dict(run.values),
            tasks=[TaskOut.of(task) for task in run.tasks],
            errors=[ErrorOut.of(error, run.id) for error in run.errors],
            children=[ChildRunOut.of(link) for link in run.children],
        )


def _summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "source_name": run.source_name,
        "source_group": run.source_group,
        "tree_name": run.tree_name,
        "tree_version": run.tree_version,
        "source_id": run.source_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "parent_run_id": run.parent_run_id,
        "parent_task_id": run.parent_task_id,
        "again_of": run.again_of,
    }


class RunTreeOut(BaseModel):
    """The tree version a run runs on, which may be older than the tree's current version."""

    run_id: int
    source_name: str
    source_group: str
    tree_name: str
    tree_version: int
    definition: dict[str, Any] = Field(
        description="the version's definition, as loaded (the YAML file's data)"
    )

    @classmethod
    def of(cls, run: Run, definition: Mapping[str, Any]) -> RunTreeOut:
        return cls(
            run_id=run.id,
            source_name=run.source_name,
            source_group=run.source_group,
            tree_name=run.tree_name,
            tree_version=run.tree_version,
            definition=dict(definition),
        )


class TriggerOut(BaseModel):
    """A trigger: what createStart, createDeferred (and the engine itself) queued."""

    id: int
    action: TriggerAction
    status: TriggerStatus
    run_id: int
    task_id: str | None = Field(description="the task a Complete or Update resumes")
    token: str | None
    message: str | None
    created_at: float
    closed_at: float | None = Field(description="when an engine closed it (Closed or Failed)")
    engine: str | None = Field(description="the engine process that closed it")
    error: str | None = Field(description="why it was closed as Failed")
    requested_by: str | None = Field(
        default=None, description="who asked for a Cancel or Manual trigger"
    )
    node: str | None = Field(default=None, description="where a Manual trigger resumes its run")

    @classmethod
    def of(cls, trigger: Trigger) -> TriggerOut:
        return cls(
            id=trigger.id,
            action=trigger.action,
            status=trigger.status,
            run_id=trigger.run_id,
            task_id=trigger.task_id,
            token=trigger.token,
            message=trigger.message,
            created_at=trigger.created_at,
            closed_at=trigger.closed_at,
            engine=trigger.engine,
            error=trigger.error,
            requested_by=trigger.requested_by,
            node=trigger.node,
        )


class Page(BaseModel):
    """Paging of a list: ``next`` is the URL of the following page, null on the last."""

    total: int = Field(description="how many items match the filters, over all pages")
    limit: int
    offset: int
    next: str | None


class RunPage(Page):
    items: list[RunSummary]


class ErrorPage(Page):
    items: list[ErrorOut]


__all__ = [
    "ChildRunOut",
    "ErrorBody",
    "ErrorOut",
    "ErrorPage",
    "Page",
    "ResolutionOut",
    "ResolveIn",
    "RunOut",
    "RunPage",
    "RunSummary",
    "RunTreeOut",
    "TaskOut",
    "TriggerOut",
]
