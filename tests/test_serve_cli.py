"""``treeflow serve`` as the installed console script: first start, a seed round trip processed
by its own workers, and a graceful stop on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from engine import Engine, RunStatus, TaskStatus
from engine.auth import Accounts

from .support import TREEFLOW, _environment, run_treeflow, wait_for

TREES = Path(__file__).resolve().parents[1] / "trees"
PASSWORD = "correct horse battery"
SEED_START = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "source_id": "e67069a7392dc8ca7347f2edd127f779ef440dc1",
    "tree_name": "Process Registration",
}
SEED_RESULTS = "<results><result name=“Status”>Approved</result></results>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, database: str) -> None:
        self.process = process
        self.url = url
        self.database = database
        self.out = ""

    def up(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"treeflow serve exited: {self.process.communicate()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        self.out, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@contextmanager
def serving(tmp_path: Path, *flags: str) -> Iterator[Served]:
    """``treeflow serve`` with ``flags`` on a scratch database, killed if the test did not stop
    it."""
    database = f"sqlite:///{tmp_path / 't.db'}"
    port = free_port()
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--trees", str(TREES), *flags],
        cwd=tmp_path,
        env=_environment({"TREEFLOW_DATABASE_URL": database, "TREEFLOW_WORKERS": "2"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Served(process, f"http://127.0.0.1:{port}", database)
    try:
        wait_for(server.up, timeout=60)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as server:
        yield server


def test_serve_explains_how_to_create_the_first_admin_and_invents_none(served: Served) -> None:
    returncode, err = served.stop()

    assert returncode == 0
    assert err.startswith(
        "No user exists yet, so every API call will be refused. Create the first administrator "
        "with:\n\n"
        f"  treeflow users add NAME --role admin --database '{served.database}'\n\n"
        "It reads the password from standard input when that is not a terminal\n"
        "(printf '%s' \"$PASSWORD\" | treeflow users add NAME --role admin), and asks for it "
        "otherwise.\n"
    )
    assert "Application shutdown complete." in err
    with Engine(served.database) as engine:
        assert Accounts(engine).list_users() == []


def test_serve_runs_the_seed_calls_on_its_own_workers_and_stops_gracefully(
    served: Served, tmp_path: Path
) -> None:
    added = run_treeflow(
        "users", "add", "ada", "--role", "admin", "--database", served.database,
        cwd=tmp_path, stdin=PASSWORD,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with httpx.Client(base_url=served.url) as client:
        token = client.post("/token", data={"username": "ada", "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        started = client.post("/kineticTask/rest/v1/Trigger/createStart", data=SEED_START)
        assert started.status_code == 200, started.text

        with Engine(served.database) as engine:
            run_id = engine.get_trigger(int(started.headers["X-ID"])).run_id
            wait_for(lambda: bool(engine.get_run(run_id).open_tokens))
            review = engine.get_run(run_id).open_tokens["Review"]
            completed = client.post(
                "/kineticTask/rest/v1/Trigger/createDeferred",
                data={"token": review, "action": "Complete", "results": SEED_RESULTS},
                headers={"Accept": "application/json"},
            )
            assert completed.status_code == 200, completed.text
            wait_for(lambda: engine.get_run(run_id).status is RunStatus.COMPLETED)
            assert engine.get_run(run_id).task("Approved").status is TaskStatus.CLOSED

    returncode, err = served.stop()
    assert returncode == 0
    assert "Application shutdown complete." in err


def test_serve_logs_each_request_only_when_asked_to(tmp_path: Path) -> None:
    for flags, logged in (((), False), (("--access-log",), True)):
        with serving(tmp_path, *flags) as served:
            assert httpx.get(f"{served.url}/healthz").status_code == 200
            returncode, _err = served.stop()

        assert returncode == 0
        # uvicorn writes its access log to standard output
        assert ('"GET /healthz HTTP/1.1" 200' in served.out) is logged, served.out
