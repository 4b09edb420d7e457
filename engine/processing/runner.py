"""Processing claimed triggers: load once, execute in memory, commit the batch with the closes.

A claimed batch is grouped by run. The runs of the batch (and the tasks of runs that have
any) are read in one transaction; then each trigger of a run is executed in memory, with no
transaction open while handlers run. What the batch changed is committed in one transaction
that closes every trigger (fenced on the claim) together with the task rows, error rows and
run statuses they produced, so a trigger's changes are never visible without its close, nor its
close without its changes (group commit: see ``engine.store.steps``). If the batch cannot be
committed as a whole, each run's part is committed on its own, so one lost lease or one bad row
costs only that run's triggers.

A trigger that cannot be processed at all (its tree version no longer builds, its task is not
deferred any more) is closed as Failed with the reason, and the run gets a Trigger Error, so
nothing is retried forever and nothing fails silently. A trigger whose execution raises
unexpectedly, or a database failure, leaves the run's triggers claimed; their lease runs out
and any worker takes them up again, until ``max_attempts`` closes them as Failed.

A token issued by a batch can be resumed once the batch commits: a handler that passes a fresh
token to a system answering within the same milliseconds may get "Unable to locate" and should
retry (the trigger API is idempotent with ``idempotency_key``).
"""

from __future__ import annotations

import logging
import traceback
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine import ids, rows
from engine.errors import TreeError
from engine.handlers.handler import Behaviour, TriggerGateway
from engine.processing.observers import Observers
from engine.processing.run_cache import RunCache
from engine.results_xml import parse_results
from engine.run.execution import Execution
from engine.run.resolution import apply_to_run
from engine.run.routines import RoutineLookup
from engine.run.state import RunState
from engine.statuses import (
    ErrorType,
    ResolutionAction,
    RunStatus,
    TaskStatus,
    TriggerAction,
    TriggerStatus,
)
from engine.store import queue, resolutions, steps
from engine.store import runs as run_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.steps import LostClaim, RunWrite, TriggerClose
from engine.tree.model import Tree

TreeResolver = Callable[[int], Tree]


@dataclass(frozen=True)
class Claim:
    id: str
    triggers: Sequence[ClaimedTrigger]


@dataclass(frozen=True)
class _Loaded:
    """The rows a batch needs, read in one transaction."""

    runs: Mapping[int, Mapping[str, Any]]
    tasks: Mapping[int, Sequence[Mapping[str, Any]]]
    error_nodes: Mapping[int, dict[str, int]]
    resolutions: Mapping[int, Mapping[str, Any]]  # Resolve trigger id -> the error it resolves
    # States built or taken from the cache for this batch (engine.processing.run_cache).
    states: dict[int, RunState] = field(default_factory=dict)


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
        selection: Sequence[str] | None = None,
        routine_lookup: RoutineLookup | None = None,
        run_cache: RunCache | None = None,
    ) -> None:
        self.database = database
        self.resolve_tree = resolve_tree
        self.gateway = gateway
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.engine_name = engine_name
        self.logger = logger
        self.max_attempts = max_attempts
        self.selection = selection  # stored labels this runner claims; None: any (selection.py)
        self.routine_lookup = routine_lookup  # the routines calls start (engine.tree.routines)
        self.observers = Observers()  # told what each commit closed (engine.processing.observers)
        # States kept between batches (engine.processing.run_cache).
        self.run_cache = run_cache if run_cache is not None else RunCache()

    def claim(self, limit: int) -> Claim:
        claim_id = ids.claim_id()
        with self.database.write() as connection:
            claimed = queue.claim(
                connection,
                claim_id=claim_id,
                now=self.clock(),
                lease_seconds=self.lease_seconds,
                limit=limit,
                selection=self.selection,
            )
        return Claim(id=claim_id, triggers=claimed)

    def process(self, claim: Claim, *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process a claim's triggers in order and commit them; returns how many were closed."""
        by_run: dict[int, list[ClaimedTrigger]] = defaultdict(list)
        resolves = []
        for trigger in claim.triggers:
            by_run[trigger.run_id].append(trigger)
            if trigger.action == TriggerAction.RESOLVE:
                resolves.append(trigger.id)
        loaded = self._load(list(by_run), resolves)
        writes: list[RunWrite] = []
        unprocessed: list[int] = []
        for run_id, group in by_run.items():
            if should_stop():
                unprocessed.extend(t.id for t in group)
                continue
            write = self._execute_run(run_id, group, loaded)
            if write is not None:
                writes.append(write)
        done = self._commit(claim.id, writes, claim.triggers, loaded)
        if unprocessed:
            with self.database.write() as connection:
                queue.release(connection, claim_id=claim.id, trigger_ids=unprocessed)
        return done

    def _load(self, run_ids: list[int], resolve_ids: list[int]) -> _Loaded:
        with self.database.read() as connection:
            run_rows = run_store.load_runs(connection, run_ids)
            kept: dict[int, RunState] = {}
            started = []
            for run_id, row in run_rows.items():
                state = self.run_cache.take(run_id, row["revision"])
                if state is not None:
                    kept[run_id] = state
                elif row["status"] != RunStatus.STAGED:
                    started.append(run_id)
            return _Loaded(
                runs=run_rows,
                tasks=run_store.load_tasks(connection, started),
                error_nodes=run_store.active_error_nodes(connection, started),
                resolutions=resolutions.pending(connection, run_ids, resolve_ids),
                states=kept,
            )

    def _execute_run(
        self, run_id: int, group: Sequence[ClaimedTrigger], loaded: _Loaded
    ) -> RunWrite | None:
        """Execute a run's triggers of this batch in order; None if the run must be retried."""
        write = RunWrite(run_id)
        state = loaded.states.get(run_id)
        executed = False
        for trigger in group:
            if trigger.attempts > self.max_attempts:
                reason = f"gave up after {trigger.attempts - 1} attempts that did not finish"
                self._fail(write, trigger, ErrorType.TRIGGER, reason)
                continue
            error = loaded.resolutions.get(trigger.id)
            if error is not None and not error["node"]:
                self._resolve_without_node(write, trigger, error, state, loaded)
                continue
            try:
                if state is None:
                    row = loaded.runs[run_id]
                    state = RunState.from_rows(
                        row,
                        self.resolve_tree(row["tree_version_id"]),
                        loaded.tasks.get(run_id, ()),
                        loaded.error_nodes.get(run_id, {}),
                    )
                    loaded.states[run_id] = state
                refused = self._execute(state, trigger, write, error)
            except TreeError as exc:
                self._fail(write, trigger, ErrorType.MISSING_HANDLER, str(exc))
                continue
            except Exception:
                self.logger.exception(
                    "trigger %s of run %s failed unexpectedly; retried later", trigger.id, run_id
                )
                return None
            if refused is not None:
                self._fail(write, trigger, ErrorType.TRIGGER, refused)
                continue
            write.closes.append(TriggerClose(trigger.id))
            executed = True
        if state is not None and executed:
            inserts, updates = state.take_changes(run_id)
            write.task_inserts.extend(inserts)
            write.task_updates.extend(updates)
            write.error_inserts.extend(state.new_errors)
            write.trigger_inserts.extend(state.new_triggers)
            write.child_runs.extend(state.new_runs)
            state.new_errors, state.new_triggers, state.new_runs = [], [], []
            write.status = state.final_status(other_open_triggers=False)
        return write

    def _execute(
        self,
        state: RunState,
        trigger: ClaimedTrigger,
        write: RunWrite,
        error: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Apply one trigger to the run in memory; returns why it was refused, if it was.

        A Complete without a token is the engine's own: a wait's timer, or a routine's return
        completing its caller (createDeferred always names a token). If
        its task was resumed first, or a createDeferred Complete for it is queued, the timer
        closes without effect: the earlier Complete wins. Otherwise the task's row is fenced
        (``write.timer_completions``) so that a Complete accepted while this trigger runs
        makes the commit fail and the trigger is taken up again, to close without effect.
        A createDeferred Complete of a wait closes its timer in the same commit
        (``write.cancelled_timers``), so the run does not stay Started until the timer is due.
        """
        execution = Execution(
            state,
            trigger_id=trigger.id,
            action=trigger.action,
            message=trigger.message,
            now=self.clock(),
            gateway=self.gateway,
            logger=self.logger,
            routine_lookup=self.routine_lookup,
        )
        if trigger.action == TriggerAction.ROOT:
            if state.status is RunStatus.STAGED:
                execution.root()
            else:  # only a bug could do this; closing it keeps the run's state as it is
                self.logger.error(
                    "Root trigger %s found run %s already started", trigger.id, state.id
                )
            return None
        if trigger.action == TriggerAction.RESOLVE:
            if error is None:
                return "Resolve trigger found no resolution waiting for it"
            refused = apply_to_run(state, execution, error)
            if refused is None:
                write.resolved_errors.append(error["id"])
            return refused
        if trigger.action == TriggerAction.ITERATION:
            return execution.loops.iterate(state.task_by_id(trigger.task_id))
        task = state.task_by_id(trigger.task_id)
        timer = trigger.action == TriggerAction.COMPLETE and trigger.token is None
        if timer and (task is None or task.status is not TaskStatus.DEFERRED or task.completing):
            self.logger.info("run %s: wait resumed before its timer %s", state.id, trigger.id)
            return None
        if task is None or task.status is not TaskStatus.DEFERRED:
            found = "no task" if task is None else f"task status {task.status.value}"
            return f"{trigger.action} trigger found {found}"
        results = parse_results(trigger.results)
        if trigger.action == TriggerAction.COMPLETE:
            if timer:
                write.timer_completions.append(task.id)
            elif state.tree.nodes[task.node].handler.behaviour is Behaviour.WAIT:
                write.cancelled_timers.append(rows.timer_key(task.id))
            execution.complete(task, results)
        else:
            execution.update(task, results)
        return None

    def _resolve_without_node(
        self,
        write: RunWrite,
        trigger: ClaimedTrigger,
        error: Mapping[str, Any],
        state: RunState | None,
        loaded: _Loaded,
    ) -> None:
        """Resolve an error raised before any node ran; needs no tree (it may not build).

        Retry Task queues the failed trigger again; Do Nothing only marks the error Handled.
        The run's status is left as the failed trigger left it.
        """
        write.closes.append(TriggerClose(trigger.id))
        write.resolved_errors.append(error["id"])
        if error["resolution_action"] == ResolutionAction.RETRY_TASK and error["trigger_id"]:
            write.requeued_triggers.append(error["trigger_id"])
        if state is not None:
            state.forget_error(error["node"])
            return
        counts = loaded.error_nodes.get(trigger.run_id)
        if counts and counts.get(error["node"], 0) > 0:
            counts[error["node"]] -= 1

    def _fail(self, write: RunWrite, trigger: ClaimedTrigger, kind: ErrorType, reason: str) -> None:
        self.logger.error("trigger %s failed: %s", trigger.id, reason)
        trace = traceback.format_exc()
        write.closes.append(TriggerClose(trigger.id, TriggerStatus.FAILED, reason))
        write.error_inserts.append(
            rows.error_row(
                kind,
                run_id=trigger.run_id,
                summary=reason.splitlines()[0],
                text=reason if trace.startswith("NoneType: None") else f"{reason}\n{trace}",
                now=self.clock(),
                task_id=trigger.task_id,
                trigger_id=trigger.id,
            )
        )

    def _commit(
        self,
        claim_id: str,
        writes: Sequence[RunWrite],
        claimed: Sequence[ClaimedTrigger] = (),
        loaded: _Loaded | None = None,
    ) -> int:
        """Commit the batch in one transaction; if that fails, each run's part on its own."""
        if not writes:
            return 0
        try:
            self._commit_together(claim_id, writes, claimed, loaded)
            return sum(len(w.closes) for w in writes)
        except (LostClaim, sa.exc.IntegrityError, sa.exc.DataError):
            if len(writes) == 1:
                self._log_lost(claim_id, writes[0])
                return 0
        done = 0
        for write in writes:
            try:
                self._commit_together(claim_id, [write], claimed, loaded)
                done += len(write.closes)
            except (LostClaim, sa.exc.IntegrityError, sa.exc.DataError):
                self._log_lost(claim_id, write)
        return done

    def _commit_together(
        self,
        claim_id: str,
        writes: Sequence[RunWrite],
        claimed: Sequence[ClaimedTrigger] = (),
        loaded: _Loaded | None = None,
    ) -> None:
        now = self.clock()
        with self.database.write() as connection:
            steps.commit(connection, writes, claim_id=claim_id, now=now, engine=self.engine_name)
        if loaded is not None:
            for write in writes:
                self._keep(write, loaded)
        self.observers.committed(writes, claimed, now=now)

    def _keep(self, write: RunWrite, loaded: _Loaded) -> None:
        """Keep a committed run's state for its next batch, if reading it back would give it.

        The commit bumped the run's revision by one (``steps.commit``), so the state is valid
        while the run is at that revision. A run that settled needs no state; a batch that
        failed a trigger or applied a resolution wrote rows the state does not mirror.
        """
        state = loaded.states.get(write.run_id)
        if state is None or write.written_status is not RunStatus.STARTED:
            return
        if write.resolved_errors or any(c.status is not TriggerStatus.CLOSED for c in write.closes):
            return
        state.status = RunStatus.STARTED
        self.run_cache.keep(write.run_id, loaded.runs[write.run_id]["revision"] + 1, state)

    def _log_lost(self, claim_id: str, write: RunWrite) -> None:
        self.logger.warning(
            "run %s: claim %s could not commit triggers %s (lease lost or rows refused);"
            " they will be taken up again",
            write.run_id,
            claim_id,
            [close.trigger_id for close in write.closes],
            exc_info=True,
        )


__all__ = ["Claim", "LostClaim", "Runner"]
