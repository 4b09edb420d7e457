"""Instances: runs of a process with named fields, read and written with optimistic concurrency.

An instance is a run started through the instance API: its name is ``<process>-<n>`` (``n`` counts
the process's instances from 1), its fields are the fields its tree version declares
(``engine.tree.fields``), and each field's value is the run's ``values[name]`` in templates.
Creating one goes through the same start as ``create_start`` (``engine.processing.starts``): the
run, its creator and a Root trigger are written in one transaction, with the instance row, so
nothing accepted is lost. The run's ``source.id`` is the instance's name and ``source.data`` holds
``instance``, ``process`` and ``trigger_field``.

Every field has a ``value`` and a ``text`` (``engine.kianda.field_values``). Writes are checked
before anything is written: a field the process does not declare raises :class:`UnknownField`
and one declared ``settable: false`` :class:`FieldNotSettable`, naming every such field.
Each write adds one to the instance's ``version`` (1 when created):

- ``replace`` sets every settable field: those given, and the others back to their defaults
  (the fields callers may not set keep their values). It must name the version it was based
  on; a stale one raises :class:`VersionConflict` and writes nothing.
- ``patch`` changes only the fields given. With a version it is checked like ``replace``;
  without one it applies to whatever version is current (re-reading when a concurrent write
  got in between), so no other write's fields are lost.

``created_by`` limits a call to the instances that user created: another user's instance is
:class:`InstanceNotFound`, exactly like one that does not exist, so its existence is not told.
Fields stay writable after the run completes (an instance is also a record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from engine import inputs, rows
from engine.errors import (
    BadRequest,
    FieldNotSettable,
    InstanceNotFound,
    ProcessNotFound,
    UnknownField,
    VersionConflict,
)
from engine.kianda.field_values import (
    FieldsGiven,
    FieldValue,
    checked_fields,
    default_field,
    stored_field,
)
from engine.processing.intake import insert_start, keyed_trigger_id
from engine.records import TreeKey
from engine.statuses import RunStatus
from engine.store import instances as instance_store
from engine.store import processes as process_store
from engine.store.database import Database
from engine.tree.catalog import TreeCatalog
from engine.tree.fields import MAX_PROCESS_NAME
from engine.tree.model import Tree

PATCH_ATTEMPTS = 20  # unversioned patches re-read this often under contention before giving up


@dataclass(frozen=True)
class Instance:
    name: str
    process: str
    run_id: int
    status: RunStatus
    version: int
    fields: tuple[FieldValue, ...]  # in the order the tree declares them
    created_by: str | None
    created_at: float
    updated_at: float
    tree_version: int | None = None  # the version of the process's tree its run is on

    def field(self, name: str) -> FieldValue:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)


class InstanceBook:
    """The instance operations over one database; shared by an engine's threads."""

    def __init__(
        self,
        database: Database,
        catalog: TreeCatalog,
        *,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.clock = clock
        self.wake = wake

    # -- create ----------------------------------------------------------------------------------

    def create(
        self,
        process: str,
        fields: FieldsGiven = (),
        *,
        trigger_field: str | None = None,
        instance_id: str | None = None,
        created_by: str | None = None,
        idempotency_key: str | None = None,
        source_data: Mapping[str, Any] | None = None,
        fingerprint: str | None = None,
    ) -> Instance:
        """Start an instance of ``process`` with ``fields`` set (the others at their defaults).

        ``instance_id`` is Kianda's: the prefix of the new name, which here is always the
        process name (anything else is refused). ``trigger_field``, if given, must name one of
        the process's fields; the run sees it as ``source.data['trigger_field']``.

        ``idempotency_key`` is createStart's: it is stored on the Root trigger, under the same
        unique index, so a repeat (or a concurrent call) with the key returns the instance the
        first call created and creates nothing, even if the process has since been made
        inactive; with a ``fingerprint`` (``engine.processing.intake``), a repeat that asks for
        something else raises IdempotencyKeyReused. ``source_data`` adds keys to the run's
        ``source.data`` (``instance``, ``process`` and ``trigger_field`` are always the
        instance's own).
        """
        process = inputs.text("processName", process, limit=MAX_PROCESS_NAME)
        if instance_id not in (None, "", process):
            raise BadRequest(
                field="instanceID",
                reason=f"new instances of {process!r} are named {process!r}-<n>: "
                f"give {process!r} or leave it out, not {instance_id!r}",
            )
        trigger_field = inputs.optional("TriggerField", trigger_field)
        idempotency_key = inputs.optional("idempotency_key", idempotency_key, inputs.MAX_TEXT)
        if idempotency_key is not None:
            with self.database.read() as connection:
                earlier = self._keyed(connection, idempotency_key, fingerprint)
            if earlier is not None:
                return self._instance(self.catalog.for_version(earlier["tree_version_id"]), earlier)
        key, version_id, tree, given = self.prepare(process, fields, trigger_field=trigger_field)
        values = {spec.name: default_field(spec) for spec in tree.fields}
        values.update({item.name: stored_field(item) for item in given})

        def write(connection: Connection) -> Mapping[str, Any]:
            return self._insert(
                connection,
                process,
                key=key,
                version_id=version_id,
                values=values,
                source_data={
                    **(source_data or {}),
                    "process": process,
                    "trigger_field": trigger_field or "",
                },
                created_by=created_by,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                now=self.clock(),
            )

        row, written = self.database.write_once(
            idempotency_key,
            find=lambda connection: self._keyed(connection, idempotency_key, fingerprint),
            write=write,
        )
        if not written:  # an earlier creation's: its tree is built outside the transaction
            return self._instance(self.catalog.for_version(row["tree_version_id"]), row)
        self.wake()
        return self._instance(tree, row)

    def prepare(
        self, process: str, fields: FieldsGiven, *, trigger_field: str | None = None
    ) -> tuple[TreeKey, int, Tree, list[FieldValue]]:
        """Check what a creation would start, writing nothing: the process's tree key, the
        version new instances start on, its tree, and the fields given, checked.

        Raises ProcessNotFound, UnknownField or FieldNotSettable (and BadRequest for a
        malformed value), naming what was wrong.
        """
        process = inputs.text("processName", process, limit=MAX_PROCESS_NAME)
        given = checked_fields(fields)
        with self.database.read() as connection:
            key = process_store.tree_of(connection, process)
        if key is None:
            raise ProcessNotFound(process=process)
        stored = self.catalog.startable(key)
        tree = self.catalog.for_version(stored.id)
        names = [item.name for item in given]
        if trigger_field:
            names.append(trigger_field)
        self._check(tree, names, settable=[item.name for item in given])
        return key, stored.id, tree, given

    @staticmethod
    def _keyed(
        connection: Connection, idempotency_key: str | None, fingerprint: str | None
    ) -> Mapping[str, Any] | None:
        """The instance an earlier creation with this key made, if there was one."""
        existing = keyed_trigger_id(connection, idempotency_key, fingerprint)
        if existing is None:
            return None
        row = instance_store.read_instance_of_run(connection, existing[1])
        if row is None:
            raise BadRequest(
                field="idempotency_key",
                reason=f"{idempotency_key!r} already started run {existing[1]}, "
                "which is not an instance",
            )
        return row

    @staticmethod
    def _insert(
        connection: Connection,
        process: str,
        *,
        key: TreeKey,
        version_id: int,
        values: Mapping[str, Any],
        source_data: Mapping[str, Any],
        created_by: str | None,
        idempotency_key: str | None,
        fingerprint: str | None,
        now: float,
    ) -> dict[str, Any]:
        """Number the instance and write its run, Root trigger and row; the row as read."""
        number = instance_store.next_number(connection, process)
        name = f"{process}-{number}"
        trigger = insert_start(
            connection,
            rows.run_row(
                tree_version_id=version_id,
                key=key,
                source_id=name,
                inputs={},
                values={field: kept["value"] for field, kept in values.items()},
                source_data={**source_data, "instance": name},
                now=now,
            ),
            created_by=created_by,
            results=None,
            message=None,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        row = {
            "name": name,
            "process": process,
            "number": number,
            "run_id": trigger["run_id"],
            "version": 1,
            "fields": dict(values),
            "created_at": now,
            "updated_at": now,
        }
        instance_store.insert_instance(connection, row)
        return row | {"status": RunStatus.STAGED.value, "created_by": created_by}

    # -- read ------------------------------------------------------------------------------------

    def get(self, name: str, *, created_by: str | None = None) -> Instance:
        row = self._read(name, created_by)
        return self._instance(self.catalog.for_version(row["tree_version_id"]), row)

    def fields(
        self, name: str, names: Sequence[str] | None = None, *, created_by: str | None = None
    ) -> list[FieldValue]:
        """The named fields (all, without ``names``) in the order asked; unknown ones refused."""
        instance = self.get(name, created_by=created_by)
        if names is None:
            return list(instance.fields)
        by_name = {field.name: field for field in instance.fields}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UnknownField(process=instance.process, names=unknown, known=list(by_name))
        return [by_name[n] for n in names]

    # -- write -----------------------------------------------------------------------------------

    def replace(
        self, name: str, fields: FieldsGiven, *, version: int, created_by: str | None = None
    ) -> Instance:
        """Set every settable field (defaults for those not given) if still at ``version``."""
        given = checked_fields(fields)
        return self._write(name, given, version, created_by, replace=True)

    def patch(
        self,
        name: str,
        fields: FieldsGiven,
        *,
        version: int | None = None,
        created_by: str | None = None,
    ) -> Instance:
        """Change only the fields given; checked against ``version`` when one is given."""
        given = checked_fields(fields)
        conflict: VersionConflict | None = None
        for _attempt in range(PATCH_ATTEMPTS if version is None else 1):
            try:
                return self._write(name, given, version, created_by, replace=False)
            except VersionConflict as exc:
                conflict = exc
        assert conflict is not None
        raise conflict

    def _write(
        self,
        name: str,
        given: list[FieldValue],
        version: int | None,
        created_by: str | None,
        *,
        replace: bool,
    ) -> Instance:
        # The tree version of a run never changes: built (or found) before the write begins.
        tree = self.catalog.for_version(self._read(name, created_by)["tree_version_id"])
        self._check(tree, [item.name for item in given], settable=[i.name for i in given])
        now = self.clock()
        with self.database.write() as connection:
            row = instance_store.read_instance(connection, name, created_by=created_by)
            if row is None:
                raise InstanceNotFound(name=name)
            expected = row["version"] if version is None else version
            if expected != row["version"]:
                raise VersionConflict(
                    subject=f"the instance {name!r}", expected=expected, actual=row["version"]
                )
            current = row["fields"]
            stored = {
                spec.name: (
                    default_field(spec)
                    if replace and spec.settable
                    else current.get(spec.name, default_field(spec))
                )
                for spec in tree.fields
            }
            stored.update({item.name: stored_field(item) for item in given})
            written = instance_store.write_fields(
                connection,
                name=name,
                run_id=row["run_id"],
                expected_version=expected,
                fields=stored,
                values={field: kept["value"] for field, kept in stored.items()},
                now=now,
            )
        if not written:  # a concurrent write committed between the read and the update
            actual = self._read(name, created_by)["version"]
            raise VersionConflict(
                subject=f"the instance {name!r}", expected=expected, actual=actual
            )
        return self._instance(
            tree, {**row, "fields": stored, "version": expected + 1, "updated_at": now}
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _read(self, name: str, created_by: str | None) -> Mapping[str, Any]:
        name = inputs.text("instance name", name)
        with self.database.read() as connection:
            row = instance_store.read_instance(connection, name, created_by=created_by)
        if row is None:
            raise InstanceNotFound(name=name)
        return row

    @staticmethod
    def _check(tree: Tree, names: Sequence[str], *, settable: Sequence[str]) -> None:
        declared = {spec.name: spec for spec in tree.fields}
        unknown = [n for n in names if n not in declared]
        fixed = [n for n in settable if n in declared and not declared[n].settable]
        if unknown:
            raise UnknownField(
                process=tree.process, names=unknown, known=list(declared), unsettable=fixed
            )
        if fixed:
            raise FieldNotSettable(process=tree.process, names=fixed)

    @staticmethod
    def _instance(tree: Tree, row: Mapping[str, Any]) -> Instance:
        stored = row["fields"]
        fields = tuple(
            FieldValue(spec.name, stored[spec.name]["value"], stored[spec.name]["text"])
            for spec in tree.fields
            if spec.name in stored
        )
        return Instance(
            name=row["name"],
            process=row["process"],
            run_id=row["run_id"],
            status=RunStatus(row["status"]),
            version=row["version"],
            fields=fields,
            created_by=row["created_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            tree_version=row.get("tree_version"),
        )

    # Last in the class, so that ``list`` in the annotations above is the builtin.
    def list(
        self,
        *,
        process: str | None = None,
        created_by: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Instance]]:
        """Instances by process, newest first, with how many match: of one ``process`` or
        all, and (``created_by``) only those that user created. Paged in SQL."""
        with self.database.read() as connection:
            total = instance_store.count_instances(
                connection, process=process, created_by=created_by
            )
            rows = instance_store.list_instances(
                connection, process=process, created_by=created_by, limit=limit, offset=offset
            )
        found = [self._instance(self.catalog.for_version(r["tree_version_id"]), r) for r in rows]
        return total, found


__all__ = ["Instance", "InstanceBook"]
