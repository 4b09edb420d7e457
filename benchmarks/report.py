"""The Markdown report: one table per workload, the targets, and what every figure means.

It reads only the JSON result (``cli`` builds it), so a saved result can be rendered again and
the Markdown can never show a figure the JSON does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.registry import WORKLOADS, Row, Workload, figure
from benchmarks.workloads import PACED_RUNS, PACED_RUNS_PER_S

NOTES = (
    "**Durability.** treeflow's figures count only triggers whose state is committed: a "
    "measurement ends when no trigger is New or Work In Progress as seen from another "
    "connection, and every run's rows are then counted (runs in the expected status, task "
    "rows, closed triggers, no errors) before a figure is reported. The peer commits each run "
    "(and each defer-resume start and completion) before counting it. SQLite runs in WAL mode "
    "with synchronous=NORMAL and foreign keys on, for treeflow, the peer and the floor alike; "
    "PostgreSQL with synchronous_commit as the server has it.",
    "**Same work.** linear10 is 12 node executions a run (start, 10 echo nodes, end), "
    "defer-resume 5, fanout-join 11, on both engines; every echo renders a template from the "
    "source id or the previous node's result, and the peer's scripts build the same strings.",
    "**Fresh databases.** Every mode of every workload starts on an empty database: a new "
    "SQLite file, or a new PostgreSQL schema dropped afterwards.",
    "**phased** (one thread): accept N with createStart (timed), then `run_until_idle()` "
    "(timed). *accepted/s* = N / acceptance time; *runs/s, phased processing* = N / "
    "processing time, the trigger-processing throughput of committed runs; node executions/s "
    "= that times the nodes per run; *accept + process* = N / both, every run durably "
    "accepted (one commit each) before it is processed. The peer has no acceptance step: a "
    "request it is running is lost if its process dies, so its runs/s compares with "
    "treeflow's processing figure, and the accept + process figure shows what durable "
    "acceptance adds.",
    "**pipelined**: one worker thread (`engine.start(workers=1)`) processes while the main "
    "thread submits N as fast as it can, then polls the open-trigger count every 20 ms. "
    "*end to end* = N / (first submit to all closed); *latency* = p50 / p99 of "
    "`closed_at - created_at` of that mode's triggers.",
    f"**paced** (linear10): as pipelined, but the main thread submits at a steady "
    f"{PACED_RUNS_PER_S} runs/s ({PACED_RUNS} runs, or N if fewer), well within what the worker "
    "processes: the latency of a "
    "trigger that finds the worker idle. Pipelined latency is mostly queueing: the submitter "
    "accepts faster than one worker processes, and the backlog grows until it stops.",
    "**one at a time** (linear10, one thread): for each of N runs, createStart and then "
    "`run_until_idle()`; runs/s = N / the whole loop, each run accepted durably, processed and "
    "committed before the next is accepted, as the peer runs one at a time; latency as above.",
    "**defer-resume**: N starts processed until every run waits at the deferred node; the N "
    "tokens are read (untimed); N createDeferred Complete processed until every run is "
    "Completed. *phased processing* = N / processing time of that phase; *(accept + "
    "process)* = N / the whole phase; *end to end/s* = N / both phases. Pipelined latency is "
    "over all 2N triggers. "
    "The peer's start runs the workflow to its user task and saves it; its completion loads, "
    "resumes, runs to the end and saves.",
    "**ratio** = treeflow / peer, both measured in this invocation; a pipelined figure is "
    "divided by the peer's only (single-threaded) figure of the same kind.",
    "**floor**: a raw `sqlite3` (psycopg on PostgreSQL) loop on treeflow's schema writing the "
    "rows treeflow writes for a linear10 run (INSERT the run and its Root trigger, 12 INSERT "
    "tasks, UPDATE the trigger to Closed and the run to Completed), one commit a run. "
    "*% of floor* is treeflow's runs/s divided by it. treeflow's worker commits a claim's "
    "triggers (up to the batch size) in one transaction, each trigger's rows with its close, so "
    "its phased processing, which excludes createStart's own commit per run, can pass 100%; "
    "the pipelined figure includes every commit.",
    "**scaling**: for each size a fresh subprocess on a fresh database has that many completed "
    "linear10 runs stored (untimed, by a process of its own), then measures phased linear10 "
    "processing of N new runs; *peak RSS* is the measuring process's high-water mark at its "
    "end (`VmHWM`; `ru_maxrss` on Linux includes the parent's size and is only recorded in the "
    "JSON). *% of smallest* compares with the first size (10^2, or 10 in quick mode).",
    "**http, serve --processes K**: the same two loads against `treeflow serve --processes K "
    "--workers 1` (K `treeflow worker` processes of one thread beside a server that only "
    "accepts), each on a fresh database; *% of its no-op* divides by that server's own no-op.",
    "**processes**: N linear10 runs accepted (untimed) but not yet due; K `treeflow worker` "
    "processes of one worker thread each started and waited for; then one UPDATE makes the "
    "backlog due, and runs/s = N / (that commit to the last close, from the rows). It shows "
    "how far more engine processes on one database go on this machine: on a machine with "
    "few cores, processes beyond the core count share them.",
    "**Targets** are the issues', defined on SQLite, each evaluated on the figure it names "
    "(the throughput targets of the first issue on phased processing; those of the hot path on "
    "pipelined and one at a time); they are reported, not enforced: benchmarks are not tests, "
    "nothing asserts a timing.",
    "**Beside a target**: a *bound* is the figure of the same invocation and database that the "
    "target's figure is not expected to pass on this machine. *Pipelined* does the work of "
    "*phased accept + process* (the same runs, accepted then processed by one thread in "
    "batches) with the submitter and the worker sharing one interpreter lock, which they "
    "overlap only in the database's own I/O (it releases the lock). *One at a time* does that "
    "work too, with a step commit for each run instead of one for a batch. *Pipelined "
    "latency* is the backlog of a submitter that outpaces the worker; the paced p50 is the "
    "same worker's latency when it is not overloaded. *http*: the worker in the server "
    "processes every run the server accepts, under the same lock, so sustained createStart "
    "cannot pass linear10's phased processing rate, shown as a share of the no-op (when "
    "linear10 was measured in the same invocation).",
)


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:,.1f} ms"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _percent(value: float) -> str:
    return f"{value:.0f}%"


FORMATS: dict[str, Callable[[float], str]] = {"/s": _rate, "ms": _ms, "%": _percent}


def _lookup(entries: Sequence[Mapping[str, Any]] | None, row: Row) -> float | None:
    for entry in entries or ():
        if entry["treeflow"] == row.treeflow and entry.get("peer", row.peer) == row.peer:
            return float(entry["value"])
    return None


def _cell(value: Any, unit: str) -> str:
    return "—" if value is None else FORMATS[unit](float(value))


def _comparison(
    workload: Workload, by_database: Mapping[str, Any], labels: Mapping[str, str]
) -> list[str]:
    names = [name for name in labels if name in by_database]
    header = ["Metric"]
    for name in names:
        header += [f"{labels[name]} treeflow", f"{labels[name]} peer", "ratio"]
    lines = [_line(header), _line(["---"] + ["--:"] * (len(header) - 1))]
    for row in workload.rows:
        cells = [row.label]
        floor_cells = [f"{row.label}, % of floor"]
        for name in names:
            figures = by_database[name]
            ratio = _lookup(figures.get("ratios"), row)
            cells += [
                _cell(figure(figures, row.treeflow), row.unit),
                _cell(figure(figures, row.peer), row.unit) if row.peer else "—",
                _ratio(ratio) if ratio is not None else "—",
            ]
            share = _lookup(figures.get("percent_of_floor"), Row("", row.treeflow))
            floor_cells += [_cell(share, "%"), "—", "—"]
        lines.append(_line(cells))
        if row.of_floor:
            lines.append(_line(floor_cells))
    return lines


def _scaling(by_database: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    names = [name for name in labels if name in by_database]
    sizes = by_database[names[0]]["treeflow"]["sizes"] if names else []
    header = ["Stored runs"]
    for name in names:
        header += [f"{labels[name]} runs/s", "% of smallest", "peak RSS MiB"]
    lines = [_line(header), _line(["--:"] * len(header))]
    for index, size in enumerate(sizes):
        cells = [f"{size['stored']:,}"]
        for name in names:
            row = by_database[name]["treeflow"]["sizes"][index]
            cells += [
                _rate(row["runs_per_s"]),
                _percent(row["percent_of_smallest"]),
                f"{row['peak_rss_kib'] / 1024:.1f}",
            ]
        lines.append(_line(cells))
    return lines


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


ByWorkload = Mapping[str, Mapping[str, Any]]  # one database's figures, by workload


@dataclass(frozen=True)
class Goal:
    """A target from the issue, evaluated on one database's figures.

    ``reference``, where there is one, gives the figure of the same invocation that explains
    the target's on this machine (what it is not expected to pass, or what it is when the
    cause of a gap is taken away), named, from that database's figures of every workload
    measured; ``None`` when the workload it needs was not run. It is shown whether the target
    is met or not, so that a gap is read beside what limits it rather than as a bare number.
    """

    label: str
    workload: str
    evaluate: Callable[[Mapping[str, Any]], tuple[str, bool] | None]
    reference: Callable[[ByWorkload], str | None] | None = None


def _ratio_goal(treeflow: str, peer: str, at_least: float) -> Callable[..., Any]:
    def evaluate(figures: Mapping[str, Any]) -> tuple[str, bool] | None:
        value = _lookup(figures.get("ratios"), Row("", treeflow, peer))
        return None if value is None else (_ratio(value), value >= at_least)

    return evaluate


def _floor_goal(figures: Mapping[str, Any]) -> tuple[str, bool] | None:
    value = _lookup(figures.get("percent_of_floor"), Row("", "treeflow.phased.runs_per_s"))
    return None if value is None else (_percent(value), value >= 25)


def _scaling_throughput(figures: Mapping[str, Any]) -> tuple[str, bool]:
    largest = figures["treeflow"]["sizes"][-1]
    value = largest["percent_of_smallest"]
    return f"{_percent(value)} at {largest['stored']:,}", value >= 90


def _http_goal(figures: Mapping[str, Any]) -> tuple[str, bool] | None:
    value = figure(figures, "treeflow.create_start_percent_of_noop")
    return None if value is None else (_percent(value), value >= 40)


def _two_processes(figures: Mapping[str, Any]) -> tuple[str, bool] | None:
    """Only where two processes were measured (PostgreSQL): SQLite measures one."""
    value = figure(figures, "treeflow.p2.percent_of_one")
    return None if value is None else (_ratio(value / 100), value >= 160)


def _latency_goal(path: str, at_most: float) -> Callable[..., Any]:
    def evaluate(figures: Mapping[str, Any]) -> tuple[str, bool] | None:
        value = figure(figures, path)
        return None if value is None else (_ms(value), value <= at_most)

    return evaluate


def _peer_ratio(name: str, treeflow: str) -> Callable[[ByWorkload], str | None]:
    """``name`` and its linear10 ratio to the peer (``treeflow`` over ``peer.runs_per_s``)."""

    def reference(by_workload: ByWorkload) -> str | None:
        figures = by_workload.get("linear10") or {}
        value = _lookup(figures.get("ratios"), Row("", treeflow, "peer.runs_per_s"))
        return None if value is None else f"{name} {_ratio(value)}"

    return reference


def _paced_latency(by_workload: ByWorkload) -> str | None:
    value = figure(by_workload.get("linear10") or {}, "treeflow.paced.latency_p50_ms")
    return None if value is None else f"the worker not overloaded, paced: {_ms(value)}"


def _processing_share_of_noop(by_workload: ByWorkload) -> str | None:
    """The worker in the server processes every run the server accepts, under the same
    interpreter lock: createStart's sustained rate cannot pass what one thread processes with
    the whole lock (linear10's phased processing), here as a share of the no-op."""
    processing = figure(by_workload.get("linear10") or {}, "treeflow.phased.runs_per_s")
    noop = figure(by_workload.get("http") or {}, "treeflow.noop_requests_per_s")
    if processing is None or not noop:
        return None
    return f"bound: phased processing alone {_percent(100 * processing / noop)} of the no-op"


def _scaling_memory(figures: Mapping[str, Any]) -> tuple[str, bool]:
    sizes = figures["treeflow"]["sizes"]
    first, last = sizes[0]["peak_rss_kib"], sizes[-1]["peak_rss_kib"]
    text = f"{first / 1024:.1f} → {last / 1024:.1f} MiB"
    return text, last <= first * 1.10


GOALS = (
    Goal(
        "linear10 runs/s (phased processing) ≥ 5x peer",
        "linear10",
        _ratio_goal("treeflow.phased.runs_per_s", "peer.runs_per_s", 5),
    ),
    Goal("linear10 runs/s (phased) ≥ 25% of the floor", "linear10", _floor_goal),
    Goal(
        "defer-resume starts/s (phased processing) ≥ 5x peer",
        "defer-resume",
        _ratio_goal("treeflow.phased.start_processing_per_s", "peer.starts_per_s", 5),
    ),
    Goal(
        "defer-resume completes/s (phased processing) ≥ 5x peer",
        "defer-resume",
        _ratio_goal("treeflow.phased.complete_processing_per_s", "peer.completes_per_s", 5),
    ),
    Goal(
        "fanout-join runs/s (phased processing) ≥ 5x peer",
        "fanout-join",
        _ratio_goal("treeflow.phased.runs_per_s", "peer.runs_per_s", 5),
    ),
    Goal(
        "scaling: runs/s at the largest size ≥ 90% of the smallest", "scaling", _scaling_throughput
    ),
    Goal("scaling: peak RSS does not grow (≤ +10%)", "scaling", _scaling_memory),
    # The HTTP side of issue 18: the worker in the server's process, and worker processes.
    Goal(
        "http: createStart ≥ 40% of the no-op endpoint's requests/s",
        "http",
        _http_goal,
        _processing_share_of_noop,
    ),
    Goal("processes: 2 worker processes ≥ 1.6x one (PostgreSQL)", "processes", _two_processes),
    # Issue 18, engine side: the hot path when work is not phased.
    Goal(
        "linear10 runs/s, pipelined end to end (1 worker) ≥ 5x peer",
        "linear10",
        _ratio_goal("treeflow.pipelined.end_to_end_runs_per_s", "peer.runs_per_s", 5),
        _peer_ratio("bound: phased accept + process", "treeflow.phased.end_to_end_runs_per_s"),
    ),
    Goal(
        "linear10 latency p50, accepted to closed (pipelined) ≤ 2 ms",
        "linear10",
        _latency_goal("treeflow.pipelined.latency_p50_ms", 2.0),
        _paced_latency,
    ),
    Goal(
        "linear10 runs/s, one at a time (createStart + run_until_idle) ≥ 4x peer",
        "linear10",
        _ratio_goal("treeflow.one_at_a_time.runs_per_s", "peer.runs_per_s", 4),
        _peer_ratio(
            "the same work batched: phased accept + process",
            "treeflow.phased.end_to_end_runs_per_s",
        ),
    ),
)


def _of_database(result: Mapping[str, Any], name: str) -> ByWorkload:
    return {
        workload: by_database[name]
        for workload, by_database in result["workloads"].items()
        if name in by_database
    }


def _goals(result: Mapping[str, Any], labels: Mapping[str, str]) -> list[str]:
    names = list(labels)
    header = ["Target (defined on SQLite)"] + [f"{labels[name]}" for name in names]
    lines = [_line(header), _line(["---"] + [":-:"] * len(names))]
    for goal in GOALS:
        by_database = result["workloads"].get(goal.workload)
        if not by_database:
            continue
        cells = [goal.label]
        for name in names:
            outcome = goal.evaluate(by_database[name]) if name in by_database else None
            if outcome is None:
                cells.append("—")
                continue
            cell = f"{outcome[0]} {'met' if outcome[1] else 'NOT met'}"
            reference = goal.reference(_of_database(result, name)) if goal.reference else None
            cells.append(cell if reference is None else f"{cell} ({reference})")
        lines.append(_line(cells))
    return lines


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def _setup(result: Mapping[str, Any]) -> list[str]:
    machine, settings = result["machine"], result["settings"]
    postgres = machine.get("postgresql_server") or "not measured"
    if machine.get("postgresql_synchronous_commit"):
        postgres += f" (synchronous_commit={machine['postgresql_synchronous_commit']})"
    return [
        f"{machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, PostgreSQL {postgres}, treeflow {machine['treeflow']}, "
        f"SpiffWorkflow {machine['spiffworkflow']}.",
        "",
        f"N = {settings['runs']:,} runs a workload (scaling: {settings['scaling_runs']:,} "
        f"measured runs at {', '.join(f'{s:,}' for s in settings['scaling_sizes'])} stored); "
        f"batch size {settings['batch_size']}; run in {_duration(result['seconds'])} "
        f"with `{machine['command']}`.",
    ]


def markdown(result: Mapping[str, Any]) -> str:
    """The whole report for a JSON result."""
    labels = {entry["name"]: entry["label"] for entry in result["databases"]}
    lines = [f"# treeflow benchmarks, {result['started_at']}", "", *_setup(result)]
    for note in result.get("remarks", ()):
        lines += ["", f"*{note}*"]
    for name, by_database in result["workloads"].items():
        workload = WORKLOADS[name]
        lines += ["", f"## {name}: {workload.summary}", ""]
        if workload.table == "scaling":
            lines += _scaling(by_database, labels)
        else:
            lines += _comparison(workload, by_database, labels)
    lines += ["", "## Targets", "", *_goals(result, labels), "", "## Notes", ""]
    lines += [f"- {note}" for note in NOTES]
    return "\n".join(lines) + "\n"


__all__ = ["GOALS", "NOTES", "markdown"]
