"""treeflow's side of the straight-through workloads (linear10, fanout-join), in two modes.

- **phased** (one thread): accept N runs with createStart (timed), then ``run_until_idle()``
  (timed). ``create_start_per_s`` is N / acceptance time; ``runs_per_s`` is N / processing
  time, the trigger-processing throughput of committed runs; ``node_executions_per_s`` is
  ``runs_per_s`` times the tree's nodes per run; ``end_to_end_runs_per_s`` is N / (accept +
  process), every run durably accepted and then processed.
- **pipelined**: ``engine.start(workers=1)``; this thread submits N runs as fast as it can while
  the worker processes them, then polls the queue every 20 ms until it is drained.
  ``end_to_end_runs_per_s`` is N / (first submit to all closed); ``latency_p50_ms`` and
  ``latency_p99_ms`` are percentiles of ``closed_at - created_at`` over the run's triggers.
- **paced** (linear10): as pipelined, but this thread submits at a steady ``PACED_RUNS_PER_S``,
  well within what one worker processes, for ``min(N, PACED_RUNS)`` runs: the latency of a
  trigger that finds the worker idle (pipelined's latency is mostly the backlog a submitter
  that outpaces the worker builds up).
- **one at a time** (linear10, one thread): for each run, createStart then ``run_until_idle()``,
  as a script or a request handler that processes what it accepts does. ``runs_per_s`` is N /
  the whole loop: every run durably accepted, processed and committed before the next is
  accepted, which is what the peer's (single-threaded, one run at a time) figure measures too.

Each mode is given a fresh database and checks its rows before it reports (see ``measure``).
"""

from __future__ import annotations

import time

from benchmarks.measure import (
    Progress,
    Shape,
    Ticker,
    latency_ms,
    open_engine,
    process,
    start_one,
    start_runs,
    verify,
    wait_until_drained,
)
from engine import Engine


def _verify_completed(engine: Engine, shape: Shape, first_run_id: int, runs: int) -> None:
    verify(
        engine,
        first_run_id=first_run_id,
        run_count=runs,
        status="Completed",
        tasks_per_run=shape.nodes_per_run,
        triggers_per_run=1,
    )


def phased(url: str, shape: Shape, runs: int, progress: Progress) -> dict[str, float]:
    """Accept ``runs`` runs, then process them all on this thread; ``progress`` counts to 2N."""
    with open_engine(url, shape) as engine:
        began = time.perf_counter()
        first_run_id = start_runs(engine, shape, runs, Ticker(progress, runs))
        accepted = time.perf_counter()
        process(engine, lambda closed: progress(runs + closed))
        processed = time.perf_counter()
        _verify_completed(engine, shape, first_run_id, runs)
    return {
        "runs": runs,
        "create_start_per_s": runs / (accepted - began),
        "runs_per_s": runs / (processed - accepted),
        "node_executions_per_s": runs * shape.nodes_per_run / (processed - accepted),
        "end_to_end_runs_per_s": runs / (processed - began),
    }


def pipelined(url: str, shape: Shape, runs: int, progress: Progress) -> dict[str, float]:
    """Submit ``runs`` runs while one worker thread processes them; ``progress`` counts to 2N."""
    with open_engine(url, shape) as engine:
        engine.start(workers=1)
        try:
            began = time.perf_counter()
            first_run_id = start_runs(engine, shape, runs, Ticker(progress, runs))
            submitted = time.perf_counter()
            wait_until_drained(
                engine, submitted=runs, progress=lambda closed: progress(runs + closed)
            )
            finished = time.perf_counter()
        finally:
            engine.stop()
        _verify_completed(engine, shape, first_run_id, runs)
        latency = latency_ms(engine, first_run_id)
    return {
        "runs": runs,
        "create_start_per_s": runs / (submitted - began),
        "end_to_end_runs_per_s": runs / (finished - began),
        **latency,
    }


PACED_RUNS_PER_S = 250
PACED_RUNS = 500


def paced(url: str, shape: Shape, runs: int, progress: Progress) -> dict[str, float]:
    """Submit at ``PACED_RUNS_PER_S`` while one worker processes; ``progress`` counts to 2n."""
    runs = min(runs, PACED_RUNS)
    with open_engine(url, shape) as engine:
        engine.start(workers=1)
        try:
            began = time.perf_counter()
            first_run_id = 0
            for number in range(runs):
                delay = began + number / PACED_RUNS_PER_S - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                run_id = start_one(engine, shape, number)
                first_run_id = first_run_id or run_id
                progress(number + 1)
            wait_until_drained(
                engine, submitted=runs, progress=lambda closed: progress(runs + closed)
            )
        finally:
            engine.stop()
        _verify_completed(engine, shape, first_run_id, runs)
        latency = latency_ms(engine, first_run_id)
    return {"runs": runs, "runs_per_s_offered": PACED_RUNS_PER_S, **latency}


def one_at_a_time(url: str, shape: Shape, runs: int, progress: Progress) -> dict[str, float]:
    """createStart then ``run_until_idle`` for each of ``runs`` runs; ``progress`` counts to N."""
    tick = Ticker(progress, runs)
    with open_engine(url, shape) as engine:
        first_run_id = 0
        began = time.perf_counter()
        for number in range(runs):
            run_id = start_one(engine, shape, number)
            engine.run_until_idle()
            first_run_id = first_run_id or run_id
            tick(number + 1)
        finished = time.perf_counter()
        _verify_completed(engine, shape, first_run_id, runs)
        latency = latency_ms(engine, first_run_id)
    return {"runs": runs, "runs_per_s": runs / (finished - began), **latency}


__all__ = ["PACED_RUNS", "PACED_RUNS_PER_S", "one_at_a_time", "paced", "phased", "pipelined"]
