"""The checks Kinetic Task does not make: warnings at load, errors only when asked (strict).

Real Kinetic trees carry things Kinetic's builder saves and its engine runs without complaint:
nodes left disconnected from the start, "finish" routines that are a Start node alone (no
``system_tree_return_v1``), a return node dropped into a plain tree, and callers still giving
a parameter the routine's current version no longer declares. Refusing them would refuse most
real trees for what changes nothing at run time, so the loader reports each as a **warning**
(a :class:`~engine.errors.Problem` with file, node and line, in :attr:`Tree.warnings
<engine.tree.model.Tree.warnings>`) and loads the tree; ``strict`` (``treeflow validate
--strict``, ``Engine(strict_checks=True)``) makes every one a problem, so the tree is refused.

What each means at run time, which is what the messages say:

- an unreachable node never runs (no connector leads to it);
- a routine without a return node never completes its caller: the calling task stays Deferred
  until something completes it by its token (as in Kinetic);
- a return node in a plain tree closes without telling anyone (the run has no caller);
- a parameter a routine does not declare is not passed to it (the child's inputs are only the
  declared ones; ``engine.run.routines``).

Everything else the loader checks stays an error: these are the only leniencies.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.handlers.builtin import RETURN_HANDLER

NO_RETURN = (
    f"a routine without a {RETURN_HANDLER} node returns nothing: its callers' tasks stay "
    "Deferred until completed by their tokens"
)
RETURN_IN_TREE = (
    f"{RETURN_HANDLER} ends a routine; this tree is not one (type: routine), so the node only "
    "closes"
)


def unreachable(start: str) -> str:
    return f"node is not reachable from the start node {start!r}: it never runs"


def undeclared_input(name: str, routine: str, inputs: Iterable[str]) -> str:
    declared = ", ".join(inputs) or "none"
    return (
        f"parameter {name!r} is not an input of routine {routine!r} (its inputs: {declared}):"
        " it is not passed"
    )


__all__ = ["NO_RETURN", "RETURN_IN_TREE", "undeclared_input", "unreachable"]
