"""The INSERT every trigger row goes through: it copies its run's selection label itself.

A trigger's ``selection`` (what ``engine.tree.selection`` lets a worker claim by) is its run's tree
version's label. The insert reads it in SQL from the run it names, so no caller (createStart,
createDeferred, a resolution, a wait's timer, whatever later creates triggers) has to know
about labels, and a trigger can never carry a label other than its run's.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.store.bulk import BulkStatement
from engine.store.tables import runs, tree_versions, triggers

_RUN_LABEL = (
    sa.select(tree_versions.c.selection)
    .join(runs, runs.c.tree_version_id == tree_versions.c.id)
    .where(runs.c.id == sa.bindparam("run_id"))
    .scalar_subquery()
)


def insert_triggers(*, returning_id: bool = False) -> BulkStatement:
    """An INSERT of trigger rows (``engine.rows.trigger_row``): every column but ``id`` and
    ``selection``, which it copies from the run."""
    columns = [c for c in triggers.columns if c.name not in ("id", "selection")]
    statement = triggers.insert().values(
        {**{c.name: sa.bindparam(c.name) for c in columns}, "selection": _RUN_LABEL}
    )
    if returning_id:
        statement = statement.returning(triggers.c.id)
    return BulkStatement(statement)


__all__ = ["insert_triggers"]
