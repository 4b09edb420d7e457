"""Background worker threads and the heartbeat that keeps their leases alive.

Each worker loops: take a start this process handed to it, or the starts gathered while it was
busy (``engine.processing.hand_off``: claimed by their accept, so no claim and no read), or else
claim a batch, process it, and when nothing is
due wait for a wake-up (an in-process createStart or createDeferred) or the poll interval,
whichever comes first. Whether anything is due is first asked read-only (``queue.due``) unless the
step it committed said more is due (it asks in its own transaction), so an idle worker's poll, or
the question after a hand-off, writes nothing. A
heartbeat renews the leases of every claim being processed at a third of the lease time, so a
long handler does not lose its trigger, and hands back a gathering no worker took meanwhile; a
dead process renews nothing, and its leases run out.

A worker does not die because the database went away (a restart, a terminated backend): the failed
transaction was rolled back, so the claim's triggers are either committed or not touched; the worker
hands them back at once if it can (or their leases run out) and retries with back-off and jitter,
logging the outage once (``engine.processing.outage``). Stopping is graceful: no new claims, the run
in hand finishes, the rest of each claim is handed back, and the heartbeat keeps renewing until the
last worker is done.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from engine.processing.hand_off import HandOff
from engine.processing.outage import Outage
from engine.processing.runner import Claim
from engine.store import queue

if TYPE_CHECKING:
    from engine.processing.runner import Runner

_NOTHING = Claim(id="", triggers=())


class WorkerPool:
    def __init__(
        self,
        runner: Runner,
        *,
        batch_size: int,
        poll_interval: float,
        logger: logging.Logger,
        hand_off: HandOff | None = None,
    ) -> None:
        self.runner = runner
        self.hand_off = hand_off or HandOff()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.logger = logger
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()  # no new claims
        self._finished = threading.Event()  # every worker has returned: the heartbeat may end
        self._heart: threading.Thread | None = None
        self._outage = Outage(logger, "engine worker database access")
        self._wake = threading.Condition()
        self._woken = False  # a wake-up arrived since the last claim began: do not sleep
        self._active: set[str] = set()
        self._active_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self, workers: int) -> None:
        if self._threads:
            raise RuntimeError("the engine's workers are already running")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self._stopping.clear()
        self._finished.clear()
        for number in range(workers):
            thread = threading.Thread(
                target=self._work, name=f"treeflow-worker-{number}", daemon=True
            )
            self._threads.append(thread)
        self._heart = threading.Thread(
            target=self._heartbeat, name="treeflow-heartbeat", daemon=True
        )
        self.hand_off.workers_started()
        for thread in [*self._threads, self._heart]:
            thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop claiming and wait up to ``timeout`` seconds for the workers to hand back."""
        self._stopping.set()
        self.hand_off.workers_stopped()
        self.wake(all_workers=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:  # a handler still running: its leases run out once this process is gone
            self.logger.warning("workers %s did not finish within %ss", stuck, timeout)
        for claim in self.hand_off.untaken():
            self._hand_back(claim)
        self._finished.set()
        if self._heart is not None:
            self._heart.join(timeout)
        self._threads, self._heart = [], None

    def wake(self, *, all_workers: bool = False) -> None:
        if not self._threads:
            return
        with self._wake:
            self._woken = True
            if all_workers:
                self._wake.notify_all()
            else:
                self._wake.notify()

    def _work(self) -> None:
        ask = True  # whether to ask read-only before claiming; each step answers for the next
        while not self._stopping.is_set():
            with self._wake:
                self._woken = False
            claim = self.hand_off.for_worker()
            if claim is not None and claim.expired(self.runner.clock()):
                self._hand_back(claim)  # releases only what this claim still holds
                claim = None
            if claim is None:
                try:
                    claim = self._claim(ask)
                except Exception as exc:
                    self._stopping.wait(self._outage.failed(exc))
                    continue
                self._outage.succeeded()
            if not claim.triggers:
                with self._wake:
                    if not self._woken:  # a trigger accepted during the claim is not missed
                        self.hand_off.idle(True)
                        try:
                            self._wake.wait(self.poll_interval)
                        finally:
                            self.hand_off.idle(False)
                ask = True
                continue
            with self._active_lock:
                self._active.add(claim.id)
            try:
                more = self.runner.process_and_ask(claim, should_stop=self._stopping.is_set)[1]
                ask = not more
            except Exception as exc:
                delay = self._outage.failed(exc)
                self._hand_back(claim)
                ask = True
                self._stopping.wait(delay)
            finally:
                with self._active_lock:
                    self._active.discard(claim.id)

    def _claim(self, ask: bool) -> Claim:
        if ask and not self.runner.due():
            return _NOTHING
        return self.runner.claim(self.batch_size)

    def _hand_back(self, claim: Claim) -> None:
        """After a failed commit, release what the claim still holds so any worker retries it.

        Only rows still leased to this claim are released: if the commit did go through before
        the connection broke, its triggers are closed and nothing changes. If the database is
        still away, the leases simply run out.
        """
        try:
            self.runner.hand_back(claim)
        except Exception:
            self.logger.debug("could not hand claim %s back; its leases will run out", claim.id)

    def _heartbeat(self) -> None:
        interval = self.runner.lease_seconds / 3
        while not self._finished.wait(interval):
            stale = self.hand_off.stale(
                until_before=self.runner.clock() + self.runner.lease_seconds - interval
            )
            if stale is not None:  # gathered while a slow step ran: any process may take it
                self._hand_back(stale)
            with self._active_lock:
                active = sorted(self._active)
            if not active:
                continue
            try:
                with self.runner.database.write() as connection:
                    queue.renew(
                        connection,
                        claim_ids=active,
                        until=self.runner.clock() + self.runner.lease_seconds,
                    )
            except Exception as exc:
                self._outage.failed(exc)


__all__ = ["WorkerPool"]
