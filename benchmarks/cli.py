"""The benchmark command: ``python -m benchmarks`` and ``treeflow bench`` (the same arguments).

It runs the chosen workloads on SQLite and, given a URL, PostgreSQL; for each it measures
treeflow, the peer (SpiffWorkflow) and, for linear10, the raw-driver floor, in this one
invocation, so every ratio compares figures from the same machine and moment. It writes
``bench-<UTC timestamp>.json`` (the setup and every figure) and ``.md`` (the tables, targets
and definitions) to ``--out``, optionally a ``.png`` chart, and prints the Markdown. Progress
goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import machine, report, scaling
from benchmarks.databases import PostgresTarget, SqliteTarget, Target
from benchmarks.measure import BATCH_SIZE, BenchmarkError
from benchmarks.progress import Board
from benchmarks.registry import DEFAULT, WORKLOADS, derive
from benchmarks.suite import Context

DEFAULT_RUNS = 2000
DEFAULT_SCALING_RUNS = 1000
QUICK_RUNS = 20
DEFAULT_OUT = Path("benchmarks") / "results"
POSTGRES_VARIABLES = ("TREEFLOW_BENCH_POSTGRES_URL", "TREEFLOW_TEST_POSTGRES_URL")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    workloads = "; ".join(
        f"{w.name}: {w.summary}" + (f" (not available: {w.unavailable})" if w.unavailable else "")
        for w in WORKLOADS.values()
    )
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure treeflow against its peer (SpiffWorkflow) and a raw-driver floor.",
        epilog=f"Workloads: {workloads}.",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=list(WORKLOADS),
        metavar="NAME",
        help=f"a workload to run (repeatable; default: {', '.join(DEFAULT)})",
    )
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help=f"runs per workload (default {DEFAULT_RUNS}; scaling {DEFAULT_SCALING_RUNS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: N={QUICK_RUNS}, scaling sizes {scaling.QUICK_SIZES}",
    )
    databases = parser.add_mutually_exclusive_group()
    databases.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    databases.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="PostgreSQL SQLAlchemy URL (default: $TREEFLOW_BENCH_POSTGRES_URL, then "
        "$TREEFLOW_TEST_POSTGRES_URL); each measurement runs in a schema of its own",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"result folder (default {DEFAULT_OUT}/)",
    )
    parser.add_argument("--plot", action="store_true", help="also write a PNG chart")
    parser.add_argument("--no-peer", action="store_true", help="skip the peer (SpiffWorkflow)")
    return parser


def _postgres_url(args: argparse.Namespace) -> str | None:
    if args.sqlite_only:
        return None
    if args.postgres:
        return str(args.postgres)
    for variable in POSTGRES_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return None


def _targets(
    args: argparse.Namespace, scratch: Path, remarks: list[str]
) -> tuple[list[Target], dict[str, str] | None]:
    """The databases to measure on, and the PostgreSQL server's settings if one is used."""
    targets: list[Target] = [] if args.postgres_only else [SqliteTarget(scratch)]
    url = _postgres_url(args)
    if url is None:
        if args.postgres_only:
            raise BenchmarkError(
                "--postgres-only needs a PostgreSQL URL: --postgres URL or "
                + " / ".join(f"${v}" for v in POSTGRES_VARIABLES)
            )
        if not args.sqlite_only:
            remarks.append(
                "PostgreSQL not measured: no URL given (--postgres, "
                + ", ".join(POSTGRES_VARIABLES)
                + "); SQLite only."
            )
        return targets, None
    postgres = PostgresTarget(url)
    try:
        settings = postgres.server_settings()
    except sa.exc.SQLAlchemyError as exc:
        raise BenchmarkError(f"PostgreSQL at {url!r} is unreachable: {exc}") from exc
    return [*targets, postgres], settings


def _context(args: argparse.Namespace, board: Board) -> Context:
    runs = QUICK_RUNS if args.quick else (args.runs or DEFAULT_RUNS)
    scaling_runs = QUICK_RUNS if args.quick else (args.runs or DEFAULT_SCALING_RUNS)
    return Context(
        runs=runs,
        scaling_runs=scaling_runs,
        scaling_sizes=scaling.QUICK_SIZES if args.quick else scaling.SIZES,
        peer=not args.no_peer,
        board=board,
    )


def _write(result: dict[str, Any], out: Path, plot: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"bench-{result['stamp']}"
    written = [stem.with_suffix(".json"), stem.with_suffix(".md")]
    written[0].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    written[1].write_text(report.markdown(result), encoding="utf-8")
    if plot:
        from benchmarks.plot import write_chart

        written.append(stem.with_suffix(".png"))
        write_chart(result, written[-1])
    return written


def run(args: argparse.Namespace, command: list[str]) -> dict[str, Any]:
    """Measure what ``args`` ask for; the JSON result."""
    names = list(dict.fromkeys(args.workload or DEFAULT))
    began, started_at = time.perf_counter(), datetime.now(UTC)
    remarks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-") as folder:
        targets, postgres_settings = _targets(args, Path(folder), remarks)
        result: dict[str, Any] = {
            "started_at": started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "stamp": started_at.strftime("%Y%m%dT%H%M%SZ"),
            "machine": machine.describe(command, postgres_settings),
            "databases": [{"name": t.name, "label": t.label} for t in targets],
            "remarks": remarks,
        }
        with Board() as board:
            context = _context(args, board)
            result["settings"] = {
                "workloads": names,
                "runs": context.runs,
                "scaling_runs": context.scaling_runs,
                "scaling_sizes": list(context.scaling_sizes),
                "quick": args.quick,
                "peer": context.peer,
                "batch_size": BATCH_SIZE,
                "workers": 1,
                "sqlite_folder": folder,
            }
            if not context.peer:
                remarks.append("Peer not measured (--no-peer): no ratios.")
            result["workloads"] = {}
            for name in names:
                workload = WORKLOADS[name]
                measure = workload.measure
                if measure is None:  # refused by main(); kept for callers of run()
                    raise BenchmarkError(
                        f"workload {name!r} is not available: {workload.unavailable}"
                    )
                result["workloads"][name] = {
                    target.name: derive(workload, measure(context, target)) for target in targets
                }
    result["seconds"] = time.perf_counter() - began
    return result


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv``, measure, write the results, print the Markdown; the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    args = parser.parse_args(arguments)
    for name in args.workload or ():
        if WORKLOADS[name].unavailable:
            parser.error(f"workload {name!r} is not available: {WORKLOADS[name].unavailable}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        if args.plot:
            from benchmarks.plot import require

            require()  # fail before measuring, not after
        command = (prog or "python -m benchmarks").split()
        result = run(args, [*command, *arguments])
        written = _write(result, args.out, args.plot)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(report.markdown(result))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


__all__ = ["build_parser", "main", "run"]
