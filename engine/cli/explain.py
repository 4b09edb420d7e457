"""``treeflow runs why ID``: what a run waits for, item by item (``Engine.explain``).

One line says how the run stands, then a table of what is open (a deferral and its token, a
wait and when its timer is due, a join and the connectors that have not fired, a junction and
the tasks of its region still open, a loop tail and the iterations missing, a routine call and
its child run, an active error and the actions that resolve it); each open routine run it called
follows, explained the same way.
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from engine.cli.support import console, engine_options, open_engine
from engine.records import Explanation


def print_explanation(explanation: Explanation, *, depth: int = 0) -> None:
    indent = "  " * depth
    console.print(Text(indent + explanation.summary), highlight=False, soft_wrap=True)
    if explanation.waiting:
        table = Table(show_header=True, header_style="bold")
        for column in ("Open", "Node", "Loop index", "Waits for"):
            table.add_column(column)
        for item in explanation.waiting:
            table.add_row(item.kind, Text(item.node), item.loop_index, Text(item.waits_for))
        console.print(table)
    for child in explanation.children:
        print_explanation(child, depth=depth + 1)


@click.command("why")
@click.argument("run_id", type=int)
@engine_options
def why(run_id: int, database: str, trees: str) -> None:
    """Say what run RUN_ID waits for: each open deferral, wait, join, junction, loop tail,
    routine call and error, and what is missing for it."""
    with open_engine(database, None) as engine:
        explanation = engine.explain(run_id)
    print_explanation(explanation)


__all__ = ["print_explanation", "why"]
