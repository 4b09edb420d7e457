"""The processes workload: one backlog of linear10 runs drained by 1, 2 or 4 `treeflow worker`
processes, the scale-out path (several engine processes on one PostgreSQL).

For each process count K, on a fresh database: N runs are accepted with createStart (untimed)
with their Root triggers not yet due; K ``treeflow worker`` processes (one worker thread each)
are started and waited for until each has logged that it started, so interpreter start-up is
not measured; then one UPDATE makes the whole backlog due, and the clock runs from that commit
to the last trigger's close, as the database recorded it (``max(closed_at)``). ``runs_per_s``
is N / that time, counted from committed rows (every run Completed, its 12 task rows, its
trigger Closed); ``engines`` is how many of the K processes closed at least one trigger.
SQLite measures one process only: several processes on one SQLite file take turns at its
single write lock, which is not a way to scale.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks import children
from benchmarks.measure import (
    BATCH_SIZE,
    LINEAR10,
    BenchmarkError,
    Progress,
    Ticker,
    start_runs,
    verify,
    wait_until_drained,
)
from engine import Engine
from engine.store.tables import triggers

POSTGRES_COUNTS = (1, 2, 4)
SQLITE_COUNTS = (1,)
LATER = 10**7  # seconds: how far in the future the backlog is accepted, until released
READY_SECONDS = 60.0


def counts(database: str) -> tuple[int, ...]:
    return POSTGRES_COUNTS if database == "postgresql" else SQLITE_COUNTS


def spawn_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return children.spawn(
            [
                sys.executable,
                "-c",
                "from engine.cli.main import main; main()",
                "worker",
                f"--database={url}",
                f"--trees={LINEAR10.path}",
                "--workers=1",
                f"--batch-size={BATCH_SIZE}",
                "--poll-interval=0.02",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    for worker, log in zip(workers, logs, strict=True):
        while "started:" not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError(f"a treeflow worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)


def measure(url: str, processes: int, runs: int, progress: Progress) -> dict[str, float]:
    """Drain ``runs`` linear10 runs with ``processes`` worker processes; ``progress`` to 2N."""
    with (
        Engine(url, trees=LINEAR10.path, clock=lambda: time.time() + LATER) as engine,
        tempfile.TemporaryDirectory(prefix="treeflow-bench-") as folder,
    ):
        first_run_id = start_runs(engine, LINEAR10, runs, Ticker(progress, runs))
        logs = [Path(folder) / f"worker-{number}.log" for number in range(processes)]
        workers = [spawn_worker(url, log) for log in logs]
        try:
            _wait_ready(workers, logs)
            with engine.database.write() as connection:
                released = time.time()
                connection.execute(
                    triggers.update().where(triggers.c.status == "New").values(due_at=released)
                )
            wait_until_drained(engine, submitted=runs, progress=lambda c: progress(runs + c))
        finally:
            children.stop(workers)  # SIGTERM, then SIGKILL after a grace time: never left behind
        verify(
            engine,
            first_run_id=first_run_id,
            run_count=runs,
            status="Completed",
            tasks_per_run=LINEAR10.nodes_per_run,
            triggers_per_run=1,
        )
        with engine.database.read() as connection:
            last, engines = connection.execute(
                sa.select(
                    sa.func.max(triggers.c.closed_at), sa.func.count(triggers.c.engine.distinct())
                )
            ).one()
    return {
        "processes": processes,
        "runs": runs,
        "runs_per_s": runs / (last - released),
        "engines": engines,
    }


__all__ = ["POSTGRES_COUNTS", "SQLITE_COUNTS", "counts", "measure"]
