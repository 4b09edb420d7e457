"""The benchmark harness cleans up after itself: the processes it starts die with it (killed
outright, it leaves none behind; a child that ignores SIGTERM is killed when it is stopped),
and a PostgreSQL schema it made is dropped however the measurement ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks import children
from benchmarks.databases import PostgresTarget

from .support import wait_for

# A child that would run for ten minutes and ignores SIGTERM, as a stuck worker might; it says
# "ready" once it does.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', "
    "flush=True); time.sleep(600)",
]
PATIENT = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has: it only awaits reaping)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_children_die_when_the_harness_is_killed_outright(tmp_path: Path) -> None:
    harness = textwrap.dedent(
        f"""
        import subprocess, time
        from benchmarks import children
        kids = [children.spawn({STUBBORN!r}, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        assert [kid.stdout.readline().strip() for kid in kids] == ["ready", "ready"]
        print(" ".join(str(kid.pid) for kid in kids), flush=True)
        time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", harness],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        pids = [int(pid) for pid in process.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        os.kill(process.pid, signal.SIGKILL)  # no finally, no atexit: only the kernel is left
        process.wait()

        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        for pid in pids if "pids" in locals() else ():
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_a_worker_of_the_processes_workload_dies_with_a_killed_harness(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    log = tmp_path / "worker.log"
    harness = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from benchmarks import processes
        worker = processes.spawn_worker({url!r}, Path({str(log)!r}))
        while "started:" not in Path({str(log)!r}).read_text(errors="replace"):
            if worker.poll() is not None:
                raise SystemExit("the worker exited")
            time.sleep(0.05)
        print(worker.pid, flush=True)
        time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", harness], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    pid = 0
    try:
        assert process.stdout is not None
        pid = int(process.stdout.readline() or 0)
        assert pid and alive(pid), log.read_text() if log.exists() else "no worker log"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

        wait_for(lambda: not alive(pid), timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if pid and alive(pid):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def test_stop_kills_the_group_of_a_child_that_ignores_sigterm() -> None:
    child = children.spawn(STUBBORN, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        children.stop([child], grace=0.5)

        assert child.returncode == -signal.SIGKILL
        assert not alive(child.pid)
    finally:
        children.stop([child], grace=0)  # a no-op when the test stopped it


def test_a_child_that_stops_on_sigterm_is_given_its_graceful_stop() -> None:
    child = children.spawn(PATIENT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        children.stop([child])

        assert child.returncode == -signal.SIGTERM
    finally:
        children.stop([child], grace=0)  # a no-op when the test stopped it


@pytest.mark.postgres
def test_a_schema_made_for_a_measurement_is_dropped_when_the_measurement_fails() -> None:
    url = os.environ.get("TREEFLOW_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TREEFLOW_TEST_POSTGRES_URL is not set")
    target = PostgresTarget(url)
    made: list[str] = []
    with pytest.raises(KeyboardInterrupt), target.fresh("interrupted") as fresh:
        made.append(sa.make_url(fresh).query["options"].split("=", 1)[1])
        raise KeyboardInterrupt  # as Ctrl-C, or a test's timeout, would

    admin = sa.create_engine(url)
    try:
        with admin.connect() as connection:
            left = connection.execute(
                sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"),
                {"name": made[0]},
            ).scalar_one()
    finally:
        admin.dispose()
    assert made[0].startswith("bench_") and left == 0
