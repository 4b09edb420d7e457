"""Helpers the test modules share: the example tree's key, small trees, waiting on conditions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine, Handler, Parameter, StartCall, hookimpl

REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
APPROVED = '<results><result name="Status">Approved</result></results>'


class FixedClock:
    """The engine's clock, at ``now`` until the test moves it: no test sleeps."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def start(engine: Engine, tree: dict[str, str] = REGISTRATION, **kwargs: object) -> int:
    trigger = engine.create_start(**tree, **kwargs)  # type: ignore[arg-type]
    engine.run_until_idle()
    return trigger.run_id


def counts(engine: Engine) -> dict[str, int]:
    with engine.database.read() as connection:
        return {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("runs", "triggers", "tasks", "errors")
        }


def runs_stored(engine: Engine) -> int:
    return counts(engine)["runs"]


def registration_call(source_id: str, **more: object) -> StartCall:
    """A start of the registration tree for ``Engine.create_starts``."""
    return StartCall(**REGISTRATION, source_id=source_id, **more)  # type: ignore[arg-type]


def small_tree(name: str, nodes: dict[str, object]) -> dict[str, object]:
    return {"source": "Tests", "group": "Semantics", "name": name, "nodes": nodes}


# Start -> One -> Two, two echoes of the source id: a run that completes in one step.
TWO_STEPS_KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Two Steps"}
TWO_STEPS = small_tree(
    "Two Steps",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "One"}]},
        "One": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ source.id }}-1"},
            "connectors": [{"to": "Two"}],
        },
        "Two": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ results['One']['output'] }}-2"},
        },
    },
)


def approval_tree() -> dict[str, object]:
    """Start -> Approve (deferred) -> Notify, which reads Approve's Status."""
    return small_tree(
        "Approval",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Approve"}]},
            "Approve": {
                "handler": "utilities_defer_v1",
                "defers": True,
                "connectors": [{"to": "Notify"}],
            },
            "Notify": {
                "handler": "utilities_echo_v1",
                "parameters": {"input": "{{ inputs['Name'] }}: {{ results['Approve']['Status'] }}"},
            },
        },
    )


def stalling_routine(definition_id: str, name: str, call: str) -> list[dict[str, object]]:
    """A routine that stalls on a deferral (Hold), and a tree "Caller" calling it at ``call``."""
    routine = {
        "type": "routine",
        "definition_id": definition_id,
        "source": "-",
        "group": "-",
        "name": name,
        "inputs": [],
        "outputs": [],
        "nodes": {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Hold"}]},
            "Hold": {
                "handler": "utilities_defer_v1",
                "defers": True,
                "connectors": [{"to": "Return"}],
            },
            "Return": {"handler": "system_tree_return_v1"},
        },
    }
    caller = small_tree(
        "Caller",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": call}]},
            call: {"handler": definition_id},
        },
    )
    return [routine, caller]


def start_small(engine: Engine, name: str, **kwargs: object) -> int:
    return start(
        engine, {"source_name": "Tests", "source_group": "Semantics", "tree_name": name}, **kwargs
    )


def wait_for(condition: Callable[[], bool], *, timeout: float = 60.0) -> None:
    """Wait for a condition (not a duration); fail with the timeout if it never holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


def race(threads: int, call: Callable[[], object]) -> list[object]:
    """Run ``call`` on ``threads`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(threads)
    outcomes: list[object] = []
    lock = threading.Lock()

    def contender() -> None:
        barrier.wait()
        try:
            outcome: object = call()
        except Exception as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=contender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


TREEFLOW = Path(sys.executable).parent / "treeflow"


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TREEFLOW_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env["COLUMNS"] = "80"  # what a pipe gets; the token lines must survive it unwrapped
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def treeflow_serve(database_url: str, trees: Path, *, cwd: Path, workers: int = 2) -> Iterator[str]:
    """``treeflow serve`` on a free port in its own process group, until the block ends; its
    URL. The group is sent SIGTERM at the end, and SIGKILL if it has not stopped in time."""
    port = free_port()
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--trees", str(trees)],
        cwd=cwd,
        env=_environment({"TREEFLOW_DATABASE_URL": database_url, "TREEFLOW_WORKERS": str(workers)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, killed whatever happens
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"treeflow serve exited: {process.communicate()[1]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=60)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def run_treeflow(
    *args: str, cwd: Path, env: Mapping[str, str] = {}, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TREEFLOW), *args],
        cwd=cwd,
        env=_environment(env),
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def explode(context: object) -> dict[str, str]:
    raise RuntimeError("the mail server said no")


class ExplodePlugin:
    """``tests_explode_v1``: a handler that always fails, for error records to look at."""

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_explode_v1", explode, parameters=(Parameter("to"),))]


def refused_creator(engine: Engine) -> str:
    """A creator id the database refuses to store: longer than PostgreSQL's column; on SQLite,
    which keeps any length of text, one a trigger on the table refuses."""
    if engine.database.is_postgresql:
        return "x" * 37
    with engine.database.write() as connection:
        connection.execute(
            sa.text(
                "CREATE TRIGGER refuse_creator BEFORE INSERT ON run_creators "
                "WHEN NEW.user_id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    return "refused"
