"""The Tasks API's JSON bodies (scheduled tasks), as pydantic models for ``/openapi.json``.

The models check types and sizes only; what a schedule may be (a known tree, a cron
expression that parses, a one-off in the future...) is the engine's check, answered 400
naming the field. Times the engine computes are UNIX seconds, as everywhere in the API, with
the ISO 8601 text beside them where a person reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.records import Firing, Schedule
from engine.schedule.firing import Outcome
from engine.schedule.kinds import Kind, Unit
from engine.tree.fields import MAX_PROCESS_NAME

MAX_TEXT = 4096
MAX_RESULTS = 4 * 1024 * 1024


class WhenBody(BaseModel):
    """When a task fires: ``kind`` and the fields that kind uses (the others left out)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="once, interval, weekdays, weekly, monthly or cron")
    at: str | None = Field(None, max_length=64, description="once: an ISO 8601 date-time")
    every: int | None = Field(None, description="interval: how many units (at least 1)")
    unit: Unit | None = Field(None, description="interval: seconds ... months")
    time: str | None = Field(
        None, max_length=16, description="weekdays, weekly, monthly: HH:MM (default 00:00)"
    )
    days: list[str] | None = Field(None, max_length=7, description="weekly: mon ... sun")
    day: int | str | None = Field(None, description="monthly: 1 to 31, or 'last'")
    cron: str | None = Field(
        None, max_length=256, description="cron: 5 fields, or 6 with seconds first"
    )
    start: str | None = Field(None, max_length=64, description="recurring: not before")
    end: str | None = Field(None, max_length=64, description="recurring: not after")

    def as_engine(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


FieldValue = str | int | float | bool | None
FIELDS_DESCRIPTION = (
    "a process's task: the new instances' fields as name: value (text, number, true/false "
    "or null), over the named instance's if one is given"
)
INSTANCE_DESCRIPTION = (
    "a process's task: an instance of the process whose current fields each new instance "
    "starts from"
)


class _TaskFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A task names its process either by its tree or by its Kianda process name.
    source_name: str = Field("", max_length=MAX_TEXT, description="the tree's source")
    source_group: str = Field("", max_length=MAX_TEXT, description="the tree's source group")
    tree_name: str = Field("", max_length=MAX_TEXT, description="the tree's name")
    processName: str | None = Field(
        None,
        max_length=MAX_PROCESS_NAME,
        description="instead of the tree: a process, each firing creating an instance of it",
    )
    fields: dict[str, FieldValue] | None = Field(None, description=FIELDS_DESCRIPTION)
    instance: str | None = Field(None, max_length=MAX_TEXT, description=INSTANCE_DESCRIPTION)


class TaskIn(_TaskFields):
    """``POST /api/tasks`` and ``PUT /api/tasks/{id}`` (which replaces every field).

    Name a tree (``source_name``, ``source_group``, ``tree_name``) or a process
    (``processName``, with ``fields`` and optionally ``instance``), not both.
    """

    name: str = Field(max_length=200)
    source_id: str = Field("", max_length=MAX_TEXT, description="the runs' source id")
    results: str | None = Field(
        None, max_length=MAX_RESULTS, description="the runs' inputs as results XML"
    )
    values: dict[str, str] | None = Field(
        None, description="the runs' inputs as name: value (instead of results)"
    )
    when: WhenBody
    timezone: str = Field("UTC", max_length=64, description="an IANA time zone name")
    enabled: bool = True
    grace_seconds: int = Field(300, description="how late a firing may still start its run")
    coalesce: bool = Field(True, description="a backlog of due firings starts one run")

    def as_engine(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"when", "processName"})
        return fields | {"process": self.processName, "when": self.when.as_engine()}


class TaskPatch(BaseModel):
    """``PATCH /api/tasks/{id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    source_name: str | None = Field(None, max_length=MAX_TEXT)
    source_group: str | None = Field(None, max_length=MAX_TEXT)
    tree_name: str | None = Field(None, max_length=MAX_TEXT)
    processName: str | None = Field(
        None,
        max_length=MAX_PROCESS_NAME,
        description="a process instead of the tree (null: back to naming a tree)",
    )
    fields: dict[str, FieldValue] | None = Field(None, description=FIELDS_DESCRIPTION)
    instance: str | None = Field(None, max_length=MAX_TEXT, description=INSTANCE_DESCRIPTION)
    source_id: str | None = Field(None, max_length=MAX_TEXT)
    results: str | None = Field(None, max_length=MAX_RESULTS)
    values: dict[str, str] | None = None
    when: WhenBody | None = None
    timezone: str | None = Field(None, max_length=64)
    enabled: bool | None = None
    grace_seconds: int | None = None
    coalesce: bool | None = None

    def as_engine(self) -> dict[str, Any]:
        fields = self.model_dump(exclude_unset=True, exclude={"when", "processName"})
        if "processName" in self.model_fields_set:
            fields["process"] = self.processName
        if self.when is not None:
            fields["when"] = self.when.as_engine()
        return fields


def _iso(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


class TaskOut(BaseModel):
    """A scheduled task."""

    id: int
    name: str
    source_name: str
    source_group: str
    tree_name: str
    processName: str | None = Field(
        description="the process whose instances it creates; null when it names a tree"
    )
    fields: dict[str, Any] | None = Field(description="a process's task: the fields it sets")
    instance: str | None = Field(description="a process's task: the instance it copies")
    source_id: str
    results: str | None = Field(description="the runs' inputs as results XML")
    when: dict[str, Any] = Field(description="as given, checked (an interval's start filled in)")
    timezone: str
    enabled: bool
    grace_seconds: int
    coalesce: bool
    done: bool = Field(description="a one-off that has fired: nothing left to schedule")
    revision: int = Field(description="goes up with every change")
    next_fire_time: float | None = Field(description="UNIX seconds; null if nothing is due")
    next_fire_at: str | None = Field(description="the same, ISO 8601 in UTC")
    created_by: str | None
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, schedule: Schedule) -> TaskOut:
        return cls(
            id=schedule.id,
            name=schedule.name,
            source_name=schedule.source_name,
            source_group=schedule.source_group,
            tree_name=schedule.tree_name,
            processName=schedule.process,
            fields=None if schedule.fields is None else dict(schedule.fields),
            instance=schedule.instance,
            source_id=schedule.source_id,
            results=schedule.results,
            when=dict(schedule.when),
            timezone=schedule.timezone,
            enabled=schedule.enabled,
            grace_seconds=schedule.grace_seconds,
            coalesce=schedule.coalesce,
            done=schedule.done,
            revision=schedule.revision,
            next_fire_time=schedule.next_fire_time,
            next_fire_at=_iso(schedule.next_fire_time),
            created_by=schedule.created_by,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="the path of the next page; null on the last")


class FiringOut(BaseModel):
    """A firing: a run started, or a group of slots skipped and why."""

    id: int
    task_id: int
    outcome: Outcome = Field(description="Started, Missed, Coalesced or Failed")
    fire_time: float = Field(description="the scheduled time (the last slot of a group)")
    fire_at: str = Field(description="the same, ISO 8601 in UTC")
    first_fire_time: float = Field(description="the first slot of a group; else fire_time")
    slots: int = Field(description="how many slots this entry stands for")
    reason: str
    manual: bool = Field(description="fired by run now")
    trigger_id: int | None
    run_id: int | None
    instance: str | None = Field(description="the instance a process's task created")
    engine: str | None = Field(description="the engine process that recorded it")
    recorded_at: float

    @classmethod
    def of(cls, firing: Firing) -> FiringOut:
        return cls(
            id=firing.id,
            task_id=firing.schedule_id,
            outcome=Outcome(firing.outcome),
            fire_time=firing.fire_time,
            fire_at=str(_iso(firing.fire_time)),
            first_fire_time=firing.first_fire_time,
            slots=firing.slots,
            reason=firing.reason,
            manual=firing.manual,
            trigger_id=firing.trigger_id,
            run_id=firing.run_id,
            instance=firing.instance,
            engine=firing.engine,
            recorded_at=firing.recorded_at,
        )


class FiringPage(BaseModel):
    items: list[FiringOut]
    total: int
    limit: int
    offset: int
    next: str | None


__all__ = ["FiringOut", "FiringPage", "TaskIn", "TaskOut", "TaskPage", "TaskPatch", "WhenBody"]
