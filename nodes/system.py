"""System nodes: the start, a no-op marker, the join, the junction, the wait, loops and the
return.

Their control behaviour (where a run begins, when a join or junction fires, when a wait's timer
completes it) lives in the runner, which reads ``Handler.behaviour``; the handlers themselves
only declare their parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.handlers.builtin import (
    DATA_SOURCE,
    LOOP_PATH,
    QUORUM_NUMBER,
    QUORUM_TYPE,
    QUORUM_TYPES,
    RETURN_HANDLER,
    UNIT_SECONDS,
    VAR_NAME,
    WAIT_TIME,
    WAIT_UNIT,
)
from engine.handlers.handler import Behaviour, Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl


def _nothing(context: HandlerContext) -> Mapping[str, str]:
    return {}


def _outputs(context: HandlerContext) -> Mapping[str, str]:
    # A routine's return node gets a handler of its own at load, declaring the routine's
    # outputs (engine.tree.routines); this declaration is what validation and listings see.
    return dict(context.parameters)


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
        Parameter(QUORUM_TYPE, default="All", menu=QUORUM_TYPES),
        Parameter(
            QUORUM_NUMBER, default="", description="how many connectors a Some join waits for"
        ),
    ),
    description="Fires once per run and loop index when its direct incoming connectors have "
    "fired: all of them, any one, or some number.",
)

JUNCTION = Handler(
    definition_id="system_junction_v1",
    execute=_nothing,
    behaviour=Behaviour.JUNCTION,
    description="Fires once per run (per loop index) when every branch from the nearest node "
    "all paths to it pass through (its parent) has gone as far as it can: a false connector "
    "finishes a branch, a deferred task or an active error keeps it waiting. Never fires if the "
    "parent did not complete.",
)

WAIT = Handler(
    definition_id="system_wait_v1",
    execute=_nothing,
    behaviour=Behaviour.WAIT,
    deferrable=True,
    parameters=(
        Parameter(WAIT_TIME, required=True, description="a number of zero or more, e.g. 1.5"),
        Parameter(WAIT_UNIT, required=True, menu=tuple(UNIT_SECONDS)),
    ),
    results=("due_at",),
    description="Defers, and a trigger scheduled that much later completes it (result due_at, "
    "ISO 8601 UTC); a createDeferred Complete with its token before then wins.",
)


TREE_RETURN = Handler(
    definition_id=RETURN_HANDLER,
    execute=_outputs,
    behaviour=Behaviour.RETURN,
    description="Ends a routine: its parameters are the routine's outputs (each one declared "
    "in the routine's 'outputs'), which become the results of the node that called it.",
)


LOOP_HEAD = Handler(
    definition_id="system_loop_head_v1",
    execute=_nothing,
    behaviour=Behaviour.LOOP_HEAD,
    parameters=(
        Parameter(DATA_SOURCE, required=True, description="an XML or JSON document"),
        Parameter(
            LOOP_PATH,
            required=True,
            description="XPath over XML (//list/item), or JSONPath over JSON when it starts "
            "with $ ($[*])",
        ),
        Parameter(VAR_NAME, default="", description="the name the element's value has inside"),
    ),
    # Value and Index at each iteration's task; Count and Variable at the head's own task.
    results=("Value", "Index", "Count", "Variable"),
    description="Runs the nodes after it once per element its loop_path selects in its "
    "data_source, each iteration its own trigger and loop index (/0, /1, nested /0/2); inside, "
    "results[head]['Value'] and ['Index'] (and var_name) are that iteration's. Connects "
    "directly to its loop tail.",
)

LOOP_TAIL = Handler(
    definition_id="system_loop_tail_v1",
    execute=_nothing,
    behaviour=Behaviour.LOOP_TAIL,
    parameters=(
        Parameter(QUORUM_TYPE, default="All", menu=QUORUM_TYPES),
        Parameter(
            QUORUM_NUMBER, default="", description="how many iterations a Some tail waits for"
        ),
    ),
    description="Fires once, when all, any one, or some number of its head's iterations have "
    "reached it (at once for a data source with no elements).",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [START, NOOP, JOIN, JUNCTION, WAIT, LOOP_HEAD, LOOP_TAIL, TREE_RETURN]
