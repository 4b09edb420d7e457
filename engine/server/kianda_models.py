"""The JSON bodies of the instance and process API, as pydantic models for ``/openapi.json``.

Request bodies forbid keys they do not define (a misspelt ``FieldsMappings`` is refused with
422 naming it, not ignored). Field values are texts, numbers, booleans or null, bounded as the
engine bounds them (``engine.kianda.field_values``). Names are Kianda's where Kianda has them
(``processName``, ``instanceID``, ``TriggerField``, ``FieldsMappings`` with ``fieldname``,
``text``, ``value``; fields read as ``name``, ``text``, ``value``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import Problem
from engine.kianda.field_values import MAX_INTEGER, MAX_VALUE, FieldValue
from engine.kianda.instances import Instance
from engine.kianda.processes import Process
from engine.server.read_models import ErrorBody
from engine.statuses import RunStatus
from engine.tree.fields import MAX_FIELD_NAME, MAX_PROCESS_NAME, FieldSpec

MAX_FIELDS = 1000  # fields in one request
MAX_VERSION = 2**31 - 1  # versions are INTEGER columns

Text = Annotated[str, Field(max_length=MAX_VALUE)]
Integer = Annotated[int, Field(ge=-MAX_INTEGER, le=MAX_INTEGER)]
Number = Annotated[float, Field(allow_inf_nan=False)]
FieldScalar = Text | bool | Integer | Number | None
FieldName = Annotated[str, Field(min_length=1, max_length=MAX_FIELD_NAME)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION)]
_STRICT = ConfigDict(extra="forbid")


class FieldMappingIn(BaseModel):
    """One of Kianda's ``FieldsMappings``: a field's value and how it is shown."""

    model_config = _STRICT

    fieldname: FieldName
    text: Text | None = Field(default=None, description="how the value is shown (default: it)")
    value: FieldScalar = None


class CreateInstanceIn(BaseModel):
    """``POST /api/instances/create``'s body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "processName": "new-training-process",
                    "instanceID": "new-training-process",
                    "FieldsMappings": [
                        {"fieldname": "Reason", "text": "New employee", "value": "New employee"}
                    ],
                }
            ]
        },
    )

    processName: Annotated[str, Field(min_length=1, max_length=MAX_PROCESS_NAME)]
    instanceID: str | None = Field(
        default=None,
        max_length=MAX_PROCESS_NAME,
        description="Kianda's prefix of the new name: the process name, or left out",
    )
    TriggerField: FieldName | None = Field(
        default=None, description="a field of the process; the run sees it in source.data"
    )
    FieldsMappings: list[FieldMappingIn] = Field(default_factory=list, max_length=MAX_FIELDS)

    def fields(self) -> list[FieldValue]:
        return [FieldValue(m.fieldname, m.value, m.text) for m in self.FieldsMappings]


class CreatedOut(BaseModel):
    success: bool = Field(description="always true: failures are answered with an error status")
    instanceID: str = Field(description="the new instance's name, <process>-<n>")


class FieldIn(BaseModel):
    """A field to write: its name, value and (optionally) how the value is shown."""

    model_config = _STRICT

    name: FieldName
    text: Text | None = Field(default=None, description="how the value is shown (default: it)")
    value: FieldScalar = None


class FieldOut(BaseModel):
    name: str
    text: str
    value: FieldScalar

    @classmethod
    def of(cls, field: FieldValue) -> FieldOut:
        return cls(name=field.name, text=field.text or "", value=field.value)


class ReplaceIn(BaseModel):
    """``PUT``'s body: every settable field (those left out go back to their defaults), as
    ``fields`` (``name``, ``text``, ``value``: the shape fields are read in) or as Kianda's
    ``FieldsMappings`` (``fieldname``, ``text``, ``value``: the shape create takes); one of the
    two, not both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"version": 1, "fields": [{"name": "Course", "value": "Python"}]},
                {"version": 1, "FieldsMappings": [{"fieldname": "Course", "value": "Python"}]},
            ]
        },
    )

    version: Version | None = Field(
        default=None, description="the version this is based on (or send If-Match)"
    )
    fields: list[FieldIn] | None = Field(default=None, max_length=MAX_FIELDS)
    FieldsMappings: list[FieldMappingIn] | None = Field(default=None, max_length=MAX_FIELDS)

    @model_validator(mode="after")
    def _one_shape(self) -> ReplaceIn:
        if (self.fields is None) == (self.FieldsMappings is None):
            raise ValueError("give the fields as either 'fields' or 'FieldsMappings', not both")
        return self

    def values(self) -> list[FieldValue]:
        if self.FieldsMappings is not None:
            return [FieldValue(m.fieldname, m.value, m.text) for m in self.FieldsMappings]
        return [FieldValue(f.name, f.value, f.text) for f in self.fields or ()]


class PatchIn(ReplaceIn):
    """``PATCH``'s body: only the fields to change, in either shape; a version (or If-Match)
    is optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"fields": [{"name": "Days", "text": "2", "value": 2}]},
                {"FieldsMappings": [{"fieldname": "Days", "text": "2", "value": 2}]},
            ]
        },
    )

    @model_validator(mode="after")
    def _not_empty(self) -> PatchIn:
        if not self.values():
            raise ValueError("a PATCH changes at least one field")
        return self


class InstanceOut(BaseModel):
    instanceID: str
    processName: str
    status: RunStatus = Field(description="the status of the instance's run")
    version: int = Field(description="1 when created; each write adds one")
    fields: list[FieldOut]
    runId: int = Field(description="the instance's run (GET /api/runs/{id} for administrators)")
    createdAt: float
    updatedAt: float

    @classmethod
    def of(cls, instance: Instance) -> InstanceOut:
        return cls(
            instanceID=instance.name,
            processName=instance.process,
            status=instance.status,
            version=instance.version,
            fields=[FieldOut.of(field) for field in instance.fields],
            runId=instance.run_id,
            createdAt=instance.created_at,
            updatedAt=instance.updated_at,
        )


class FieldSpecOut(BaseModel):
    name: str
    label: str
    default: FieldScalar
    settable: bool = Field(description="whether callers may set it")
    description: str

    @classmethod
    def of(cls, spec: FieldSpec) -> FieldSpecOut:
        return cls(
            name=spec.name,
            label=spec.label,
            default=spec.default,
            settable=spec.settable,
            description=spec.description,
        )


class ProcessSummaryOut(BaseModel):
    processName: str
    sourceName: str
    sourceGroup: str
    treeName: str
    version: int = Field(description="the current version: what new instances start on")
    status: str = Field(description="Active, Inactive or Paused")
    description: str
    fields: list[FieldSpecOut]
    createdAt: float = Field(description="when the current version was stored")

    @classmethod
    def fields_of(cls, process: Process) -> dict[str, Any]:
        return {
            "processName": process.name,
            "sourceName": process.key.source_name,
            "sourceGroup": process.key.source_group,
            "treeName": process.key.name,
            "version": process.version,
            "status": process.status,
            "description": process.description,
            "fields": [FieldSpecOut.of(spec) for spec in process.fields],
            "createdAt": process.created_at,
        }

    @classmethod
    def of(cls, process: Process) -> ProcessSummaryOut:
        return cls(**cls.fields_of(process))


class VersionOut(BaseModel):
    version: int
    status: str
    digest: str = Field(description="SHA-256 of the definition")
    createdAt: float


class ProcessOut(ProcessSummaryOut):
    definition: dict[str, Any] = Field(description="the current version's tree, as data")
    versions: list[VersionOut] = Field(description="every version, oldest first")

    @classmethod
    def of(cls, process: Process) -> ProcessOut:
        return cls(**cls.detail(process))

    @classmethod
    def detail(cls, process: Process) -> dict[str, Any]:
        versions = [
            VersionOut(version=v.version, status=v.status, digest=v.digest, createdAt=v.created_at)
            for v in process.versions
        ]
        return {
            **cls.fields_of(process),
            "definition": dict(process.definition),
            "versions": versions,
        }


class DeployedOut(ProcessOut):
    created: bool = Field(description="false when the definition was the current version already")


class ProblemOut(BaseModel):
    file: str
    line: int | None
    node: str | None
    message: str

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(file=problem.file, line=problem.line, node=problem.node, message=problem.message)


class ProblemsBody(ErrorBody):
    """A refused definition: ``problems`` lists every problem, each where it is."""

    problems: list[ProblemOut] | None = Field(
        default=None, description="for an invalid tree definition: every problem found"
    )


__all__ = [
    "CreateInstanceIn",
    "CreatedOut",
    "DeployedOut",
    "FieldIn",
    "FieldMappingIn",
    "FieldOut",
    "FieldSpecOut",
    "InstanceOut",
    "PatchIn",
    "ProblemOut",
    "ProblemsBody",
    "ProcessOut",
    "ProcessSummaryOut",
    "ReplaceIn",
    "VersionOut",
]
