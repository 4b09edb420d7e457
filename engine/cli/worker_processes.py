"""``treeflow serve --processes N``: N ``treeflow worker`` processes beside the HTTP server.

In one process, HTTP parsing and node execution take turns at one interpreter lock: under load
the event loop waits for the worker threads and the other way round. With ``--processes`` the
serving process accepts only (its own worker count is 0) and runs the scheduler, and N worker
processes, started with the same database, trees and processing options, claim and process
the triggers, each with its own interpreter.

:class:`WorkerProcesses` supervises them from a thread of its own, which lives as long as they
do (Linux sends the parent-death signal when the thread that started a child ends):

- each is started through ``engine.cli.children``: a session of its own, killed by the kernel
  when the serving process dies, however it dies;
- one that exits while serve runs is logged with its status and started again, after a pause
  that doubles (up to ``MAX_RESTART_SECONDS``) while they keep exiting within
  ``STEADY_SECONDS`` of their start, so a worker that cannot start does not spin;
- :meth:`stop` sends each SIGTERM (a worker finishes the run in hand and hands the rest back),
  waits up to the shutdown time, then SIGKILLs their process groups.

A worker killed outright loses nothing: its leases run out and the next one takes its triggers
up (README: Scaling out).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from engine.cli import children

logger = logging.getLogger("treeflow.serve")

STEADY_SECONDS = 10.0  # a worker that ran this long before exiting is restarted at once
FIRST_RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 30.0
WATCH_SECONDS = 0.2  # how often the supervisor looks at its children
# serve's options that are not the worker's business: the scheduler (and its retention purge)
# runs in the serving process, and the worker count is given per process.
NOT_PASSED = frozenset({"database", "trees", "workers", "retention"})


def worker_command(
    worker: click.Command, *, database: str, trees: str, threads: int, values: Mapping[str, Any]
) -> list[str]:
    """The ``treeflow worker`` command line for serve's ``values`` of the options they share.

    Every shared option is passed explicitly, so a worker does what serve's flags said even
    where its environment would say otherwise.
    """
    arguments = [f"--database={database}", f"--trees={trees}", f"--workers={threads}"]
    for param in worker.params:
        if not isinstance(param, click.Option) or param.name in NOT_PASSED:
            continue
        value = values.get(param.name or "")
        if value is None:
            continue
        if param.is_flag and param.secondary_opts:
            arguments.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                arguments.append(param.opts[0])
        elif param.multiple:
            arguments += [f"{param.opts[0]}={item}" for item in value]
        else:
            arguments.append(f"{param.opts[0]}={value}")
    return [
        sys.executable,
        "-c",
        "from engine.cli.main import main; main()",
        "worker",
        *arguments,
        "--no-scheduler",
    ]


@dataclass
class _Slot:
    """One of the N workers: the process in it now (None while it waits to be started)."""

    number: int
    child: subprocess.Popen[bytes] | None = None
    began: float = 0.0
    due: float = 0.0  # when an empty slot is started (again)
    pause: float = FIRST_RESTART_SECONDS  # the wait after the next early exit


class WorkerProcesses:
    """``count`` copies of ``command``, kept running until :meth:`stop`."""

    def __init__(
        self, command: Sequence[str], count: int, *, shutdown_seconds: float = 30.0
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        self.command = list(command)
        self.count = count
        self.shutdown_seconds = shutdown_seconds
        self._slots = [_Slot(number) for number in range(1, count + 1)]
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the workers (on the supervisor's thread) and return once they are spawned."""
        self._thread = threading.Thread(
            target=self._supervise, name="treeflow-worker-processes", daemon=True
        )
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """SIGTERM every worker, wait up to the shutdown time, then SIGKILL what is left."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _supervise(self) -> None:
        try:
            self._tend()
        finally:
            self._started.set()
        while not self._stopping.wait(WATCH_SECONDS):
            self._tend()
        running = [slot.child for slot in self._slots if slot.child is not None]
        children.stop(running, grace=self.shutdown_seconds)
        for child in running:
            logger.info("worker process (pid %d) stopped, status %s", child.pid, child.returncode)

    def _tend(self) -> None:
        """Note the workers that exited; start those whose time has come."""
        now = time.monotonic()
        for slot in self._slots:
            if slot.child is not None and slot.child.poll() is not None:
                ran = now - slot.began
                wait = 0.0 if ran >= STEADY_SECONDS else slot.pause
                logger.warning(
                    "worker process %d (pid %d) exited with status %s after %.1f s; "
                    "starting another in %g s",
                    slot.number,
                    slot.child.pid,
                    slot.child.returncode,
                    ran,
                    wait,
                )
                self._later(slot, now, wait, steady=ran >= STEADY_SECONDS)
            if slot.child is None and slot.due <= now:
                try:
                    slot.child = children.spawn(self.command)
                except OSError as exc:  # no such interpreter, no processes left, ...
                    logger.error(
                        "worker process %d could not be started (%s); trying again in %g s",
                        slot.number,
                        exc,
                        slot.pause,
                    )
                    self._later(slot, now, slot.pause, steady=False)
                    continue
                slot.began = time.monotonic()
                logger.info(
                    "worker process %d of %d started (pid %d)",
                    slot.number,
                    self.count,
                    slot.child.pid,
                )

    @staticmethod
    def _later(slot: _Slot, now: float, wait: float, *, steady: bool) -> None:
        slot.child = None
        slot.due = now + wait
        slot.pause = FIRST_RESTART_SECONDS if steady else min(slot.pause * 2, MAX_RESTART_SECONDS)


__all__ = ["WorkerProcesses", "worker_command"]
