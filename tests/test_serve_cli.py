"""``treeflow serve`` as the installed console script: first start, a seed round trip processed
by its own workers, and a graceful stop on SIGTERM."""

from __future__ import annotations

import shutil
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
def serving(tmp_path: Path, *flags: str, trees: Path = TREES) -> Iterator[Served]:
    """``treeflow serve`` with ``flags`` on a scratch database, killed if the test did not stop
    it."""
    database = f"sqlite:///{tmp_path / 't.db'}"
    port = free_port()
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--trees", str(trees), *flags],
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


# -- a tree file that does not validate --------------------------------------------------------

BROKEN = """source: Tests
group: Deploys
name: Broken
nodes:
  Start: {handler: system_start_v1, connectors: [{to: Say}]}
  Say: {handler: utilities_echo_v9, parameters: {input: hi}}
"""


@pytest.fixture
def trees_with_a_typo(tmp_path: Path) -> Path:
    folder = tmp_path / "trees"
    shutil.copytree(TREES, folder)
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    return folder


def test_serve_serves_the_valid_trees_and_names_the_refused_file_in_healthz(
    tmp_path: Path, trees_with_a_typo: Path
) -> None:
    broken = trees_with_a_typo / "broken.yaml"
    with serving(tmp_path, trees=trees_with_a_typo) as server:
        health = httpx.get(f"{server.url}/healthz")
        returncode, err = server.stop()

    loaded = len(list(TREES.glob("*.yaml")))
    assert health.status_code == 200
    assert health.json() == {
        "status": "degraded",
        "trees": {"loaded": loaded, "refused": [str(broken)]},
    }
    assert returncode == 0
    assert f"tree file refused: {broken}:6: node 'Say': unknown handler 'utilities_echo_v9'" in err


def test_serve_with_strict_trees_refuses_to_start_naming_the_problem(
    tmp_path: Path, trees_with_a_typo: Path
) -> None:
    database = f"sqlite:///{tmp_path / 't.db'}"
    result = run_treeflow(
        "serve", "--strict-trees", "--port", str(free_port()), "--trees", str(trees_with_a_typo),
        "--database", database, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    assert "1 problem in tree definition" in result.stderr
    assert f"{trees_with_a_typo / 'broken.yaml'}:6: node 'Say': unknown handler" in result.stderr


def test_run_starts_a_valid_tree_beside_a_refused_file_and_says_which_was_refused(
    tmp_path: Path, trees_with_a_typo: Path
) -> None:
    database = f"sqlite:///{tmp_path / 't.db'}"
    common = ("--trees", str(trees_with_a_typo), "--database", database)

    ran = run_treeflow("run", "Process Registration", "--source-id", "R-1", *common, cwd=tmp_path)
    refused = run_treeflow("run", "Broken", *common, cwd=tmp_path)

    broken = trees_with_a_typo / "broken.yaml"
    assert ran.returncode == 0, ran.stderr
    assert "Review is deferred" in ran.stdout
    assert f"tree file refused: {broken}:6:" in ran.stderr
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].endswith(f"; tree files refused: {broken}")
