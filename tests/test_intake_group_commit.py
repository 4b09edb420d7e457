"""Group commit on intake: concurrent createStarts share one transaction, each answered durably.

The first caller is held inside its own transaction (a statement listener waits) until every
other caller is waiting to be written, so the others form one group, deterministically: the
test counts its commits instead of hoping threads overlap.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from engine import Engine, RunStatus, TreeNotFound, Trigger

from .conftest import POSTGRES_URL, postgres_schema_url
from .fault_support import terminate_backends, with_application_name
from .support import small_tree, wait_for

KEY = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Echo"}
ECHO = small_tree(
    "Echo",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
        "Echo": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ source.id }}"}},
    },
)
CALLERS = 8


@contextmanager
def first_caller_held(engine: Engine, others: int) -> Iterator[list[int]]:
    """Hold the first start inside its transaction until ``others`` callers wait; count commits."""
    held = threading.Event()
    commits = [0]
    group = engine.intake.group
    assert group is not None

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM tree_versions" in statement and not held.is_set():
            held.set()
            wait_for(lambda: group.waiting == others)

    def commit(_connection: Any) -> None:
        commits[0] += 1

    target = engine.database.engine
    sa.event.listen(target, "before_cursor_execute", hold)
    sa.event.listen(target, "commit", commit)
    try:
        yield commits
    finally:
        sa.event.remove(target, "before_cursor_execute", hold)
        sa.event.remove(target, "commit", commit)


def concurrently(calls: list[Callable[[], Trigger]]) -> list[Trigger | Exception]:
    """Each call on a thread of its own, the first before the others; outcomes in call order."""
    outcomes: list[Trigger | Exception] = [Exception("not run")] * len(calls)

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    threads[0].start()
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def start(engine: Engine, source_id: str, **kwargs: Any) -> Callable[[], Trigger]:
    return lambda: engine.create_start(**KEY, source_id=source_id, **kwargs)


def test_concurrent_starts_commit_together_and_each_caller_gets_its_own_run(
    database_url: str,
) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(ECHO)
        with first_caller_held(engine, CALLERS - 1) as commits:
            outcomes = concurrently([start(engine, f"S{n}") for n in range(CALLERS)])
        assert commits == [2]  # the first alone, then the seven others in one transaction
        triggers = [t for t in outcomes if isinstance(t, Trigger)]
        assert len(triggers) == CALLERS
        assert len({t.id for t in triggers}) == len({t.run_id for t in triggers}) == CALLERS
        for number, trigger in enumerate(triggers):
            assert engine.get_run(trigger.run_id).source_id == f"S{number}"
            assert engine.get_trigger(trigger.id).id == trigger.id
        assert engine.run_until_idle() == CALLERS
        assert {engine.get_run(t.run_id).status for t in triggers} == {RunStatus.COMPLETED}


def test_a_start_the_database_refuses_fails_alone_in_its_group(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(ECHO)
        calls = [start(engine, f"S{n}") for n in range(CALLERS)]
        calls[3] = lambda: engine.create_start(
            source_name="Tests", source_group="Semantics", tree_name="Nowhere", source_id="bad"
        )
        with first_caller_held(engine, CALLERS - 1) as commits:
            outcomes = concurrently(calls)
        assert commits == [2]
        assert isinstance(outcomes[3], TreeNotFound)
        assert "Nowhere" in str(outcomes[3])
        written = [t for t in outcomes if isinstance(t, Trigger)]
        assert len(written) == CALLERS - 1
        assert sorted(engine.get_run(t.run_id).source_id for t in written) == sorted(
            f"S{n}" for n in range(CALLERS) if n != 3
        )
        assert engine.count_runs() == CALLERS - 1


def test_one_idempotency_key_twice_in_one_group_is_one_trigger(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(ECHO)
        calls = [start(engine, f"S{n}") for n in range(CALLERS)]
        calls[2] = start(engine, "keyed", idempotency_key="order-7", fingerprint="a")
        calls[5] = start(engine, "keyed", idempotency_key="order-7", fingerprint="a")
        with first_caller_held(engine, CALLERS - 1) as commits:
            outcomes = concurrently(calls)
        assert commits == [4]  # the two keyed callers' read-only lookups first, then as above
        first, repeat = outcomes[2], outcomes[5]
        assert isinstance(first, Trigger) and isinstance(repeat, Trigger)
        assert (first.id, first.run_id) == (repeat.id, repeat.run_id)
        assert engine.count_runs() == CALLERS - 1
        again = engine.create_start(
            **KEY, source_id="keyed", idempotency_key="order-7", fingerprint="a"
        )
        assert again.id == first.id


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.postgres
def test_a_group_whose_commit_fails_fails_every_caller_and_writes_nothing(
    postgres_url: str,
) -> None:
    name = f"tf_group_{secrets.token_hex(5)}"
    with (
        Engine(with_application_name(postgres_url, name)) as engine,
        Engine(postgres_url) as observer,
    ):
        engine.load_tree(ECHO)
        commits: list[int] = []

        def cut_the_group(_connection: Any) -> None:
            commits.append(0)
            if len(commits) == 2:  # the group's COMMIT (the first caller's was the first)
                assert POSTGRES_URL is not None
                commits[-1] = terminate_backends(POSTGRES_URL, name)
                time.sleep(0.2)  # the backend has exited when COMMIT is sent

        with first_caller_held(engine, CALLERS - 1):
            sa.event.listen(engine.database.engine, "commit", cut_the_group)
            try:
                outcomes = concurrently([start(engine, f"S{n}") for n in range(CALLERS)])
            finally:
                sa.event.remove(engine.database.engine, "commit", cut_the_group)
        assert commits[1] >= 1  # a backend was terminated
        assert isinstance(outcomes[0], Trigger)
        failures = outcomes[1:]
        assert all(isinstance(f, sa.exc.OperationalError) for f in failures), failures
        assert len({id(f) for f in failures}) == 1  # the group's one failure, told to each
        assert observer.count_runs() == 1
        assert engine.create_start(**KEY, source_id="after").run_id  # a new connection works
