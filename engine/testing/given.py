"""Handlers that give a test case's results instead of running, and the virtual clock.

Only plain handlers are replaced (a plugin's, ``utilities_echo_v1``, ``utilities_defer_v1``):
starts, joins, junctions, waits, loops and routine calls are the engine's own behaviour and run
as they do in production, which is what a tree test tests. A node's given results apply to each
call of its handler in turn (the first entry to the first call, ...; the last entry again once
they run out); a call of a node with none runs the real handler, unless the case is ``strict``,
when it fails as a Handler Error naming the node. A deferring node gets its deferral token as
the result ``deferral_token`` unless the given results name one, as ``utilities_defer_v1`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from engine.errors import GivenHandlerError
from engine.handlers.handler import Behaviour, Handler, HandlerContext
from engine.testing.cases import Given


class VirtualClock:
    """UNIX seconds that move only when a step advances them: waits are due when a test says."""

    def __init__(self, start: str) -> None:
        self.now = datetime.fromisoformat(start).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GivenHandlers:
    """Wraps an engine's handlers (``Engine(wrap_handlers=...)``) to give ``given`` results.

    ``calls`` counts each node's handler calls, so the Nth call gets the Nth given entry.
    """

    def __init__(self, given: Mapping[str, tuple[Given, ...]], *, strict: bool) -> None:
        self.given, self.strict = given, strict
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, handler: Handler) -> Handler:
        if handler.behaviour is not Behaviour.PLAIN:
            return handler
        real = handler.execute

        def execute(context: HandlerContext) -> Mapping[str, str] | None:
            entry = self._next(context.node_name)
            if entry is None:
                if self.strict:
                    raise GivenHandlerError(
                        f"node {context.node_name!r} has no given results (the case is strict)"
                    )
                return real(context)
            if entry.error is not None:
                raise GivenHandlerError(entry.error)
            results = dict(entry.results)
            if context.deferral_token is not None:
                results.setdefault("deferral_token", context.deferral_token)
            return results

        return replace(handler, execute=execute)

    def _next(self, node: str) -> Given | None:
        entries = self.given.get(node)
        with self._lock:
            call = self.calls.get(node, 0)
            self.calls[node] = call + 1
        if not entries:
            return None
        return entries[min(call, len(entries) - 1)]


__all__ = ["GivenHandlers", "VirtualClock"]
