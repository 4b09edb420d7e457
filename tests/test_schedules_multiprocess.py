"""Several engine processes on one PostgreSQL database: one scheduler, one run per slot.

Two real engine processes (tests/schedule_child.py) start workers and the scheduler; exactly
one holds the scheduler's advisory lock. The test kills that one with SIGKILL: PostgreSQL ends
its session, the other takes the lock over and the firings go on. Across both, every slot of
the schedule has at most one history row and one run, and the slots missed during the
takeover are accounted for (coalesced into the first firing after it).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa

from engine import Engine

from .conftest import postgres_schema_url
from .support import small_tree, wait_for

CHILD = Path(__file__).with_name("schedule_child.py")
TREE = small_tree("Tick", {"Start": {"handler": "system_start_v1"}})

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()


class Child:
    """A child engine process and the lines it printed, read on a thread."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), url], stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())

    def has_said(self, word: str) -> bool:
        while not self.lines.empty():
            self.said.append(self.lines.get())
        return word in self.said

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _firings(url: str) -> list[tuple[float, str, int | None, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT fire_time, outcome, run_id, slots FROM schedule_firings"
                    " ORDER BY fire_time"
                )
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def _started_after(url: str, moment: float) -> int:
    return sum(1 for f in _firings(url) if f[1] == "Started" and f[0] > moment)


def test_two_engine_processes_start_one_run_per_slot_and_survive_the_leaders_death(
    postgres_url: str,
) -> None:
    with Engine(postgres_url) as setup:
        setup.load_tree(TREE)
        schedule = setup.schedules.create(
            name="tick",
            source_name="Tests",
            source_group="Semantics",
            tree_name="Tick",
            when={"kind": "interval", "every": 1, "unit": "seconds"},
        )
    children = [Child(postgres_url), Child(postgres_url)]
    try:
        wait_for(lambda: all(child.has_said("started") for child in children))
        wait_for(lambda: any(child.has_said("leader") for child in children))
        [leader] = [child for child in children if child.has_said("leader")]
        [other] = [child for child in children if child is not leader]
        wait_for(lambda: _started_after(postgres_url, 0) >= 3)
        assert not other.has_said("leader"), "two processes ran the scheduler at once"

        leader.kill()
        killed_at = time.time()
        wait_for(lambda: other.has_said("leader"))
        wait_for(lambda: _started_after(postgres_url, killed_at + 1) >= 3)
    finally:
        for child in children:
            child.kill()

    firings = _firings(postgres_url)
    slots = [fire_time for fire_time, *_ in firings]
    assert len(slots) == len(set(slots)), "a slot recorded twice"
    started = [f for f in firings if f[1] == "Started"]
    runs = [run_id for _, _, run_id, _ in started]
    assert len(runs) == len(set(runs))
    with Engine(postgres_url) as check:
        with check.database.read() as connection:
            run_count = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
            keys = connection.execute(
                sa.text("SELECT count(DISTINCT idempotency_key) FROM triggers")
            ).scalar_one()
        assert run_count == len(started) == keys, "one run per slot that fired"
        # Every slot from the first firing to the last is accounted for, once.
        covered = sum(count for *_, count in firings)
        assert covered == round(slots[-1] - firings[0][0]) + 1
        assert check.schedules.get(schedule.id).enabled


def test_a_leader_whose_lock_connection_drops_stops_and_the_scheduler_is_taken_over(
    postgres_url: str,
) -> None:
    with (
        Engine(postgres_url, schedule_poll_seconds=0.2) as first,
        Engine(postgres_url, schedule_poll_seconds=0.2) as second,
    ):
        first.load_tree(TREE)
        schedule = first.schedules.create(
            name="tick",
            source_name="Tests",
            source_group="Semantics",
            tree_name="Tick",
            when={"kind": "interval", "every": 1, "unit": "seconds"},
        )
        first.start(workers=1)
        wait_for(lambda: first.schedules.scheduler.leading)
        second.start(workers=1)
        lost = first.schedules.scheduler.leadership.backend_pid
        assert lost is not None and not second.schedules.scheduler.leading
        with second.database.write() as connection:  # our own engine's session, no other
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
        cut_at = time.time()

        def taken_over() -> bool:
            """One scheduler runs again, on a lock session other than the one cut."""
            leaders = [e for e in (first, second) if e.schedules.scheduler.leading]
            pids = [e.schedules.scheduler.leadership.backend_pid for e in leaders]
            return len(leaders) == 1 and pids[0] not in (None, lost)

        wait_for(taken_over)
        wait_for(lambda: _started_after(postgres_url, cut_at + 1) >= 2)
        assert schedule.id == first.schedules.get(schedule.id).id
