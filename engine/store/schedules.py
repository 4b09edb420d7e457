"""Schedules and the history of their firings: the source of truth the API and CLI read.

APScheduler's job store (its own table, ``schedule_jobs``) only remembers when each job runs
next; what a schedule is lives here, as plain columns and a JSON ``when``. ``revision`` goes up
with every change, and the scheduler's job id carries it, so the scheduler can tell a stale job
from the ids alone, without unpickling anything.

A firing row is unique per schedule and scheduled time, so two processes that fire the same
slot record it once (the run itself is made one by createStart's idempotency key, and an
instance by the same key on its Root trigger).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, RowMapping
from sqlmodel import Field, SQLModel

from engine.errors import ScheduleNotFound
from engine.records import Firing, Schedule, job_id
from engine.store.tables import JSONType

_KEYED = sa.text("creation_key IS NOT NULL")


class ScheduleRow(SQLModel, table=True):
    __tablename__ = "schedules"
    __table_args__ = (
        # A tree's schedule-creating node keys its creation by its task: a retry finds it.
        sa.Index(
            "ux_schedules_creation_key",
            "creation_key",
            unique=True,
            sqlite_where=_KEYED,
            postgresql_where=_KEYED,
        ),
        # Ids are never reused (SQLite would reuse the highest after a delete): the id is part
        # of every firing's idempotency key, and a new schedule must not meet an old one's runs.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str
    source_name: str  # a tree-named schedule's tree; "" for one that names a process
    source_group: str
    tree_name: str
    source_id: str = ""
    results: str | None = None  # the start's inputs, as results XML
    # A process-named schedule: each firing creates an instance of ``process`` with ``fields``
    # (name: value), over the current fields of ``instance`` if one is named.
    process: str | None = Field(default=None, max_length=150)
    fields: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    instance: str | None = Field(default=None, max_length=180)
    creator_id: str | None = Field(default=None, max_length=36)  # the instances' creator
    kind: str = Field(max_length=16)
    when: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    timezone: str = Field(max_length=64)
    enabled: bool = True
    grace_seconds: int
    coalesce: bool = True
    revision: int = 1
    done: bool = False  # a one-off that has fired (or was missed): nothing left to schedule
    created_by: str | None = None
    creation_key: str | None = None
    created_at: float
    updated_at: float


class ScheduleFiringRow(SQLModel, table=True):
    __tablename__ = "schedule_firings"
    __table_args__ = (sa.UniqueConstraint("schedule_id", "fire_time"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(index=True)
    fire_time: float  # the scheduled time (the last slot of a group)
    first_fire_time: float  # the first slot of a group of skipped slots; else fire_time
    slots: int = 1
    outcome: str = Field(max_length=16)
    reason: str = ""
    manual: bool = False  # run now
    trigger_id: int | None = None
    run_id: int | None = None
    instance: str | None = None  # the instance a process-named schedule's firing created
    engine: str | None = None
    recorded_at: float


schedules = SQLModel.metadata.tables["schedules"]
schedule_firings = SQLModel.metadata.tables["schedule_firings"]


def schedule_record(row: RowMapping | Mapping[str, Any]) -> Schedule:
    fields = Schedule.__dataclass_fields__
    return Schedule(**{k: row[k] for k in fields if k != "next_fire_time"})


def firing_record(row: RowMapping | Mapping[str, Any]) -> Firing:
    return Firing(**{k: row[k] for k in Firing.__dataclass_fields__})


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - an INSERT of one row always has one
        raise RuntimeError("the insert returned no primary key")
    return int(key[0])


def insert_schedule(connection: Connection, values: Mapping[str, Any]) -> int:
    return _inserted_id(connection.execute(sa.insert(schedules).values(**values)))


def read_schedule(connection: Connection, schedule_id: int) -> Schedule:
    row = (
        connection.execute(sa.select(schedules).where(schedules.c.id == schedule_id))
        .mappings()
        .first()
    )
    if row is None:
        raise ScheduleNotFound(schedule_id=schedule_id)
    return schedule_record(row)


def find_by_creation_key(connection: Connection, key: str) -> Schedule | None:
    row = (
        connection.execute(sa.select(schedules).where(schedules.c.creation_key == key))
        .mappings()
        .first()
    )
    return None if row is None else schedule_record(row)


def update_schedule(connection: Connection, schedule_id: int, values: Mapping[str, Any]) -> None:
    """Write ``values`` and bump the revision; ScheduleNotFound if it is gone."""
    result = connection.execute(
        sa.update(schedules)
        .where(schedules.c.id == schedule_id)
        .values(**values, revision=schedules.c.revision + 1)
    )
    if result.rowcount == 0:
        raise ScheduleNotFound(schedule_id=schedule_id)


def mark_done(connection: Connection, schedule_id: int, *, revision: int, now: float) -> None:
    """A one-off has had its slot; the revision goes up so its job is not put back."""
    connection.execute(
        sa.update(schedules)
        .where(schedules.c.id == schedule_id, schedules.c.revision == revision)
        .values(done=True, revision=revision + 1, updated_at=now)
    )


def delete_schedule(connection: Connection, schedule_id: int) -> None:
    connection.execute(
        sa.delete(schedule_firings).where(schedule_firings.c.schedule_id == schedule_id)
    )
    result = connection.execute(sa.delete(schedules).where(schedules.c.id == schedule_id))
    if result.rowcount == 0:
        raise ScheduleNotFound(schedule_id=schedule_id)


def list_schedules(connection: Connection, *, limit: int, offset: int) -> list[Schedule]:
    query = sa.select(schedules).order_by(schedules.c.id).limit(limit).offset(offset)
    return [schedule_record(row) for row in connection.execute(query).mappings()]


def count_schedules(connection: Connection) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(schedules)).scalar_one())


def active_job_ids(connection: Connection) -> dict[str, int]:
    """The job id each schedule that should be scheduled now has, by job id: its schedule id."""
    query = sa.select(schedules.c.id, schedules.c.revision).where(
        schedules.c.enabled.is_(True), schedules.c.done.is_(False)
    )
    return {job_id(row.id, row.revision): row.id for row in connection.execute(query)}


def insert_firing(connection: Connection, values: Mapping[str, Any]) -> int:
    return _inserted_id(connection.execute(sa.insert(schedule_firings).values(**values)))


def list_firings(
    connection: Connection, schedule_id: int, *, limit: int, offset: int
) -> list[Firing]:
    """Newest scheduled time first."""
    query = (
        sa.select(schedule_firings)
        .where(schedule_firings.c.schedule_id == schedule_id)
        .order_by(schedule_firings.c.fire_time.desc(), schedule_firings.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [firing_record(row) for row in connection.execute(query).mappings()]


def count_firings(connection: Connection, schedule_id: int) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(schedule_firings)
        .where(schedule_firings.c.schedule_id == schedule_id)
    )
    return int(connection.execute(query).scalar_one())


__all__ = [
    "ScheduleFiringRow",
    "ScheduleRow",
    "active_job_ids",
    "count_firings",
    "count_schedules",
    "delete_schedule",
    "find_by_creation_key",
    "firing_record",
    "insert_firing",
    "insert_schedule",
    "list_firings",
    "list_schedules",
    "mark_done",
    "read_schedule",
    "schedule_firings",
    "schedule_record",
    "schedules",
    "update_schedule",
]
