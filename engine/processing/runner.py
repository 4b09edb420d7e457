"""Processing claimed triggers: load once, execute in memory, commit the batch with the closes.

A claimed batch is grouped by run. The runs of the batch (and the tasks of runs that have
any) are read in one transaction; then each trigger of a run is executed in memory, with no
transaction open while handlers run, held to the run's budgets (``engine.run.budgets``). What the
batch changed is committed in one transaction that closes every trigger (fenced on the claim)
together with the task rows, error rows and run statuses they produced, so a trigger's changes are
never visible without its close, nor its close without its changes (group commit: see
``engine.store.steps``); a batch that adds more rows than the budget of rows per step is committed
in several, each trigger's rows whole (``engine.processing.commits``). If a transaction cannot be
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

from sqlalchemy.engine import Connection

from engine import ids, rows
from engine.errors import TreeError
from engine.handlers.handler import Behaviour, TriggerGateway
from engine.processing import cancel
from engine.processing.commits import BatchCommit
from engine.processing.observers import Observers
from engine.processing.run_cache import RunCache
from engine.processing.run_control import apply_manual
from engine.results_xml import parse_results
from engine.run.budgets import Budgets, CallTally
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
from engine.store import call_trees, queue, resolutions
from engine.store import runs as run_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.steps import RunWrite, TriggerClose
from engine.tree.model import Tree

TreeResolver = Callable[[int], Tree]


@dataclass(frozen=True)
class Claim:
    id: str
    triggers: Sequence[ClaimedTrigger]
    # A claim its accept wrote (engine.processing.hand_off): the rows of its new runs, as written,
    # which need no reading back, and when its lease ends.
    runs: Mapping[int, Mapping[str, Any]] | None = None
    until: float | None = None

    def expired(self, now: float) -> bool:
        """Whether a claim its accept wrote was handed over after its lease ran out: another
        worker may hold its triggers now, so it must be handed back, not processed."""
        return self.until is not None and now >= self.until


@dataclass(frozen=True)
class _Loaded:
    """The rows a batch needs, read in one transaction."""

    runs: Mapping[int, Mapping[str, Any]]
    tasks: Mapping[int, Sequence[Mapping[str, Any]]]
    errors: Mapping[int, dict[tuple[str, str], int]]  # active, by (node, type)
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
        budgets: Budgets | None = None,
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
        self.budgets = budgets or Budgets()
        self.committer = BatchCommit(
            database,
            clock=clock,
            engine_name=engine_name,
            logger=logger,
            observers=self.observers,
            run_cache=self.run_cache,
            budgets=self.budgets,
        )

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

    def due(self) -> bool:
        """Whether a claim would find anything now (``queue.due``: read only)."""
        with self.database.read() as connection:
            return self._due_in(connection)

    def hand_back(self, claim: Claim) -> None:
        """Release what ``claim`` still holds, so that any worker may claim it at once."""
        with self.database.write() as connection:
            queue.release(connection, claim_id=claim.id, trigger_ids=[t.id for t in claim.triggers])

    def process(self, claim: Claim, *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process a claim's triggers in order and commit them; returns how many were closed."""
        return self._process(claim, should_stop, ask=False)[0]

    def process_and_ask(
        self, claim: Claim, *, should_stop: Callable[[], bool] = lambda: False
    ) -> tuple[int, bool]:
        """:meth:`process`, and whether anything is due after it: asked in the step's own
        transaction (``queue.due``), or on its own if the batch committed nothing."""
        done, due = self._process(claim, should_stop, ask=True)
        return done, self.due() if due is None else due

    def _due_in(self, connection: Connection) -> bool:
        return queue.due(connection, now=self.clock(), selection=self.selection)

    def _process(
        self, claim: Claim, should_stop: Callable[[], bool], *, ask: bool
    ) -> tuple[int, bool | None]:
        by_run: dict[int, list[ClaimedTrigger]] = defaultdict(list)
        resolves = []
        for trigger in claim.triggers:
            by_run[trigger.run_id].append(trigger)
            if trigger.action == TriggerAction.RESOLVE:
                resolves.append(trigger.id)
        loaded = (
            self._load(list(by_run), resolves)
            if claim.runs is None
            else _Loaded(runs=claim.runs, tasks={}, errors={}, resolutions={})
        )
        calls = CallTally(self.budgets.child_runs, self._calls_counted)
        parts: list[RunWrite] = []
        unprocessed: list[int] = []
        for run_id, group in by_run.items():
            if should_stop():
                unprocessed.extend(t.id for t in group)
                continue
            parts.extend(self._execute_run(run_id, group, loaded, calls))
        done, due = self.committer.commit(
            claim.id,
            parts,
            claim.triggers,
            loaded.runs,
            loaded.states,
            ask=self._due_in if ask else None,
        )
        if unprocessed:
            with self.database.write() as connection:
                queue.release(connection, claim_id=claim.id, trigger_ids=unprocessed)
            due = True
        return done, due

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
                errors=run_store.active_errors(connection, started),
                resolutions=resolutions.pending(connection, run_ids, resolve_ids),
                states=kept,
            )

    def _calls_counted(self, root_run_id: int) -> int:
        with self.database.read() as connection:
            return call_trees.calls_counted(connection, root_run_id)

    def _execute_run(
        self, run_id: int, group: Sequence[ClaimedTrigger], loaded: _Loaded, calls: CallTally
    ) -> list[RunWrite]:
        """Execute a run's triggers of this batch in order: a write each; none to retry them all.

        Each trigger's rows are taken from the state as soon as it is done, so that the batch can
        be committed in more than one transaction without splitting a trigger's rows.
        """
        if cancel.has_cancel(group, loaded.runs[run_id]):  # nothing of it runs any more
            loaded.states.pop(run_id, None)
            return [cancel.cancel_group(group, loaded.runs[run_id])]
        parts: list[RunWrite] = []
        executed = False
        for trigger in group:
            write = RunWrite(run_id)
            parts.append(write)
            try:
                executed = self._execute_trigger(trigger, write, loaded, calls) or executed
            except Exception:
                self.logger.exception(
                    "trigger %s of run %s failed unexpectedly; retried later", trigger.id, run_id
                )
                loaded.states.pop(run_id, None)
                return []
            state = loaded.states.get(run_id)
            if state is not None:
                self._take(state, write)
        state = loaded.states.get(run_id)
        paused = any(write.paused_triggers for write in parts)
        if state is not None and (executed or paused):  # paused: Failed once nothing else is due
            parts[-1].status = state.final_status(other_open_triggers=False)
        # A state is kept only if reading the rows back would give it: not after a batch that
        # failed or paused a trigger or applied a resolution, which wrote rows it does not mirror.
        if (
            paused
            or not executed
            or any(
                write.resolved_errors
                or any(close.status is not TriggerStatus.CLOSED for close in write.closes)
                for write in parts
            )
        ):
            loaded.states.pop(run_id, None)
        return parts

    def _execute_trigger(
        self, trigger: ClaimedTrigger, write: RunWrite, loaded: _Loaded, calls: CallTally
    ) -> bool:
        """Process one trigger into ``write``; True if it was executed (not failed or refused).

        What it cannot process it closes as Failed with a Trigger Error (or a Missing Handler
        Error when its tree version no longer builds); anything unexpected it raises.
        """
        run_id = trigger.run_id
        state = loaded.states.get(run_id)
        if trigger.attempts > self.max_attempts:
            reason = f"gave up after {trigger.attempts - 1} attempts that did not finish"
            self._fail(write, trigger, ErrorType.TRIGGER, reason)
            return False
        error = loaded.resolutions.get(trigger.id)
        if error is not None and not error["node"]:
            self._resolve_without_node(write, trigger, error, state, loaded)
            return False
        try:
            if state is None:
                row = loaded.runs[run_id]
                state = RunState.from_rows(
                    row,
                    self.resolve_tree(row["tree_version_id"]),
                    loaded.tasks.get(run_id, ()),
                    loaded.errors.get(run_id, {}),
                )
                loaded.states[run_id] = state
            if state.budget_errors and trigger.action != TriggerAction.RESOLVE:
                write.paused_triggers.append(trigger.id)  # until an error of the run is resolved
                return False
            budget_errors = state.budget_errors
            refused = self._execute(state, trigger, write, error, calls)
            write.pause_waiting = state.budget_errors > budget_errors
        except TreeError as exc:
            self._fail(write, trigger, ErrorType.MISSING_HANDLER, str(exc))
            return False
        if refused is not None:
            self._fail(write, trigger, ErrorType.TRIGGER, refused)
            return False
        write.closes.append(TriggerClose(trigger.id))
        return True

    @staticmethod
    def _take(state: RunState, write: RunWrite) -> None:
        """Move what the state's last trigger changed into that trigger's write."""
        inserts, updates = state.take_changes(write.run_id)
        write.task_inserts.extend(inserts)
        write.task_updates.extend(updates)
        write.error_inserts.extend(state.new_errors)
        write.trigger_inserts.extend(state.new_triggers)
        write.child_runs.extend(state.new_runs)
        state.new_errors, state.new_triggers, state.new_runs = [], [], []

    def _execute(
        self,
        state: RunState,
        trigger: ClaimedTrigger,
        write: RunWrite,
        error: Mapping[str, Any] | None = None,
        calls: CallTally | None = None,
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
            budgets=self.budgets,
            calls=calls,
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
        if trigger.action == TriggerAction.RETRY:
            execution.retries.attempt(state.task_by_id(trigger.task_id))
            return None
        if trigger.action == TriggerAction.MANUAL:
            return apply_manual(state, execution, trigger, write)
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
            state.forget_error(error["node"], error["type"])
            return
        counts = loaded.errors.get(trigger.run_id)
        key = (error["node"], error["type"])
        if counts and counts.get(key, 0) > 0:
            counts[key] -= 1

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


__all__ = ["Claim", "Runner"]
