"""The named workloads, and what each one's table shows.

A workload is a name, a measuring function (one database at a time, see ``suite``) and the
rows of its Markdown table. A row names figures by path in the per-database result
(``treeflow.phased.runs_per_s``, ``peer.runs_per_s``, ``floor.runs_per_s``); a row with a
peer figure gets a ratio, a row marked ``of_floor`` a percentage of the floor. Both are
computed here, once, into the JSON result, and the report only reads them.

``http`` drives a real ``treeflow serve`` and so needs the ``server`` extra (the ``bench``
extra includes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.databases import Target
from benchmarks.over_http import PROCESS_COUNTS
from benchmarks.suite import (
    Context,
    Figures,
    measure_defer_resume,
    measure_fanout_join,
    measure_http,
    measure_linear10,
    measure_processes,
    measure_scaling,
)
from benchmarks.workloads import PACED_RUNS_PER_S


@dataclass(frozen=True)
class Row:
    """One row of a workload's table: a treeflow figure, and a peer figure to divide it by."""

    label: str
    treeflow: str
    peer: str | None = None
    unit: str = "/s"  # "/s", "ms" or "%"
    of_floor: bool = False  # also shown as a percentage of ``floor.runs_per_s``


@dataclass(frozen=True)
class Workload:
    """A named workload: how to measure it on one database, and what its table shows."""

    name: str
    summary: str
    measure: Callable[[Context, Target], Figures] | None
    rows: tuple[Row, ...] = ()
    table: str = "comparison"  # or "scaling": one row per stored size
    unavailable: str | None = None


def figure(figures: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a per-database result, or None if it is absent."""
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, Mapping) or value.get(part) is None:
            return None
        value = value[part]
    return value


def derive(workload: Workload, figures: Figures) -> Figures:
    """Add ``ratios`` (treeflow / peer) and ``percent_of_floor`` to a per-database result."""
    ratios, of_floor = [], []
    floor = figure(figures, "floor.runs_per_s")
    for row in workload.rows:
        mine = figure(figures, row.treeflow)
        theirs = figure(figures, row.peer) if row.peer else None
        if mine is not None and theirs:
            ratios.append({"treeflow": row.treeflow, "peer": row.peer, "value": mine / theirs})
        if row.of_floor and mine is not None and floor:
            of_floor.append({"treeflow": row.treeflow, "value": 100 * mine / floor})
    if ratios:
        figures["ratios"] = ratios
    if of_floor:
        figures["percent_of_floor"] = of_floor
    return figures


_LATENCY = (
    Row(
        "latency p50, accepted to closed (pipelined)",
        "treeflow.pipelined.latency_p50_ms",
        unit="ms",
    ),
    Row(
        "latency p99, accepted to closed (pipelined)",
        "treeflow.pipelined.latency_p99_ms",
        unit="ms",
    ),
)

LINEAR10 = Workload(
    name="linear10",
    summary="start, 10 echo nodes, end (12 nodes a run)",
    measure=measure_linear10,
    rows=(
        Row("createStart accepted/s (phased)", "treeflow.phased.create_start_per_s"),
        Row(
            "runs/s, phased processing",
            "treeflow.phased.runs_per_s",
            "peer.runs_per_s",
            of_floor=True,
        ),
        Row(
            "node executions/s, phased processing",
            "treeflow.phased.node_executions_per_s",
            "peer.node_executions_per_s",
        ),
        Row(
            "runs/s, phased accept + process",
            "treeflow.phased.end_to_end_runs_per_s",
            "peer.runs_per_s",
            of_floor=True,
        ),
        Row(
            "runs/s, pipelined end to end (1 worker)",
            "treeflow.pipelined.end_to_end_runs_per_s",
            "peer.runs_per_s",
            of_floor=True,
        ),
        Row("createStart accepted/s while a worker runs", "treeflow.pipelined.create_start_per_s"),
        *_LATENCY,
        Row(
            f"latency p50, accepted to closed (paced: {PACED_RUNS_PER_S} runs/s, 1 worker)",
            "treeflow.paced.latency_p50_ms",
            unit="ms",
        ),
        Row(
            f"latency p99, accepted to closed (paced: {PACED_RUNS_PER_S} runs/s, 1 worker)",
            "treeflow.paced.latency_p99_ms",
            unit="ms",
        ),
        Row(
            "runs/s, one at a time (createStart, then run_until_idle)",
            "treeflow.one_at_a_time.runs_per_s",
            "peer.runs_per_s",
            of_floor=True,
        ),
        Row(
            "latency p50, accepted to closed (one at a time)",
            "treeflow.one_at_a_time.latency_p50_ms",
            unit="ms",
        ),
        Row("floor: raw driver loop, runs/s (1 commit a run)", "floor.runs_per_s"),
    ),
)

DEFER_RESUME = Workload(
    name="defer-resume",
    summary="start, node, deferred node, node, end; N starts, then N completes by token",
    measure=measure_defer_resume,
    rows=(
        Row(
            "starts/s, phased processing",
            "treeflow.phased.start_processing_per_s",
            "peer.starts_per_s",
        ),
        Row(
            "completes/s, phased processing",
            "treeflow.phased.complete_processing_per_s",
            "peer.completes_per_s",
        ),
        Row(
            "starts/s, phased (accept + process)",
            "treeflow.phased.starts_per_s",
            "peer.starts_per_s",
        ),
        Row(
            "completes/s, phased (accept + process)",
            "treeflow.phased.completes_per_s",
            "peer.completes_per_s",
        ),
        Row("end to end/s, phased", "treeflow.phased.end_to_end_per_s", "peer.end_to_end_per_s"),
        Row(
            "starts/s, pipelined (1 worker)", "treeflow.pipelined.starts_per_s", "peer.starts_per_s"
        ),
        Row(
            "completes/s, pipelined (1 worker)",
            "treeflow.pipelined.completes_per_s",
            "peer.completes_per_s",
        ),
        Row(
            "end to end/s, pipelined (1 worker)",
            "treeflow.pipelined.end_to_end_per_s",
            "peer.end_to_end_per_s",
        ),
        Row("createStart accepted/s (phased)", "treeflow.phased.create_start_per_s"),
        Row("createDeferred accepted/s (phased)", "treeflow.phased.create_deferred_per_s"),
        *_LATENCY,
    ),
)

FANOUT_JOIN = Workload(
    name="fanout-join",
    summary="start, 8 parallel echo nodes, Join All, end (11 nodes a run)",
    measure=measure_fanout_join,
    rows=(
        Row("createStart accepted/s (phased)", "treeflow.phased.create_start_per_s"),
        Row("runs/s, phased processing", "treeflow.phased.runs_per_s", "peer.runs_per_s"),
        Row("node executions/s, phased processing", "treeflow.phased.node_executions_per_s"),
        Row(
            "runs/s, phased accept + process",
            "treeflow.phased.end_to_end_runs_per_s",
            "peer.runs_per_s",
        ),
        Row(
            "runs/s, pipelined end to end (1 worker)",
            "treeflow.pipelined.end_to_end_runs_per_s",
            "peer.runs_per_s",
        ),
        *_LATENCY,
    ),
)

SCALING = Workload(
    name="scaling",
    summary="linear10 with 10^2 .. 10^5 runs already stored: throughput and peak RSS",
    measure=measure_scaling,
    table="scaling",
)

HTTP = Workload(
    name="http",
    summary=(
        "seed createStart over HTTP through treeflow serve (32 connections), beside the same"
        " server's no-op GET /healthz; its worker in the server, then serve --processes 1 and 2"
    ),
    measure=measure_http,
    rows=(
        Row("no-op GET /healthz requests/s", "treeflow.noop_requests_per_s"),
        Row("no-op latency p50", "treeflow.noop_latency_p50_ms", unit="ms"),
        Row("no-op latency p99", "treeflow.noop_latency_p99_ms", unit="ms"),
        Row("createStart requests/s", "treeflow.create_start_requests_per_s"),
        Row("createStart % of the no-op", "treeflow.create_start_percent_of_noop", unit="%"),
        Row("createStart latency p50", "treeflow.create_start_latency_p50_ms", unit="ms"),
        Row("createStart latency p99", "treeflow.create_start_latency_p99_ms", unit="ms"),
        Row("runs/s end to end (1 worker in the server)", "treeflow.end_to_end_runs_per_s"),
        Row(
            "latency p50, accepted to closed",
            "treeflow.processing_latency_p50_ms",
            unit="ms",
        ),
        Row(
            "latency p99, accepted to closed",
            "treeflow.processing_latency_p99_ms",
            unit="ms",
        ),
        *(
            row
            for count in PROCESS_COUNTS
            for row in (
                Row(
                    f"serve --processes {count}: createStart requests/s",
                    f"treeflow.processes_{count}.create_start_requests_per_s",
                ),
                Row(
                    f"serve --processes {count}: createStart % of its no-op",
                    f"treeflow.processes_{count}.create_start_percent_of_noop",
                    unit="%",
                ),
                Row(
                    f"serve --processes {count}: createStart latency p50",
                    f"treeflow.processes_{count}.create_start_latency_p50_ms",
                    unit="ms",
                ),
                Row(
                    f"serve --processes {count}: createStart latency p99",
                    f"treeflow.processes_{count}.create_start_latency_p99_ms",
                    unit="ms",
                ),
                Row(
                    f"serve --processes {count}: runs/s end to end",
                    f"treeflow.processes_{count}.end_to_end_runs_per_s",
                ),
            )
        ),
    ),
)

PROCESSES = Workload(
    name="processes",
    summary=(
        "a backlog of linear10 runs drained by 1, 2 and 4 `treeflow worker` processes"
        " (PostgreSQL; SQLite: 1)"
    ),
    measure=measure_processes,
    rows=(
        Row("runs/s, 1 worker process", "treeflow.p1.runs_per_s"),
        Row("runs/s, 2 worker processes", "treeflow.p2.runs_per_s"),
        Row("runs/s, 2 worker processes, % of 1", "treeflow.p2.percent_of_one", unit="%"),
        Row("runs/s, 4 worker processes", "treeflow.p4.runs_per_s"),
        Row("runs/s, 4 worker processes, % of 1", "treeflow.p4.percent_of_one", unit="%"),
    ),
)

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (LINEAR10, DEFER_RESUME, FANOUT_JOIN, SCALING, HTTP, PROCESSES)
}
DEFAULT = ("linear10", "defer-resume", "fanout-join", "scaling", "http", "processes")

__all__ = ["DEFAULT", "WORKLOADS", "Row", "Workload", "derive", "figure"]
