"""How many routine runs each call tree has started: the budget of child runs, kept durably.

A call tree is a top-level run and every routine run started under it, however deep (each
routine run names its tree's top-level run, ``runs.root_run_id``). Its count is a row of
``call_trees``, created by the first call and added to in the transaction that starts the runs
(``engine.store.steps``), never past the budget: a step whose runs would take the count past it
(because runs of the same tree, processed by another worker at the same time, started some since
the step read the count) raises :class:`CallBudgetSpent`, and its triggers are processed again
from the count as it is then, where the calls beyond the budget fail with a Budget Error
(``engine.run.budgets``). A transaction adds to its trees in order of their run ids, so two
transactions never wait on each other's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import call_trees

_ADD = (
    call_trees.update()
    .where(
        call_trees.c.root_run_id == sa.bindparam("b_root"),
        call_trees.c.runs + sa.bindparam("b_runs") <= sa.bindparam("b_limit"),
    )
    .values(runs=call_trees.c.runs + sa.bindparam("b_runs"))
)
_COUNTED = sa.select(call_trees.c.runs).where(call_trees.c.root_run_id == sa.bindparam("b_root"))
_FIRST = call_trees.insert().values(root_run_id=sa.bindparam("b_root"), runs=sa.bindparam("b_runs"))


class CallBudgetSpent(Exception):
    """Runs of a call tree committed elsewhere took its count of child runs to the budget first."""

    def __init__(self, *, root_run_id: int, limit: int) -> None:
        self.root_run_id = root_run_id
        self.limit = limit
        super().__init__(f"the call tree of run {root_run_id} reached {limit:,} child runs")


def count_calls(connection: Connection, root_run_ids: Iterable[int], limit: int) -> None:
    """Add one child run to the tree of each of ``root_run_ids``, within ``limit`` each."""
    for root, started in sorted(Counter(root_run_ids).items()):
        values = {"b_root": root, "b_runs": started, "b_limit": limit}
        if connection.execute(_ADD, values).rowcount == 1:
            continue
        if started > limit or connection.execute(_COUNTED, values).first() is not None:
            raise CallBudgetSpent(root_run_id=root, limit=limit)
        connection.execute(_FIRST, values)  # a tree's first calls: a race is an IntegrityError


def calls_counted(connection: Connection, root_run_id: int) -> int:
    """The child runs the call tree under ``root_run_id`` has started, as committed."""
    counted = connection.execute(_COUNTED, {"b_root": root_run_id}).scalar_one_or_none()
    return int(counted or 0)


__all__ = ["CallBudgetSpent", "calls_counted", "count_calls"]
