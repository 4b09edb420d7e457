"""Committing what processing a claim changed: closes, task, error and trigger rows, statuses.

Each run of a claim contributes one :class:`RunWrite`: the closes of its triggers and the rows
their execution changed. Several runs' writes are committed in one transaction (group commit):
every trigger's changes still commit atomically with its close, and a batch pays for one
transaction and one statement per table instead of five statements and a commit per trigger.

A step that records a Budget Error holds back every trigger of its run still waiting, and a
trigger of such a run claimed later is held back too: Paused, unprocessed. The commit that applies
a resolution of the run makes its paused triggers New again (``engine.run.budgets``).

A wait's timer is part of the step that deferred it: its trigger row is inserted here, with
the task rows, so a crash either loses the step and its timer together or keeps both. So are a
routine call's child run with its Root trigger, and a routine's return (``engine.tree.routines``).

Every write is fenced on the claim. A trigger closes only while this claim still holds it, and a
run's status is written only while this claim holds the run; when any fence fails, the batch
raises :class:`LostClaim` and the caller rolls back (and retries run by run, so one lost lease
does not discard the others' work). A batch too big for one transaction is committed in several
(``engine.processing.transactions``): a run's write that is ``hold`` keeps the run leased to the
claim, and only its last writes its status and releases it.

The child runs a step starts are added to their call tree's count in the same transaction,
fenced on the budget of child runs per call tree (``engine.store.call_trees``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rows
from engine.statuses import ErrorStatus, RunStatus, TriggerAction, TriggerStatus
from engine.store import cancels
from engine.store.bulk import BulkStatement, IdListStatement, insert_all
from engine.store.call_trees import count_calls
from engine.store.runs import insert_run, insert_trigger
from engine.store.tables import (
    OPEN_TRIGGER_STATUSES,
    RESOLUTION_COLUMNS,
    errors,
    runs,
    tasks,
    triggers,
)
from engine.store.trigger_rows import insert_triggers

_WIP: sa.ColumnElement[str] = sa.literal_column(f"'{TriggerStatus.WORK_IN_PROGRESS.value}'")

_CLOSE = BulkStatement(
    triggers.update()
    .where(
        triggers.c.id == sa.bindparam("b_id"),
        triggers.c.lease_owner == sa.bindparam("b_claim"),
        triggers.c.status == _WIP,
    )
    .values(
        status=sa.bindparam("b_status"),
        lease_owner=sa.null(),
        lease_until=sa.null(),
        closed_at=sa.bindparam("b_now"),
        engine=sa.bindparam("b_engine"),
        error=sa.bindparam("b_error"),
    )
)
# A trigger held back while its run has an active Budget Error: left unprocessed, unclaimable.
PAUSED_BECAUSE = (
    "Paused: its run has an active Budget Error; resolving an error of the run makes it New again"
)
_PAUSE = BulkStatement(
    triggers.update()
    .where(
        triggers.c.id == sa.bindparam("b_id"),
        triggers.c.lease_owner == sa.bindparam("b_claim"),
        triggers.c.status == _WIP,
    )
    .values(
        status=sa.literal_column(f"'{TriggerStatus.PAUSED.value}'"),
        lease_owner=sa.null(),
        lease_until=sa.null(),
        engine=sa.bindparam("b_engine"),
        error=sa.literal_column(f"'{PAUSED_BECAUSE}'"),
    )
)
# A step that recorded a Budget Error: every trigger of its run still waiting is held back too.
_PAUSE_WAITING = (
    triggers.update()
    .where(
        triggers.c.run_id.in_(sa.bindparam("run_ids", expanding=True)),
        triggers.c.status == sa.literal_column(f"'{TriggerStatus.NEW.value}'"),
    )
    .values(
        status=sa.literal_column(f"'{TriggerStatus.PAUSED.value}'"),
        engine=sa.bindparam("engine"),
        error=sa.literal_column(f"'{PAUSED_BECAUSE}'"),
    )
)
# A resolution applied to a run: its paused triggers are New again, with their attempts anew.
_UNPAUSE = (
    triggers.update()
    .where(
        triggers.c.run_id.in_(sa.bindparam("run_ids", expanding=True)),
        triggers.c.status == sa.literal_column(f"'{TriggerStatus.PAUSED.value}'"),
    )
    .values(
        status=sa.literal_column(f"'{TriggerStatus.NEW.value}'"),
        attempts=sa.literal_column("0"),
        engine=sa.null(),
        error=sa.null(),
    )
)
_INSERT_TASKS = insert_all(tasks)
_UPDATE_TASKS = BulkStatement(
    tasks.update()
    .where(tasks.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        results=sa.bindparam("b_results"),
        arrived=sa.bindparam("b_arrived"),
        attempt=sa.bindparam("b_attempt"),
        last_error=sa.bindparam("b_last_error"),
        updated_at=sa.bindparam("b_updated_at"),
    ),
    ("b_results", "b_arrived"),
)
# A new error has no resolution: its insert leaves those columns out (NULL).
_INSERT_ERRORS = BulkStatement(
    errors.insert().values(
        {c.name: sa.bindparam(c.name) for c in errors.columns if c.name not in RESOLUTION_COLUMNS}
    )
)
# A resolution applied: the error is Handled (its action was recorded when it was accepted).
_RESOLVE_ERRORS = BulkStatement(
    errors.update()
    .where(
        errors.c.id == sa.bindparam("b_id"),
        errors.c.status == sa.literal_column(f"'{ErrorStatus.ACTIVE.value}'"),
    )
    .values(
        status=sa.literal_column(f"'{ErrorStatus.HANDLED.value}'"),
        resolved_at=sa.bindparam("b_now"),
    )
)
# Retry Task of an error raised before any node ran: its failed trigger is queued again.
_REQUEUE_TRIGGERS = BulkStatement(
    triggers.update()
    .where(
        triggers.c.id == sa.bindparam("b_id"),
        triggers.c.status == sa.literal_column(f"'{TriggerStatus.FAILED.value}'"),
    )
    .values(
        status=sa.literal_column(f"'{TriggerStatus.NEW.value}'"),
        due_at=sa.bindparam("b_now"),
        attempts=sa.literal_column("0"),
        lease_owner=sa.null(),
        lease_until=sa.null(),
        engine=sa.null(),
        error=sa.null(),
        closed_at=sa.null(),
    )
)
# Scheduled triggers (a wait's timer): every column but the id, which the database assigns, and
# the selection label, which the insert copies from the run.
_INSERT_TRIGGERS = insert_triggers()
# A timer completes its task only if no createDeferred Complete was accepted for it meanwhile:
# the same conditional row update ``queue.reserve_token`` makes, so the two are serialized on
# the task row and exactly one of them wins.
_RESERVE_FOR_TIMER = BulkStatement(
    tasks.update()
    .where(
        tasks.c.id == sa.bindparam("b_id"),
        tasks.c.status == sa.literal_column("'Deferred'"),
        tasks.c.completing.is_(False),
    )
    .values(completing=sa.true())
)
# An early Complete of a wait closes its timer, if nobody has claimed it yet, without effect.
_CLOSE_TIMERS = BulkStatement(
    triggers.update()
    .where(
        triggers.c.idempotency_key == sa.bindparam("b_key"),
        triggers.c.status == sa.literal_column(f"'{TriggerStatus.NEW.value}'"),
    )
    .values(
        status=sa.literal_column(f"'{TriggerStatus.CLOSED.value}'"),
        closed_at=sa.bindparam("b_now"),
        engine=sa.bindparam("b_engine"),
    )
)
_UPDATE_RUNS = BulkStatement(
    runs.update()
    .where(runs.c.id == sa.bindparam("b_id"), runs.c.lease_owner == sa.bindparam("b_claim"))
    .values(
        status=sa.bindparam("b_status"),
        updated_at=sa.bindparam("b_now"),
        revision=runs.c.revision + sa.literal_column("1"),
        lease_owner=sa.null(),
        lease_until=sa.null(),
    )
)
# A part of a run's batch committed ahead of the rest: the run stays leased, its status as it is.
_HOLD_RUNS = BulkStatement(
    runs.update()
    .where(runs.c.id == sa.bindparam("b_id"), runs.c.lease_owner == sa.bindparam("b_claim"))
    .values(updated_at=sa.bindparam("b_now"), revision=runs.c.revision + sa.literal_column("1"))
)
# Which of a batch's settled runs have another open trigger (one accepted while the step ran):
# those stay Started. By the batch's list of run ids, in one parameter.
_OPEN = triggers.c.status.in_([sa.literal_column(f"'{s}'") for s in OPEN_TRIGGER_STATUSES])
_OPEN_RUNS = IdListStatement(
    lambda one_of: sa.select(triggers.c.run_id).where(one_of(triggers.c.run_id), _OPEN).distinct()
)
# The same for one run, the usual case of a step, without the list (3.6 against 7.3 µs).
_OPEN_RUN = BulkStatement(
    sa.select(triggers.c.run_id)
    .where(triggers.c.run_id == sa.bindparam("b_run"), _OPEN)
    .limit(sa.literal_column("1"))
)
_RELEASE_RUNS = (
    runs.update()
    .where(
        runs.c.id.in_(sa.bindparam("run_ids", expanding=True)),
        runs.c.lease_owner == sa.bindparam("claim_id"),
    )
    .values(lease_owner=None, lease_until=None, revision=runs.c.revision + 1)
)


class LostClaim(Exception):
    """The claim's lease ran out and another worker took a trigger or run over."""


@dataclass(frozen=True)
class TriggerClose:
    trigger_id: int
    status: TriggerStatus = TriggerStatus.CLOSED
    error: str | None = None


@dataclass
class RunWrite:
    """One run's part of a batch.

    ``status`` is what the run becomes if nothing else is pending for it; an open trigger of
    the run outside this batch keeps it Started. ``None`` leaves the status as it is (no trigger
    of the run could be executed) and only releases the run.
    """

    run_id: int
    status: RunStatus | None = None
    closes: list[TriggerClose] = field(default_factory=list)
    task_inserts: list[Mapping[str, Any]] = field(default_factory=list)
    task_updates: list[Mapping[str, Any]] = field(default_factory=list)
    error_inserts: list[Mapping[str, Any]] = field(default_factory=list)
    trigger_inserts: list[Mapping[str, Any]] = field(default_factory=list)  # timers, returns
    child_runs: list[Mapping[str, Any]] = field(default_factory=list)  # routine runs called
    timer_completions: list[str] = field(default_factory=list)  # task ids a timer completes
    cancelled_timers: list[str] = field(default_factory=list)  # keys of timers to close
    paused_triggers: list[int] = field(default_factory=list)  # held back: a Budget Error
    pause_waiting: bool = False  # it recorded a Budget Error: hold the run's waiting triggers
    resolved_errors: list[str] = field(default_factory=list)  # error ids now Handled
    requeued_triggers: list[int] = field(default_factory=list)  # failed triggers retried
    hold: bool = False  # more of the run's batch commits later: keep it leased, status untouched
    written_status: RunStatus | None = None  # what the commit wrote: Started if still open
    # A Cancel processed (status Cancelled): why and by whom, for routine runs started since.
    cancel_reason: str | None = None
    cancelled_by: str | None = None


def commit(
    connection: Connection,
    writes: Sequence[RunWrite],
    *,
    claim_id: str,
    now: float,
    engine: str,
    max_child_runs: int | None = None,
) -> None:
    """Write a batch inside the caller's transaction; raises LostClaim if a fence fails.

    ``max_child_runs`` is the budget the child runs started are counted against (None: not
    counted, for callers that start none): ``engine.store.call_trees.CallBudgetSpent`` if they
    would go past it.
    """
    closes = [
        {
            "b_id": close.trigger_id,
            "b_claim": claim_id,
            "b_status": str(close.status),  # a StrEnum: str() is its value, faster than .value
            "b_now": now,
            "b_engine": engine,
            "b_error": close.error,
        }
        for write in writes
        for close in write.closes
    ]
    if _CLOSE.execute(connection, closes) != len(closes):
        raise LostClaim
    paused = [
        {"b_id": trigger_id, "b_claim": claim_id, "b_engine": engine}
        for write in writes
        for trigger_id in write.paused_triggers
    ]
    if _PAUSE.execute(connection, paused) != len(paused):
        raise LostClaim
    reserved = [{"b_id": task_id} for w in writes for task_id in w.timer_completions]
    if _RESERVE_FOR_TIMER.execute(connection, reserved) != len(reserved):
        raise LostClaim  # a Complete was accepted for the task since it was read
    _INSERT_TASKS.execute(connection, [row for w in writes for row in w.task_inserts])
    _UPDATE_TASKS.execute(connection, [row for w in writes for row in w.task_updates])
    _INSERT_ERRORS.execute(connection, [row for w in writes for row in w.error_inserts])
    _INSERT_TRIGGERS.execute(connection, [row for w in writes for row in w.trigger_inserts])
    for child in (row for w in writes for row in w.child_runs):  # rare: one by one
        root = rows.trigger_row(
            TriggerAction.ROOT,
            run_id=insert_run(connection, child),
            now=now,
            idempotency_key=rows.call_key(child["parent_task_id"]),
        )
        insert_trigger(connection, root)
    if max_child_runs is not None:
        started = [row["root_run_id"] for w in writes for row in w.child_runs]
        count_calls(connection, started, max_child_runs)
    _CLOSE_TIMERS.execute(
        connection,
        [
            {"b_key": key, "b_now": now, "b_engine": engine}
            for w in writes
            for key in w.cancelled_timers
        ],
    )
    resolved = [{"b_id": e, "b_now": now} for w in writes for e in w.resolved_errors]
    if resolved:
        _RESOLVE_ERRORS.execute(connection, resolved)
        requeued = [{"b_id": t, "b_now": now} for w in writes for t in w.requeued_triggers]
        _REQUEUE_TRIGGERS.execute(connection, requeued)
        resumed = [w.run_id for w in writes if w.resolved_errors]
        connection.execute(_UNPAUSE, {"run_ids": resumed})  # before the runs' status is judged
    _cancelled(connection, writes, now=now, engine=engine)  # before the runs' status is judged
    stopped = [w.run_id for w in writes if w.pause_waiting]
    if stopped:  # after the unpausing: a resolution that met the budget again holds them again
        connection.execute(_PAUSE_WAITING, {"run_ids": stopped, "engine": engine})
    settled = [
        w
        for w in writes
        if not w.hold and w.status is not None and w.status is not RunStatus.STARTED
    ]
    still_open: set[int] = set()
    if settled:
        run_ids = [w.run_id for w in settled]
        if len(run_ids) == 1:
            still_open = (
                set(run_ids) if _OPEN_RUN.first(connection, {"b_run": run_ids[0]}) else set()
            )
        else:
            still_open = {row["run_id"] for row in _OPEN_RUNS.rows(connection, run_ids)}
    updates = []
    for w in writes:
        if w.status is not None and not w.hold:
            w.written_status = RunStatus.STARTED if w.run_id in still_open else w.status
            updates.append(
                {
                    "b_id": w.run_id,
                    "b_claim": claim_id,
                    "b_status": str(w.written_status),
                    "b_now": now,
                }
            )
    if _UPDATE_RUNS.execute(connection, updates) != len(updates):
        raise LostClaim
    held = [{"b_id": w.run_id, "b_claim": claim_id, "b_now": now} for w in writes if w.hold]
    if _HOLD_RUNS.execute(connection, held) != len(held):
        raise LostClaim
    untouched = [w.run_id for w in writes if w.status is None and not w.hold]
    if untouched:
        connection.execute(_RELEASE_RUNS, {"run_ids": untouched, "claim_id": claim_id})


def _cancelled(
    connection: Connection, writes: Sequence[RunWrite], *, now: float, engine: str
) -> None:
    """Close the cancelled runs' open triggers; cancel the routine runs they started since."""
    cancelled = [w for w in writes if w.status is RunStatus.CANCELLED]
    if not cancelled:
        return
    cancels.close_open_triggers(connection, [w.run_id for w in cancelled], now=now, engine=engine)
    for write in cancelled:
        children = cancels.open_call_tree(connection, write.run_id)[1:]
        if children:
            cancels.write_cancels(
                connection,
                children,
                reason=write.cancel_reason,
                requested_by=write.cancelled_by,
                now=now,
            )


__all__ = ["PAUSED_BECAUSE", "LostClaim", "RunWrite", "TriggerClose", "commit"]
