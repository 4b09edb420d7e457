"""Helpers the test modules share: the example tree's key, small trees, waiting on conditions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from engine import Engine

REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
APPROVED = '<results><result name="Status">Approved</result></results>'


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


def small_tree(name: str, nodes: dict[str, object]) -> dict[str, object]:
    return {"source": "Tests", "group": "Semantics", "name": name, "nodes": nodes}


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
