"""Run states a worker keeps between the batches it claims, checked against the run's revision.

Rebuilding a run's state reads all of its task rows. A loop of N iterations is claimed in about
N / batch_size batches over a run that grows to 2N tasks, so rebuilding it for every batch costs
O(N²). A runner therefore keeps the state it committed, and reuses it when it claims the run
again, but only if nothing else changed the run meanwhile: every write that changes what a
worker loads for a run (a worker's commit, a Complete accepted for one of its tokens, fields
written to its instance) bumps ``runs.revision``, and a kept state is used only when the
revision read with the claim is the one its own commit left. Another worker or process that
processed the run in between, or any other writer, makes the revisions differ, and the run is
read again.

A state is taken out when a batch starts with it and put back only after that batch's commit
succeeded, so a state changed by a batch that failed, lost its lease or was left unprocessed is
never reused. Only states whose in-memory form is exactly what reading the rows gives back are put
back (see :meth:`Runner._keepable <engine.processing.runner.Runner>`); the number kept is bounded,
the least recently used going first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from engine.run.state import RunState

DEFAULT_CAPACITY = 256  # runs; a kept state is about the size of its task rows


class RunCache:
    """Run id -> (revision, state); shared by a runner's worker threads."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._states: OrderedDict[int, tuple[int, RunState]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, run_id: int, revision: int) -> RunState | None:
        """The state kept for a run if it is still at ``revision``; it leaves the cache anyway."""
        with self._lock:
            kept = self._states.pop(run_id, None)
        if kept is None or kept[0] != revision:
            return None
        return kept[1]

    def keep(self, run_id: int, revision: int, state: RunState) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._states[run_id] = (revision, state)
            self._states.move_to_end(run_id)
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)

    def discard(self, run_id: int) -> None:
        with self._lock:
            self._states.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._states)


__all__ = ["DEFAULT_CAPACITY", "RunCache"]
