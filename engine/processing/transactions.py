"""Splitting a processed batch into transactions that each stay within the step budget of rows.

A batch is committed in one transaction (group commit), which is cheapest while it is small. But a
run's triggers each stay within the budget of rows per step (``engine.run.budgets``) and a batch
holds up to ``batch_size`` of them: 64 iterations of a loop whose inner loop head adds 20,000 rows
each made one transaction of over a million rows. So the runner keeps each trigger's rows apart
(one :class:`~engine.store.steps.RunWrite` part per trigger, in processing order) and this module
groups consecutive parts into transactions of at most the budget's rows; a part is never split,
and every part stays within the budget by itself. A batch within the budget, the usual case, is
one transaction as before.

Consecutive parts of one run in a transaction are merged into one write. A run whose parts span
transactions is *held* in all but its last: those commits keep its lease (nobody else may process
the run while its remaining triggers are in hand) and leave its status alone; its last commit
writes its status and releases it. What a step updates (its closes, the tasks it resumes or
records arrivals on: at most one row each) rides along uncounted.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.store.steps import RunWrite


def rows_added(write: RunWrite) -> int:
    """The rows a write adds: tasks, triggers, errors, and each child run with its Root trigger."""
    return (
        len(write.task_inserts)
        + len(write.trigger_inserts)
        + len(write.error_inserts)
        + 2 * len(write.child_runs)
    )


def _absorb(write: RunWrite, part: RunWrite) -> None:
    """Add a later part of the same run to ``write``; its status is the later part's."""
    write.closes.extend(part.closes)
    write.task_inserts.extend(part.task_inserts)
    write.task_updates.extend(part.task_updates)
    write.error_inserts.extend(part.error_inserts)
    write.trigger_inserts.extend(part.trigger_inserts)
    write.child_runs.extend(part.child_runs)
    write.timer_completions.extend(part.timer_completions)
    write.cancelled_timers.extend(part.cancelled_timers)
    write.paused_triggers.extend(part.paused_triggers)
    write.pause_waiting = write.pause_waiting or part.pause_waiting
    write.resolved_errors.extend(part.resolved_errors)
    write.requeued_triggers.extend(part.requeued_triggers)
    write.status = part.status


def transactions(parts: Sequence[RunWrite], max_rows: int) -> list[list[RunWrite]]:
    """Group ``parts`` (per trigger, in order, each run's together) into transactions.

    Each transaction adds at most ``max_rows`` rows unless a single part adds more; within one,
    a run has one write, and ``hold`` is set on a run's writes in all but its last transaction.
    """
    groups: list[list[RunWrite]] = []
    current: list[RunWrite] = []
    rows = 0
    for part in parts:
        size = rows_added(part)
        if current and rows + size > max_rows:
            groups.append(current)
            current, rows = [], 0
        if current and current[-1].run_id == part.run_id:
            _absorb(current[-1], part)
        else:
            current.append(part)
        rows += size
    if current:
        groups.append(current)
    if len(groups) > 1:
        last = {write.run_id: number for number, group in enumerate(groups) for write in group}
        for number, group in enumerate(groups):
            for write in group:
                write.hold = last[write.run_id] != number
    return groups


__all__ = ["rows_added", "transactions"]
