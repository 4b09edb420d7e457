"""The Engine's reads behind the console's trees, schedules, instances and health pages, on
SQLite and PostgreSQL: trees with versions and runs by status, in-flight runs on an older
version, a version's picture, upcoming firings, instances by process and creator, and the
queue's health (backlog, claims, closers, errors, the scheduler's leader)."""

from __future__ import annotations

import itertools
import logging

import pytest

from engine import BadRequest, Engine, RunStatus, TreeKey
from engine.errors import TreeVersionNotFound
from engine.schedule.leader import Leadership
from engine.store import queue

from .conftest import TREES
from .support import APPROVED, REGISTRATION, ExplodePlugin, small_tree, start, start_small

REGISTRATION_KEY = TreeKey(
    REGISTRATION["source_name"], REGISTRATION["source_group"], REGISTRATION["tree_name"]
)
PROCESS = "new-training-process"
ADA, BOB = "ada-id", "bob-id"


def review(after: str) -> dict[str, object]:
    """Start -> Review (defers) -> ``after``: each ``after`` is another version of one tree."""
    return small_tree(
        "Review",
        {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Review"}]},
            "Review": {
                "handler": "utilities_defer_v1",
                "defers": True,
                "connectors": [{"to": after}],
            },
            after: {"handler": "utilities_echo_v1", "parameters": {"input": after}},
        },
    )


def test_trees_are_listed_at_their_latest_version_with_runs_by_status(engine: Engine) -> None:
    total, page = engine.list_tree_overviews(limit=100)
    assert total == len(page) == len({tree.key for tree in engine.trees})
    assert [o.key for o in page] == sorted(
        (o.key for o in page), key=lambda k: (k.source_name, k.source_group, k.name)
    )
    start(engine, source_id="one")
    run = start(engine, source_id="two")
    deferred = next(t for t in engine.get_run(run).tasks if t.token)
    engine.create_deferred(token=deferred.token or "", results=APPROVED)
    engine.run_until_idle()
    _, [overview] = engine.list_tree_overviews(name="process registration")
    assert overview.key == REGISTRATION_KEY
    assert overview.runs == {"Started": 1, "Completed": 1}
    engine.cancel_run(start(engine, source_id="three"), by="test")
    engine.run_until_idle()
    _, [overview] = engine.list_tree_overviews(name="process registration")
    assert overview.runs == {"Started": 1, "Completed": 1, "Cancelled": 1}
    assert (overview.latest.version, overview.latest.status, overview.stale_runs) == (
        1,
        "Active",
        0,
    )


def test_tree_lists_page_and_filter_in_sql(engine: Engine) -> None:
    total, first = engine.list_tree_overviews(limit=3)
    _, second = engine.list_tree_overviews(limit=3, offset=3)
    assert len(first) == len(second) == 3
    assert {o.key for o in first}.isdisjoint(o.key for o in second)
    assert engine.list_tree_overviews(status="Inactive") == (0, [])
    assert engine.list_tree_overviews(name="no such tree") == (0, [])
    assert engine.list_tree_overviews(status="Active")[0] == total
    with pytest.raises(BadRequest, match="status"):
        engine.list_tree_overviews(status="Sleeping")


def test_in_flight_runs_on_an_older_version_are_found(database_url: str) -> None:
    key = TreeKey("Tests", "Semantics", "Review")
    with Engine(database_url) as engine:
        engine.load_tree(review("First"))
        old = start_small(engine, "Review")
        finished = start_small(engine, "Review")
        token = next(t.token for t in engine.get_run(finished).tasks if t.token)
        engine.create_deferred(token=token or "", results=APPROVED)
        engine.run_until_idle()
        engine.load_tree(review("Second"))
        current = start_small(engine, "Review")
        _, [overview] = engine.list_tree_overviews()
        assert (overview.latest.version, overview.stale_runs) == (2, 1)
        assert overview.runs == {"Started": 2, "Completed": 1}
        [stale] = engine.list_stale_runs(key)
        assert (stale.run_id, stale.version, stale.latest_version) == (old, 1, 2)
        assert stale.status == RunStatus.STARTED.value
        assert engine.count_stale_runs() == engine.count_stale_runs(key) == 1
        assert current not in {s.run_id for s in engine.list_stale_runs(key)}
        assert engine.list_stale_runs(TreeKey("No", "Such", "Tree")) == []
        versions = engine.tree_versions(key)
        assert [v.version for v in versions] == [2, 1]
        assert engine.get_tree_version(versions[1].id) == versions[1]


@pytest.mark.graphviz
def test_a_stored_version_is_drawn_as_treeflow_graph_draws_it(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(review("First"))
        engine.load_tree(review("Second"))
        old, new = reversed(engine.tree_versions(TreeKey("Tests", "Semantics", "Review")))
        first, second = (engine.tree_version_picture(v.id).decode() for v in (old, new))
        assert first.startswith("<?xml") and "<svg" in first
        assert ">First<" in first and ">Second<" not in first
        assert ">Second<" in second
        assert "digraph Review {" in engine.tree_version_picture(old.id, "dot").decode()
        with pytest.raises(TreeVersionNotFound, match="999"):
            engine.tree_version_picture(999)
        with pytest.raises(BadRequest, match="format"):
            engine.tree_version_picture(old.id, "gif")


def test_schedules_show_their_next_firings(engine: Engine) -> None:
    every = engine.schedules.create(
        name="Every quarter hour",
        **REGISTRATION,
        when={"kind": "interval", "every": 15, "unit": "minutes"},
    )
    times = engine.schedules.next_fire_times(every, 4)
    assert len(times) == 4
    assert times[0] == every.next_fire_time
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [900.0] * 3
    once = engine.schedules.create(
        name="Once", **REGISTRATION, when={"kind": "once", "at": "2099-01-04T09:00"}
    )
    assert len(engine.schedules.next_fire_times(once, 5)) == 1
    disabled = engine.schedules.update(every.id, enabled=False)
    assert engine.schedules.next_fire_times(disabled) == []
    with pytest.raises(BadRequest, match="count"):
        engine.schedules.next_fire_times(every, 0)


def test_instances_are_listed_by_process_newest_first_and_by_creator(engine: Engine) -> None:
    first = engine.create_instance(PROCESS, {"Reason": "New job"}, created_by=ADA)
    second = engine.create_instance(PROCESS, created_by=BOB)
    third = engine.create_instance(PROCESS, created_by=ADA)
    total, found = engine.list_instances()
    assert total == 3
    assert [i.name for i in found] == [third.name, second.name, first.name]
    assert found[2].field("Reason").value == "New job"
    assert {i.tree_version for i in found} == {1}
    assert engine.list_instances(created_by=ADA)[0] == 2
    assert [i.name for i in engine.list_instances(created_by=ADA, limit=1, offset=1)[1]] == [
        first.name
    ]
    assert engine.list_instances(process="no-such-process") == (0, [])
    assert engine.list_instances(created_by="nobody") == (0, [])


def test_health_shows_the_backlog_due_and_not_due(database_url: str) -> None:
    with Engine(database_url, trees=TREES) as engine:
        assert engine.health().open_triggers == 0
        for n in range(3):
            engine.create_start(**REGISTRATION, source_id=f"r{n}")
        health = engine.health()
        assert (health.open_triggers, health.due_triggers) == (3, 3)
        assert health.open_triggers == engine.count_open_triggers()  # what /metrics reports
        [part] = health.backlog
        assert (part.selection, part.status, part.open) == ("", "New", 3)
        assert part.oldest_due_at is not None and part.oldest_due_at <= health.now
        engine.run_until_idle()
        assert engine.health().backlog == ()


def test_health_shows_claims_with_their_leases_and_who_closed_what(database_url: str) -> None:
    with Engine(database_url, trees=TREES, plugins=[ExplodePlugin()]) as engine:
        engine.create_start(**REGISTRATION, source_id="claimed")
        now = engine.clock()
        with engine.database.write() as connection:
            [claimed] = queue.claim(
                connection, claim_id="c0ffee", now=now, lease_seconds=60, limit=10
            )
        [claim] = engine.health().claims
        assert (claim.claim_id, claim.triggers, claim.runs, claim.expired) == (
            "c0ffee",
            1,
            1,
            False,
        )
        assert claim.lease_until == pytest.approx(now + 60)
        assert engine.health().leased_runs == 1
        with engine.database.write() as connection:
            queue.release(connection, claim_id="c0ffee", trigger_ids=[claimed.id])
        engine.run_until_idle()
        [closer] = engine.health().closers
        assert (closer.engine, closer.closed, closer.failed) == (engine.name, 1, 0)
        engine.load_tree(
            small_tree(
                "Explode",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Boom"}]},
                    "Boom": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
                },
            )
        )
        failed = start_small(engine, "Explode")
        health = engine.health()
        [error] = health.recent_errors
        assert (error.run_id, error.node, health.active_errors) == (failed, "Boom", 1)


def test_the_scheduler_leader_is_the_lock_holder_on_postgresql(database_url: str) -> None:
    with Engine(database_url) as engine:
        leader = engine.health().leader
        assert (leader.here, leader.holder, leader.last_firing) == (False, None, None)
        assert leader.exclusive is engine.database.is_postgresql
        if not engine.database.is_postgresql:
            return
        leadership = Leadership(engine.database, logger=logging.getLogger("test"))
        try:
            assert leadership.acquire()
            holder = engine.health().leader.holder
            assert holder is not None and holder.pid == leadership.backend_pid
        finally:
            leadership.release()
        assert engine.health().leader.holder is None


def test_the_engine_that_fired_a_schedule_is_its_last_firing(engine: Engine) -> None:
    schedule = engine.schedules.create(
        name="Now and then", **REGISTRATION, when={"kind": "interval", "every": 1, "unit": "days"}
    )
    firing = engine.schedules.run_now(schedule.id)
    assert engine.health().leader.last_firing == (engine.name, firing.recorded_at)
