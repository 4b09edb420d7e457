"""Background worker threads and the heartbeat that keeps their leases alive.

Each worker loops: claim a batch, process it, and when nothing is due wait for a wake-up (an
in-process createStart or createDeferred) or the poll interval, whichever comes first. A
heartbeat renews the leases of every claim being processed at a third of the lease time, so a
long handler does not lose its trigger; a dead process renews nothing, and its leases run out.
Database errors in the loop are logged and retried with back-off: a worker does not die
because the database restarted.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from engine.store import queue

if TYPE_CHECKING:
    from engine.runner import Runner

MAX_BACKOFF = 10.0


class WorkerPool:
    def __init__(
        self, runner: Runner, *, batch_size: int, poll_interval: float, logger: logging.Logger
    ) -> None:
        self.runner = runner
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.logger = logger
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
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
        for number in range(workers):
            thread = threading.Thread(
                target=self._work, name=f"treeflow-worker-{number}", daemon=True
            )
            self._threads.append(thread)
        self._threads.append(
            threading.Thread(target=self._heartbeat, name="treeflow-heartbeat", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stopping.set()
        self.wake(all_workers=True)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

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
        backoff = 0.0
        while not self._stopping.is_set():
            with self._wake:
                self._woken = False
            try:
                claim = self.runner.claim(self.batch_size)
                backoff = 0.0
            except Exception:
                backoff = min(MAX_BACKOFF, max(0.1, backoff * 2))
                self.logger.exception("claiming triggers failed; retrying in %.1fs", backoff)
                self._stopping.wait(backoff)
                continue
            if not claim.triggers:
                with self._wake:
                    if not self._woken:  # a trigger accepted during the claim is not missed
                        self._wake.wait(self.poll_interval)
                continue
            with self._active_lock:
                self._active.add(claim.id)
            try:
                self.runner.process(claim, should_stop=self._stopping.is_set)
            except Exception:
                self.logger.exception(
                    "processing claim %s failed; its leases will run out", claim.id
                )
                self._stopping.wait(0.1)
            finally:
                with self._active_lock:
                    self._active.discard(claim.id)

    def _heartbeat(self) -> None:
        interval = self.runner.lease_seconds / 3
        while not self._stopping.wait(interval):
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
            except Exception:
                self.logger.exception("renewing leases failed")


__all__ = ["WorkerPool"]
