"""Processes the harness starts (``treeflow worker``, ``treeflow serve``, a measuring child) die
with it, whatever ends it: ``engine.cli.children``, which ``treeflow serve --processes`` uses for
its workers too (sessions of their own, stopped by process group, and ``PR_SET_PDEATHSIG``)."""

from engine.cli.children import spawn, stop

__all__ = ["spawn", "stop"]
