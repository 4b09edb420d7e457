"""An engine process killed with SIGKILL loses nothing it accepted and repeats nothing it closed.

A real subprocess accepts triggers (printing each id once ``create_start`` has returned) while
its own workers process them; the test kills it mid-flight, then a new engine takes over the
expired leases. Every accepted trigger must end Closed, every run Completed, and every node
must have exactly one committed task per run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from engine import Engine, RunStatus

from .crash_child import STEPS, SlowPlugin, crash_tree
from .support import wait_for

RUNS = 60
CHILD = Path(__file__).with_name("crash_child.py")


def _closed(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT count(*) FROM triggers WHERE status = 'Closed'")
            ).scalar_one()
    except sa.exc.OperationalError:  # tables not created yet
        return 0
    finally:
        engine.dispose()


def test_sigkilled_engine_loses_nothing_and_repeats_nothing(database_url: str) -> None:
    Engine(database_url).close()  # create the schema before the child starts
    child = subprocess.Popen(
        [sys.executable, str(CHILD), database_url, str(RUNS)], stdout=subprocess.PIPE, text=True
    )
    accepted: list[int] = []
    try:
        assert child.stdout is not None
        while len(accepted) < RUNS // 2:
            line = child.stdout.readline()
            assert line, "the child engine exited early"
            accepted.append(int(line))
        wait_for(lambda: _closed(database_url) >= 3)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    remaining = child.stdout.read() if child.stdout else ""
    if child.stdout:
        child.stdout.close()
    accepted.extend(int(line) for line in remaining.split())
    assert _closed(database_url) < RUNS, "the child finished everything before it was killed"

    with Engine(database_url, plugins=[SlowPlugin()], lease_seconds=1.0) as survivor:
        survivor.load_tree(crash_tree())

        def drained() -> bool:
            survivor.run_until_idle()
            with survivor.database.read() as connection:
                open_triggers = connection.execute(
                    sa.text("SELECT count(*) FROM triggers WHERE status <> 'Closed'")
                ).scalar_one()
            return open_triggers == 0

        wait_for(drained)
        with survivor.database.read() as connection:
            triggers = dict(connection.execute(sa.text("SELECT id, status FROM triggers")).all())
            duplicates = connection.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT run_id, node FROM tasks"
                    " GROUP BY run_id, node HAVING count(*) > 1) d"
                )
            ).scalar_one()
            errors = connection.execute(sa.text("SELECT count(*) FROM errors")).scalar_one()
        assert set(accepted) <= set(triggers)
        assert all(status == "Closed" for status in triggers.values())
        assert duplicates == 0
        assert errors == 0
        for trigger_id in accepted:
            run = survivor.get_run(survivor.get_trigger(trigger_id).run_id)
            assert run.status is RunStatus.COMPLETED
            assert [t.name for t in run.tasks] == [
                "Start",
                *[f"Step {s}" for s in range(1, STEPS + 1)],
            ]
            assert run.task(f"Step {STEPS}").results == {"output": f"{run.source_id}-{STEPS}"}
