"""Committing a processed batch: group commit within the step budget, run by run on failure.

The runner hands over one write per trigger it processed, in order (``engine.store.steps``). They
are committed in as few transactions as the budget of rows per step allows, usually one
(``engine.processing.transactions``). If a transaction cannot commit as a whole (a lease ran out
and another worker took a run over, a row was refused, a call tree's budget was spent elsewhere),
each run's part of it commits on its own, so one lost run costs only its own triggers; a run lost
in one transaction is left out of the later ones. Its triggers are taken up again when their lease
runs out, or at once when it was the call tree's budget (they are processed again from its count
as it is now).

After each commit the observers are told what closed, and a run whose last part committed keeps
its state for its next batch when reading its rows back would give it
(``engine.processing.run_cache``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.processing.observers import Observers
from engine.processing.run_cache import RunCache
from engine.processing.transactions import transactions
from engine.run.budgets import Budgets
from engine.run.state import RunState
from engine.statuses import RunStatus
from engine.store import queue, steps
from engine.store.call_trees import CallBudgetSpent
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.steps import LostClaim, RunWrite

_LOST = (LostClaim, CallBudgetSpent, sa.exc.IntegrityError, sa.exc.DataError)


class BatchCommit:
    """Commits the batches of one runner; shared by its worker threads (it keeps no batch)."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], float],
        engine_name: str,
        logger: logging.Logger,
        observers: Observers,
        run_cache: RunCache,
        budgets: Budgets,
    ) -> None:
        self.database = database
        self.clock = clock
        self.engine_name = engine_name
        self.logger = logger
        self.observers = observers
        self.run_cache = run_cache
        self.budgets = budgets

    def commit(
        self,
        claim_id: str,
        parts: Sequence[RunWrite],
        claimed: Sequence[ClaimedTrigger],
        runs: Mapping[int, Mapping[str, Any]],
        states: Mapping[int, RunState],
        *,
        ask: Callable[[Connection], bool] | None = None,
    ) -> tuple[int, bool | None]:
        """Commit a batch's parts; returns how many triggers were closed and, with ``ask``,
        what it answered in the batch's last transaction (None if none committed).

        ``ask`` (``queue.due``) rides in the step's own transaction, so learning whether
        anything else is due costs a consumer no transaction of its own.
        """
        done = 0
        answer: list[bool] = []
        lost: dict[int, bool] = {}  # run -> whether its call tree's budget was spent elsewhere
        again: list[int] = []  # triggers of such runs, to process again at once
        commits: dict[int, int] = {}  # run -> its commits so far: its revision went up as many
        for group in transactions(parts, self.budgets.step_rows):
            writes = []
            for write in group:
                if write.run_id not in lost:
                    writes.append(write)
                elif lost[write.run_id]:
                    again.extend(_held(write))
            if not writes:
                continue
            try:
                self._commit_together(claim_id, writes, claimed, runs, states, commits, ask, answer)
                done += sum(len(w.closes) for w in writes)
                continue
            except _LOST as exc:
                if len(writes) == 1:
                    self._lose(claim_id, writes[0], exc, lost, again)
                    continue
            for write in writes:
                try:
                    self._commit_together(
                        claim_id, [write], claimed, runs, states, commits, ask, answer
                    )
                    done += len(write.closes)
                except _LOST as exc:
                    self._lose(claim_id, write, exc, lost, again)
        if again:
            with self.database.write() as connection:
                queue.release(connection, claim_id=claim_id, trigger_ids=again)
            return done, None  # released just now: due, but not what the answer saw
        return done, answer[-1] if answer else None

    def _commit_together(
        self,
        claim_id: str,
        writes: Sequence[RunWrite],
        claimed: Sequence[ClaimedTrigger],
        runs: Mapping[int, Mapping[str, Any]],
        states: Mapping[int, RunState],
        commits: dict[int, int],
        ask: Callable[[Connection], bool] | None = None,
        answer: list[bool] | None = None,
    ) -> None:
        now = self.clock()
        with self.database.write() as connection:
            steps.commit(
                connection,
                writes,
                claim_id=claim_id,
                now=now,
                engine=self.engine_name,
                max_child_runs=self.budgets.child_runs,
            )
            if ask is not None and answer is not None:
                answer.append(ask(connection))
        for write in writes:
            commits[write.run_id] = commits.get(write.run_id, 0) + 1
            if not write.hold:
                self._keep(write, runs, states, commits[write.run_id])
        self.observers.committed(writes, claimed, now=now)

    def _keep(
        self,
        write: RunWrite,
        runs: Mapping[int, Mapping[str, Any]],
        states: Mapping[int, RunState],
        commits: int,
    ) -> None:
        """Keep a committed run's state for its next batch, if reading it back would give it.

        Each of the batch's commits of the run bumped its revision by one (``steps.commit``), so
        the state is valid while the run is at that revision. A run that settled needs no state;
        the runner left out the states of runs whose batch failed a trigger or applied a
        resolution, which wrote rows the state does not mirror.
        """
        state = states.get(write.run_id)
        if state is None or write.written_status is not RunStatus.STARTED:
            return
        state.status = RunStatus.STARTED
        self.run_cache.keep(write.run_id, runs[write.run_id]["revision"] + commits, state)

    def _lose(
        self,
        claim_id: str,
        write: RunWrite,
        exc: Exception,
        lost: dict[int, bool],
        again: list[int],
    ) -> None:
        spent = isinstance(exc, CallBudgetSpent)
        lost[write.run_id] = spent
        if spent:
            again.extend(_held(write))
            self.logger.info(
                "run %s: %s before claim %s committed; its triggers %s are processed again",
                write.run_id,
                exc,
                claim_id,
                [close.trigger_id for close in write.closes],
            )
            return
        self.logger.warning(
            "run %s: claim %s could not commit triggers %s (lease lost or rows refused);"
            " they will be taken up again",
            write.run_id,
            claim_id,
            [close.trigger_id for close in write.closes],
            exc_info=True,
        )


def _held(write: RunWrite) -> list[int]:
    """The triggers a write would have closed or paused: still claimed if it is not committed."""
    return [close.trigger_id for close in write.closes] + write.paused_triggers


__all__ = ["BatchCommit"]
