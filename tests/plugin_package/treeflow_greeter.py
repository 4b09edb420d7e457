"""An example treeflow node plugin: one handler, ``greeter_hello_v1``, that greets by name.

Installed, it is found through the ``treeflow.nodes`` entry point its ``pyproject.toml``
declares, exactly as treeflow's own nodes are; nothing else registers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine import Handler, HandlerContext, Parameter, hookimpl


def _hello(context: HandlerContext) -> Mapping[str, str]:
    return {"greeting": f"Hello, {context.parameters['name']}!"}


HELLO = Handler(
    definition_id="greeter_hello_v1",
    execute=_hello,
    parameters=(Parameter("name", required=True, description="who to greet"),),
    results=("greeting",),
    description="Greets NAME: its result 'greeting' is 'Hello, NAME!'.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [HELLO]
