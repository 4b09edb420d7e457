"""The SQL of cancelling a run: its Cancel trigger, its children's, its tokens and open triggers.

Accepting a cancel (``engine.processing.cancel``) writes, in one transaction, a Cancel trigger for
the run and for each routine run under it not finished yet (keyed ``cancel:<run id>``: once per
run), and marks their deferred tasks as being completed, the same conditional row update a
createDeferred Complete makes (``engine.store.queue.reserve_token``): the two are serialized on
the task row, so a createDeferred racing the cancel either reserved the task first (its trigger is
then closed Cancelled, unprocessed, unless it was processed before the Cancel) or is refused. The
runs' revision is bumped, so no worker goes on with a state it kept from before. Processing the
Cancel trigger closes every other open trigger of its run as Cancelled (waits' timers, retries,
paused triggers) in the commit that makes the run Cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rows
from engine.statuses import RunStatus, TaskStatus, TriggerAction, TriggerStatus
from engine.store.runs import insert_trigger
from engine.store.tables import runs, tasks, triggers

CANCELLED_BECAUSE = "its run was cancelled"
_FINISHED = (RunStatus.COMPLETED.value, RunStatus.CANCELLED.value)

_CHILDREN = sa.select(runs.c.id).where(
    runs.c.parent_run_id.in_(sa.bindparam("run_ids", expanding=True)),
    runs.c.status.not_in(_FINISHED),
)
_HOLD_TOKENS = (
    tasks.update()
    .where(
        tasks.c.run_id.in_(sa.bindparam("run_ids", expanding=True)),
        tasks.c.status == TaskStatus.DEFERRED.value,
        tasks.c.completing.is_(False),
    )
    .values(completing=True)
)
_BUMP_REVISIONS = (
    runs.update()
    .where(runs.c.id.in_(sa.bindparam("run_ids", expanding=True)))
    .values(revision=runs.c.revision + 1)
)
_KEYED = sa.select(triggers.c.idempotency_key).where(
    triggers.c.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)
_CLOSE_OPEN = (
    triggers.update()
    .where(
        triggers.c.run_id.in_(sa.bindparam("run_ids", expanding=True)),
        triggers.c.status.in_((TriggerStatus.NEW.value, TriggerStatus.PAUSED.value)),
    )
    .values(
        status=TriggerStatus.CANCELLED.value,
        closed_at=sa.bindparam("now"),
        engine=sa.bindparam("engine"),
        error=CANCELLED_BECAUSE,
    )
)
_RUN_OF_TOKEN = sa.select(tasks.c.run_id).where(tasks.c.token == sa.bindparam("token"))


def run_status(connection: Connection, run_id: int) -> RunStatus | None:
    status = connection.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
    return None if status is None else RunStatus(status)


def open_call_tree(connection: Connection, run_id: int) -> list[int]:
    """The run and every routine run under it, however deep, that has not finished."""
    found, level = [run_id], [run_id]
    while level:
        level = list(connection.execute(_CHILDREN, {"run_ids": level}).scalars())
        found.extend(level)
    return found


def write_cancels(
    connection: Connection,
    run_ids: Sequence[int],
    *,
    reason: str | None,
    requested_by: str | None,
    now: float,
) -> None:
    """A Cancel trigger for each run that has none, its tokens held; see the module docstring."""
    keys = {rows.cancel_key(run_id): run_id for run_id in run_ids}
    written = set(connection.execute(_KEYED, {"keys": list(keys)}).scalars())
    for key, run_id in keys.items():
        if key not in written:
            trigger = rows.trigger_row(
                TriggerAction.CANCEL,
                run_id=run_id,
                now=now,
                message=reason,
                idempotency_key=key,
                requested_by=requested_by,
            )
            insert_trigger(connection, trigger)
    connection.execute(_HOLD_TOKENS, {"run_ids": list(run_ids)})
    connection.execute(_BUMP_REVISIONS, {"run_ids": list(run_ids)})


def close_open_triggers(
    connection: Connection, run_ids: Sequence[int], *, now: float, engine: str
) -> None:
    """Close the runs' New and Paused triggers as Cancelled, unprocessed."""
    connection.execute(_CLOSE_OPEN, {"run_ids": list(run_ids), "now": now, "engine": engine})


def cancelling(connection: Connection, run_id: int) -> bool:
    """Whether the run is Cancelled, or a cancel of it was accepted."""
    if run_status(connection, run_id) is RunStatus.CANCELLED:
        return True
    return connection.execute(_KEYED, {"keys": [rows.cancel_key(run_id)]}).first() is not None


def cancelled_run_of_token(connection: Connection, token: str) -> int | None:
    """The run of the task ``token`` names, if that run is cancelled or being cancelled."""
    run_id = connection.execute(_RUN_OF_TOKEN, {"token": token}).scalar()
    if run_id is None or not cancelling(connection, run_id):
        return None
    return int(run_id)


__all__ = [
    "CANCELLED_BECAUSE",
    "cancelled_run_of_token",
    "cancelling",
    "close_open_triggers",
    "open_call_tree",
    "run_status",
    "write_cancels",
]
