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
back (see :meth:`Runner._keep <engine.processing.runner.Runner>`).

What is kept is bounded twice, the least recently kept going first: by count, and by the bytes the
states are estimated to take (:meth:`RunState.kept_bytes <engine.run.state.RunState>`: their
documents as stored plus a measured cost per value and per task). The count alone let one user pin
memory: a run waiting at a deferral keeps its state, and 256 runs started with 4 MB bodies held
gigabytes. A state larger than the whole byte budget is not kept at all (and evicts nothing): its
run is read again when it is next claimed, which costs what it did before states were kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from engine.errors import BadRequest
from engine.run.state import RunState

DEFAULT_RUNS = 256  # states kept per engine process
DEFAULT_BYTES = 256 * 2**20  # their estimated size, together


class RunCache:
    """Run id -> (revision, state, its estimated bytes); shared by a runner's worker threads."""

    def __init__(self, capacity: int = DEFAULT_RUNS, max_bytes: int = DEFAULT_BYTES) -> None:
        for name, value in (("run_cache_runs", capacity), ("run_cache_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                reason = f"expected a whole number of 0 or more, not {value!r}"
                raise BadRequest(field=name, reason=reason)
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._states: OrderedDict[int, tuple[int, RunState, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, run_id: int, revision: int) -> RunState | None:
        """The state kept for a run if it is still at ``revision``; it leaves the cache anyway."""
        with self._lock:
            kept = self._states.pop(run_id, None)
            if kept is not None:
                self._bytes -= kept[2]
        if kept is None or kept[0] != revision:
            return None
        return kept[1]

    def keep(self, run_id: int, revision: int, state: RunState) -> None:
        """Keep a state for the run's next batch, evicting the least recently kept beyond bounds."""
        if self.capacity <= 0:
            return
        size = state.kept_bytes()  # outside the lock: it may count a new document
        with self._lock:
            previous = self._states.pop(run_id, None)
            if previous is not None:
                self._bytes -= previous[2]
            if size > self.max_bytes:
                return
            self._states[run_id] = (revision, state, size)
            self._bytes += size
            while len(self._states) > self.capacity or self._bytes > self.max_bytes:
                _, (_, _, evicted) = self._states.popitem(last=False)
                self._bytes -= evicted

    def discard(self, run_id: int) -> None:
        with self._lock:
            kept = self._states.pop(run_id, None)
            if kept is not None:
                self._bytes -= kept[2]

    @property
    def kept_bytes(self) -> int:
        """The estimated bytes of the states kept now."""
        return self._bytes

    def run_ids(self) -> list[int]:
        """The runs whose states are kept, least recently kept first."""
        with self._lock:
            return list(self._states)

    def __len__(self) -> int:
        return len(self._states)


__all__ = ["DEFAULT_BYTES", "DEFAULT_RUNS", "RunCache"]
