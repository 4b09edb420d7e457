"""The hook a treeflow plugin implements.

A plugin is any module or object with ``@hookimpl``-marked functions; a third party's is found
through the ``treeflow.nodes`` entry-point group or passed to ``Engine(plugins=[...])``.
treeflow's own nodes (``nodes.system``, ``nodes.utilities``, ``nodes.schedules``) implement exactly
this hook, and the registry registers them itself, so they are the examples to copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from engine.handlers.handler import Handler

PROJECT = "treeflow"
ENTRY_POINT_GROUP = "treeflow.nodes"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def treeflow_node_handlers() -> Sequence[Handler]:
    """Return the node handlers this plugin provides.

    Called once, when an engine builds its handler registry. Each :class:`engine.Handler`
    declares its definition id, parameters, result names and whether it may defer; the registry
    checks that contract at registration and refuses a handler that breaks it, so a bad plugin
    fails when the engine starts, not in the middle of a run.
    """
    raise NotImplementedError  # a specification has no body


__all__ = ["ENTRY_POINT_GROUP", "PROJECT", "hookimpl", "hookspec", "treeflow_node_handlers"]
