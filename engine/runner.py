"""Processing claimed triggers: load once, execute in memory, commit with the close.

A claimed batch is grouped by run. The runs of the batch (and the tasks of runs that have
any) are read in one transaction; then each trigger of a run is executed in memory, with no
transaction open while handlers run, and committed in one transaction that first closes the
trigger (fenced on the claim), then writes the changed task rows, the new error rows and the
run's status. The run's lease is released with its last trigger of the batch.

A trigger that cannot be processed at all (its tree version no longer builds, its task is not
deferred any more) is closed as Failed with the reason, and the run gets a Trigger Error, so
nothing is retried forever and nothing fails silently. A database failure mid-step leaves the
trigger claimed; its lease runs out and any worker takes it up again.
"""

from __future__ import annotations

import logging
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine import ids
from engine.errors import TreeError
from engine.execution import Execution
from engine.handlers import TriggerGateway
from engine.results_xml import parse_results
from engine.run_state import RunState
from engine.statuses import (
    ErrorStatus,
    ErrorType,
    RunStatus,
    TaskStatus,
    TriggerAction,
    TriggerStatus,
)
from engine.store import queue
from engine.store import runs as run_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.tree import Tree

TreeResolver = Callable[[int], Tree]


@dataclass(frozen=True)
class Claim:
    id: str
    triggers: Sequence[ClaimedTrigger]


class LostClaim(Exception):
    """The claim's lease ran out and another worker took the trigger over."""


class Runner:
    """Claims and processes triggers; one per engine, shared by its worker threads."""

    def __init__(
        self,
        database: Database,
        *,
        resolve_tree: TreeResolver,
        gateway: TriggerGateway,
        clock: Callable[[], float],
        lease_seconds: float,
        engine_name: str,
        logger: logging.Logger,
        max_attempts: int = 5,
    ) -> None:
        self.database = database
        self.resolve_tree = resolve_tree
        self.gateway = gateway
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.engine_name = engine_name
        self.logger = logger
        self.max_attempts = max_attempts

    def claim(self, limit: int) -> Claim:
        claim_id = ids.claim_id()
        with self.database.write() as connection:
            claimed = queue.claim(
                connection,
                claim_id=claim_id,
                now=self.clock(),
                lease_seconds=self.lease_seconds,
                limit=limit,
            )
        return Claim(id=claim_id, triggers=claimed)

    def process(self, claim: Claim, *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process a claim's triggers in order; returns how many were closed."""
        by_run: dict[int, list[ClaimedTrigger]] = defaultdict(list)
        for trigger in claim.triggers:
            by_run[trigger.run_id].append(trigger)
        with self.database.read() as connection:
            run_rows = run_store.load_runs(connection, list(by_run))
            started = [rid for rid, row in run_rows.items() if row["status"] != RunStatus.STAGED]
            task_rows = run_store.load_tasks(connection, started)
            error_counts = run_store.active_error_counts(connection, started)
        done = 0
        unprocessed: list[int] = []
        for run_id, group in by_run.items():
            if should_stop():
                unprocessed.extend(t.id for t in group)
                continue
            state: RunState | None = None
            for position, trigger in enumerate(group):
                last = position == len(group) - 1
                try:
                    if state is None:
                        state = RunState.from_rows(
                            run_rows[run_id],
                            self.resolve_tree(run_rows[run_id]["tree_version_id"]),
                            task_rows.get(run_id, ()),
                            error_counts.get(run_id, 0),
                        )
                    self._step(claim.id, state, trigger, release=last)
                    done += 1
                except TreeError as exc:
                    self._fail_trigger(claim.id, trigger, ErrorType.MISSING_HANDLER, str(exc), last)
                    done += 1
                except LostClaim:
                    self.logger.warning("trigger %s: claim %s lost its lease", trigger.id, claim.id)
                    break
        if unprocessed:
            with self.database.write() as connection:
                queue.release(connection, claim_id=claim.id, trigger_ids=unprocessed)
        return done

    def _step(
        self, claim_id: str, state: RunState, trigger: ClaimedTrigger, *, release: bool
    ) -> None:
        now = self.clock()
        execution = Execution(
            state,
            trigger_id=trigger.id,
            action=trigger.action,
            message=trigger.message,
            now=now,
            gateway=self.gateway,
            logger=self.logger,
        )
        if trigger.attempts > self.max_attempts:
            reason = f"gave up after {trigger.attempts - 1} attempts that did not finish"
            self._fail_trigger(claim_id, trigger, ErrorType.TRIGGER, reason, release)
            return
        if trigger.action == TriggerAction.ROOT:
            if state.status is RunStatus.STAGED:
                execution.root()
            else:  # only a bug could do this; closing it keeps the run's state as it is
                self.logger.error(
                    "Root trigger %s found run %s already started", trigger.id, state.id
                )
        else:
            task = state.task_by_id(trigger.task_id)
            if task is None or task.status is not TaskStatus.DEFERRED:
                found = "no task" if task is None else f"task status {task.status.value}"
                reason = f"{trigger.action} trigger found {found}"
                self._fail_trigger(claim_id, trigger, ErrorType.TRIGGER, reason, release)
                return
            results = parse_results(trigger.results)
            if trigger.action == TriggerAction.COMPLETE:
                execution.complete(task, results)
            else:
                execution.update(task, results)
        self._commit(claim_id, state, trigger, release=release, now=now)

    def _commit(
        self, claim_id: str, state: RunState, trigger: ClaimedTrigger, *, release: bool, now: float
    ) -> None:
        task_inserts, task_updates = state.take_changes(state.id)
        error_inserts, state.new_errors = state.new_errors, []
        root = trigger.action == TriggerAction.ROOT
        with self.database.write() as connection:
            if not queue.close(
                connection,
                trigger_id=trigger.id,
                claim_id=claim_id,
                now=now,
                engine=self.engine_name,
            ):
                raise LostClaim
            run_store.write_step(
                connection,
                task_inserts=task_inserts,
                task_updates=task_updates,
                error_inserts=error_inserts,
            )
            others = not root and queue.has_other_open_triggers(
                connection, run_id=state.id, trigger_id=trigger.id
            )
            state.status = state.final_status(other_open_triggers=others)
            if not run_store.update_run(
                connection,
                run_id=state.id,
                claim_id=claim_id,
                status=state.status,
                now=now,
                release=release,
            ):
                connection.rollback()
                raise LostClaim

    def _fail_trigger(
        self, claim_id: str, trigger: ClaimedTrigger, kind: ErrorType, reason: str, release: bool
    ) -> None:
        now = self.clock()
        self.logger.error("trigger %s failed: %s", trigger.id, reason)
        error = {
            "id": ids.row_id(),
            "run_id": trigger.run_id,
            "task_id": trigger.task_id,
            "trigger_id": trigger.id,
            "node": "",
            "loop_index": "/",
            "type": kind.value,
            "status": ErrorStatus.ACTIVE.value,
            "summary": reason.splitlines()[0],
            "text": reason + "\n" + traceback.format_exc(),
            "connector_to": None,
            "created_at": now,
        }
        with self.database.write() as connection:
            if not queue.close(
                connection,
                trigger_id=trigger.id,
                claim_id=claim_id,
                now=now,
                engine=self.engine_name,
                status=TriggerStatus.FAILED,
                error=reason,
            ):
                raise LostClaim
            run_store.write_step(
                connection, task_inserts=(), task_updates=(), error_inserts=[error]
            )
            if release:
                queue.release_runs(connection, claim_id=claim_id)


__all__ = ["Claim", "LostClaim", "Runner"]
