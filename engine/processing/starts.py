"""Writing an accepted start: its run, creator and Root trigger, in the caller's transaction.

``Engine.create_start`` and the instance API (``engine.kianda.instances``) accept runs through this
one function, so a run started either way is the same rows: a Staged run, the user who created it
(when one did) and a New Root trigger due now. Durable when the caller's transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from engine.statuses import TriggerAction, TriggerStatus
from engine.store import runs as run_store
from engine.store import users as user_store


def insert_start(
    connection: Connection,
    run: Mapping[str, Any],
    *,
    created_by: str | None,
    results: str | None,
    message: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Insert ``run`` (every column but its id) and its Root trigger; the trigger's row values.

    The trigger is due at the run's ``created_at``; the values returned carry its ``id``.
    """
    run_id = run_store.insert_run(connection, run)
    if created_by is not None:
        user_store.insert_run_creator(connection, run_id=run_id, user_id=created_by)
    values = {
        "action": TriggerAction.ROOT.value,
        "status": TriggerStatus.NEW.value,
        "run_id": run_id,
        "results": results,
        "message": message,
        "idempotency_key": idempotency_key,
        "due_at": run["created_at"],
        "created_at": run["created_at"],
    }
    values["id"] = run_store.insert_trigger(connection, values)
    return values


__all__ = ["insert_start"]
