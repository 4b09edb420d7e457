"""treeflow's side of the defer-resume workload: N starts, then N completes by token.

The tree is Start, Before, Approval (deferred), After, End: five nodes per run. Each mode has
two timed phases around an untimed read of the N deferral tokens:

- **starts**: createStart N runs and process them until every run waits at Approval;
  ``starts_per_s`` = N / (accept + process).
- **completes**: createDeferred ``Complete`` for every token (the decision as results XML) and
  process until every run is Completed; ``completes_per_s`` = N / (accept + process).

``end_to_end_per_s`` = N / (both phases). In **phased** mode acceptance and processing follow
each other on one thread, so they are also reported apart: ``create_start_per_s`` /
``create_deferred_per_s`` are the acceptance rates and ``start_processing_per_s`` /
``complete_processing_per_s`` the trigger-processing throughputs (N / processing time), the
figures comparable with linear10's ``runs_per_s``. In **pipelined** mode one worker thread
processes while this thread submits, and the latency percentiles are over all 2N triggers. The
peer's start runs the workflow to the user task and persists it; its complete loads, resumes,
runs to the end and persists: it has no separate acceptance.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from benchmarks.measure import (
    DEFER_RESUME,
    Progress,
    Ticker,
    latency_ms,
    open_engine,
    process,
    start_runs,
    verify,
    wait_until_drained,
)
from engine import Engine
from engine.store.tables import tasks

DECISION = '<results><result name="decision">approved</result></results>'


def _tokens(engine: Engine, first_run_id: int) -> list[str]:
    query = (
        sa.select(tasks.c.token)
        .where(tasks.c.run_id >= first_run_id, tasks.c.status == "Deferred")
        .order_by(tasks.c.run_id)
    )
    with engine.database.read() as connection:
        return [token for token in connection.execute(query).scalars() if token]


def _complete_all(engine: Engine, tokens: list[str], tick: Ticker) -> None:
    for number, token in enumerate(tokens):
        engine.create_deferred(token=token, action="Complete", results=DECISION)
        tick(number + 1)


def _measure(url: str, runs: int, progress: Progress, *, worker: bool) -> dict[str, float]:
    """Both phases; with ``worker`` a worker thread processes while this thread submits."""
    with open_engine(url, DEFER_RESUME) as engine:
        if worker:
            engine.start(workers=1)

        def drain(offset: int) -> None:
            def advance(done: int) -> None:
                progress(offset + done)

            if worker:
                wait_until_drained(engine, submitted=runs, progress=advance)
            else:
                process(engine, advance)

        began = time.perf_counter()
        first_run_id = start_runs(engine, DEFER_RESUME, runs, Ticker(progress, runs))
        accepted = time.perf_counter()
        drain(runs)
        started = time.perf_counter()
        verify(
            engine,
            first_run_id=first_run_id,
            run_count=runs,
            status="Started",
            tasks_per_run=3,  # Start, Before, Approval (deferred)
            triggers_per_run=1,
        )
        tokens = _tokens(engine, first_run_id)
        resumed = time.perf_counter()
        _complete_all(engine, tokens, Ticker(progress, runs, offset=2 * runs))
        submitted = time.perf_counter()
        drain(3 * runs)
        finished = time.perf_counter()
        engine.stop()
        verify(
            engine,
            first_run_id=first_run_id,
            run_count=runs,
            status="Completed",
            tasks_per_run=DEFER_RESUME.nodes_per_run,
            triggers_per_run=2,
        )
        latency = latency_ms(engine, first_run_id) if worker else {}
    starts, completes = started - began, finished - resumed
    return {
        "runs": runs,
        "create_start_per_s": runs / (accepted - began),
        "create_deferred_per_s": runs / (submitted - resumed),
        "starts_per_s": runs / starts,
        "completes_per_s": runs / completes,
        "start_processing_per_s": runs / (started - accepted),
        "complete_processing_per_s": runs / (finished - submitted),
        "end_to_end_per_s": runs / (starts + completes),
        **latency,
    }


def phased(url: str, runs: int, progress: Progress) -> dict[str, float]:
    """Accept, then process on this thread, in each phase; ``progress`` counts to 4N."""
    return _measure(url, runs, progress, worker=False)


def pipelined(url: str, runs: int, progress: Progress) -> dict[str, float]:
    """One worker thread processes while this thread submits; ``progress`` counts to 4N."""
    return _measure(url, runs, progress, worker=True)


__all__ = ["DECISION", "phased", "pipelined"]
