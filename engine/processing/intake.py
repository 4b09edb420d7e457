"""Writing the triggers the engine accepts: a run's Root trigger, Complete or Update, resolution.

The facade (``engine.engine``) checks what the caller gave and this writes it, so that the trigger
API reads as what it accepts while how acceptance is made durable stays in one place: each trigger
is written in one transaction (a Root trigger with its run, through ``engine.processing.starts``), a
repeated idempotency key returns the trigger the first call was given (a concurrent call with the
same key loses the unique index and returns the winner's), and the workers are woken once the
trigger is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorAlreadyResolved, TokenNotFound
from engine.processing.starts import insert_start
from engine.records import Trigger
from engine.statuses import RunStatus, TriggerStatus
from engine.store import queue, resolutions
from engine.store import runs as run_store
from engine.store.database import Database
from engine.tree.model import TreeKey


@dataclass(frozen=True)
class TriggerIntake:
    """The durable half of ``create_start``, ``create_deferred`` and ``resolve_error``."""

    database: Database
    clock: Callable[[], float]
    wake: Callable[[], None]  # the workers', once a trigger is committed

    def start(
        self,
        tree_version_id: int,
        key: TreeKey,
        source_id: str,
        start_inputs: dict[str, Any],
        raw_results: str | None,
        message: str | None,
        idempotency_key: str | None,
        source_data: Mapping[str, Any] | None,
        created_by: str | None,
    ) -> Trigger:
        """Write a run of ``tree_version_id`` and its Root trigger (or find the keyed one)."""
        now = self.clock()
        for _attempt in range(2):
            try:
                with self.database.write() as connection:
                    if idempotency_key is not None:
                        existing = queue.find_by_idempotency_key(connection, idempotency_key)
                        if existing is not None:
                            return run_store.read_trigger(connection, existing[0])
                    values = insert_start(
                        connection,
                        {
                            "tree_version_id": tree_version_id,
                            "source_name": key.source_name,
                            "source_group": key.source_group,
                            "tree_name": key.name,
                            "source_id": source_id,
                            "status": RunStatus.STAGED.value,
                            "inputs": start_inputs,
                            "values": {},
                            "source_data": dict(source_data or {}),
                            "created_at": now,
                            "updated_at": now,
                        },
                        created_by=created_by,
                        results=raw_results,
                        message=message,
                        idempotency_key=idempotency_key,
                    )
            except sa.exc.IntegrityError:
                if idempotency_key is None:
                    raise
                continue  # a concurrent call with the same key won: return its trigger
            self.wake()
            return run_store.trigger_record({**values, **_UNSET})
        raise RuntimeError("unreachable: idempotency key conflict did not resolve")

    def deferred(
        self,
        token: str,
        action: str,
        raw_results: str | None,
        message: str | None,
        idempotency_key: str | None,
    ) -> Trigger:
        """Write a Complete or Update trigger for the task ``token`` names, reserving it."""
        now = self.clock()
        with self.database.write() as connection:
            if idempotency_key is not None:
                existing = queue.find_by_idempotency_key(connection, idempotency_key)
                if existing is not None:
                    return run_store.read_trigger(connection, existing[0])
            reserved = queue.reserve_token(connection, token=token, complete=action == "Complete")
            if reserved is None:
                raise TokenNotFound(token=token)
            task_id, run_id = reserved
            values = {
                "action": action,
                "status": TriggerStatus.NEW.value,
                "run_id": run_id,
                "task_id": task_id,
                "token": token,
                "results": raw_results,
                "message": message,
                "idempotency_key": idempotency_key,
                "due_at": now,
                "created_at": now,
            }
            trigger_id = run_store.insert_trigger(connection, values)
        self.wake()
        return run_store.trigger_record({**_UNSET, **values, "id": trigger_id})

    def resolution(
        self, error_id: str, action: str, message: str | None, resolved_by: str | None
    ) -> Trigger:
        """Write the trigger that applies ``action`` to the error; one per error is accepted."""
        try:
            with self.database.write() as connection:
                values = resolutions.accept(
                    connection,
                    error_id=error_id,
                    action=action,
                    message=message,
                    resolved_by=resolved_by,
                    now=self.clock(),
                )
        except sa.exc.IntegrityError as exc:  # the key resolve:<id>: another was accepted first
            raise ErrorAlreadyResolved(error_id=error_id, action=None) from exc
        self.wake()
        return run_store.trigger_record({**_UNSET, **values})


_UNSET: dict[str, Any] = {
    "task_id": None,
    "token": None,
    "closed_at": None,
    "engine": None,
    "error": None,
}

__all__ = ["TriggerIntake"]
