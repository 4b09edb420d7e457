"""The trigger queue: accepting work, claiming it with leases, and closing it exactly once.

Claiming takes a batch of due triggers whose run is not leased, marks them Work In Progress
under a lease named by a fresh claim id, and leases their runs in the same transaction, so two
triggers of one run are never processed at once. On PostgreSQL the candidates are locked
``FOR UPDATE ... SKIP LOCKED`` (any number of engine processes share the queue); on SQLite a
single ``UPDATE ... RETURNING`` under ``BEGIN IMMEDIATE`` is already atomic.

Recovery is part of every claim rather than a start-up step: a trigger still Work In Progress
whose lease has run out is a candidate again, so any live worker picks up what a dead one left.
Closing is fenced: the close succeeds only while the trigger and its run are still held by the
same claim, so a worker that lost its lease cannot commit over the one that took over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.statuses import TriggerStatus
from engine.store.bulk import BulkStatement, IdListStatement
from engine.store.tables import runs, tasks, triggers

NEW = TriggerStatus.NEW.value
WIP = TriggerStatus.WORK_IN_PROGRESS.value
# Statuses as SQL literals, not bound parameters: a planner can use the partial index on open
# triggers only when it sees the index's own predicate (SQLite never matches a parameter).
_NEW_SQL: sa.ColumnElement[str] = sa.literal_column(f"'{NEW}'")
_WIP_SQL: sa.ColumnElement[str] = sa.literal_column(f"'{WIP}'")


@dataclass(frozen=True)
class ClaimedTrigger:
    id: int
    action: str
    run_id: int
    task_id: str | None
    token: str | None
    results: str | None
    message: str | None
    attempts: int
    created_at: float = 0.0  # when it was accepted: what the close observers' latency counts from
    node: str | None = None  # a Manual trigger's node
    requested_by: str | None = None  # who asked for a Cancel or Manual trigger


def _candidates(*, selected: bool) -> sa.Select[tuple[int]]:
    """The ids of the triggers a claim may take, oldest first; ``selected`` limits them to the
    labels bound as ``labels`` (``engine.tree.selection``)."""
    t, r = triggers.alias("t"), runs.alias("r")
    now = sa.bindparam("now", type_=sa.Float)
    conditions = [
        t.c.status.in_((_NEW_SQL, _WIP_SQL)),
        t.c.due_at <= now,
        sa.or_(t.c.status == _NEW_SQL, t.c.lease_until < now),
        sa.or_(r.c.lease_until.is_(None), r.c.lease_until < now),
    ]
    if selected:  # served by the partial index ix_triggers_open_selection
        conditions.append(t.c.selection.in_(sa.bindparam("labels", expanding=True)))
    return sa.select(t.c.id).join(r, r.c.id == t.c.run_id).where(*conditions).order_by(t.c.id)


def _claim_statement(dialect: str, *, selected: bool) -> sa.Update:
    """The claim: the oldest ``limit`` candidates, Work In Progress under the claim's lease."""
    candidates = _candidates(selected=selected).limit(sa.bindparam("limit", type_=sa.Integer))
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        triggers.update()
        .where(triggers.c.id.in_(candidates))
        .values(
            status=WIP,
            lease_owner=sa.bindparam("claim_id"),
            lease_until=sa.bindparam("until"),
            attempts=triggers.c.attempts + 1,
        )
        .returning(
            triggers.c.id,
            triggers.c.action,
            triggers.c.run_id,
            triggers.c.task_id,
            triggers.c.token,
            triggers.c.results,
            triggers.c.message,
            triggers.c.attempts,
            triggers.c.created_at,
            triggers.c.node,
            triggers.c.requested_by,
        )
    )


# Built once: hot statements are executed with parameters, never rebuilt per call.
# Without labels a claim binds no list: it goes to the driver directly.
_CLAIM_ANY = {
    dialect: BulkStatement(_claim_statement(dialect, selected=False))
    for dialect in ("sqlite", "postgresql")
}
_CLAIM_SELECTED = {
    dialect: _claim_statement(dialect, selected=True) for dialect in ("sqlite", "postgresql")
}
# Whether a claim would find anything: read only, so an idle worker's poll writes nothing. Asked
# after every step, so without labels (no expanding list) it goes to the driver directly.
_DUE_ANY = BulkStatement(_candidates(selected=False).limit(sa.literal_column("1")))
_DUE_SELECTED = _candidates(selected=True).limit(1)
_LEASE_RUNS = IdListStatement(
    lambda one_of: (
        runs.update()
        .where(one_of(runs.c.id))
        .values(lease_owner=sa.bindparam("claim_id"), lease_until=sa.bindparam("until"))
    )
)
# Every createDeferred runs these two: at the driver (engine.store.bulk).
_RESERVE = BulkStatement(
    tasks.update()
    .where(
        tasks.c.token == sa.bindparam("b_token"),
        tasks.c.status == "Deferred",
        tasks.c.completing.is_(False),
    )
    .values(completing=sa.bindparam("b_complete"))
    .returning(tasks.c.id, tasks.c.run_id)
)
# A Complete accepted changes the task a worker may hold in memory (engine.processing.run_cache).
_BUMP_REVISION = BulkStatement(
    runs.update().where(runs.c.id == sa.bindparam("run_id")).values(revision=runs.c.revision + 1)
)
_BY_KEY = sa.select(triggers.c.id, triggers.c.run_id).where(
    triggers.c.idempotency_key == sa.bindparam("key")
)


def claim(
    connection: Connection,
    *,
    claim_id: str,
    now: float,
    lease_seconds: float,
    limit: int,
    selection: Sequence[str] | None = None,
) -> list[ClaimedTrigger]:
    """Claim up to ``limit`` due triggers (oldest first) and lease their runs.

    ``selection`` (stored labels, see ``engine.tree.selection``) limits the claim to triggers
    carrying one of them; None claims any.
    """
    until = now + lease_seconds
    parameters: dict[str, object] = {
        "now": now,
        "limit": limit,
        "claim_id": claim_id,
        "until": until,
    }
    if selection is None:  # no list of labels: one SQL text, at the driver
        rows: Iterable[Sequence[Any]] = _CLAIM_ANY[connection.dialect.name].all(
            connection, parameters
        )
    else:
        parameters["labels"] = list(selection)
        rows = connection.execute(_CLAIM_SELECTED[connection.dialect.name], parameters)
    claimed = sorted((ClaimedTrigger(*row) for row in rows), key=lambda c: c.id)
    if claimed:
        run_ids = sorted({c.run_id for c in claimed})
        _LEASE_RUNS.execute(connection, run_ids, claim_id=claim_id, until=until)
    return claimed


def due(connection: Connection, *, now: float, selection: Sequence[str] | None = None) -> bool:
    """Whether :func:`claim` would find a trigger now; reads only, locks nothing.

    A worker asks this before a claim whenever its last claim was not full, so that polling an
    empty queue (or learning that nothing is left after a batch) takes no write lock on SQLite
    and writes nothing on PostgreSQL. Another process may claim what it saw first; the claim that
    follows then finds nothing, as any claim racing another does.
    """
    if selection is None:
        return _DUE_ANY.first(connection, {"now": now}) is not None
    parameters = {"now": now, "labels": list(selection)}
    return connection.execute(_DUE_SELECTED, parameters).first() is not None


def lease_on_insert(
    run: dict[str, Any], trigger: dict[str, Any], *, claim_id: str, until: float
) -> None:
    """Make the rows of a new run and its first trigger what claiming them would leave.

    The accepting transaction writes them so when its own process will process the trigger
    (``engine.processing.hand_off``): the trigger Work In Progress on its first attempt, both
    leased to ``claim_id`` until ``until``, so that no other worker takes them meanwhile and a
    dead process's lease runs out as any claim's does.
    """
    run["lease_owner"] = trigger["lease_owner"] = claim_id
    run["lease_until"] = trigger["lease_until"] = until
    trigger["status"] = WIP
    trigger["attempts"] = 1


def renew(connection: Connection, *, claim_ids: Sequence[str], until: float) -> None:
    """Extend the leases of claims still being worked on (a long handler is running)."""
    if not claim_ids:
        return
    connection.execute(
        triggers.update()
        .where(
            triggers.c.lease_owner.in_(claim_ids),
            triggers.c.status.in_((_NEW_SQL, _WIP_SQL)),  # the partial index's own predicate
            triggers.c.status == _WIP_SQL,
        )
        .values(lease_until=until)
    )
    connection.execute(
        runs.update().where(runs.c.lease_owner.in_(claim_ids)).values(lease_until=until)
    )


def release(connection: Connection, *, claim_id: str, trigger_ids: Sequence[int]) -> None:
    """Hand unprocessed triggers of a claim back to the queue (graceful shutdown)."""
    if trigger_ids:
        connection.execute(
            triggers.update()
            .where(
                triggers.c.id.in_(trigger_ids),
                triggers.c.lease_owner == claim_id,
                triggers.c.status == _WIP_SQL,
            )
            .values(status=NEW, lease_owner=None, lease_until=None)
        )
    release_runs(connection, claim_id=claim_id)


def release_runs(connection: Connection, *, claim_id: str) -> None:
    connection.execute(
        runs.update()
        .where(runs.c.lease_owner == claim_id)
        .values(lease_owner=None, lease_until=None)
    )


def reserve_token(connection: Connection, *, token: str, complete: bool) -> tuple[str, int] | None:
    """Lock the deferred task a token names; for a Complete, mark it as being completed.

    Returns (task id, run id), or None when the token names no task that can still be resumed.
    The conditional UPDATE takes the task's row lock, so concurrent Completes and Updates on one
    token are serialized: exactly one Complete wins, and no Update is accepted after it.
    """
    row = _RESERVE.first(connection, {"b_token": token, "b_complete": complete})
    if row is None:
        return None
    if complete:
        _BUMP_REVISION.execute(connection, [{"run_id": row[1]}])
    return (row[0], row[1])


def find_by_idempotency_key(connection: Connection, key: str) -> tuple[int, int] | None:
    """The trigger an earlier call with ``key`` wrote, and its run: (trigger id, run id)."""
    row = connection.execute(_BY_KEY, {"key": key}).first()
    return None if row is None else (int(row[0]), int(row[1]))


__all__ = [
    "ClaimedTrigger",
    "claim",
    "due",
    "find_by_idempotency_key",
    "lease_on_insert",
    "release",
    "release_runs",
    "renew",
    "reserve_token",
]
