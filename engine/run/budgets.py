"""Budgets: how much work one run may make, so that no request multiplies work without limit.

Each cap of a tree alone is local (a loop runs at most 10,000 iterations, routine calls nest at
most 20 deep), and they multiply: a loop inside a loop, or a routine that calls itself twice, made
hundreds of thousands of rows from one small request. Three budgets bound what they multiply to:

- **tasks per run**: the tasks (node executions) of one run, counted in its state;
- **child runs per call tree**: the routine runs started under one top-level run, its children's
  children included, counted durably on the tree's ``call_trees`` row and checked again where the
  commit adds to it (``engine.store.steps``), so runs of one tree processed by several workers at
  once cannot together go past it;
- **rows per step**: the rows one trigger's step adds (tasks, triggers, errors, runs); a batch is
  committed in as many transactions as it takes to keep each within it (``engine.processing``).

A node whose work would go past a budget does not run: its task fails with a **Budget Error**
naming the budget, its limit and how to raise it, and writes nothing of that work (its Failed task
and the error are what it writes, as for any error). A loop head is refused before it adds any
iteration, a routine call before it starts its run. Other branches and other runs go on. A Budget
Error is resolved like a Handler Error: once the budget is raised (the settings of the engine
processes that run the tree), Retry Task runs the node again; Skip Task closes it with no results
(a loop head: with no iterations) and the run goes on; Do Nothing leaves the branch stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import BadRequest
from engine.handlers.handler import Behaviour
from engine.run.state import RunState
from engine.tree.model import Node

# The rows a node adds besides its task: a wait's timer, a call's run and its Root trigger, a
# return's Complete of its caller.
_EXTRA_ROWS = {Behaviour.WAIT: 1, Behaviour.ROUTINE: 2, Behaviour.RETURN: 1}


@dataclass(frozen=True)
class Budget:
    """One budget's names: the Engine argument, the command-line option and the variable."""

    setting: str
    option: str
    variable: str
    unit: str  # what the limit counts, after the number: "tasks per run"

    def refusal(self, limit: int, what: str) -> str:
        """The summary of a Budget Error: what would have gone past the limit, and the way out."""
        return (
            f"{what}; the budget is {limit:,} {self.unit} ({self.setting}: raise it with"
            f" Engine({self.setting}=...), {self.option} or {self.variable}, then resolve this"
            " error with Retry Task)"
        )


TASKS = Budget(
    "max_tasks_per_run", "--max-tasks-per-run", "TREEFLOW_MAX_TASKS_PER_RUN", "tasks per run"
)
CHILD_RUNS = Budget(
    "max_child_runs",
    "--max-child-runs",
    "TREEFLOW_MAX_CHILD_RUNS",
    "routine runs per call tree",
)
STEP_ROWS = Budget("max_step_rows", "--max-step-rows", "TREEFLOW_MAX_STEP_ROWS", "rows per step")


@dataclass(frozen=True)
class Budgets:
    """The limits an engine holds runs to; the defaults are far beyond what a real tree needs.

    A loop of the most iterations allowed (10,000) makes 10,001 tasks at its head, in a step of
    20,001 rows (a task and an Iteration trigger each), and 10,000 more tasks for each node inside
    it; a loop that calls a routine in each iteration starts 10,000 child runs. The defaults allow
    such a loop with eight nodes inside, and twice those calls and rows.
    """

    tasks_per_run: int = 100_000
    child_runs: int = 20_000
    step_rows: int = 50_000

    def __post_init__(self) -> None:
        for budget, value in (
            (TASKS, self.tasks_per_run),
            (CHILD_RUNS, self.child_runs),
            (STEP_ROWS, self.step_rows),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                reason = f"expected a whole number of 1 or more, not {value!r}"
                raise BadRequest(field=budget.setting, reason=reason)


# The child runs a call tree has started, as committed: read by the runner from the store.
StoredCalls = Callable[[int], int]


@dataclass
class CallTally:
    """The child runs of each call tree, as one batch sees them: stored, plus its own calls.

    A tree's stored count is read the first time one of the batch's runs calls a routine in it,
    then the batch's own calls are added in memory. It can only be short by what other workers
    commit meanwhile, which the commit's own check catches (``engine.store.steps``).
    """

    limit: int
    stored: StoredCalls
    _counts: dict[int, int] = field(default_factory=dict)

    def reserve(self, root_run_id: int) -> int | None:
        """Count one more child run of the tree; None (and nothing counted) if over the limit."""
        count = self._counts.get(root_run_id)
        if count is None:
            count = self.stored(root_run_id)
        if count + 1 > self.limit:
            self._counts[root_run_id] = count
            return None
        self._counts[root_run_id] = count + 1
        return count + 1


class StepBudget:
    """One trigger's step held to the budgets: what it has added, and what they refuse it.

    Each check comes before the work it is about, and says why it is refused (the summary of
    the Budget Error) or None; the walk counts what it adds (:attr:`rows`) as it adds it.
    """

    def __init__(self, limits: Budgets, calls: CallTally | None) -> None:
        self.limits = limits
        self.calls = calls  # None: calls are not counted (no call tree to count them in)
        self.rows = 0  # tasks, triggers, errors and runs the step has added
        # Below these, any node fits (the walk's fast path): a task more, and the most rows a
        # node adds with its task.
        self.roomy_tasks = limits.tasks_per_run
        self.roomy_rows = limits.step_rows - 1 - max(_EXTRA_ROWS.values())

    def refuse_task(self, state: RunState, node: Node) -> str | None:
        """Why ``node`` may not have a task (and what its kind adds with it), if it may not."""
        tasks, limits = len(state.tasks), self.limits
        if tasks >= limits.tasks_per_run:
            what = f"Node {node.name!r} refused: run {state.id} has {tasks:,} tasks"
            return TASKS.refusal(limits.tasks_per_run, what)
        needed = 1 + _EXTRA_ROWS.get(node.handler.behaviour, 0)
        if self.rows + needed > limits.step_rows:
            what = (
                f"Node {node.name!r} refused: it would add {needed} rows to a step of run"
                f" {state.id} that has added {self.rows:,}"
            )
            return STEP_ROWS.refusal(limits.step_rows, what)
        return None

    def refuse_iterations(self, state: RunState, head: str, iterations: int) -> str | None:
        """Why a loop head may not add its iterations (a task and a trigger each), if so."""
        tasks, limits = len(state.tasks), self.limits
        if tasks + iterations > limits.tasks_per_run:
            what = (
                f"Loop head {head!r} refused: its {iterations:,} iterations would take run"
                f" {state.id} from {tasks:,} to {tasks + iterations:,} tasks"
            )
            return TASKS.refusal(limits.tasks_per_run, what)
        if self.rows + 2 * iterations > limits.step_rows:
            what = (
                f"Loop head {head!r} refused: its {iterations:,} iterations would add"
                f" {2 * iterations:,} rows (a task and a trigger each) to a step of run"
                f" {state.id} that has added {self.rows:,}"
            )
            return STEP_ROWS.refusal(limits.step_rows, what)
        return None

    def refuse_call(self, state: RunState, node: str) -> str | None:
        """Why ``node`` may not start a routine run in the call tree; counts it if it may."""
        tree = state.call_tree
        if self.calls is None or self.calls.reserve(tree) is not None:
            return None
        what = (
            f"Routine call {node!r} refused: the call tree of run {tree} has started"
            f" {self.calls.limit:,} routine runs"
        )
        return CHILD_RUNS.refusal(self.calls.limit, what)


__all__ = [
    "CHILD_RUNS",
    "STEP_ROWS",
    "TASKS",
    "Budget",
    "Budgets",
    "CallTally",
    "StepBudget",
    "StoredCalls",
]
