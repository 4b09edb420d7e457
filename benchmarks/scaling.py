"""The scaling workload: linear10 throughput and peak memory with many runs already stored.

A queue that slows down, or a process that grows, as history accumulates is what the other
workloads (fresh, empty databases) cannot show. For each size S (10², 10³, 10⁴, 10⁵; 10 and
10² in quick mode) the parent starts a **fresh subprocess** on a fresh database, so that one
size's memory cannot leak into the next figure:

    python -m benchmarks.scaling --stored S --runs N --database URL

That child has S completed linear10 runs stored (each run, its 12 task rows and its closed
Root trigger, as treeflow leaves them) by a grandchild, ``--prefill``, with chunked
``executemany`` inserts, untimed, so that loading the history cannot raise the child's own
peak memory; on PostgreSQL the prefill ends with ``ANALYZE``, as autovacuum would have run by
the time such a history existed. The child then measures phased linear10 processing of N new
runs (see ``workloads``) and prints one JSON object with ``peak_rss_kib``, its peak resident
set at the end. That is ``VmHWM`` on Linux: ``ru_maxrss`` survives ``exec`` there, so a child
started by ``subprocess`` reports at least its parent's size (it is recorded too, as
``ru_maxrss_kib``). Lines ``progress DONE`` on a child's standard error feed the progress bar.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, cast

import sqlalchemy as sa

from benchmarks import children, workloads
from benchmarks.databases import Target
from benchmarks.measure import LINEAR10, BenchmarkError, Progress, open_engine
from engine.store.database import Database
from engine.store.tables import runs, tasks, tree_versions, triggers

SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (10, 100)
CHUNK = 1_000  # runs per prefill transaction: bounded memory whatever S is
PREFILL_EPOCH = 1_600_000_000.0  # history is older than the measured runs, as in real life


def _history(version_id: int, first: int, last: int) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows of completed linear10 runs ``first`` to ``last`` (ids), ``CHUNK`` runs at a time."""
    for start in range(first, last + 1, CHUNK):
        chunk: dict[str, list[dict[str, Any]]] = {"runs": [], "tasks": [], "triggers": []}
        for run_id in range(start, min(start + CHUNK, last + 1)):
            now = PREFILL_EPOCH + run_id
            source_id = f"stored-{run_id}"
            chunk["runs"].append(
                {
                    "id": run_id,
                    "tree_version_id": version_id,
                    "source_name": "Benchmarks",
                    "source_group": "Throughput",
                    "tree_name": LINEAR10.tree_name,
                    "source_id": source_id,
                    "status": "Completed",
                    "inputs": {},
                    "values": {},
                    "source_data": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            chunk["triggers"].append(
                {
                    "id": run_id,
                    "action": "Root",
                    "status": "Closed",
                    "run_id": run_id,
                    "due_at": now,
                    "attempts": 1,
                    "engine": "prefill",
                    "created_at": now,
                    "closed_at": now,
                }
            )
            chunk["tasks"].extend(_task_rows(run_id, source_id, now))
        yield chunk


def _task_rows(run_id: int, source_id: str, now: float) -> list[dict[str, Any]]:
    nodes: list[tuple[str, str, dict[str, str]]] = [("Start", "system_start_v1", {})]
    output = source_id
    for step in range(1, 11):
        output = f"{output}-{step}"
        nodes.append((f"Step {step}", "utilities_echo_v1", {"output": output}))
    nodes.append(("End", "system_noop_v1", {}))
    return [
        {
            "id": f"{int(now * 1000):012x}{index:06x}{run_id:014x}",
            "run_id": run_id,
            "node": node,
            "handler_id": handler,
            "loop_index": "/",
            "status": "Closed",
            "results": results,
            "arrived": [],
            "completing": False,
            "created_at": now,
            "updated_at": now,
        }
        for index, (node, handler, results) in enumerate(nodes)
    ]


def prefill(url: str, stored: int, progress: Progress) -> None:
    """Store ``stored`` completed linear10 runs (ids 1..stored) on the tree's current version."""
    with open_engine(url, LINEAR10) as engine:  # creates the schema and the version
        database: Database = engine.database
        with database.read() as connection:
            version_id = connection.execute(sa.select(sa.func.max(tree_versions.c.id))).scalar()
        if version_id is None:
            raise RuntimeError("the linear10 tree was not stored")
        for chunk in _history(int(version_id), 1, stored):
            with database.write() as connection:
                connection.execute(runs.insert(), chunk["runs"])
                connection.execute(triggers.insert(), chunk["triggers"])
                connection.execute(tasks.insert(), chunk["tasks"])
            progress(int(chunk["runs"][-1]["id"]))
        if database.is_postgresql:
            with database.write() as connection:
                for table in ("runs", "triggers"):  # ids were given: move the sequences past them
                    connection.execute(
                        sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :last)"),
                        {"last": stored},
                    )
            with database.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    sa.text("ANALYZE")
                )


def child(stored: int, runs_count: int, url: str) -> dict[str, float]:
    """What the subprocess does: prefill (in a process of its own), measure, report peak RSS."""

    def report(done: int) -> None:
        print(f"progress {done}", file=sys.stderr, flush=True)

    began = time.perf_counter()
    # Prefilling allocates per chunk; in its own process it cannot raise this one's peak RSS,
    # which must show what the engine needs, not what loading the history needed.
    _run([*_COMMAND, "--prefill", "--stored", str(stored), "--database", url], stored, report)
    prefilled = time.perf_counter()
    figures = workloads.phased(url, LINEAR10, runs_count, lambda done: report(stored + done))
    return {
        "stored": stored,
        **figures,
        "prefill_seconds": prefilled - began,
        "peak_rss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB: ``VmHWM`` on Linux, else ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives ``exec``: a child started with ``vfork`` (as ``subprocess``
    does) reports at least its parent's resident set, whatever it uses itself. ``VmHWM`` is the
    high-water mark of this program's own address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


_COMMAND = (sys.executable, "-m", "benchmarks.scaling")


def _run(command: Sequence[str], stored: int, progress: Progress) -> str:
    """Run a child, forwarding its ``progress N`` lines; its standard output, or raise."""
    other: list[str] = []
    process = children.spawn(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    try:
        # A child writes at most one short JSON line to stdout, at the end: reading stderr
        # first cannot deadlock on a full stdout pipe.
        for line in cast(IO[str], process.stderr):
            if line.startswith("progress "):
                progress(int(line.split()[1]))
            else:
                other.append(line)
        output = cast(IO[str], process.stdout).read()
        process.wait()
    finally:
        children.stop([process])  # only if this was interrupted: it has exited otherwise
    if process.returncode != 0:
        tail = "".join(other[-20:])
        raise BenchmarkError(f"scaling child for {stored} stored runs failed:\n{tail}")
    return output


def _shifted(progress: Progress, offset: int, done: int) -> None:
    """Report ``done`` of one size's steps as steps of the whole measurement."""
    progress(offset + done)


def _measure_size(url: str, stored: int, runs_count: int, progress: Progress) -> dict[str, Any]:
    command = [*_COMMAND, "--stored", str(stored), "--runs", str(runs_count), "--database", url]
    output = _run(command, stored, progress)
    return dict(json.loads(output.strip().splitlines()[-1]))


def measure(
    target: Target, sizes: Sequence[int], runs_count: int, progress: Progress
) -> dict[str, Any]:
    """One fresh database and one subprocess per size; ``progress`` counts sum(S + 2N)."""
    results: list[dict[str, Any]] = []
    done = 0
    for stored in sizes:
        offset = done
        with target.fresh(f"scaling-{stored}") as url:
            results.append(
                _measure_size(
                    url, stored, runs_count, functools.partial(_shifted, progress, offset)
                )
            )
        done += stored + 2 * runs_count
        progress(done)
    base = results[0]["runs_per_s"]
    for row in results:
        row["percent_of_smallest"] = 100 * row["runs_per_s"] / base
    return {"runs": runs_count, "sizes": results}


def progress_total(sizes: Sequence[int], runs_count: int) -> int:
    return sum(stored + 2 * runs_count for stored in sizes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One scaling measurement (a child process).")
    parser.add_argument("--stored", type=int, required=True, help="runs stored beforehand")
    parser.add_argument("--runs", type=int, default=0, help="runs measured")
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of an empty database")
    parser.add_argument("--prefill", action="store_true", help="only store the runs, then exit")
    args = parser.parse_args(argv)
    if args.prefill:
        prefill(args.database, args.stored, lambda done: print(f"progress {done}", file=sys.stderr))
    else:
        print(json.dumps(child(args.stored, args.runs, args.database)))


if __name__ == "__main__":
    main()
