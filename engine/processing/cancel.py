"""Cancelling a run and the routine runs under it: accepted as a trigger, processed like one.

``Engine.cancel_run`` comes here. A cancel is accepted for a run that is Staged, Started or Failed
(a Completed run has nothing left to stop: ``RunNotOpen``); cancelling a run again returns the
Cancel trigger the first call was given. Accepting it writes the Cancel triggers of the run and
of its unfinished routine runs, and stops their tokens from resolving, in one transaction
(``engine.store.cancels``): from then on a createDeferred with one of their tokens is refused
with ``RunCancelled``. Processing a Cancel trigger needs neither the run's tasks nor its tree (a
tree version that no longer builds can still be cancelled): the run becomes Cancelled, the other
triggers of its batch and every open one (a wait's timer, a retry, a paused trigger) close as
Cancelled without running, and a routine run started meanwhile is cancelled too. A trigger that
reaches a Cancelled run later (a routine's return) closes the same way. A handler already running
when the cancel is accepted finishes its step; nothing runs after it.

Tasks keep the status they had (a deferred task stays Deferred, its token no longer resolving):
the run's status and its triggers say that it was stopped, by whom (the Cancel trigger's
``requested_by``) and why (its ``message``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from engine import rows
from engine.errors import RunNotFound, RunNotOpen
from engine.records import Trigger
from engine.statuses import RunStatus, TriggerAction, TriggerStatus, transition
from engine.store import cancels, queue
from engine.store import runs as run_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.steps import RunWrite, TriggerClose

CANCELLABLE = (RunStatus.STAGED, RunStatus.STARTED, RunStatus.FAILED)


def accept_cancel(
    database: Database,
    *,
    run_id: int,
    reason: str | None,
    requested_by: str | None,
    now: float,
) -> tuple[Trigger, bool]:
    """Write the run's Cancel trigger (and its routine runs'); (trigger, whether it is new)."""
    key = rows.cancel_key(run_id)

    def find(connection: Connection) -> Trigger | None:
        existing = queue.find_by_idempotency_key(connection, key)
        return None if existing is None else run_store.read_trigger(connection, existing[0])

    def write(connection: Connection) -> Trigger:
        status = cancels.run_status(connection, run_id)
        if status is None:
            raise RunNotFound(run_id=run_id)
        if status not in CANCELLABLE:
            allowed = [s.value for s in CANCELLABLE]
            raise RunNotOpen(run_id=run_id, status=status.value, action="Cancel", allowed=allowed)
        tree = cancels.open_call_tree(connection, run_id)
        cancels.write_cancels(connection, tree, reason=reason, requested_by=requested_by, now=now)
        found = find(connection)
        assert found is not None  # written just now, in this transaction
        return found

    return database.write_once(key, find=find, write=write)


def has_cancel(group: Sequence[ClaimedTrigger], run: Mapping[str, Any]) -> bool:
    """Whether this batch of the run's triggers is closed by a cancel instead of executed."""
    return run["status"] == RunStatus.CANCELLED or any(
        trigger.action == TriggerAction.CANCEL for trigger in group
    )


def cancel_group(group: Sequence[ClaimedTrigger], run: Mapping[str, Any]) -> RunWrite:
    """The write that cancels the run (unless it is already) and closes the batch's triggers."""
    write = RunWrite(run["id"])
    status = RunStatus(run["status"])
    for trigger in group:
        if trigger.action == TriggerAction.CANCEL and status is not RunStatus.CANCELLED:
            write.status = transition(status, RunStatus.CANCELLED)
            write.cancel_reason = trigger.message
            write.cancelled_by = trigger.requested_by
            write.closes.append(TriggerClose(trigger.id))
        else:
            write.closes.append(
                TriggerClose(trigger.id, TriggerStatus.CANCELLED, cancels.CANCELLED_BECAUSE)
            )
    return write


__all__ = ["CANCELLABLE", "accept_cancel", "cancel_group", "has_cancel"]
