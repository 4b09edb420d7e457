"""How the ``treeflow`` commands print runs: a header, a table of tasks, errors, open tokens.

Shared by ``run``, ``deferred``, ``runs show`` (``engine.cli.main``) and ``errors resolve``
(``engine.cli.errors``), which is why it is not in ``engine.cli.main`` itself.
"""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.cli.support import console
from engine.engine import Engine
from engine.records import ROOT_LOOP_INDEX, Run
from engine.statuses import ErrorStatus, TaskStatus
from engine.tree.hints import deferred_hint
from engine.tree.model import Tree

STATUS_STYLE = {
    "Closed": "green",
    "Completed": "green",
    "Deferred": "yellow",
    "Started": "yellow",
    "Staged": "cyan",
    "New": "cyan",
    "Failed": "red",
    "Active": "red",  # errors
    "Handled": "green",
}


def results_cell(results: Any) -> Text:
    """One ``name: value`` line per result; values are data, never rich markup."""
    if not results:
        return Text("")
    if not isinstance(results, dict):
        return Text(json.dumps(results, ensure_ascii=False))
    return Text("\n".join(f"{name}: {value}" for name, value in results.items()))


def styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def print_run(run: Run, tree: Tree | None = None) -> None:
    """The run's header, a table of its tasks, its errors, and how to resume what waits.

    ``tree``, the version the run runs on (``Engine.tree_of_run``), fits each hint to its node
    (``engine.tree.hints``); without it the hints are the generic ones.
    """
    header = Text.assemble(
        "Run ",
        (str(run.id), "bold"),
        " of ",
        (run.tree_name, "bold"),
        f" (version {run.tree_version}, source id {run.source_id!r}): ",
        styled(run.status.value),
    )
    console.print(header, highlight=False)
    if run.parent_run_id is not None:
        console.print(f"A routine's run, called by run {run.parent_run_id}.", highlight=False)
    table = Table(show_header=True, header_style="bold")
    looped = any(task.loop_index != ROOT_LOOP_INDEX for task in run.tasks)
    table.add_column("Node")
    if looped:  # a run with loops shows which iteration each task belongs to
        table.add_column("Loop", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Results", overflow="fold")
    for task in run.tasks:
        loop = (Text(task.loop_index),) if looped else ()
        table.add_row(Text(task.name), *loop, styled(task.status.value), results_cell(task.results))
    console.print(table)
    names = {task.id: task.name for task in run.tasks}
    waiting = {link.task_id for link in run.children if _deferred(run, link.task_id)}
    for child in run.children:
        if child.task_id in waiting:  # the hints below name it
            continue
        console.print(
            f"{names.get(child.task_id, child.task_id)} called {child.tree_name}: run "
            f"{child.run_id} ({child.status.value}); see treeflow runs show {child.run_id}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    for error in run.errors:
        console.print(
            f"[red]{escape(error.type)}[/red] {error.id} at {escape(repr(error.node))} "
            f"({escape(error.status)}): {escape(error.summary)}",
            highlight=False,
            soft_wrap=True,
        )
    if any(error.status == ErrorStatus.ACTIVE for error in run.errors):
        console.print(
            "Resolve an active error with: treeflow errors resolve ERROR_ID --action ACTION",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    for task in run.tasks:
        if task.status is not TaskStatus.DEFERRED or not task.token:
            continue
        # Printed unwrapped, so the token and the command can be copied whatever the width.
        for line in deferred_hint(tree, run, task):
            console.print(line, soft_wrap=True, markup=False, highlight=False)


def show_run(engine: Engine, run_id: int) -> Run:
    """Print run ``run_id`` with hints fitted to its tree version; returns the run."""
    run = engine.get_run(run_id)
    print_run(run, engine.tree_of_run(run))
    return run


def _deferred(run: Run, task_id: str) -> bool:
    return any(task.id == task_id and task.status is TaskStatus.DEFERRED for task in run.tasks)


__all__ = ["STATUS_STYLE", "print_run", "results_cell", "show_run", "styled"]
