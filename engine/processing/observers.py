"""Watching the engine close triggers, for metrics: an optional hook, one call per commit.

A host (the HTTP server's ``/metrics``) registers a callable with
``Engine.add_close_observer(callback)``. After each batch of triggers commits, the callback
is called once, on the worker's thread, with what that commit closed: each trigger's action,
whether it closed Closed or Failed, and its latency from acceptance to the commit. Nothing is
called per node, and with no observer registered the runner pays one empty-tuple check per
commit. A callback must be quick and must not raise (what it raises is logged and dropped: a
metric never fails a commit that has already happened).

The engine imports nothing of any metrics library; the callback is plain Python.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from engine.records import ClosedTrigger
from engine.statuses import TriggerStatus

logger = logging.getLogger("treeflow.observers")


CloseObserver = Callable[[Sequence[ClosedTrigger]], None]


class _Close(Protocol):
    @property
    def trigger_id(self) -> int: ...
    @property
    def status(self) -> TriggerStatus: ...


class _Claimed(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def created_at(self) -> float: ...


class _Write(Protocol):
    @property
    def closes(self) -> Sequence[_Close]: ...


class Observers:
    """The callbacks registered on a runner; adding and removing are safe from any thread."""

    def __init__(self) -> None:
        self._callbacks: tuple[CloseObserver, ...] = ()
        self._lock = threading.Lock()

    def add(self, callback: CloseObserver) -> None:
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

    def remove(self, callback: CloseObserver) -> None:
        """Unregister ``callback`` (one registration of it); unknown callbacks are ignored."""
        with self._lock:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
            self._callbacks = tuple(callbacks)

    def committed(
        self, writes: Iterable[_Write], claimed: Iterable[_Claimed], *, now: float
    ) -> None:
        """Tell every callback what a commit at ``now`` closed (nothing when none is set)."""
        callbacks = self._callbacks
        if not callbacks:
            return
        by_id = {trigger.id: trigger for trigger in claimed}
        closed = [
            ClosedTrigger(
                id=close.trigger_id,
                action=by_id[close.trigger_id].action,
                status=close.status,
                latency=max(0.0, now - by_id[close.trigger_id].created_at),
            )
            for write in writes
            for close in write.closes
            if close.trigger_id in by_id
        ]
        if not closed:
            return
        for callback in callbacks:
            try:
                callback(closed)
            except Exception:
                logger.exception("a close observer raised; its metrics may be incomplete")


__all__ = ["CloseObserver", "Observers"]
