"""``treeflow serve --processes N``: worker processes beside the server, on SQLite and PostgreSQL.

A real ``treeflow serve --processes 2`` on loopback, in a session of its own that the test kills
whatever happens (its workers die with it: the kernel's parent-death signal). It accepts the
seed's calls over HTTP and its worker processes, not the server, process them; a worker killed
outright is replaced; SIGTERM stops the server and every worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import Engine, RunStatus
from engine.cli.serve import serve
from engine.cli.worker import worker
from engine.cli.worker_processes import WorkerProcesses, worker_command

from .support import TREEFLOW, _environment, run_treeflow, wait_for
from .test_serve_cli import PASSWORD, SEED_RESULTS, SEED_START, TREES, Served, free_port

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED_URL = "/kineticTask/rest/v1/Trigger/createDeferred"


def children_of(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


@contextlib.contextmanager
def serving(
    database: str, tmp_path: Path, *flags: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``treeflow serve`` in a session of its own, SIGKILLed with its group if still running."""
    added = run_treeflow(
        "users", "add", "ada", "--role", "admin", "--database", database,
        cwd=tmp_path, stdin=PASSWORD,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--trees", str(TREES), *flags],
        cwd=tmp_path,
        env=_environment({"TREEFLOW_DATABASE_URL": database}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    served = Served(process, f"http://127.0.0.1:{port}", database)
    workers: set[int] = set()
    try:
        wait_for(served.up, timeout=60)
        yield process, served.url
    finally:
        workers = children_of(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
        for pid in workers:  # dead already (parent-death signal); never left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def seed_round_trip(client: httpx.Client, engine: Engine) -> set[str]:
    """createStart, then createDeferred of its Review: the run Completed. The engines that
    closed its triggers."""
    started = client.post(START_URL, data=SEED_START)
    assert started.status_code == 200, started.text
    run_id = engine.get_trigger(int(started.headers["X-ID"])).run_id
    wait_for(lambda: "Review" in engine.get_run(run_id).open_tokens)
    review = engine.get_run(run_id).open_tokens["Review"]
    completed = client.post(
        DEFERRED_URL, data={"token": review, "action": "Complete", "results": SEED_RESULTS}
    )
    assert completed.status_code == 200, completed.text
    wait_for(lambda: engine.get_run(run_id).status is RunStatus.COMPLETED)
    ids = (int(started.headers["X-ID"]), int(completed.headers["X-ID"]))
    return {str(engine.get_trigger(trigger_id).engine) for trigger_id in ids}


def test_serve_with_worker_processes_processes_over_them_replaces_a_killed_one_and_stops_all(
    database_url: str, tmp_path: Path
) -> None:
    database = database_url
    with (
        serving(
            database, tmp_path, "--processes", "2", "--workers", "1", "--poll-interval", "0.05"
        ) as (process, url),
        Engine(database) as engine,
        httpx.Client(base_url=url) as client,
    ):
        token = client.post("/token", data={"username": "ada", "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        wait_for(lambda: len(children_of(process.pid)) == 2)
        first = children_of(process.pid)

        engines = set()
        for _ in range(3):
            engines |= seed_round_trip(client, engine)
        processed_by = {int(name.rpartition(":")[2]) for name in engines}
        assert processed_by <= first  # the worker processes, never the server itself

        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: len(children_of(process.pid) - first) == 1)
        second = children_of(process.pid)
        assert killed not in second and len(second) == 2
        seed_round_trip(client, engine)  # still processed after the replacement

        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        wait_for(lambda: not any(alive(pid) for pid in second))
        assert "worker process 1 of 2 started" in err
        assert f"(pid {killed}) exited with status -9" in err


def test_killing_the_server_outright_takes_its_worker_processes_with_it(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 't.db'}"
    with serving(database, tmp_path, "--processes", "2", "--workers", "1") as (process, _url):
        wait_for(lambda: len(children_of(process.pid)) == 2)
        workers = children_of(process.pid)
        os.kill(process.pid, signal.SIGKILL)  # no finally of serve's runs
        process.communicate()
        wait_for(lambda: not any(alive(pid) for pid in workers))


def test_processes_need_a_worker_thread_each(tmp_path: Path) -> None:
    result = run_treeflow(
        "serve", "--processes", "2", "--workers", "0", "--database",
        f"sqlite:///{tmp_path / 't.db'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--processes needs --workers of at least 1 (threads per process)" in result.stderr


def test_the_worker_command_carries_every_processing_option_serve_was_given() -> None:
    context = serve.make_context(
        "serve",
        [
            "--processes", "2", "--workers", "3", "--batch-size", "7", "--lease-seconds", "9",
            "--poll-interval", "0.25", "--selection", "a", "--selection", "b",
            "--max-attempts", "2", "--strict-trees", "--max-tasks-per-run", "50",
        ],
    )  # fmt: skip
    values = dict(context.params)
    command = worker_command(
        worker, database="sqlite:///x.db", trees="trees/", threads=3, values=values
    )

    parsed = worker.make_context("worker", command[command.index("worker") + 1 :]).params
    assert parsed["database"] == "sqlite:///x.db"
    assert parsed["trees"] == "trees/"
    assert parsed["workers"] == 3
    assert parsed["scheduler"] is False
    for name in ("batch_size", "lease_seconds", "poll_interval", "selection", "max_attempts"):
        assert parsed[name] == values[name], name
    assert parsed["strict_trees"] is True
    assert parsed["max_tasks_per_run"] == 50


def test_a_worker_that_keeps_exiting_is_started_again_after_doubling_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="treeflow.serve")
    supervisor = WorkerProcesses([sys.executable, "-c", "raise SystemExit(3)"], 1)
    supervisor.start()
    try:
        wait_for(lambda: sum("exited with status 3" in m for m in caplog.messages) >= 3)
    finally:
        supervisor.stop()
    exits = [m for m in caplog.messages if "exited with status 3" in m]
    assert [m.rpartition("starting another in ")[2] for m in exits[:3]] == ["1 s", "2 s", "4 s"]
    assert sum("worker process 1 of 1 started" in m for m in caplog.messages) >= 3
