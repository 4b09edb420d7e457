"""Retention: finished call trees purged with every row about them, in batches, archived first
if asked; open runs and runs with open triggers kept; the scheduled policy; ``treeflow purge``.

On SQLite and PostgreSQL, with the engine's injectable clock standing in for the days that pass.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from engine import Engine
from engine.errors import BadRequest, InstanceNotFound
from engine.schedule.retention import RetentionPolicy
from tests.conftest import TREES
from tests.support import run_treeflow, small_tree, start_small, wait_for
from tests.test_routines import VISITOR, greet, welcome
from tests.test_schedules import TICK, create

DAY = 86_400.0
MONTH = 30 * DAY
BORN = 1_800_000_000.0  # when the old runs ran
DEFER = small_tree(
    "Wait For Approval",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Review"}]},
        "Review": {"handler": "utilities_defer_v1", "defers": True},
    },
)
FAIL = small_tree(
    "Broken",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Broken"}]},
        "Broken": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ inputs['No'] }}"}},
    },
)
TABLES = ("runs", "tasks", "triggers", "errors", "request_keys", "run_creators", "call_trees")


class Clock:
    def __init__(self) -> None:
        self.now = BORN

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(database_url: str, clock: Clock) -> Iterator[Engine]:
    with Engine(database_url, clock=clock, schedule_poll_seconds=0.2) as eng:
        for tree in (greet(), welcome(), DEFER, FAIL, TICK):
            eng.load_tree(tree)
        yield eng


def rows_of(engine: Engine, run_ids: list[int]) -> dict[str, int]:
    """How many rows each table holds about ``run_ids``."""
    ids = ", ".join(str(run_id) for run_id in run_ids)
    queries = {
        "runs": f"SELECT count(*) FROM runs WHERE id IN ({ids})",
        "tasks": f"SELECT count(*) FROM tasks WHERE run_id IN ({ids})",
        "triggers": f"SELECT count(*) FROM triggers WHERE run_id IN ({ids})",
        "errors": f"SELECT count(*) FROM errors WHERE run_id IN ({ids})",
        "request_keys": "SELECT count(*) FROM request_keys JOIN triggers ON"
        f" triggers.id = request_keys.trigger_id WHERE triggers.run_id IN ({ids})",
        "run_creators": f"SELECT count(*) FROM run_creators WHERE run_id IN ({ids})",
        "call_trees": f"SELECT count(*) FROM call_trees WHERE root_run_id IN ({ids})",
        "firings": f"SELECT count(*) FROM schedule_firings WHERE run_id IN ({ids})",
    }
    with engine.database.read() as connection:
        return {
            name: connection.execute(sa.text(sql)).scalar_one() for name, sql in queries.items()
        }


def call_tree(engine: Engine, root: int) -> list[int]:
    return [root, *(link.run_id for link in engine.get_run(root).children)]


def old_runs(engine: Engine) -> dict[str, int]:
    """Runs of each kind, made at BORN: the purge's candidates and the ones it must keep."""
    welcome_run = start_small(engine, "Welcome", results=VISITOR, created_by="user-ada")
    keyed = start_small(engine, "Welcome", results=VISITOR, idempotency_key="k-1", fingerprint="f")
    waiting = start_small(engine, "Wait For Approval")
    failed = start_small(engine, "Broken")
    schedule = create(engine)
    fired = engine.schedules.run_now(schedule.id).run_id
    assert fired is not None
    engine.run_until_idle()
    return {
        "welcome": welcome_run,
        "keyed": keyed,
        "waiting": waiting,
        "failed": failed,
        "fired": fired,
    }


def test_purge_takes_finished_call_trees_with_their_rows(engine: Engine, clock: Clock) -> None:
    runs = old_runs(engine)
    clock.now = BORN + 10 * DAY
    recent = start_small(engine, "Welcome", results=VISITOR)
    clock.now = BORN + MONTH + DAY
    purged = [
        *call_tree(engine, runs["welcome"]),
        *call_tree(engine, runs["keyed"]),
        runs["fired"],
    ]
    assert len(purged) == 5  # two call trees of two runs each, and the scheduled run
    before = rows_of(engine, purged)
    assert before["request_keys"] == 1 and before["run_creators"] == 1
    assert before["call_trees"] == 2 and before["firings"] == 1
    kept = [runs["waiting"], runs["failed"], *call_tree(engine, recent)]
    kept_before = rows_of(engine, kept)

    dry = engine.purge_runs(older_than=MONTH, dry_run=True)
    assert rows_of(engine, purged) == before  # a dry run deletes nothing
    counts = engine.purge_runs(older_than=MONTH)

    assert counts.as_dict() == dry.as_dict()
    expected = {
        "runs": 5,
        "call_trees": 3,
        "tasks": before["tasks"],
        "triggers": before["triggers"],
        "errors": 0,
        "firings": 1,
        "instances": 0,
    }
    assert counts.as_dict() == expected
    assert set(rows_of(engine, purged).values()) == {0}
    assert rows_of(engine, kept) == kept_before
    # What is kept goes on: the waiting run still completes.
    [token] = [t.token for t in engine.get_run(runs["waiting"]).tasks if t.token]
    assert token is not None
    engine.create_deferred(token=token, action="Complete")
    engine.run_until_idle()
    assert engine.get_run(runs["waiting"]).status.value == "Completed"
    # Named explicitly, Failed runs go too, errors and all.
    failed_rows = rows_of(engine, [runs["failed"]])
    assert failed_rows["errors"] == 1
    by_status = engine.purge_runs(older_than=MONTH, statuses=["Failed"])
    assert (by_status.runs, by_status.errors) == (1, 1)
    assert set(rows_of(engine, [runs["failed"]]).values()) == {0}


def test_a_run_with_an_open_trigger_is_kept_until_it_closes(engine: Engine, clock: Clock) -> None:
    failed = start_small(engine, "Broken")
    [error] = engine.get_run(failed).errors
    engine.resolve_error(error.id, "Do Nothing")  # a Resolve trigger, not processed yet
    clock.now = BORN + MONTH + DAY
    assert engine.count_purgeable(older_than=MONTH, statuses=["Failed"]) == 0
    assert engine.purge_runs(older_than=MONTH, statuses=["Failed", "Completed"]).runs == 0
    assert rows_of(engine, [failed])["runs"] == 1
    engine.run_until_idle()
    clock.now += MONTH + DAY
    status = engine.get_run(failed).status.value
    assert engine.purge_runs(older_than=MONTH, statuses=[status]).runs == 1


def test_batches_archive_and_a_tree_filter(engine: Engine, clock: Clock, tmp_path: Path) -> None:
    welcomes = [start_small(engine, "Welcome", results=VISITOR) for _ in range(3)]
    deferred = start_small(engine, "Wait For Approval")
    [token] = [t.token for t in engine.get_run(deferred).tasks if t.token]
    assert token is not None
    engine.create_deferred(token=token, action="Complete")
    engine.run_until_idle()
    clock.now = BORN + MONTH + DAY
    archive = tmp_path / "runs.jsonl"
    batches: list[Any] = []

    counts = engine.purge_runs(
        older_than=MONTH,
        tree_name="Welcome",
        archive=archive,
        batch_size=2,
        progress=batches.append,
    )

    assert [batch.call_trees for batch in batches] == [2, 1]
    assert (counts.call_trees, counts.runs) == (3, 6)
    lines = [orjson.loads(line) for line in archive.read_bytes().splitlines()]
    assert sorted(line["run"]["id"] for line in lines) == sorted(
        run_id for root in welcomes for run_id in (root, root + 1)
    )
    first = next(line for line in lines if line["run"]["id"] == welcomes[0])
    assert first["run"]["tree_name"] == "Welcome" and first["run"]["status"] == "Completed"
    assert {task["node"] for task in first["tasks"]} == {"Start", "Greet Visitor", "Announce"}
    assert all(trigger["run_id"] == welcomes[0] for trigger in first["triggers"])
    assert sum(len(line["tasks"]) for line in lines) == counts.tasks
    assert rows_of(engine, [deferred])["runs"] == 1  # another tree's: kept


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"statuses": ["Started"]}, "statuses"),
        ({"statuses": ["Finished"]}, "statuses"),
        ({"statuses": []}, "statuses"),
        ({"older_than": -1.0}, "older_than"),
        ({"batch_size": 0}, "batch_size"),
        ({"tree_name": ""}, "tree_name"),
    ],
)
def test_bad_arguments_are_refused_and_delete_nothing(
    engine: Engine, clock: Clock, arguments: dict[str, Any], field: str
) -> None:
    run = start_small(engine, "Welcome", results=VISITOR)
    clock.now = BORN + MONTH + DAY
    with pytest.raises(BadRequest) as refused:
        engine.purge_runs(**{"older_than": MONTH, **arguments})
    assert refused.value.field == field
    assert rows_of(engine, [run])["runs"] == 1


def test_the_scheduled_policy_purges_in_the_scheduler_leader(
    database_url: str, clock: Clock
) -> None:
    policy = RetentionPolicy(older_than=MONTH, every=3600.0)
    with Engine(database_url, clock=clock, schedule_poll_seconds=0.1, retention=policy) as engine:
        engine.load_tree(greet())
        engine.load_tree(welcome())
        old = start_small(engine, "Welcome", results=VISITOR)
        clock.now = BORN + MONTH + DAY
        young = start_small(engine, "Welcome", results=VISITOR)
        engine.start(workers=1)
        try:
            wait_for(lambda: rows_of(engine, [old])["runs"] == 0)
            assert rows_of(engine, [young])["runs"] == 1
        finally:
            engine.stop()


def test_a_policy_is_checked_when_made() -> None:
    with pytest.raises(BadRequest, match="'Started' is not finished"):
        RetentionPolicy(older_than=MONTH, statuses=("Started",))
    with pytest.raises(BadRequest, match="older_than"):
        RetentionPolicy(older_than=0)


def purged_runs(table: str) -> int:
    found = re.search(r"│ runs\s+│\s+([\d,]+) │", table)
    assert found is not None, table
    return int(found.group(1).replace(",", ""))


def welcome_run_in_a_file(tmp_path: Path, *, age: float = 0.0) -> tuple[str, int]:
    """A SQLite file holding one finished Welcome call tree (for commands run as processes),
    finished ``age`` seconds ago by the engine's clock."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Engine(url, clock=lambda: time.time() - age) as engine:
        engine.load_tree(greet())
        engine.load_tree(welcome())
        run = start_small(engine, "Welcome", results=VISITOR)
        assert engine.get_run(run).status.value == "Completed"
    return url, run


def test_treeflow_purge(tmp_path: Path) -> None:
    url, kept = welcome_run_in_a_file(tmp_path)
    env = {"TREEFLOW_DATABASE_URL": url}
    archive = tmp_path / "old.jsonl"

    dry = run_treeflow("purge", "--older-than", "0s", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Would purge" in dry.stdout and purged_runs(dry.stdout) == 2
    week = run_treeflow("purge", "--older-than", "1w", cwd=tmp_path, env=env)
    assert purged_runs(week.stdout) == 0  # younger than a week: kept
    done = run_treeflow(
        "purge", "--older-than", "0s", "--archive", str(archive), "--batch-size", "1",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert purged_runs(done.stdout) == 2 and f"archived to {archive}" in done.stdout
    assert len(archive.read_bytes().splitlines()) == 2
    with Engine(url) as engine:
        assert rows_of(engine, [kept, kept + 1])["runs"] == 0

    bad = run_treeflow("purge", "--older-than", "0s", "--status", "Started", cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "'Started' is not finished" in bad.stderr
    unit = run_treeflow("purge", "--older-than", "30x", cwd=tmp_path, env=env)
    assert unit.returncode == 2 and "'30x' is not a duration" in unit.stderr


def test_an_instance_goes_with_its_run(database_url: str, clock: Clock) -> None:
    process = "new-training-process"
    with Engine(database_url, trees=TREES / "new-training-process.yaml", clock=clock) as engine:
        instance = engine.create_instance(process, {"Reason": "New employee"})
        engine.run_until_idle()
        [token] = [t.token for t in engine.get_run(instance.run_id).tasks if t.token]
        assert token is not None
        decision = '<results><result name="Decision">Approved</result></results>'
        engine.create_deferred(token=token, action="Complete", results=decision)
        engine.run_until_idle()
        assert engine.get_run(instance.run_id).status.value == "Completed"
        clock.now = BORN + MONTH + DAY

        counts = engine.purge_runs(older_than=MONTH)

        assert (counts.runs, counts.instances) == (1, 1)
        with pytest.raises(InstanceNotFound):
            engine.get_instance(instance.name)
        again = engine.create_instance(process)  # numbering goes on: names are never reused
        assert again.name == f"{process}-2"


def test_a_worker_given_retain_runs_purges_on_its_own(tmp_path: Path) -> None:
    # Finished an hour ago: the worker's first retention pass, which may come within a second
    # of the run's end on a fast machine, finds it old enough (the next pass is an hour later).
    url, old = welcome_run_in_a_file(tmp_path, age=3600.0)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from engine.cli.main import main; main()",
                "worker",
                f"--database={url}",
                "--workers=1",
                "--retain-runs=1s",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with Engine(url) as engine:
            wait_for(lambda: rows_of(engine, [old, old + 1])["runs"] == 0)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert "retention: purged 2 runs (1 call trees)" in log.read_text()
