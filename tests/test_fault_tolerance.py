"""Scale-out under faults: real `treeflow worker` processes, SIGKILLed and cut off, lose nothing.

Workers process over 2,000 triggers of trees with deferrals, a wait and a join while this test
submits createStarts and, as tasks defer, createDeferred Completes of their tokens. Meanwhile
random workers are SIGKILLed and restarted and (on PostgreSQL) their backends are terminated
with ``pg_terminate_backend``. Afterwards the rows must show every accepted trigger closed once,
every node task written once per run and loop index, every run in the state its tree implies,
and no error records but the planted ones. The same test runs with one worker, and on SQLite
(where there are no backends to terminate).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine

from .conftest import POSTGRES_URL, postgres_schema_url
from .fault_support import (
    GROUP,
    JOIN,
    JOIN_NODES,
    PLANTED,
    PLANTED_NODES,
    REVIEW,
    REVIEW_NODES,
    SOURCE,
    Chaos,
    Workers,
    terminate_backends,
    with_application_name,
    write_trees,
)
from .support import wait_for

pytestmark = pytest.mark.fault

REVIEWS, JOINS, PLANTED_RUNS = 700, 350, 5  # 2,110 accepted triggers, and 350 timers
MIN_KILLS = 4  # workers killed with a claim in flight, at least
DEFERRING = (REVIEW, JOIN)


@dataclass
class Submitted:
    """What the test was told was accepted, and what each run must end with."""

    trigger_ids: set[int] = field(default_factory=set)
    kind: dict[int, str] = field(default_factory=dict)  # run id -> tree name
    decision: dict[int, str] = field(default_factory=dict)  # run id -> expected final output
    tokens: set[str] = field(default_factory=set)


def _start_all(engine: Engine, submitted: Submitted, complete_ready: object, pace: object) -> None:
    rng = random.Random(11)
    plan = [REVIEW] * REVIEWS + [JOIN] * JOINS + [PLANTED] * PLANTED_RUNS
    rng.shuffle(plan)
    for number, tree in enumerate(plan):
        wait = f"{rng.uniform(0.2, 2.0):.2f}"
        trigger = engine.create_start(
            source_name=SOURCE,
            source_group=GROUP,
            tree_name=tree,
            source_id=f"R{number}",
            results=f'<results><result name="Wait">{wait}</result></results>',
        )
        submitted.trigger_ids.add(trigger.id)
        submitted.kind[trigger.run_id] = tree
        if number % 60 == 59:
            complete_ready()  # type: ignore[operator]
            pace()  # type: ignore[operator]


def _complete_ready(engine: Engine, submitted: Submitted) -> int:
    """Complete every deferred Review / Approval token not completed yet; returns how many."""
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT t.token, t.run_id, r.source_id FROM tasks t JOIN runs r ON r.id = t.run_id"
                " WHERE t.status = 'Deferred' AND t.node IN ('Review', 'Approval')"
                " AND NOT t.completing"
            )
        ).all()
    done = 0
    for token, run_id, source_id in rows:
        if token in submitted.tokens:
            continue
        status = "Approved" if run_id % 2 else "Denied"
        trigger = engine.create_deferred(
            token=token,
            action="Complete",
            results=f'<results><result name="Status">{status}</result></results>',
        )
        submitted.tokens.add(token)
        submitted.trigger_ids.add(trigger.id)
        submitted.decision[run_id] = f"{source_id} {status}"
        done += 1
    return done


def _open_triggers(engine: Engine) -> int:
    """Triggers not closed yet: New (timers not due included) or Work In Progress."""
    return _scalar(
        engine, "SELECT count(*) FROM triggers WHERE status IN ('New', 'Work In Progress')"
    )


def _scalar(engine: Engine, sql: str) -> int:
    with engine.database.read() as connection:
        return int(connection.execute(sa.text(sql)).scalar_one())


def _check_rows(engine: Engine, submitted: Submitted) -> None:
    runs_total = REVIEWS + JOINS + PLANTED_RUNS
    with engine.database.read() as connection:
        triggers = connection.execute(
            sa.text(
                "SELECT id, status, closed_at, lease_owner, engine, idempotency_key FROM triggers"
            )
        ).all()
        tasks = connection.execute(
            sa.text("SELECT run_id, node, loop_index, status, results FROM tasks")
        ).all()
        runs = dict(connection.execute(sa.text("SELECT id, status FROM runs")).all())
        leased_runs = connection.execute(
            sa.text("SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL")
        ).scalar_one()
        errors = connection.execute(sa.text("SELECT run_id, node, type, status FROM errors")).all()

    # Every accepted trigger closed exactly once: closed, by some engine, no lease left, and no
    # trigger beyond the accepted ones and one timer per wait.
    by_id = {row.id: row for row in triggers}
    assert submitted.trigger_ids <= set(by_id)
    assert [row for row in triggers if row.status != "Closed"] == []
    assert all(row.closed_at and row.engine and row.lease_owner is None for row in triggers)
    timers = [row for row in triggers if (row.idempotency_key or "").startswith("wait:")]
    assert len(timers) == JOINS
    assert len(triggers) == len(submitted.trigger_ids) + JOINS
    assert len(submitted.trigger_ids) == runs_total + REVIEWS + JOINS

    # Every node task exactly once per (run, node, loop index), each run's tree in full.
    keys = [(row.run_id, row.node, row.loop_index) for row in tasks]
    assert len(keys) == len(set(keys)), "a node task was written twice"
    nodes: dict[int, set[str]] = {}
    for row in tasks:
        nodes.setdefault(row.run_id, set()).add(row.node)
    expected_nodes = {REVIEW: REVIEW_NODES, JOIN: JOIN_NODES, PLANTED: PLANTED_NODES}
    assert len(runs) == runs_total
    for run_id, tree in submitted.kind.items():
        assert nodes[run_id] == expected_nodes[tree], (run_id, tree)
        assert runs[run_id] == ("Failed" if tree == PLANTED else "Completed"), (run_id, tree)
    outputs = {row.run_id: _output(row.results) for row in tasks if row.node in ("Decide", "Done")}
    assert outputs == submitted.decision
    failed = sorted((row.run_id, row.node) for row in tasks if row.status != "Closed")
    planted = sorted(r for r, tree in submitted.kind.items() if tree == PLANTED)
    assert failed == [(run_id, "Broken") for run_id in planted]
    assert leased_runs == 0

    # No error records but the planted ones.
    assert sorted(errors) == [
        (run_id, "Broken", "Node Parameter Error", "Active") for run_id in planted
    ]


def _trigger_counts(engine: Engine) -> list[tuple[str, bool, int]]:
    """Triggers by status and whether they are timers: what a failed wait prints."""
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status, idempotency_key LIKE 'wait:%' AS timer, count(*) FROM triggers"
                " GROUP BY status, idempotency_key LIKE 'wait:%'"
            )
        ).all()
    return [(str(status), bool(timer), int(count)) for status, timer, count in rows]


def _output(results: object) -> str:
    if isinstance(results, str):
        import json

        results = json.loads(results)
    assert isinstance(results, dict)
    return str(results["output"])


@pytest.fixture
def fault_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
    else:
        yield from postgres_schema_url()


@pytest.mark.parametrize(
    ("fault_database", "worker_count"),
    [
        pytest.param("postgresql", 3, marks=pytest.mark.postgres, id="postgresql-3-workers"),
        pytest.param("postgresql", 1, marks=pytest.mark.postgres, id="postgresql-1-worker"),
        pytest.param("sqlite", 1, id="sqlite-1-worker"),
    ],
    indirect=["fault_database"],
)
@pytest.mark.timeout(600)  # the waits below are generous: a loaded machine is slow
def test_workers_killed_and_cut_off_lose_nothing_and_repeat_nothing(
    fault_database: str, worker_count: int, tmp_path: Path
) -> None:
    url = fault_database
    postgres = url.startswith("postgresql")
    application_name = f"tf_fault_{secrets.token_hex(5)}"
    trees = write_trees(tmp_path / "trees")
    logs = tmp_path / "logs"
    logs.mkdir()
    submitted = Submitted()
    with Engine(url, trees=trees) as engine:  # creates the schema and the tree versions
        worker_url = with_application_name(url, application_name) if postgres else url
        workers = Workers(worker_url, trees, logs, worker_count)
        terminate = None
        if postgres:
            assert POSTGRES_URL is not None

            def terminate() -> int:
                return terminate_backends(POSTGRES_URL, application_name)

        busy = sa.text("SELECT count(*) FROM triggers WHERE status = 'Work In Progress'")

        def claimed() -> bool:
            with engine.database.read() as connection:
                return bool(connection.execute(busy).scalar_one())

        chaos = Chaos(workers, terminate, claimed)

        def pace() -> None:
            """Spread the work over the chaos; until it has killed MIN_KILLS workers with a
            claim in flight, hold the next batch back until it kills one or this batch's work
            is all done (fast workers can drain a batch before the chaos comes round, and a
            kill needs a claim in flight to count)."""
            if chaos.kills >= MIN_KILLS:
                time.sleep(0.15)
                return
            kills = chaos.kills
            wait_for(
                lambda: (
                    chaos.kills > kills
                    or (_complete_ready(engine, submitted) == 0 and _open_triggers(engine) == 0)
                ),
                timeout=180,
            )

        chaos.start()
        try:
            _start_all(engine, submitted, lambda: _complete_ready(engine, submitted), pace)
            wait_for(
                lambda: (
                    _complete_ready(engine, submitted) == 0
                    and len(submitted.tokens) == REVIEWS + JOINS
                ),
                timeout=360,
            )
            wait_for(
                lambda: (
                    chaos.kills >= MIN_KILLS and chaos.rounds_terminating >= (3 if postgres else 0)
                ),
                timeout=120,
            )
            chaos.stop()
            wait_for(
                lambda: (
                    _scalar(
                        engine,
                        "SELECT count(*) FROM triggers WHERE status IN ('New', 'Work In Progress')",
                    )
                    == 0
                    and _scalar(engine, "SELECT count(*) FROM triggers")
                    == len(submitted.trigger_ids) + JOINS
                ),
                timeout=180,
            )
            statuses = workers.stop()
        except BaseException:
            chaos.halt.set()
            workers.kill_all()
            print(workers.logs_text()[-20_000:])
            print(
                _trigger_counts(engine),
                f"accepted {len(submitted.trigger_ids)}, kills {chaos.kills}",
            )
            raise
        assert statuses == [0] * worker_count, workers.logs_text()[-5000:]
        if postgres:
            assert chaos.terminations >= 3
        recovered = _scalar(engine, "SELECT count(*) FROM triggers WHERE attempts > 1")
        print(
            f"{len(submitted.trigger_ids)} accepted triggers, {chaos.kills} workers killed,"
            f" {chaos.terminations} backends terminated, {recovered} triggers claimed again"
        )
        assert recovered > 0, "no fault hit a claim in flight: the test proved nothing"
        _check_rows(engine, submitted)
