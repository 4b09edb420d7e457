"""Retention: deleting finished runs with everything recorded about them, in short batches.

A run is purged with its whole call tree (a top-level run and every routine run under it,
``runs.root_run_id``) and every row about them: tasks, triggers, the fingerprints of keyed
triggers, error records, schedule firings that started them, the Kianda instance they are the
run of, who created them and the call tree's count. Only call trees that are finished go: the
top-level run is in one of the statuses asked for (never Staged or Started), last changed
before the cutoff, and no run of the tree is unfinished or has an open trigger. Tree versions
stay (other runs, and new ones, use them).

Each batch is one short write transaction of at most ``batch_size`` call trees, so a purge of
millions of runs never holds a lock for long and other writers go on between batches. Within
a batch the runs are locked first (PostgreSQL: ``FOR UPDATE``, which a new trigger's foreign
key check waits on; SQLite: the write lock) and the conditions are checked again, so a trigger
accepted while the batch was chosen keeps its run. With an archive, each run's rows are
written as one JSON line (and flushed to disk) before the batch deleting them commits: a
failed commit may leave a line for a run that is still there (purged again later, it is
written again), never a run deleted without its line.

One call tree is deleted on demand (``Engine.delete_run``, the Kinetic v2 deleteRun) by
:func:`delete_call_trees`: the same deletion, in one transaction, for any finished status and
age, refusing (not skipping) a run it cannot take.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import BadRequest, RunNotDeletable, RunNotFound
from engine.statuses import RunStatus
from engine.store.database import Database
from engine.store.instance_tables import instances
from engine.store.request_keys import request_keys
from engine.store.schedules import schedule_firings
from engine.store.tables import (
    OPEN_TRIGGER_STATUSES,
    call_trees,
    errors,
    run_creators,
    runs,
    tasks,
    triggers,
)

UNFINISHED = (RunStatus.STAGED.value, RunStatus.STARTED.value)
FINISHED = tuple(status.value for status in RunStatus if status.value not in UNFINISHED)
# What is purged when no status is named: runs that ended well (and cancelled ones, once runs
# can be cancelled). Failed runs keep an active error someone may still resolve: name them.
DEFAULT_STATUSES = tuple(status for status in ("Completed", "Cancelled") if status in FINISHED)
DEFAULT_BATCH = 200
MAX_BATCH = 10_000


@dataclass(frozen=True)
class PurgeCriteria:
    """Which call trees a purge takes: finished before ``before`` (UNIX seconds), top-level run
    in one of ``statuses``, of the tree named ``tree_name`` if one is given."""

    before: float
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    tree_name: str | None = None

    @classmethod
    def checked(
        cls, *, before: float, statuses: Iterable[str] | None, tree_name: str | None
    ) -> PurgeCriteria:
        """The criteria, or BadRequest naming what cannot be purged."""
        chosen = tuple(dict.fromkeys(statuses)) if statuses is not None else DEFAULT_STATUSES
        if not chosen:
            raise BadRequest(field="statuses", reason="name at least one run status")
        for status in chosen:
            if status not in FINISHED:
                why = "is not finished" if status in UNFINISHED else "is not a run status"
                raise BadRequest(
                    field="statuses",
                    reason=f"{status!r} {why}; runs in {', '.join(FINISHED)} can be purged",
                )
        if tree_name is not None and not tree_name:
            raise BadRequest(field="tree_name", reason="must not be empty")
        return cls(before=before, statuses=chosen, tree_name=tree_name)


@dataclass
class PurgeCounts:
    """How many rows a purge deleted (or, dry, would delete), by what they are."""

    runs: int = 0  # every run of the call trees, routine runs included
    call_trees: int = 0  # top-level runs: what a progress bar counts
    tasks: int = 0
    triggers: int = 0
    errors: int = 0
    firings: int = 0
    instances: int = 0
    more: bool = False  # stopped at its ``max_batches`` with call trees left

    def add(self, other: PurgeCounts) -> None:
        for field in fields(self):
            if field.name == "more":
                continue
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "more"}


def _tree_of(root_ids: Any) -> sa.ColumnElement[bool]:
    return sa.or_(runs.c.id.in_(root_ids), runs.c.root_run_id.in_(root_ids))


def _closed_roots() -> sa.Select[int]:
    """Top-level runs whose whole call tree is finished: the root and its routine runs (found
    through their index on ``root_run_id``) neither Staged nor Started nor with an open
    trigger (found through their index on ``run_id``)."""

    def open_trigger(run_id: sa.ColumnElement[int]) -> sa.Exists:
        return (
            sa.select(triggers.c.id)
            .where(triggers.c.run_id == run_id, triggers.c.status.in_(OPEN_TRIGGER_STATUSES))
            .exists()
        )

    member = runs.alias("member")
    unfinished_member = (
        sa.select(member.c.id)
        .where(
            member.c.root_run_id == runs.c.id,
            sa.or_(member.c.status.in_(UNFINISHED), open_trigger(member.c.id)),
        )
        .exists()
    )
    return sa.select(runs.c.id).where(
        runs.c.parent_run_id.is_(None),
        runs.c.status.not_in(UNFINISHED),
        ~open_trigger(runs.c.id),
        ~unfinished_member,
    )


def _finished_roots(criteria: PurgeCriteria) -> sa.Select[int]:
    """Top-level runs meeting ``criteria`` (the root's status, age and tree) whose whole call
    tree is finished."""
    statement = _closed_roots().where(
        runs.c.status.in_(criteria.statuses), runs.c.updated_at < criteria.before
    )
    if criteria.tree_name is not None:
        statement = statement.where(runs.c.tree_name == criteria.tree_name)
    return statement.order_by(runs.c.id)


def _next_roots(
    connection: Connection, criteria: PurgeCriteria, after: int, limit: int
) -> list[int]:
    statement = _finished_roots(criteria).where(runs.c.id > after).limit(limit)
    return list(connection.execute(statement).scalars())


def count_finished(database: Database, criteria: PurgeCriteria) -> int:
    """How many call trees ``criteria`` take now (a progress bar's total)."""
    counted = sa.select(sa.func.count()).select_from(_finished_roots(criteria).subquery())
    with database.read() as connection:
        return int(connection.execute(counted).scalar_one())


def _counts(connection: Connection, root_ids: Sequence[int]) -> PurgeCounts:
    run_ids = sa.select(runs.c.id).where(_tree_of(root_ids)).scalar_subquery()

    def count(table: sa.Table, column: sa.Column[Any]) -> int:
        statement = sa.select(sa.func.count()).select_from(table).where(column.in_(run_ids))
        return int(connection.execute(statement).scalar_one())

    return PurgeCounts(
        runs=count(runs, runs.c.id),
        call_trees=len(root_ids),
        tasks=count(tasks, tasks.c.run_id),
        triggers=count(triggers, triggers.c.run_id),
        errors=count(errors, errors.c.run_id),
        firings=count(schedule_firings, schedule_firings.c.run_id),
        instances=count(instances, instances.c.run_id),
    )


def _rows(connection: Connection, table: sa.Table, column: Any, run_ids: list[int]) -> list[Any]:
    statement = sa.select(table).where(column.in_(run_ids))
    return [dict(row) for row in connection.execute(statement).mappings()]


def _archive(connection: Connection, run_ids: list[int], archive: IO[bytes]) -> None:
    """One JSON line per run: its row and every row about it, as the tables hold them."""
    by_run: dict[int, dict[str, Any]] = {
        row["id"]: {"run": row, "tasks": [], "triggers": [], "errors": [], "firings": []}
        for row in _rows(connection, runs, runs.c.id, run_ids)
    }
    for name, table, column in (
        ("tasks", tasks, tasks.c.run_id),
        ("triggers", triggers, triggers.c.run_id),
        ("errors", errors, errors.c.run_id),
        ("firings", schedule_firings, schedule_firings.c.run_id),
    ):
        for row in _rows(connection, table, column, run_ids):
            by_run[row["run_id"]][name].append(row)
    for row in _rows(connection, instances, instances.c.run_id, run_ids):
        by_run[row["run_id"]]["instance"] = row
    for run_id in sorted(by_run):
        archive.write(orjson.dumps(by_run[run_id]) + b"\n")
    archive.flush()
    os.fsync(archive.fileno())


def _delete(connection: Connection, root_ids: list[int]) -> PurgeCounts:
    run_ids = list(connection.execute(sa.select(runs.c.id).where(_tree_of(root_ids))).scalars())
    trigger_ids = sa.select(triggers.c.id).where(triggers.c.run_id.in_(run_ids))

    def delete(table: sa.Table, condition: sa.ColumnElement[bool]) -> int:
        return int(connection.execute(table.delete().where(condition)).rowcount)

    delete(request_keys, request_keys.c.trigger_id.in_(trigger_ids))
    counts = PurgeCounts(call_trees=len(root_ids))
    counts.errors = delete(errors, errors.c.run_id.in_(run_ids))
    counts.tasks = delete(tasks, tasks.c.run_id.in_(run_ids))
    counts.triggers = delete(triggers, triggers.c.run_id.in_(run_ids))
    counts.firings = delete(schedule_firings, schedule_firings.c.run_id.in_(run_ids))
    counts.instances = delete(instances, instances.c.run_id.in_(run_ids))
    delete(run_creators, run_creators.c.run_id.in_(run_ids))
    delete(call_trees, call_trees.c.root_run_id.in_(root_ids))
    counts.runs = delete(runs, runs.c.id.in_(run_ids))  # one statement: callers with callees
    return counts


def _purge_batch(
    database: Database,
    criteria: PurgeCriteria,
    chosen: list[int],
    archive: IO[bytes] | None,
) -> PurgeCounts:
    with database.write() as connection:
        _lock(database, connection, chosen)  # new triggers of these runs wait for the batch
        still = _finished_roots(criteria).where(runs.c.id.in_(chosen))
        root_ids = list(connection.execute(still).scalars())  # checked again, under the locks
        if not root_ids:
            return PurgeCounts()
        if archive is not None:
            run_ids = sa.select(runs.c.id).where(_tree_of(root_ids))
            _archive(connection, list(connection.execute(run_ids).scalars()), archive)
        return _delete(connection, root_ids)


def _lock(database: Database, connection: Connection, root_ids: Sequence[int]) -> None:
    """PostgreSQL: lock the call trees' runs (``FOR UPDATE``, which a new trigger's foreign key
    check waits on); SQLite's write transaction holds its lock already."""
    if database.is_postgresql:
        locking = sa.select(runs.c.id).where(_tree_of(root_ids)).order_by(runs.c.id)
        connection.execute(locking.with_for_update())


def _why_kept(connection: Connection, run_id: int) -> str | None:
    """Why the run ``run_id`` cannot be deleted now, or None if its call tree can go."""
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise RunNotFound(run_id=run_id)
    if row["parent_run_id"] is not None:
        return (
            f"it is a routine's run, called by run {row['parent_run_id']}; it goes with its "
            f"call tree: delete the top-level run {row['root_run_id']}"
        )
    if row["status"] in UNFINISHED:
        return f"it is {row['status']}: cancel it first, or wait until it ends"
    closed = connection.execute(_closed_roots().where(runs.c.id == run_id)).first()
    if closed is None:
        return (
            "a routine run it called is unfinished, or one of its runs has an open trigger: "
            "cancel it first, or wait until the trigger is processed"
        )
    return None


def delete_call_trees(database: Database, root_ids: Sequence[int]) -> PurgeCounts:
    """Delete the call trees of the top-level runs ``root_ids`` with every row about them, in
    one transaction; the counts. All or nothing: an unknown id raises RunNotFound, a routine's
    run or a call tree not finished (a Staged or Started run, an open trigger) RunNotDeletable
    naming why, checked under the same locks as a purge batch, and nothing is deleted."""
    chosen = sorted(set(root_ids))
    with database.write() as connection:
        _lock(database, connection, chosen)
        for run_id in chosen:
            reason = _why_kept(connection, run_id)
            if reason is not None:
                raise RunNotDeletable(run_id=run_id, reason=reason)
        return _delete(connection, chosen) if chosen else PurgeCounts()


def purge(
    database: Database,
    criteria: PurgeCriteria,
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    archive: str | os.PathLike[str] | None = None,
    progress: Callable[[PurgeCounts], None] | None = None,
    max_batches: int | None = None,
) -> PurgeCounts:
    """Purge the call trees ``criteria`` take, ``batch_size`` per transaction; the counts.

    ``dry_run`` counts what would go and deletes nothing (nor archives). ``archive`` names a
    JSON Lines file the purged runs are appended to. ``progress`` is told each batch's counts
    as it commits. ``max_batches`` stops after that many (a scheduled pass), ``more`` of the
    answer then saying whether call trees were left.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise BadRequest(field="batch_size", reason=f"must be 1 to {MAX_BATCH:,}")
    if archive is None or dry_run:
        return _purge(database, criteria, batch_size, dry_run, None, progress, max_batches)
    try:
        opened = Path(archive).open("ab")  # noqa: SIM115 (closed below, whatever happens)
    except OSError as exc:
        raise BadRequest(field="archive", reason=f"cannot write {str(archive)!r}: {exc}") from exc
    with opened:
        return _purge(database, criteria, batch_size, dry_run, opened, progress, max_batches)


def _purge(
    database: Database,
    criteria: PurgeCriteria,
    batch_size: int,
    dry_run: bool,
    archive: IO[bytes] | None,
    progress: Callable[[PurgeCounts], None] | None,
    max_batches: int | None,
) -> PurgeCounts:
    total = PurgeCounts()
    after = 0
    batches = 0
    while True:
        if max_batches is not None and batches >= max_batches:
            total.more = True
            return total
        batches += 1
        with database.read() as connection:
            chosen = _next_roots(connection, criteria, after, batch_size)
            if dry_run and chosen:
                done = _counts(connection, chosen)
        if not chosen:
            return total
        after = chosen[-1]
        if not dry_run:
            done = _purge_batch(database, criteria, chosen, archive)
        total.add(done)
        if progress is not None:
            progress(done)


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_STATUSES",
    "FINISHED",
    "PurgeCounts",
    "PurgeCriteria",
    "count_finished",
    "delete_call_trees",
    "purge",
]
