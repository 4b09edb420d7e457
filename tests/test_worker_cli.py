"""`treeflow worker` processes, graceful stops, and workers riding out lost connections."""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine import Engine, Handler, HandlerContext, Parameter, RunStatus, hookimpl
from engine.cli.main import main
from engine.cli.serve import serve
from engine.cli.worker import processing_settings, worker
from engine.processing.outage import MAX_DELAY, Outage
from engine.run.budgets import CHILD_RUNS, STEP_ROWS, TASKS, Budgets

from .conftest import POSTGRES_URL, postgres_schema_url
from .fault_support import terminate_backends, with_application_name
from .support import _environment, small_tree, wait_for

LABELLED = small_tree("Labelled", {"Start": {"handler": "system_start_v1"}}) | {"selection": "a"}
UNLABELLED = small_tree("Unlabelled", {"Start": {"handler": "system_start_v1"}})


def _write_trees(folder: Path) -> Path:
    folder.mkdir()
    for tree in (LABELLED, UNLABELLED):
        name = str(tree["name"]).lower()
        (folder / f"{name}.yaml").write_text(
            f"source: Tests\ngroup: Semantics\nname: {tree['name']}\n"
            + (f"selection: {tree['selection']}\n" if "selection" in tree else "")
            + "nodes:\n  Start: {handler: system_start_v1}\n",
            encoding="utf-8",
        )
    return folder


def _worker(url: str, trees: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from engine.cli.main import main; main()",
                "worker",
                f"--database={url}",
                f"--trees={trees}",
                "--workers=2",
                "--poll-interval=0.05",
                *options,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_two_workers_with_disjoint_selections_process_only_their_own_and_stop_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    trees = _write_trees(tmp_path / "trees")
    with Engine(database_url, trees=trees) as submitter:
        labelled = [
            submitter.create_start(
                source_name="Tests", source_group="Semantics", tree_name="Labelled"
            ).run_id
            for _ in range(20)
        ]
        unlabelled = [
            submitter.create_start(
                source_name="Tests", source_group="Semantics", tree_name="Unlabelled"
            ).run_id
            for _ in range(20)
        ]
        logs = (tmp_path / "a.log", tmp_path / "default.log")
        workers = [
            _worker(database_url, trees, logs[0], "--selection=a"),
            _worker(database_url, trees, logs[1], "--selection=default"),
        ]
        try:
            wait_for(
                lambda: len(submitter.list_runs(status="Completed", limit=100)) == 40, timeout=60
            )
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            statuses = [worker.wait(timeout=30) for worker in workers]
        assert statuses == [0, 0]
        host = socket.gethostname()
        with submitter.database.read() as connection:
            closed_by = dict(
                connection.execute(sa.text("SELECT run_id, engine FROM triggers")).all()
            )
    assert {closed_by[r] for r in labelled} == {f"{host}:{workers[0].pid}"}
    assert {closed_by[r] for r in unlabelled} == {f"{host}:{workers[1].pid}"}
    text = logs[0].read_text()
    assert "started: 2 threads, selection a," in text
    assert "SIGTERM received, stopping" in text
    assert text.rstrip().endswith(f"worker {host}:{workers[0].pid} stopped")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--selection", "Bad Label"], "selection label 'Bad Label' must be"),
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--lease-seconds", "0"], "Invalid value for '--lease-seconds'"),
        (["--trees", "/nonexistent/trees"], "'/nonexistent/trees' does not exist"),
        (["--database", "mysql://x/y"], "unsupported database 'mysql'"),
        (["--max-tasks-per-run", "0"], "Invalid value for '--max-tasks-per-run'"),
        (["--max-child-runs", "0"], "Invalid value for '--max-child-runs'"),
        (["--max-step-rows", "many"], "Invalid value for '--max-step-rows'"),
        (["--run-cache-runs", "-1"], "Invalid value for '--run-cache-runs'"),
        (["--run-cache-mib", "-1"], "Invalid value for '--run-cache-mib'"),
    ],
)
def test_bad_worker_options_are_refused_naming_the_option(
    options: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["worker", "--database", f"sqlite:///{tmp_path / 'x.db'}", *options]
    )
    assert result.exit_code in (1, 2)
    assert message in result.output


@pytest.mark.parametrize("command", [worker, serve], ids=["worker", "serve"])
def test_every_budget_a_budget_error_names_is_an_option_of_the_command(
    command: click.Command,
) -> None:
    """A Budget Error tells how to raise its budget: that option and variable exist."""
    options = {
        tuple(p.opts): (p.envvar, p.default) for p in command.params if isinstance(p, click.Option)
    }
    limits = Budgets()
    defaults = {
        TASKS: limits.tasks_per_run,
        CHILD_RUNS: limits.child_runs,
        STEP_ROWS: limits.step_rows,
    }
    for budget, default in defaults.items():
        assert options[(budget.option,)] == (budget.variable, default)
    assert options[("--run-cache-runs",)] == ("TREEFLOW_RUN_CACHE_RUNS", 256)
    assert options[("--run-cache-mib",)] == ("TREEFLOW_RUN_CACHE_MIB", 256)


def test_the_processing_settings_give_the_engine_its_budgets_and_cache_bounds() -> None:
    settings = processing_settings(
        64, 30.0, 0.5, (), 5, max_tasks_per_run=7, run_cache_runs=3, run_cache_mib=2
    )
    assert settings["max_tasks_per_run"] == 7
    assert (settings["run_cache_runs"], settings["run_cache_bytes"]) == (3, 2 * 2**20)
    assert "run_cache_mib" not in settings


LINE = small_tree(
    "Line",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "One"}]},
        "One": {"handler": "system_noop_v1", "connectors": [{"to": "Two"}]},
        "Two": {"handler": "system_noop_v1", "connectors": [{"to": "Three"}]},
        "Three": {"handler": "system_noop_v1"},
    },
)


def test_a_worker_holds_runs_to_the_budgets_its_environment_sets(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with Engine(url) as submitter:
        submitter.load_tree(LINE)
        run_id = submitter.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Line"
        ).run_id
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", "from engine.cli.main import main; main()", "worker"],
                cwd=tmp_path,  # no trees/ here: the submitter loaded the one it runs
                env=_environment(
                    {
                        "TREEFLOW_DATABASE_URL": url,
                        "TREEFLOW_WORKERS": "1",
                        "TREEFLOW_POLL_INTERVAL": "0.05",
                        "TREEFLOW_MAX_TASKS_PER_RUN": "3",
                        "TREEFLOW_RUN_CACHE_MIB": "1",
                    }
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(lambda: process.poll() is not None or _failed(submitter, run_id))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        assert process.returncode == 0, log.read_text()
        [error] = submitter.get_run(run_id).errors
        assert error.summary.startswith(
            "Node 'Three' refused: run 1 has 3 tasks; the budget is 3 tasks per run"
        )


def _failed(engine: Engine, run_id: int) -> bool:
    return engine.get_run(run_id).status is RunStatus.FAILED


class _Gate:
    """A handler that blocks until released: a run in the middle of processing."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        def wait(context: HandlerContext) -> dict[str, str]:
            self.entered.set()
            self.release.wait(30)
            return {"output": context.parameters["input"]}

        return [
            Handler("tests_gate_v1", wait, parameters=(Parameter("input"),), results=("output",))
        ]


GATED = small_tree(
    "Gated",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Gate"}]},
        "Gate": {"handler": "tests_gate_v1", "parameters": {"input": "{{ source.id }}"}},
    },
)


def test_stopping_finishes_the_run_in_hand_and_hands_the_rest_back_at_once(
    database_url: str,
) -> None:
    gate = _Gate()
    with Engine(database_url, plugins=[gate], batch_size=10, lease_seconds=600) as engine:
        engine.load_tree(GATED)
        run_ids = [
            engine.create_start(
                source_name="Tests", source_group="Semantics", tree_name="Gated", source_id=str(n)
            ).run_id
            for n in range(5)
        ]
        engine.start(workers=1)
        assert gate.entered.wait(30)
        stopper = threading.Thread(target=engine.stop)
        stopper.start()
        time.sleep(0.1)  # let stop() begin while the handler runs
        gate.release.set()
        stopper.join(30)
        statuses = [engine.get_run(r).status for r in run_ids]
        with engine.database.read() as connection:
            leased = connection.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM triggers WHERE lease_owner IS NOT NULL)"
                    " + (SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL)"
                )
            ).scalar_one()
        assert statuses[0] is RunStatus.COMPLETED
        assert statuses[1:] == [RunStatus.STAGED] * 4  # handed back, not left to expire
        assert leased == 0
        assert engine.run_until_idle() == 4  # claimable at once, lease of 600 s or not


class _Arm:
    """A handler that arms the cut once: the next COMMIT is its own step's."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.used = False

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        def arm(context: HandlerContext) -> dict[str, str]:
            if not self.used:
                self.used = True
                self.armed.set()
            return {"output": context.node_name}

        return [Handler("tests_arm_v1", arm, results=("output",))]


ARMED = small_tree(
    "Armed",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Arm"}]},
        "Arm": {"handler": "tests_arm_v1", "connectors": [{"to": "Two"}]},
        "Two": {"handler": "utilities_echo_v1", "parameters": {"input": "2"}},
    },
)


@pytest.mark.postgres
def test_a_worker_whose_backend_is_killed_mid_commit_retries_and_closes_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The backend is terminated just before a step's COMMIT: nothing of it is written, the
    worker survives, hands the claim back and commits it again on a new connection."""
    schema_urls = postgres_schema_url()
    url = next(schema_urls)
    name = f"tf_cut_{secrets.token_hex(5)}"
    arm = _Arm()
    cut: list[int] = []
    caplog.set_level(logging.INFO, logger="treeflow")
    try:
        with Engine(
            with_application_name(url, name), plugins=[arm], poll_interval=0.05, lease_seconds=60
        ) as engine:
            engine.load_tree(ARMED)

            @sa.event.listens_for(engine.database.engine, "commit")
            def _cut(_connection: sa.Connection) -> None:
                if arm.armed.is_set() and threading.current_thread().name.startswith(
                    "treeflow-worker"
                ):
                    arm.armed.clear()
                    assert POSTGRES_URL is not None
                    cut.append(terminate_backends(POSTGRES_URL, name))
                    time.sleep(0.2)  # the backend has exited when COMMIT is sent

            run_id = engine.create_start(
                source_name="Tests", source_group="Semantics", tree_name="Armed"
            ).run_id
            engine.start(workers=1)
            with Engine(url) as observer:  # its connections are not the ones cut
                wait_for(lambda: observer.get_run(run_id).status is RunStatus.COMPLETED, timeout=60)
                engine.stop()
                with observer.database.read() as connection:
                    attempts = connection.execute(sa.text("SELECT attempts FROM triggers")).all()
                    nodes = connection.execute(sa.text("SELECT node FROM tasks ORDER BY id")).all()
    finally:
        next(schema_urls, None)
    assert cut and cut[0] >= 1
    assert attempts == [(2,)]  # the first claim's commit was lost; the second closed it
    assert [node for (node,) in nodes] == ["Start", "Arm", "Two"]
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "the database is unreachable" in m]) == 1
    assert len([m for m in messages if "works again after" in m]) == 1


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("treeflow.tests.outage")
    outage = Outage(logger, "claiming")
    lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    caplog.set_level(logging.DEBUG, logger="treeflow.tests.outage")
    delays = [outage.failed(lost) for _ in range(12)]
    assert outage.ongoing
    outage.succeeded()
    outage.succeeded()
    assert not outage.ongoing
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == (
        "claiming failed: the database is unreachable (server closed the connection);"
        " retrying with back-off"
    )
    assert warnings[1].startswith("claiming works again after ")
    assert len(warnings) == 2
    assert all(0 < delay <= MAX_DELAY for delay in delays)
    assert max(delays[-4:]) > max(delays[:2])  # the ceiling grows (jitter below it)
