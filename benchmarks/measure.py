"""What every treeflow measurement shares: the benchmark trees, draining the queue, checks.

Durability is what makes the figures comparable with the peer's: a run counts only once the
transaction that closed its trigger has committed. So a measurement ends when the queue is
drained as seen from another connection (no trigger New or Work In Progress), and before any
figure is reported the rows are counted: every run of the measurement in the expected status,
the expected number of task rows, every trigger Closed and no error rows. A shortfall raises
:class:`BenchmarkError` instead of reporting a rate for work that was not done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from engine import Engine
from engine.store.tables import OPEN_TRIGGER_STATUSES, errors, runs, tasks, triggers

TREES = Path(__file__).resolve().parent / "trees"
BATCH_SIZE = 64  # triggers claimed (and group-committed) at a time
POLL_SECONDS = 0.02  # how often a pipelined measurement looks whether the queue is drained
STALL_SECONDS = 120.0  # a queue that does not shrink for this long means a stuck worker

Progress = Callable[[int], None]


class BenchmarkError(RuntimeError):
    """A measurement did not do the work it claims to measure; no figure is reported."""


@dataclass(frozen=True)
class Shape:
    """A benchmark tree: its file, its key, and node executions per run (the peer's are equal)."""

    file: str
    tree_name: str
    nodes_per_run: int

    @property
    def path(self) -> Path:
        return TREES / self.file

    @property
    def key(self) -> dict[str, str]:
        return {
            "source_name": "Benchmarks",
            "source_group": "Throughput",
            "tree_name": self.tree_name,
        }


LINEAR10 = Shape("linear10.yaml", "Linear 10", 12)
DEFER_RESUME = Shape("defer_resume.yaml", "Defer Resume", 5)
FANOUT_JOIN = Shape("fanout_join.yaml", "Fanout Join", 11)


def open_engine(url: str, shape: Shape) -> Engine:
    """An engine with only ``shape``'s tree loaded, claiming ``BATCH_SIZE`` triggers at a time."""
    return Engine(url, trees=shape.path, batch_size=BATCH_SIZE)


class Ticker:
    """Calls ``progress`` every few items (as the peer adapter does), not on every one."""

    def __init__(self, progress: Progress, total: int, *, offset: int = 0) -> None:
        self.progress = progress
        self.total = total
        self.offset = offset
        self.step = max(1, min(50, total // 100))

    def __call__(self, done: int) -> None:
        if done % self.step == 0 or done == self.total:
            self.progress(self.offset + done)


def start_one(engine: Engine, shape: Shape, number: int) -> int:
    """createStart run ``number`` of ``shape`` (source id run-<number>); its run's id."""
    return engine.create_start(
        source_name=shape.key["source_name"],
        source_group=shape.key["source_group"],
        tree_name=shape.key["tree_name"],
        source_id=f"run-{number}",
    ).run_id


def start_runs(engine: Engine, shape: Shape, runs: int, tick: Ticker) -> int:
    """createStart ``runs`` runs of ``shape`` (source ids run-0, run-1, ...); the first run's id."""
    first_run_id = 0
    for number in range(runs):
        run_id = start_one(engine, shape, number)
        first_run_id = first_run_id or run_id
        tick(number + 1)
    return first_run_id


def process(engine: Engine, progress: Progress) -> int:
    """``run_until_idle`` on this thread, in slices so that progress can be shown."""
    done = 0
    while closed := engine.run_until_idle(max_triggers=BATCH_SIZE * 4):
        done += closed
        progress(done)
    return done


def open_triggers(engine: Engine) -> int:
    """Triggers not yet closed; the partial index on open triggers makes this cheap."""
    query = sa.select(sa.func.count()).where(triggers.c.status.in_(OPEN_TRIGGER_STATUSES))
    with engine.database.read() as connection:
        return int(connection.execute(query).scalar_one())


def wait_until_drained(engine: Engine, *, submitted: int, progress: Progress) -> None:
    """Poll until no trigger is open; ``progress`` gets how many of ``submitted`` closed."""
    last, changed = -1, time.monotonic()
    while (remaining := open_triggers(engine)) > 0:
        if remaining != last:
            last, changed = remaining, time.monotonic()
            progress(submitted - remaining)
        elif time.monotonic() - changed > STALL_SECONDS:
            raise BenchmarkError(f"{remaining} triggers still open after {STALL_SECONDS:.0f}s")
        time.sleep(POLL_SECONDS)
    progress(submitted)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value at least ``fraction`` of values reach."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_ms(engine: Engine, first_run_id: int) -> dict[str, float]:
    """p50 / p99 of accepted (created_at) to closed (closed_at) over the measurement's triggers."""
    query = sa.select(triggers.c.closed_at - triggers.c.created_at).where(
        triggers.c.run_id >= first_run_id
    )
    with engine.database.read() as connection:
        seconds = list(connection.execute(query).scalars())
    if not seconds or any(value is None for value in seconds):
        raise BenchmarkError("latency asked for before every trigger closed")
    return {
        "latency_p50_ms": percentile(seconds, 0.50) * 1000,
        "latency_p99_ms": percentile(seconds, 0.99) * 1000,
    }


def verify(
    engine: Engine,
    *,
    first_run_id: int,
    run_count: int,
    status: str,
    tasks_per_run: int,
    triggers_per_run: int,
) -> None:
    """Count the measurement's rows (runs from ``first_run_id`` on); raise if any is missing."""
    expected = {
        f"runs {status}": (runs, [runs.c.id >= first_run_id, runs.c.status == status], run_count),
        "task rows": (tasks, [tasks.c.run_id >= first_run_id], run_count * tasks_per_run),
        "triggers Closed": (
            triggers,
            [triggers.c.run_id >= first_run_id, triggers.c.status == "Closed"],
            run_count * triggers_per_run,
        ),
        "error rows": (errors, [errors.c.run_id >= first_run_id], 0),
    }
    wrong = []
    with engine.database.read() as connection:
        for name, (table, where, want) in expected.items():
            query = sa.select(sa.func.count()).select_from(table).where(*where)
            found = int(connection.execute(query).scalar_one())
            if found != want:
                wrong.append(f"{name}: {found} (expected {want})")
    if wrong:
        database = engine.database.url.get_backend_name()
        raise BenchmarkError(f"{database}: the measured work is incomplete: {', '.join(wrong)}")


__all__ = [
    "BATCH_SIZE",
    "DEFER_RESUME",
    "FANOUT_JOIN",
    "LINEAR10",
    "BenchmarkError",
    "Progress",
    "Shape",
    "Ticker",
    "latency_ms",
    "open_engine",
    "open_triggers",
    "percentile",
    "process",
    "start_one",
    "start_runs",
    "verify",
    "wait_until_drained",
]
