"""The Engine's processes and instances (the Kianda-style API): thin calls of
``engine.kianda``'s InstanceBook and ProcessShelf, which hold the logic."""

from __future__ import annotations

from collections.abc import Sequence

from engine import inputs
from engine.kianda.field_values import FieldsGiven, FieldValue
from engine.kianda.instances import Instance, InstanceBook
from engine.kianda.processes import Deployment, Process, ProcessShelf


class Kianda:
    """Instances of processes and their fields (part of :class:`~engine.engine.Engine`)."""

    instances: InstanceBook
    processes: ProcessShelf

    def create_instance(
        self,
        process: str,
        fields: FieldsGiven = (),
        *,
        trigger_field: str | None = None,
        instance_id: str | None = None,
        created_by: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Instance:
        """Start an instance ``<process>-<n>`` of a process with fields set; durable on return.

        A repeat with an ``idempotency_key`` (createStart's, on the Root trigger) returns the
        instance the first call created; ``fingerprint`` is as for :meth:`create_start`.
        """
        return self.instances.create(
            process,
            fields,
            trigger_field=trigger_field,
            instance_id=instance_id,
            created_by=created_by,
            idempotency_key=idempotency_key,
            fingerprint=inputs.optional("fingerprint", fingerprint, inputs.MAX_FINGERPRINT),
        )

    def get_instance(self, name: str, *, created_by: str | None = None) -> Instance:
        """An instance (with ``created_by``: only one that user created)."""
        return self.instances.get(name, created_by=created_by)

    def list_instances(
        self,
        *,
        process: str | None = None,
        created_by: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Instance]]:
        """Instances by process, newest first, and how many match (with ``created_by``: only
        those that user created, as the instance API limits plain users)."""
        process = inputs.optional("process", process)
        return self.instances.list(
            process=process, created_by=created_by, limit=limit, offset=offset
        )

    def instance_fields(
        self, name: str, names: Sequence[str] | None = None, *, created_by: str | None = None
    ) -> list[FieldValue]:
        return self.instances.fields(name, names, created_by=created_by)

    def replace_instance_fields(
        self, name: str, fields: FieldsGiven, *, version: int, created_by: str | None = None
    ) -> Instance:
        """Set all settable fields if the instance is still at ``version`` (VersionConflict)."""
        return self.instances.replace(name, fields, version=version, created_by=created_by)

    def patch_instance_fields(
        self,
        name: str,
        fields: FieldsGiven,
        *,
        version: int | None = None,
        created_by: str | None = None,
    ) -> Instance:
        """Change only the fields given (checked against ``version`` when one is given)."""
        return self.instances.patch(name, fields, version=version, created_by=created_by)

    def list_processes(self) -> list[Process]:
        return self.processes.list()

    def get_process(self, name: str) -> Process:
        return self.processes.get(name)

    def deploy_process(self, text: str) -> Deployment:
        """A tree's YAML as a new version of its process, validated like a file."""
        return self.processes.deploy(text)


__all__ = ["Kianda"]
