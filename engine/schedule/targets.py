"""What a schedule starts: a tree (through createStart), or an instance of a process.

A schedule names either a tree (``source_name``, ``source_group``, ``tree_name``, with
``source_id`` and ``results``/``values`` as its runs' inputs) or a **process** by its Kianda name,
with ``fields`` (name: value) as its inputs. Each firing of a process-named schedule creates an
instance ``<process>-<n>`` through the instance API, as ``POST /api/instances`` would: the run's
``values`` are the fields, and its creator is the schedule's creator. If the schedule also names
an ``instance`` (of the same process), that instance's current fields (value and text), read at
each firing, are the new instance's starting point and the schedule's ``fields`` override them;
fields the process no longer lets callers set, or no longer declares, are not copied.

The creation carries the firing's idempotency key (``schedule:<id>:<slot>``) on its Root trigger,
so a slot fired twice creates one instance, exactly as it starts one run of a tree.

Checked when a schedule is created or changed, before anything is written, each refusal naming
what was wrong: an unknown process, a field it does not declare or does not let callers set, an
unknown instance (or one of another process), a process and a tree both named, or neither, and a
creator too long to be a user id (``creator_id``, else ``created_by``: at most 36 characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import inputs
from engine.errors import BadRequest, InstanceNotFound, ProcessNotFound
from engine.kianda.field_values import FieldValue
from engine.kianda.instances import Instance, InstanceBook
from engine.records import Schedule
from engine.store import queue
from engine.tree.fields import MAX_PROCESS_NAME

TREE_FIELDS = ("source_name", "source_group", "tree_name")
PROCESS_FIELDS = ("process", "fields", "instance")
MAX_USER_ID = 36  # run_creators.user_id
_NO_PROCESS = {"process": None, "fields": None, "instance": None}


def checked_target(
    given: Mapping[str, Any], *, instances: InstanceBook, check: bool
) -> dict[str, Any]:
    """The columns naming what ``given`` starts; with ``check``, the process, its fields and
    the instance are looked up. The tree itself is checked by the caller (``startable``)."""
    process = given.get("process")
    trees = [field for field in TREE_FIELDS if given.get(field)]
    if process is not None and trees:
        raise BadRequest(
            field="process",
            reason=f"name a process or a tree ({', '.join(trees)}), not both",
        )
    if process is None:
        if not trees:
            raise BadRequest(
                field="process",
                reason="name a process, or a tree by source_name, source_group and tree_name",
            )
        for field in ("fields", "instance"):
            if given.get(field) is not None:
                reason = "only a schedule that names a process takes one (give process)"
                raise BadRequest(field=field, reason=reason)
        columns = {field: inputs.text(field, given[field]) for field in TREE_FIELDS}
        return columns | _NO_PROCESS
    process = inputs.text("process", process, limit=MAX_PROCESS_NAME)
    for field in ("source_id", "results", "values"):
        if given.get(field):
            raise BadRequest(
                field=field,
                reason="a schedule that names a process gives its inputs as fields",
            )
    fields = given.get("fields")
    if fields is None:
        fields = {}
    if not isinstance(fields, Mapping):
        raise BadRequest(field="fields", reason="expected an object of name: value")
    instance = inputs.optional("instance", given.get("instance"))
    creator = given.get("creator")
    if creator is not None and len(creator) > MAX_USER_ID:
        raise BadRequest(
            field="creator_id",
            reason=f"the instances' creator is a user id of at most {MAX_USER_ID} characters, "
            f"not {creator[:40]!r}...: give creator_id",
        )
    if check:
        _look_up(instances, process, fields, instance)
    return {field: "" for field in TREE_FIELDS} | {
        "process": process,
        "fields": dict(fields),
        "instance": instance,
    }


def _look_up(
    instances: InstanceBook, process: str, fields: Mapping[str, Any], instance: str | None
) -> None:
    try:
        instances.prepare(process, fields)
    except ProcessNotFound:
        raise BadRequest(field="process", reason=f"no process is named {process!r}") from None
    if instance is None:
        return
    try:
        found = instances.get(instance)
    except InstanceNotFound:
        raise BadRequest(field="instance", reason=f"no instance is named {instance!r}") from None
    if found.process != process:
        raise BadRequest(
            field="instance",
            reason=f"{instance!r} is an instance of {found.process!r}, not of {process!r}",
        )


def create_instance(
    instances: InstanceBook,
    schedule: Schedule,
    *,
    idempotency_key: str,
    source_data: Mapping[str, Any],
) -> tuple[Instance, int]:
    """Create the instance of one firing; it and its Root trigger's id.

    Raises what the instance API raises (the process gone, a field no longer declared, the
    copied instance gone), writing nothing.
    """
    assert schedule.process is not None
    given: dict[str, FieldValue] = {}
    if schedule.instance is not None:
        source = instances.get(schedule.instance)
        _key, _version, tree, _given = instances.prepare(schedule.process, ())
        settable = {spec.name for spec in tree.fields if spec.settable}
        given = {field.name: field for field in source.fields if field.name in settable}
    for name, value in (schedule.fields or {}).items():
        given[name] = FieldValue(name, value)
    instance = instances.create(
        schedule.process,
        list(given.values()),
        created_by=schedule.creator_id or schedule.created_by,
        idempotency_key=idempotency_key,
        source_data=source_data,
    )
    with instances.database.read() as connection:
        keyed = queue.find_by_idempotency_key(connection, idempotency_key)
    assert keyed is not None  # the instance was created, or found, by this key
    return instance, int(keyed[0])


__all__ = ["MAX_USER_ID", "PROCESS_FIELDS", "TREE_FIELDS", "checked_target", "create_instance"]
