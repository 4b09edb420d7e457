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

A trigger is handed off only to a consumer that is ready or about to be, and never more of them
than one claim takes, so that a backlog never waits in one process while others could take it:

- an **idle worker thread** of this process (``Engine.start``): one hand-off per worker
  waiting;
- while **every worker is busy**, the next worker to finish its step: the starts accepted
  meanwhile are claimed together, under one claim id, as one gathering of at most a claim's
  size (the rest is accepted New, to be claimed in batches as before). The first worker to
  look for work takes the whole gathering as its next batch: no claim, no read, whereas
  claiming them would cost a write transaction and a read for every step (measured, linear10
  with a host thread submitting beside one worker: the claim and the read were a fifth of the
  CPU a run cost, the steps being of two runs). A worker that takes a gathering first waits for
  the accepts still writing under its claim id, which are a commit away, so that each claim
  id is processed once, whole. A gathering whose first start is older than a third of a lease
  when the heartbeat looks (it looks every third of a lease), no worker having finished its
  step meanwhile (a slow handler), is handed back to the queue for any process to claim;
- the **thread that runs** ``run_until_idle``: once a thread has called it, the next accept it
  makes is claimed for it, and its next ``run_until_idle`` processes it first. A thread that
  never calls ``run_until_idle`` (a server's request threads, an accept-only process) never
  claims on accept. Worker threads started later take such a claim over, so it never waits for
  a thread that does not process again.

A hand-off to an idle consumer is what one accept wrote: one start, or the starts accepted
together in one transaction (``Engine.create_starts``, the server's batches), up to a claim's
size, as one claim; a gathering is what several accepts wrote. Processed in one step, they
commit together as a claimed batch does.

A claim handed over after its lease ran out (its consumer came back late) is handed back, not
processed: another worker may hold its triggers by then.

Only runs of trees this process's selection serves are handed off (``engine.tree.selection``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import ids
from engine.processing.runner import Claim

if TYPE_CHECKING:
    from engine.store.queue import ClaimedTrigger


@dataclass
class _Gathering:
    """The starts accepted for whichever worker finishes its step first, under one claim id."""

    claim_id: str
    triggers: list[ClaimedTrigger] = field(default_factory=list)
    runs: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    until: float | None = None  # the earliest lease of its starts
    accepts: int = 0  # accepts writing under its claim id, not yet delivered
    promised: int = 0  # the starts those accepts may still add

    def add(self, claim: Claim) -> None:
        self.triggers.extend(claim.triggers)
        self.runs.update(claim.runs or {})
        if claim.until is not None:
            self.until = claim.until if self.until is None else min(self.until, claim.until)

    def claim(self) -> Claim:
        return Claim(self.claim_id, tuple(self.triggers), runs=self.runs, until=self.until)


@dataclass(frozen=True)
class Reservation:
    """A consumer kept for one accept: the claim id its rows are written under, and how many
    starts it may claim (a batch's accept claims that many, the rest is accepted New)."""

    claim_id: str
    for_workers: bool  # a worker's (idle or gathering); otherwise the thread's run_until_idle
    room: int
    gathering: _Gathering | None = None


class HandOff:
    """The claims accepted for this process's own consumers; shared by its threads.

    ``limit`` is a claim's size: the most starts one hand-off (and one gathering) holds.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._delivered = threading.Condition(self._lock)  # an accept of a gathering is done
        self._idle = 0  # worker threads waiting for work
        self._reserved = 0  # accepts under way for them
        self._ready: deque[Claim] = deque()  # handed off, for any worker
        self._gathering: _Gathering | None = None  # for the next worker, while all are busy
        self._local = threading.local()  # .inline: the thread runs run_until_idle; .claim
        self._inline: dict[str, Claim] = {}  # every thread's claim not taken yet, by claim id
        self.workers_running = False

    def reserve(self, wanted: int = 1) -> Reservation | None:
        """A consumer for the ``wanted`` starts about to be accepted, if one is ready or about
        to be; None: accept them New."""
        with self._lock:
            if self.workers_running:
                if self._idle > self._reserved + len(self._ready):
                    self._reserved += 1
                    return Reservation(ids.claim_id(), for_workers=True, room=self.limit)
                return self._join_gathering(wanted)
        if getattr(self._local, "inline", False) and getattr(self._local, "claim", None) is None:
            return Reservation(ids.claim_id(), for_workers=False, room=self.limit)
        return None

    def _join_gathering(self, wanted: int) -> Reservation | None:
        gathering = self._gathering
        if gathering is None:
            gathering = self._gathering = _Gathering(ids.claim_id())
        room = min(wanted, self.limit - len(gathering.triggers) - gathering.promised)
        if room <= 0:
            return None
        gathering.accepts += 1
        gathering.promised += room
        return Reservation(gathering.claim_id, for_workers=True, room=room, gathering=gathering)

    def deliver(self, reservation: Reservation, claim: Claim | None) -> None:
        """Hand ``claim`` (written under the reservation) over; None: the accept claimed nothing."""
        with self._lock:
            gathering = reservation.gathering
            if gathering is not None:
                gathering.accepts -= 1
                gathering.promised -= reservation.room
                if claim is not None:
                    gathering.add(claim)
                self._delivered.notify_all()
                return
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

    def _seal(self) -> Claim | None:
        """Take the gathering (the lock held) once its accepts under way are delivered; later
        accepts open another. None if it holds no start."""
        gathering = self._gathering
        if gathering is None or not (gathering.triggers or gathering.accepts):
            return None
        self._gathering = None
        while gathering.accepts:
            self._delivered.wait()
        return gathering.claim() if gathering.triggers else None

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
        """A claim handed off to an idle worker, or else the gathering (see the module)."""
        with self._lock:
            if self._ready:
                return self._ready.popleft()
            if self._gathering is None or not self._gathering.triggers:
                return None
            return self._seal()

    def stale(self, until_before: float) -> Claim | None:
        """The gathering, if its first start's lease ends before ``until_before`` (no worker
        took it in time): taken from the workers, to be handed back to the queue."""
        with self._lock:
            gathering = self._gathering
            if gathering is None or gathering.until is None or gathering.until >= until_before:
                return None
            return self._seal()

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
            gathered = self._seal()
            claims = [*self._ready, *self._inline.values(), *([gathered] if gathered else [])]
            self._ready.clear()
            self._inline.clear()
        return claims  # other threads find theirs gone from _inline: handed back


__all__ = ["HandOff", "Reservation"]
