"""System nodes: the start, a no-op marker, and the join.

Their control behaviour (where a run begins, when a join fires) lives in the runner, which
reads ``Handler.behaviour``; the handlers themselves only declare their parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.handlers import Behaviour, Handler, HandlerContext, Parameter
from engine.hookspecs import hookimpl


def _nothing(context: HandlerContext) -> Mapping[str, str]:
    return {}


START = Handler(
    definition_id="system_start_v1",
    execute=_nothing,
    behaviour=Behaviour.START,
    description="Where a run begins; its Root trigger executes this node.",
)

NOOP = Handler(
    definition_id="system_noop_v1",
    execute=_nothing,
    description="Does nothing: a marker or a merge point.",
)

JOIN = Handler(
    definition_id="system_join_v1",
    execute=_nothing,
    behaviour=Behaviour.JOIN,
    parameters=(
        Parameter("type", default="All", menu=("All", "Any", "Some")),
        Parameter("number", default="", description="how many connectors a Some join waits for"),
    ),
    description="Fires once per run and loop index when its direct incoming connectors have "
    "fired: all of them, any one, or some number.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [START, NOOP, JOIN]
