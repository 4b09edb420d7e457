"""Node semantics: what one trigger does to a run, in memory, depth first.

Executing a node renders its parameters, calls its handler and stores its results. A node that
completes follows its Complete connectors whose conditions hold; a deferring node gets a token,
follows its Create connectors and stops its branch; a failure records an error of the right
type and stops only that branch. Plain nodes run inline, so a linear tree is one trigger.

A node runs once for every connector that fires into it (Kinetic's rule, so two branches
meeting at a plain node run it twice); a join instead fires once per run and loop index when
its direct incoming connectors satisfy its type (``engine.tree.control.quorum``).

A junction fires once per run (per loop index) when its region (``engine.tree.junctions``) has
finished. Whether it has is decided when the walk of a trigger has nothing left to do (the stack
is empty), for the junctions whose region a node of this walk belongs to: any step in a region
(a node executed, failed or deferred, a connector found false, a deferred task completed or
updated by a later trigger) may be the one that finishes it, and only then is no branch of it
still under way in memory. A wait defers like any deferring node and adds a trigger row
scheduled for later (its timer), written with the task rows. Loop heads and tails are the
:class:`~engine.run.loops.LoopSteps` the walk holds: the walk carries each node's loop index,
which only a loop's Iteration trigger deepens and its tail undoes. A routine call defers and adds
a child run; a routine's return adds the Complete of its caller's task (``engine.run.routines``).
Nothing here touches the database, except to look a called routine up through
``routine_lookup`` (and a call tree's count of child runs through ``calls``); every row it adds
is built by ``engine.rows``.

Every node is held to the run's budgets (``engine.run.budgets``) before it runs: a new task must
keep the run within its tasks and the trigger's step within its rows, counting what the node adds
besides its task (a wait's timer, a call's run and Root trigger, a return's Complete); a loop
head's iterations and a routine call are checked where they are known. A node refused fails with
a Budget Error and adds nothing else.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from engine import ids, rows
from engine.errors import BadResults, ExpressionError
from engine.handlers.builtin import QUORUM_NUMBER, QUORUM_TYPE, WAIT_TIME, WAIT_UNIT
from engine.handlers.handler import Behaviour, HandlerContext, TriggerGateway
from engine.records import ROOT_LOOP_INDEX
from engine.run import routines
from engine.run.budgets import Budgets, CallTally, StepBudget
from engine.run.loops import Iterations, LoopSteps, iteration_scope, outer_index
from engine.run.retries import Retries, Returned, call_handler, out_of_attempts
from engine.run.source_bindings import SCOPE_NAME
from engine.run.state import RunState, TaskState
from engine.statuses import (
    ErrorType,
    RunStatus,
    TaskStatus,
    TriggerAction,
)
from engine.tree.control import quorum, wait_seconds
from engine.tree.junctions import region_finished
from engine.tree.model import Connector, Node
from engine.tree.routines import CalledRoutine


@functools.lru_cache(maxsize=1024)
def _handler_logger(parent: logging.Logger, handler_id: str) -> logging.Logger:
    return parent.getChild(handler_id)


def _texts(returned: Returned) -> dict[str, str]:
    """A handler's results as stored: every key and value as text, in a dict of their own."""
    if not returned:
        return {}
    for key, value in returned.items():
        if type(key) is not str or type(value) is not str:  # the rare handler returning others
            return {str(k): v if isinstance(v, str) else str(v) for k, v in returned.items()}
    return dict(cast("Mapping[str, str]", returned))


class Execution:
    """The work of one trigger on one run."""

    def __init__(
        self,
        state: RunState,
        *,
        trigger_id: int,
        action: str,
        message: str | None,
        now: float,
        gateway: TriggerGateway,
        logger: logging.Logger,
        routine_lookup: routines.RoutineLookup | None = None,
        budgets: Budgets | None = None,
        calls: CallTally | None = None,
    ) -> None:
        self.state = state
        self.routine_lookup = routine_lookup
        # This trigger's step held to the run's budgets, with the batch's count of child runs.
        self.budget = StepBudget(budgets or Budgets(), calls)
        self.trigger_id = trigger_id
        self.now = now
        self.gateway = gateway
        self.logger = logger
        self.base_scope: dict[str, Any] = {
            "results": state.results,
            "inputs": state.inputs,
            "values": state.values,
            "source": {
                "name": state.source.name,
                "group": state.source.group,
                "id": state.source.id,
                "data": state.source.data,
            },
            "run": {"id": state.id, "tree": state.tree.key.name},
            "trigger": {"id": trigger_id, "action": action, "message": message or ""},
            "iterations": Iterations(state),
            SCOPE_NAME: state.source_bindings,  # Request CE's @values, @form...
        }
        self._stack: list[tuple[str, str, str]] = []  # (node, came from, loop index)
        # Junctions (and the loop index they are judged at) whose region moved during this walk.
        self._touched: set[tuple[str, str]] = set()

    # The loop and retry steps hold the execution, a reference cycle that only the garbage
    # collector frees (and with it the run's whole state): they are made only for a trigger that
    # uses them, so that a run without loops or retries is freed as soon as its step is done.

    @functools.cached_property
    def loops(self) -> LoopSteps:
        return LoopSteps(self)

    @functools.cached_property
    def retries(self) -> Retries:
        return Retries(self)

    # -- entry points, one per trigger action ------------------------------------------------

    def root(self) -> None:
        self.state.status = RunStatus.STARTED
        self.push((self.state.tree.start, "", ROOT_LOOP_INDEX))
        self.drain()

    def complete(self, task: TaskState, results: Mapping[str, str]) -> None:
        self.state.set_results(task, {**task.results, **results})
        task.move(TaskStatus.CLOSED, self.now)
        node = self.state.tree.nodes[task.node]
        self.touch(node, task.loop_index)
        self.follow(node, task, node.complete_connectors)
        self.drain()

    def update(self, task: TaskState, results: Mapping[str, str]) -> None:
        if results:
            self.state.set_results(task, {**task.results, **results})
        node = self.state.tree.nodes[task.node]
        self.touch(node, task.loop_index)
        self.follow(node, task, node.update_connectors)
        self.drain()

    # -- resolutions of a node's errors (``engine.run.resolution`` decides which applies) ------

    def retry(self, task: TaskState) -> None:
        """Run a failed node again: a new task, its parameters rendered again.

        A join keeps its one task per run (it holds the arrivals): that task re-opens and the
        join is judged again.
        """
        node = self.state.tree.nodes[task.node]
        if node.handler.behaviour is Behaviour.JOIN:
            task.move(TaskStatus.NEW, self.now)
            self._judge_join(node, task)
        elif node.handler.behaviour is Behaviour.LOOP_TAIL:
            task.move(TaskStatus.NEW, self.now)
            self.loops.judge_tail(node, task)
        elif node.handler.behaviour is Behaviour.JUNCTION:  # refused by a budget: judged again
            task.move(TaskStatus.NEW, self.now)
            self._touched.add((node.name, task.loop_index))
        else:
            self.push((node.name, "", task.loop_index))
        self.settle(node.name, task.loop_index)

    def skip(self, task: TaskState) -> None:
        """Close a failed task without running it, with no results; follow Complete connectors."""
        node = self.state.tree.nodes[task.node]
        if node.handler.behaviour is Behaviour.LOOP_HEAD:
            self.loops.skip(node, task)
        else:
            self.state.set_results(task, {})
            task.move(TaskStatus.CLOSED, self.now)
            self.follow(node, task, node.complete_connectors)
        self.settle(node.name, task.loop_index)

    def continue_branch(
        self, node_name: str, target: str, loop_index: str = ROOT_LOOP_INDEX
    ) -> None:
        """Follow the connector ``node_name -> target`` as if its condition had held."""
        self.push((target, node_name, loop_index))
        self.settle(node_name, loop_index)

    def settle(self, node_name: str, loop_index: str = ROOT_LOOP_INDEX) -> None:
        """Walk what is queued, then judge the junctions whose region holds ``node_name``.

        An error no longer active may be what a junction waited for, so a resolution re-checks
        them even when it runs nothing (Do Nothing, Cancel Branch).
        """
        node = self.state.tree.nodes.get(node_name)
        if node is not None:
            self.touch(node, loop_index)
        self.drain()

    # -- the walk: also what the loop steps (engine.run.loops) use ---------------------------

    def push(self, step: tuple[str, str, str]) -> None:
        """Queue a node to walk to: (its name, the node it is reached from, its loop index)."""
        self._stack.append(step)

    def drain(self) -> None:
        while True:
            while self._stack:
                name, came_from, loop_index = self._stack.pop()
                node = self.state.tree.nodes[name]
                behaviour = node.handler.behaviour
                if behaviour is Behaviour.JOIN:
                    self._arrive_at_join(node, came_from, loop_index)
                elif behaviour is Behaviour.JUNCTION:
                    self._arrive_at_junction(node, came_from, loop_index)
                elif behaviour is Behaviour.LOOP_HEAD:
                    self.loops.start(node, loop_index)
                elif behaviour is Behaviour.LOOP_TAIL:
                    self.loops.arrive_at_tail(node, loop_index)
                else:
                    self._execute(node, loop_index)
            if not self._touched or not self._fire_finished_junctions():
                return

    def touch(self, node: Node, loop_index: str) -> None:
        """Re-check the junctions whose region holds ``node``, each at its own loop depth."""
        depths = self.state.tree.loop_depths
        for junction in node.junctions:
            self._touched.add((junction, outer_index(loop_index, depths.get(junction, 0))))

    def _arrive_at_junction(self, node: Node, came_from: str, loop_index: str) -> None:
        """Record the arrival; whether the junction fires is decided once the walk is done."""
        task = self.state.latest.get((node.name, loop_index))
        if task is None:
            task = self.new_task(node, TaskStatus.NEW, None, loop_index, arrived=(came_from,))
            if task is None:
                return
        elif task.status is not TaskStatus.NEW:
            return  # a junction fires once per run (per loop index)
        if came_from not in task.arrived:
            task.arrived = (*task.arrived, came_from)
            task.mark_changed()
        self._touched.add((node.name, loop_index))
        self.touch(node, loop_index)

    def _fire_finished_junctions(self) -> bool:
        """Fire the first touched junction whose region has finished; True if one fired.

        Called with an empty stack, so no branch is under way in memory. Junctions are judged
        in topological order and the walk resumes after each firing, so a junction inside
        another's region fires, and its branch is walked, before the outer one is judged.
        """
        for name, region in self.state.tree.junctions.items():
            for index in sorted(i for junction, i in self._touched if junction == name):
                self._touched.discard((name, index))
                task = self.state.latest.get((name, index))
                if task is not None and task.status is not TaskStatus.NEW:
                    continue
                tasks, errors = self.state.tasks, self.state.error_nodes
                if not region_finished(region, tasks, errors, index):
                    continue
                node = self.state.tree.nodes[name]
                if task is None:  # every branch into it was false: it fires all the same
                    task = self.new_task(node, TaskStatus.NEW, None, index)
                    if task is None:
                        continue
                task.move(TaskStatus.CLOSED, self.now)
                self.touch(node, index)
                self.follow(node, task, node.complete_connectors)
                return True
        self._touched.clear()
        return False

    def new_task(
        self,
        node: Node,
        status: TaskStatus,
        token: str | None = None,
        loop_index: str = ROOT_LOOP_INDEX,
        *,
        arrived: tuple[str, ...] = (),
    ) -> TaskState | None:
        """A task for ``node`` to run, or None if the run's budgets refuse it.

        A refused node still gets its task, Failed with the Budget Error (and the arrival that
        reached it, for a join or junction to be judged again on Retry Task): it is the error's
        place in the run, and what resolving the error retries or skips.
        """
        budget = self.budget
        if len(self.state.tasks) < budget.roomy_tasks and budget.rows <= budget.roomy_rows:
            return self.add_task(node, status, token, loop_index, arrived=arrived)
        refusal = budget.refuse_task(self.state, node)
        if refusal is None:
            return self.add_task(node, status, token, loop_index, arrived=arrived)
        task = self.add_task(node, TaskStatus.NEW, None, loop_index, arrived=arrived)
        self.fail(task, ErrorType.BUDGET, refusal, "")
        return None

    def add_task(
        self,
        node: Node,
        status: TaskStatus,
        token: str | None = None,
        loop_index: str = ROOT_LOOP_INDEX,
        *,
        arrived: tuple[str, ...] = (),
    ) -> TaskState:
        """A new task, counted in the step's rows; the budgets were checked by the caller."""
        task = TaskState(
            id=ids.row_id(),
            node=node.name,
            handler_id=node.handler_id,
            loop_index=loop_index,
            status=status,
            results={},
            token=token,
            arrived=arrived,
            created_at=self.now,
            updated_at=self.now,
            is_new=True,
        )
        self.state.remember(task)
        self.budget.rows += 1
        return task

    def scope(self, task: TaskState) -> dict[str, Any]:
        scope = dict(self.base_scope)
        if task.loop_index != ROOT_LOOP_INDEX:
            scope.update(iteration_scope(self.state, task.loop_index))
        scope["task"] = {
            "id": task.id,
            "name": task.node,
            "deferral_token": task.token or "",
            "loop_index": task.loop_index,
        }
        return scope

    def render(self, node: Node, task: TaskState, scope: dict[str, Any]) -> dict[str, str] | None:
        try:
            return {name: template.render(scope) for name, template in node.parameters.items()}
        except ExpressionError as exc:
            self.fail(task, ErrorType.NODE_PARAMETER, f"Parameter of node {node.name!r}: {exc}", "")
            return None

    def _execute(self, node: Node, loop_index: str = ROOT_LOOP_INDEX) -> None:
        if node.junctions:
            self.touch(node, loop_index)
        token = ids.deferral_token() if node.defers else None
        task = self.new_task(node, TaskStatus.NEW, token, loop_index)
        if task is None:
            return
        self.run_task(node, task)

    def run_task(self, node: Node, task: TaskState) -> None:
        """Render the task's parameters, call its handler and go on from what it returned.

        A new task's first attempt, and each later one its retry policy makes
        (``engine.run.retries``): a failure it retries schedules the next attempt instead of
        recording a Handler Error.
        """
        scope = self.scope(task)
        parameters = self.render(node, task, scope)
        if parameters is None:
            return
        behaviour = node.handler.behaviour
        due_at = None
        if behaviour is Behaviour.WAIT:
            due_at = self._due_at(node, task, parameters)
            if due_at is None:
                return
        called = None
        if behaviour is Behaviour.ROUTINE:
            called = self._routine(node, task, parameters)
            if called is None:
                return
        state = self.state
        context = HandlerContext(
            parameters=parameters,
            node_name=node.name,
            task_id=task.id,
            deferral_token=task.token,
            run_id=state.id,
            loop_index=task.loop_index,
            source=state.source,
            inputs=state.inputs,
            logger=_handler_logger(self.logger, node.handler_id),
            triggers=self.gateway,
        )
        try:
            returned = call_handler(node, context)
        except Exception as exc:
            summary = f"{node.handler_id} raised {type(exc).__name__}: {exc}"
            if self.retries.later(node, task, exc, summary):
                return
            summary = out_of_attempts(node, task, summary)
            self.fail(task, ErrorType.HANDLER, summary, traceback.format_exc())
            return
        results = _texts(returned)
        if due_at is not None:
            results["due_at"] = datetime.fromtimestamp(due_at, UTC).isoformat()
        state.set_results(task, results)
        if node.defers:
            task.move(TaskStatus.DEFERRED, self.now)
            if due_at is not None:
                self._schedule_timer(task, due_at)
            if called is not None:
                child = routines.child_run(state, called, parameters, task.id, self.now)
                state.new_runs.append(child)
                self.budget.rows += 2  # the run and its Root trigger
            self.follow(node, task, node.create_connectors, scope)
        else:
            if behaviour is Behaviour.RETURN and not self._return(task):
                return
            task.move(TaskStatus.CLOSED, self.now)
            self.follow(node, task, node.complete_connectors, scope)

    def _due_at(self, node: Node, task: TaskState, parameters: Mapping[str, str]) -> float | None:
        """When a wait's timer completes it; None after recording a Node Parameter Error."""
        try:
            seconds = wait_seconds(parameters[WAIT_TIME], parameters[WAIT_UNIT])
        except ValueError as exc:
            self.fail(task, ErrorType.NODE_PARAMETER, f"Wait {node.name!r}: {exc}", "")
            return None
        return self.now + seconds

    def _routine(
        self, node: Node, task: TaskState, parameters: Mapping[str, str]
    ) -> CalledRoutine | None:
        """The routine a call starts; None after recording why it cannot start."""
        found = routines.prepare_call(
            self.state, node.name, node.handler_id, parameters, self.routine_lookup
        )
        if isinstance(found, routines.CallRefused):
            self.fail(task, found.type, found.summary, "")
            return None
        refusal = self.budget.refuse_call(self.state, node.name)
        if refusal is not None:
            self.fail(task, ErrorType.BUDGET, refusal, "")
            return None
        return found

    def _return(self, task: TaskState) -> bool:
        """Tell the caller (if any) the outputs; False after recording why they cannot go."""
        try:
            returned = routines.return_trigger(self.state, task, self.now)
        except BadResults as exc:
            self.fail(task, ErrorType.NODE_PARAMETER, f"Return {task.node!r}: {exc}", "")
            return False
        if returned is not None:
            self.state.new_triggers.append(returned)
            self.budget.rows += 1
        return True

    def _schedule_timer(self, task: TaskState, due_at: float) -> None:
        """A Complete trigger for the wait's task, claimable from ``due_at`` on.

        It carries no token (what tells the runner it is a timer, not a createDeferred) and
        the idempotency key ``wait:<task id>``, by which an early Complete closes it.
        """
        self.state.new_triggers.append(
            rows.trigger_row(
                TriggerAction.COMPLETE,
                run_id=self.state.id,
                now=self.now,
                task_id=task.id,
                idempotency_key=rows.timer_key(task.id),
                due_at=due_at,
            )
        )
        self.budget.rows += 1

    def _arrive_at_join(self, node: Node, came_from: str, loop_index: str) -> None:
        task = self.state.latest.get((node.name, loop_index))
        if task is None:
            task = self.new_task(node, TaskStatus.NEW, None, loop_index, arrived=(came_from,))
            if task is None:
                return
        elif task.status is not TaskStatus.NEW:
            return  # a join fires once per run and loop index
        if came_from not in task.arrived:
            task.arrived = (*task.arrived, came_from)
            task.mark_changed()
        self._judge_join(node, task)

    def _judge_join(self, node: Node, task: TaskState) -> None:
        """Fire the join if its arrivals satisfy its type; a bad type or number fails it."""
        parameters = self.render(node, task, self.scope(task))
        if parameters is None:
            return
        incoming = set(node.incoming)
        try:
            wanted = quorum(
                parameters.get(QUORUM_TYPE, ""),
                parameters.get(QUORUM_NUMBER, ""),
                most=len(incoming),
            )
        except ValueError as exc:
            self.fail(task, ErrorType.NODE_PARAMETER, f"Join {node.name!r}: {exc}", "")
            return
        if len(incoming.intersection(task.arrived)) >= wanted.needed(len(incoming)):
            task.move(TaskStatus.CLOSED, self.now)
            self.follow(node, task, node.complete_connectors)

    def follow(
        self,
        node: Node,
        task: TaskState,
        connectors: tuple[Connector, ...],
        scope: dict[str, Any] | None = None,
    ) -> None:
        if not connectors:
            return
        if scope is None:
            scope = self.scope(task)
        targets = []
        for connector in connectors:
            if connector.condition is not None:
                try:
                    if not connector.condition.evaluate(scope):
                        continue
                except ExpressionError as exc:
                    summary = f"Connector {node.name!r} -> {connector.target!r}: {exc}"
                    self._record_error(task, ErrorType.CONNECTOR, summary, "", connector.target)
                    continue
            targets.append((connector.target, node.name, task.loop_index))
        self._stack.extend(reversed(targets))  # the first connector's branch runs first

    def fail(self, task: TaskState, kind: ErrorType, summary: str, text: str) -> None:
        task.move(TaskStatus.FAILED, self.now)
        self._record_error(task, kind, summary, text, None)

    def _record_error(
        self, task: TaskState, kind: ErrorType, summary: str, text: str, connector_to: str | None
    ) -> None:
        self.logger.warning("run %s: %s", self.state.id, summary)
        self.budget.rows += 1
        self.state.active_errors += 1
        if kind is ErrorType.BUDGET:
            self.state.budget_errors += 1
        self.state.error_nodes[task.node] = self.state.error_nodes.get(task.node, 0) + 1
        self.state.new_errors.append(
            rows.error_row(
                kind,
                run_id=self.state.id,
                summary=summary,
                text=text,
                now=self.now,
                node=task.node,
                loop_index=task.loop_index,
                task_id=task.id,
                trigger_id=self.trigger_id,
                connector_to=connector_to,
            )
        )


__all__ = ["Execution"]
