"""One trigger applied to one run, in memory: the walk of the tree and what it changed.

A worker builds a :class:`~engine.run.state.RunState` from the run's rows, applies each trigger
with an :class:`~engine.run.execution.Execution` (nodes, connectors, joins, junctions, waits,
loops, routine calls and returns, error resolutions) and hands back what changed as plain rows.
Nothing here reads or writes the database: ``engine.processing`` does, around it.
"""
