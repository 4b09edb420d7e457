"""One workload on one database: treeflow's two modes, the peer, and (for linear10) the floor.

Every measurement gets a fresh database from the target, in this order: treeflow phased,
treeflow pipelined (linear10: then paced, then one at a time), the peer (SpiffWorkflow, through
``benchmarks.peers.spiff``), the floor.
The figures are plain numbers keyed as the JSON result stores them; ratios are computed from
them afterwards (``registry.derive``), so a ratio is always treeflow / peer of this invocation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import defer_resume, floor, over_http, processes, scaling, workloads
from benchmarks.databases import Target, sqlite_file
from benchmarks.measure import FANOUT_JOIN, LINEAR10, Progress, Shape
from benchmarks.progress import Board

Figures = dict[str, Any]


@dataclass(frozen=True)
class Context:
    """What the command line decided, shared by every workload."""

    runs: int
    scaling_runs: int
    scaling_sizes: tuple[int, ...]
    peer: bool
    board: Board


def _peer_database(url: str) -> str:
    """The peer adapter takes a SQLite file path or a PostgreSQL URL."""
    return sqlite_file(url) if url.startswith("sqlite") else url


def _over_http(url: str, progress: Progress, *, count: int, n: int) -> Figures:
    return over_http.measure(url, n, progress, processes=count)


def _processes(url: str, progress: Progress, *, count: int, n: int) -> Figures:
    return processes.measure(url, count, n, progress)


def _step(
    context: Context,
    target: Target,
    what: str,
    total: int,
    measure: Callable[[str, Progress], Figures],
) -> Figures:
    """Run one measurement on a fresh database, with a progress bar of its own."""
    progress = context.board.track(f"{target.label}: {what}", total)
    with target.fresh(re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")) as url:
        return measure(url, progress)


def _peer(context: Context, target: Target, name: str, total: int) -> Figures | None:
    """The peer adapter's ``name`` workload; imported here so --no-peer needs no SpiffWorkflow."""
    if not context.peer:
        return None
    from benchmarks.peers import spiff

    run: Callable[[str, int, Progress], Figures] = getattr(spiff, name)
    return _step(
        context,
        target,
        f"{name.replace('_', '-')} peer (SpiffWorkflow)",
        total,
        lambda url, progress: run(_peer_database(url), context.runs, progress),
    )


def _straight(context: Context, target: Target, shape: Shape, name: str) -> Figures:
    n = context.runs
    return {
        "phased": _step(
            context,
            target,
            f"{name} treeflow phased",
            2 * n,
            lambda url, progress: workloads.phased(url, shape, n, progress),
        ),
        "pipelined": _step(
            context,
            target,
            f"{name} treeflow pipelined",
            2 * n,
            lambda url, progress: workloads.pipelined(url, shape, n, progress),
        ),
    }


def measure_linear10(context: Context, target: Target) -> Figures:
    n = context.runs
    treeflow = _straight(context, target, LINEAR10, "linear10")
    paced = min(n, workloads.PACED_RUNS)
    treeflow["paced"] = _step(
        context,
        target,
        f"linear10 treeflow paced ({workloads.PACED_RUNS_PER_S} runs/s)",
        2 * paced,
        lambda url, progress: workloads.paced(url, LINEAR10, n, progress),
    )
    treeflow["one_at_a_time"] = _step(
        context,
        target,
        "linear10 treeflow one at a time",
        n,
        lambda url, progress: workloads.one_at_a_time(url, LINEAR10, n, progress),
    )
    return {
        "treeflow": treeflow,
        "peer": _peer(context, target, "linear10", context.runs),
        "floor": _step(
            context,
            target,
            "linear10 floor (raw driver loop)",
            context.runs,
            lambda url, progress: floor.measure(url, context.runs, progress),
        ),
    }


def measure_fanout_join(context: Context, target: Target) -> Figures:
    return {
        "treeflow": _straight(context, target, FANOUT_JOIN, "fanout-join"),
        "peer": _peer(context, target, "fanout_join", context.runs),
    }


def measure_defer_resume(context: Context, target: Target) -> Figures:
    n = context.runs
    treeflow = {
        "phased": _step(
            context,
            target,
            "defer-resume treeflow phased",
            4 * n,
            lambda url, progress: defer_resume.phased(url, n, progress),
        ),
        "pipelined": _step(
            context,
            target,
            "defer-resume treeflow pipelined",
            4 * n,
            lambda url, progress: defer_resume.pipelined(url, n, progress),
        ),
    }
    peer = _peer(context, target, "defer_resume", 2 * n)
    return {"treeflow": treeflow, "peer": peer}


def measure_http(context: Context, target: Target) -> Figures:
    """The worker in the server's process (the flat figures), then ``processes_K`` for
    ``serve --processes K``."""
    n = context.runs
    figures = _step(
        context,
        target,
        "http treeflow serve",
        2 * n,
        lambda url, progress: over_http.measure(url, n, progress),
    )
    for count in over_http.PROCESS_COUNTS:
        figures[f"processes_{count}"] = _step(
            context,
            target,
            f"http treeflow serve --processes {count}",
            2 * n,
            functools.partial(_over_http, count=count, n=n),
        )
    return {"treeflow": figures}


def measure_processes(context: Context, target: Target) -> Figures:
    """linear10 drained by 1, 2, 4 worker processes (1 on SQLite); ``pK`` per count K."""
    n = context.runs
    measured: Figures = {}
    for count in processes.counts(target.name):
        measured[f"p{count}"] = _step(
            context,
            target,
            f"processes treeflow {count} worker process{'es' if count > 1 else ''}",
            2 * n,
            functools.partial(_processes, count=count, n=n),
        )
    one = measured["p1"]["runs_per_s"]
    for figures in measured.values():
        figures["percent_of_one"] = 100 * figures["runs_per_s"] / one
    return {"treeflow": measured}


def measure_scaling(context: Context, target: Target) -> Figures:
    sizes, n = context.scaling_sizes, context.scaling_runs
    progress = context.board.track(
        f"{target.label}: scaling treeflow ({', '.join(map(str, sizes))} stored)",
        scaling.progress_total(sizes, n),
    )
    return {"treeflow": scaling.measure(target, sizes, n, progress)}


__all__ = [
    "Context",
    "measure_defer_resume",
    "measure_fanout_join",
    "measure_http",
    "measure_linear10",
    "measure_processes",
    "measure_scaling",
]
