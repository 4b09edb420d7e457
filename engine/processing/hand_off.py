"""Handing a trigger this process just accepted to its own consumer, claimed by the accept.

Without a hand-off a createStart costs its consumer three transactions more than its accept: a
worker (or ``run_until_idle``) claims the trigger (a write), reads its run back (a read) and
commits the step, and then claims again to learn that nothing else is due (a write that finds
nothing). But the process that accepts a start already knows everything a claim would learn: the
run is new (Staged, no tasks, no errors) and nobody else can hold it. So when a consumer in this
process is ready for it, the accepting transaction inserts the run and its Root trigger already
claimed, under a lease of its own exactly as a claim would write it (the trigger Work In
Progress, its first attempt, the run leased to the same claim id), and hands the claim with the
run's row to that consumer in memory: no claim, no read. The step then commits as after any
claim, fenced on the lease.

Nothing about durability or other processes changes: the trigger is a row before the caller
hears of it; no other process claims it while the lease holds, as with any claim; if this
process dies the lease runs out and any worker takes the trigger up (its attempt counted, as
for a claim that ended without a close); a worker's heartbeat renews it while it is processed;
stopping hands back every claim not yet taken.

A trigger is handed off only to a consumer that is ready, so that a backlog never waits in one
process while others could take it:

- an **idle worker thread** of this process (``Engine.start``): one hand-off per worker
  waiting, so a burst is handed to the idle workers and the rest is accepted New, to be claimed
  in batches as before;
- the **thread that runs** ``run_until_idle``: once a thread has called it, the next accept it
  makes is claimed for it, and its next ``run_until_idle`` processes it first. A thread that
  never calls ``run_until_idle`` (a server's request threads, an accept-only process) never
  claims on accept. Worker threads started later take such a claim over, so it never waits for
  a thread that does not process again.

A hand-off is what one accept wrote: one start, or the starts accepted together in one
transaction (``Engine.create_starts``, the server's batches), up to a claim's size, as one
claim; processed in one step, they commit together as a claimed batch does.

A claim handed over after its lease ran out (its consumer came back late) is handed back, not
processed: another worker may hold its triggers by then.

Only runs of trees this process's selection serves are handed off (``engine.tree.selection``).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import ids

if TYPE_CHECKING:
    from engine.processing.runner import Claim


@dataclass(frozen=True)
class Reservation:
    """A consumer kept for one accept: the claim id its rows are written under."""

    claim_id: str
    for_workers: bool  # an idle worker's; otherwise the accepting thread's run_until_idle


class HandOff:
    """The claims accepted for this process's own consumers; shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = 0  # worker threads waiting for work
        self._reserved = 0  # accepts under way for them
        self._ready: deque[Claim] = deque()  # handed off, for any worker
        self._local = threading.local()  # .inline: the thread runs run_until_idle; .claim
        self._inline: dict[str, Claim] = {}  # every thread's claim not taken yet, by claim id
        self.workers_running = False

    def reserve(self) -> Reservation | None:
        """A consumer for the start about to be accepted, if one is ready; None: accept New."""
        with self._lock:
            if self.workers_running:
                if self._idle > self._reserved + len(self._ready):
                    self._reserved += 1
                    return Reservation(ids.claim_id(), for_workers=True)
                return None
        if getattr(self._local, "inline", False) and getattr(self._local, "claim", None) is None:
            return Reservation(ids.claim_id(), for_workers=False)
        return None

    def deliver(self, reservation: Reservation, claim: Claim | None) -> None:
        """Hand ``claim`` (written under the reservation) over; None: the accept claimed nothing."""
        with self._lock:
            if reservation.for_workers:
                self._reserved -= 1
                if claim is not None:
                    self._ready.append(claim)
                return
            if claim is not None and self.workers_running:  # started meanwhile: theirs
                self._ready.append(claim)
            elif claim is not None:
                self._local.claim = claim
                self._inline[claim.id] = claim

    def workers_started(self) -> None:
        """Worker threads run from now on: they take what was claimed for threads' own
        ``run_until_idle`` too, so that a start accepted before them does not wait for a thread
        that may not process again."""
        with self._lock:
            self.workers_running = True
            self._ready.extend(self._inline.values())
            self._inline.clear()  # the threads find theirs gone: taken by a worker

    def workers_stopped(self) -> None:
        """No worker takes a hand-off any more: accepts from now on are New (or inline)."""
        with self._lock:
            self.workers_running = False

    def for_worker(self) -> Claim | None:
        with self._lock:
            return self._ready.popleft() if self._ready else None

    def inline(self) -> Claim | None:
        """The claim accepted on this thread for its ``run_until_idle``, which it now runs."""
        self._local.inline = True
        claim: Claim | None = getattr(self._local, "claim", None)
        if claim is None:
            return None
        self._local.claim = None
        with self._lock:  # gone if stopping handed it back meanwhile
            return claim if self._inline.pop(claim.id, None) is not None else None

    def idle(self, waiting: bool) -> None:
        """A worker begins (True) or ends (False) waiting for work."""
        with self._lock:
            self._idle += 1 if waiting else -1

    def untaken(self) -> list[Claim]:
        """Every claim not taken yet, now nobody's: to hand back to the queue (stopping)."""
        with self._lock:
            claims = [*self._ready, *self._inline.values()]
            self._ready.clear()
            self._inline.clear()
        return claims  # other threads find theirs gone from _inline: handed back


__all__ = ["HandOff", "Reservation"]
