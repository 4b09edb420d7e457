"""What the fault tests share: their trees, `treeflow worker` subprocesses, and the chaos.

Workers are real ``treeflow worker`` processes; each connects with an ``application_name``
unique to the test, and only backends carrying that name are ever terminated: other people's
tests share the PostgreSQL server.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from benchmarks import children

SOURCE, GROUP = "Tests", "Faults"
REVIEW, JOIN, PLANTED = "Fault Review", "Fault Join", "Fault Planted"
REVIEW_NODES = {"Start", "Prepare", "Review", "Notify", "Decide", "End"}
JOIN_NODES = {"Start", "Quick", "Approval", "Pause", "Joined", "Done"}
PLANTED_NODES = {"Start", "Broken", "Fine"}
BUSY_WAIT = 5.0  # seconds the chaos waits for a claim in flight before it skips a kill
MIN_AGE = 0.5  # seconds a worker has been up at least before the chaos may kill it

TREES = {
    "review.yaml": f"""
source: {SOURCE}
group: {GROUP}
name: {REVIEW}
nodes:
  Start: {{handler: system_start_v1, connectors: [{{to: Prepare}}]}}
  Prepare:
    handler: utilities_echo_v1
    parameters: {{input: "prepared {{{{ source.id }}}}"}}
    connectors: [{{to: Review}}]
  Review:
    handler: utilities_defer_v1
    defers: true
    connectors:
      - {{to: Notify, type: Create}}
      - {{to: Decide}}
  Notify:
    handler: utilities_echo_v1
    parameters: {{input: "token {{{{ results['Review']['deferral_token'] }}}}"}}
  Decide:
    handler: utilities_echo_v1
    parameters: {{input: "{{{{ source.id }}}} {{{{ results['Review']['Status'] }}}}"}}
    connectors: [{{to: End}}]
  End: {{handler: system_noop_v1}}
""",
    "join.yaml": f"""
source: {SOURCE}
group: {GROUP}
name: {JOIN}
nodes:
  Start:
    handler: system_start_v1
    connectors: [{{to: Quick}}, {{to: Approval}}, {{to: Pause}}]
  Quick:
    handler: utilities_echo_v1
    parameters: {{input: quick}}
    connectors: [{{to: Joined}}]
  Approval:
    handler: utilities_defer_v1
    defers: true
    connectors: [{{to: Joined}}]
  Pause:
    handler: system_wait_v1
    defers: true
    parameters: {{Time to wait: "{{{{ inputs['Wait'] }}}}", Time unit: Second}}
    connectors: [{{to: Joined}}]
  Joined:
    handler: system_join_v1
    parameters: {{type: All}}
    connectors: [{{to: Done}}]
  Done:
    handler: utilities_echo_v1
    parameters: {{input: "{{{{ source.id }}}} {{{{ results['Approval']['Status'] }}}}"}}
""",
    "planted.yaml": f"""
source: {SOURCE}
group: {GROUP}
name: {PLANTED}
nodes:
  Start:
    handler: system_start_v1
    connectors: [{{to: Broken}}, {{to: Fine}}]
  Broken:
    handler: utilities_echo_v1
    parameters: {{input: "{{{{ inputs['Missing'] }}}}"}}
  Fine:
    handler: utilities_echo_v1
    parameters: {{input: fine}}
""",
}


def write_trees(folder: Path) -> Path:
    folder.mkdir()
    for name, text in TREES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def with_application_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


class Workers:
    """``count`` ``treeflow worker`` processes, killed and restarted at will."""

    def __init__(self, url: str, trees: Path, logs: Path, count: int) -> None:
        self.url, self.trees, self.logs = url, trees, logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.spawned_at: dict[int, float] = {}  # pid -> when it was started
        self.log_of: dict[int, Path] = {}
        self.started = 0
        for _ in range(count):
            self.processes.append(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        path = self.logs / f"worker-{self.started}.log"
        log = path.open("wb")
        command = [
            sys.executable,
            "-c",
            "from engine.cli.main import main; main()",
            "worker",
            f"--database={self.url}",
            f"--trees={self.trees}",
            "--workers=2",
            "--batch-size=16",
            "--lease-seconds=1.5",
            "--poll-interval=0.05",
            "--max-attempts=25",
            "--shutdown-seconds=10",
        ]
        # A process group of its own, which kill_all ends. Not benchmarks.children.spawn: the
        # chaos thread restarts workers, and the kernel's parent-death signal follows the
        # thread that started a child, so each would die when the chaos stops.
        try:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self.spawned_at[process.pid] = time.monotonic()
        self.log_of[process.pid] = path
        return process

    def kill_one(self, rng: random.Random) -> bool:
        """SIGKILL a random worker that is up, and start a new one in its place.

        A worker that has not logged that it started (or was spawned under MIN_AGE ago) is
        spared: killing a process while Python is still importing would test nothing. Returns
        whether one was killed.
        """
        now = time.monotonic()
        up = [
            index
            for index, process in enumerate(self.processes)
            if now - self.spawned_at[process.pid] >= MIN_AGE and self.is_up(process)
        ]
        if not up:
            return False
        index = rng.choice(up)
        process = self.processes[index]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.processes[index] = self._spawn()
        return True

    def is_up(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether the worker has logged that it started (and so may hold a claim)."""
        return "started:" in self.log_of[process.pid].read_text(errors="replace")

    def stop(self) -> list[int]:
        """SIGTERM every worker once it is up (logged that it started); returns exit statuses.

        A signal that lands while Python is still importing ends the process before the worker
        has installed its handler (harmless: it holds nothing yet), which is not what this tests.
        """
        deadline = time.monotonic() + 60
        for process in self.processes:
            while not self.is_up(process):
                if process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=60) for process in self.processes]

    def kill_all(self) -> None:
        """SIGKILL every worker's process group (a failed test leaves nothing running)."""
        children.stop(self.processes, grace=0)

    def logs_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def terminate_backends(admin_url: str, application_name: str) -> int:
    """pg_terminate_backend every backend carrying ``application_name`` (ours alone)."""
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            return len(
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name AND datname = current_database()"
                        " AND pid <> pg_backend_pid()"
                    ),
                    {"name": application_name},
                ).all()
            )
    finally:
        admin.dispose()


class Chaos(threading.Thread):
    """Until stopped: every 0.3-0.8 s, SIGKILL and restart a worker while a claim is in flight,
    or (in turn) terminate the workers' backends."""

    def __init__(
        self,
        workers: Workers,
        terminate: Callable[[], int] | None,
        busy: Callable[[], bool],
        seed: int = 7,
    ) -> None:
        super().__init__(name="chaos", daemon=True)
        self.workers, self.terminate, self.busy = workers, terminate, busy
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.kills = 0
        self.terminations = 0  # backends terminated
        self.rounds_terminating = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            rounds = 0
            while not self.halt.wait(self.rng.uniform(0.3, 0.8)):
                rounds += 1
                if self.terminate is not None and rounds % 2 == 0:
                    self._terminate(self.terminate)
                else:
                    self._kill()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.failure = exc

    def _kill(self) -> None:
        """Kill a worker while a claim is being processed, or skip this round.

        Only kills that land while some trigger is Work In Progress count: a kill of an idle
        worker proves nothing about claims in flight. On a loaded machine the first such moment
        may take a while to come, so it waits up to BUSY_WAIT seconds for one.
        """
        deadline = time.monotonic() + BUSY_WAIT
        while not self.busy():
            if time.monotonic() > deadline or self.halt.is_set():
                return
            time.sleep(0.01)
        if self.workers.kill_one(self.rng):
            self.kills += 1

    def _terminate(self, terminate: Callable[[], int]) -> None:
        """Terminate the workers' backends, waiting a little for a restarted one to connect."""
        for _attempt in range(20):
            terminated = terminate()
            if terminated:
                self.terminations += terminated
                self.rounds_terminating += 1
                return
            if self.halt.wait(0.1):
                return

    def stop(self) -> None:
        self.halt.set()
        self.join()
        if self.failure is not None:
            raise self.failure
