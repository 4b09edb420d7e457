"""The Engine's lists behind the console, on SQLite and PostgreSQL: runs filtered by creator
and creation time, counted by status, and the deferred tasks waiting in them."""

from __future__ import annotations

from engine import Engine
from engine.statuses import RunStatus, TaskStatus

from .support import FixedClock, approval_tree, small_tree

NAME = '<results><result name="Name">Ada</result></results>'
APPROVAL = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Approval"}
ECHO = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Echo"}
ADA = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"


def _engine(url: str) -> Engine:
    engine = Engine(url, clock=FixedClock())
    engine.load_tree(approval_tree())
    engine.load_tree(
        small_tree("Echo", {"Start": {"handler": "system_start_v1", "connectors": []}})
    )
    return engine


def _start(engine: Engine, tree: dict[str, str], *, by: str | None, at: float) -> int:
    engine.clock.now = at  # type: ignore[attr-defined]
    trigger = engine.create_start(**tree, source_id="s", results=NAME, created_by=by)
    engine.run_until_idle()
    return trigger.run_id


def test_runs_by_creator_time_and_status(database_url: str) -> None:
    with _engine(database_url) as engine:
        day = 86_400.0
        t0 = 1_800_000_000.0
        ada_first = _start(engine, APPROVAL, by=ADA, at=t0)
        bob_run = _start(engine, APPROVAL, by=BOB, at=t0 + day)
        ada_echo = _start(engine, ECHO, by=ADA, at=t0 + 2 * day)
        nobody = _start(engine, ECHO, by=None, at=t0 + 2 * day)

        def ids(**filters: object) -> list[int]:
            return [run.id for run in engine.list_runs(**filters)]  # type: ignore[arg-type]

        assert ids(created_by=ADA) == [ada_echo, ada_first]
        assert engine.count_runs(created_by=ADA) == 2
        assert ids(created_by=BOB) == [bob_run]
        assert ids(created_from=t0 + day) == [nobody, ada_echo, bob_run]
        assert ids(created_until=t0 + day) == [ada_first]  # until is exclusive
        assert ids(created_from=t0 + day, created_until=t0 + 2 * day) == [bob_run]
        assert ids(created_by=ADA, status=RunStatus.COMPLETED.value) == [ada_echo]
        assert engine.count_runs_by_status() == {"Started": 2, "Completed": 2}
        assert engine.count_runs_by_status(created_by=ADA) == {"Started": 1, "Completed": 1}
        assert engine.count_runs_by_status(tree_name="Echo", created_by=BOB) == {}
        assert engine.run_creator(ada_first) == ADA
        assert engine.run_creator(nobody) is None


def test_deferred_tasks_newest_first_by_creator_and_tree(database_url: str) -> None:
    with _engine(database_url) as engine:
        first = _start(engine, APPROVAL, by=ADA, at=1_800_000_000.0)
        second = _start(engine, APPROVAL, by=BOB, at=1_800_000_001.0)
        _start(engine, ECHO, by=ADA, at=1_800_000_002.0)  # never defers
        found = engine.list_deferred_tasks()
        assert [(run.id, task.name) for run, task in found] == [
            (second, "Approve"),
            (first, "Approve"),
        ]
        assert all(task.status is TaskStatus.DEFERRED and task.token for _, task in found)
        assert found[0][0].tasks == ()  # the run comes without its tasks
        assert [run.id for run, _ in engine.list_deferred_tasks(created_by=ADA)] == [first]
        assert engine.count_deferred_tasks(created_by=ADA) == 1
        assert engine.count_deferred_tasks(tree_name="Echo") == 0
        assert [run.id for run, _ in engine.list_deferred_tasks(limit=1, offset=1)] == [first]
        token = engine.get_run(first).task("Approve").token
        engine.create_deferred(token=token or "", action="Complete")
        engine.run_until_idle()
        assert engine.count_deferred_tasks() == 1  # completed: no longer waiting
        assert engine.list_deferred_tasks()[0][0].id == second
