"""The tables of the instance API: process names, instances, and each process's instance counter.

Kept beside :mod:`engine.store.tables` (same metadata, created by the same ``create_schema``)
because they belong to one feature. ``processes`` maps a process name to the one tree it names:
the primary key and the unique tree key make "two trees with one process name" impossible in
the database itself, across every engine process sharing it. An instance is a run (its fields'
values are the run's ``values``); its ``fields`` column keeps each field's text and value, and
``version`` is what optimistic concurrency compares. Who created an instance is its run's row
in ``run_creators``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.store.tables import JSONType


class ProcessRow(SQLModel, table=True):
    __tablename__ = "processes"
    __table_args__ = (sa.UniqueConstraint("source_name", "source_group", "tree_name"),)

    name: str = Field(primary_key=True, max_length=150)
    source_name: str
    source_group: str
    tree_name: str


class InstanceRow(SQLModel, table=True):
    __tablename__ = "instances"
    __table_args__ = (sa.UniqueConstraint("process", "number"),)

    name: str = Field(primary_key=True, max_length=180)
    process: str = Field(max_length=150)
    number: int
    run_id: int = Field(foreign_key="runs.id", unique=True)
    version: int
    fields: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: float
    updated_at: float


class InstanceCounterRow(SQLModel, table=True):
    """The last instance number of each process: one upsert numbers a new instance."""

    __tablename__ = "instance_counters"

    process: str = Field(primary_key=True, max_length=150)
    last: int


processes = SQLModel.metadata.tables["processes"]
instances = SQLModel.metadata.tables["instances"]
instance_counters = SQLModel.metadata.tables["instance_counters"]

__all__ = [
    "InstanceCounterRow",
    "InstanceRow",
    "ProcessRow",
    "instance_counters",
    "instances",
    "processes",
]
