"""``treeflow worker``: an engine process that only processes triggers (no HTTP).

Any number of them, on any number of machines, share one PostgreSQL database with the
``treeflow serve`` processes that accept the triggers (see ``engine.store.queue``). SIGTERM or
SIGINT stops one gracefully, with exit status 0: it claims nothing more, finishes the run in
hand, hands the rest of its claims back so another worker takes them at once, and closes its
connections. A worker that is killed outright loses nothing either: its leases run out and the
others take its triggers up. A database that is away when a worker starts is retried for half
a minute before it gives up with status 1; once running, it retries for as long as an outage
lasts. Settings come from flags or ``TREEFLOW_*`` variables, flags winning.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from types import FrameType
from typing import Any, TypeVar

import click

from engine.cli.heap import freeze_start_up_heap
from engine.cli.purge import retention_option
from engine.cli.support import engine_options, in_use, made_engine, trees_path
from engine.engine import DEFAULT_BUDGETS, RUN_CACHE_BYTES, RUN_CACHE_RUNS, Engine
from engine.tree.selection import shown

LOG_LEVELS = ("debug", "info", "warning", "error")
STARTUP_RETRY_SECONDS = 30.0
F = TypeVar("F", bound=Callable[..., Any])


def processing_options(function: F) -> F:
    """The options of engine processing that ``worker`` and ``serve`` share."""
    function = click.option(
        "--max-attempts",
        envvar="TREEFLOW_MAX_ATTEMPTS",
        show_envvar=True,
        default=5,
        show_default=True,
        type=click.IntRange(1),
        help="Claims of a trigger that may end without closing it before it fails.",
    )(function)
    function = click.option(
        "--selection",
        envvar="TREEFLOW_SELECTION",
        show_envvar=True,
        multiple=True,
        help="Process only trees with this selection label (repeatable; 'default' names trees "
        "without one). Without it, every tree. TREEFLOW_SELECTION takes labels separated by "
        "spaces.",
    )(function)
    function = click.option(
        "--poll-interval",
        envvar="TREEFLOW_POLL_INTERVAL",
        show_envvar=True,
        default=0.5,
        show_default=True,
        type=click.FloatRange(0.01),
        help="Seconds an idle worker thread sleeps between claims (Kinetic's Sleep Delay).",
    )(function)
    function = click.option(
        "--lease-seconds",
        envvar="TREEFLOW_LEASE_SECONDS",
        show_envvar=True,
        default=30.0,
        show_default=True,
        type=click.FloatRange(0.3),
        help="How long a claim is held without renewal: how soon the triggers of a dead worker "
        "are taken up again (leases are renewed every third of it while work is in hand).",
    )(function)
    function = click.option(
        "--batch-size",
        envvar="TREEFLOW_BATCH_SIZE",
        show_envvar=True,
        default=64,
        show_default=True,
        type=click.IntRange(1, 10_000),
        help="Triggers one claim takes and commits together.",
    )(function)
    function = click.option(
        "--strict-trees/--no-strict-trees",
        envvar="TREEFLOW_STRICT_TREES",
        show_envvar=True,
        default=False,
        show_default=True,
        help="Refuse to start when a tree file does not validate. Without it, such a file is "
        "logged and left out, and every other tree is served.",
    )(function)
    function = click.option(
        "--strict-checks/--no-strict-checks",
        envvar="TREEFLOW_STRICT_CHECKS",
        default=False,
        show_default=True,
        help="Refuse what Kinetic Task accepts (unreachable nodes, a routine without a return "
        "node, ...) as treeflow validate --strict does. Without it, it is logged as a warning.",
    )(function)
    return function


# Each budget and bound of kept states: option, variable, default, least value, help.
_LIMITS = (
    (
        "--max-tasks-per-run",
        "TREEFLOW_MAX_TASKS_PER_RUN",
        DEFAULT_BUDGETS.tasks_per_run,
        1,
        "Tasks one run may have; a node beyond fails with a Budget Error.",
    ),
    (
        "--max-child-runs",
        "TREEFLOW_MAX_CHILD_RUNS",
        DEFAULT_BUDGETS.child_runs,
        1,
        "Routine runs one top-level run's calls may start, however deep; a call beyond fails "
        "with a Budget Error.",
    ),
    (
        "--max-step-rows",
        "TREEFLOW_MAX_STEP_ROWS",
        DEFAULT_BUDGETS.step_rows,
        1,
        "Rows one trigger's step may add (and one transaction holds); a node beyond fails with "
        "a Budget Error.",
    ),
    (
        "--run-cache-runs",
        "TREEFLOW_RUN_CACHE_RUNS",
        RUN_CACHE_RUNS,
        0,
        "Run states kept between a run's batches (0: none).",
    ),
    (
        "--run-cache-mib",
        "TREEFLOW_RUN_CACHE_MIB",
        RUN_CACHE_BYTES // 2**20,
        0,
        "MiB the kept run states may take together, as estimated.",
    ),
)


def limit_options(function: F) -> F:
    """The budgets runs are held to and the bounds of kept run states (README: Budgets)."""
    for option, variable, default, least, help_text in reversed(_LIMITS):
        function = click.option(
            option,
            envvar=variable,
            show_envvar=True,
            default=default,
            show_default=True,
            type=click.IntRange(least),
            help=help_text,
        )(function)
    return function


def processing_settings(
    batch_size: int,
    lease_seconds: float,
    poll_interval: float,
    selection: tuple[str, ...],
    max_attempts: int,
    strict_trees: bool = False,
    strict_checks: bool = False,
    **limits: int,
) -> dict[str, Any]:
    """Those options, and ``limit_options``' when given, as ``Engine`` keyword arguments."""
    settings = {
        "strict_trees": strict_trees,
        "strict_checks": strict_checks,
        "batch_size": batch_size,
        "lease_seconds": lease_seconds,
        "poll_interval": poll_interval,
        "selection": selection or None,
        "max_attempts": max_attempts,
    }
    if "run_cache_mib" in limits:
        limits["run_cache_bytes"] = limits.pop("run_cache_mib") * 2**20
    return {**settings, **limits}


@click.command()
@engine_options
@click.option(
    "--workers",
    envvar="TREEFLOW_WORKERS",
    show_envvar=True,
    default=4,
    show_default=True,
    type=click.IntRange(1),
    help="Worker threads (Kinetic's Max Threads). Handlers that wait on other systems want "
    "more; CPU-bound trees gain little above one per core (one GIL per process).",
)
@processing_options
@limit_options
@retention_option
@click.option(
    "--pool-size",
    envvar="TREEFLOW_POOL_SIZE",
    show_envvar=True,
    type=click.IntRange(1),
    help="Database connections kept open (PostgreSQL; default: workers + 2).",
)
@click.option(
    "--shutdown-seconds",
    envvar="TREEFLOW_SHUTDOWN_SECONDS",
    show_envvar=True,
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM, how long to wait for the runs in hand to finish.",
)
@click.option(
    "--scheduler/--no-scheduler",
    envvar="TREEFLOW_SCHEDULER",
    show_envvar=True,
    default=True,
    show_default=True,
    help="Take part in running the scheduler (on PostgreSQL the holder of its lock runs it). "
    "treeflow serve --processes starts its workers without it: the server runs it.",
)
@click.option(
    "--log-level",
    envvar="TREEFLOW_LOG_LEVEL",
    show_envvar=True,
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS),
)
def worker(
    database: str,
    trees: str,
    workers: int,
    batch_size: int,
    lease_seconds: float,
    poll_interval: float,
    pool_size: int | None,
    selection: tuple[str, ...],
    max_attempts: int,
    strict_trees: bool,
    strict_checks: bool,
    shutdown_seconds: float,
    scheduler: bool,
    log_level: str,
    **limits: int,
) -> None:
    """Process triggers on engine worker threads until SIGTERM or SIGINT (no HTTP server)."""
    logger = logging.getLogger("treeflow")
    logger.setLevel(log_level.upper())
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    stopping = threading.Event()
    received: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stopping.set()

    options = {
        **processing_settings(
            batch_size,
            lease_seconds,
            poll_interval,
            selection,
            max_attempts,
            strict_trees,
            strict_checks,
            **limits,
        ),
        "pool_size": pool_size or workers + 2,
        "logger": logger,
    }
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as stack:
            opened = made_engine(
                lambda: Engine.when_reachable(
                    database,
                    trees=trees_path(trees),
                    within=STARTUP_RETRY_SECONDS,
                    stopping=stopping,
                    **options,
                )
            )
            if opened is None:  # stopped while the database was away
                return
            engine = stack.enter_context(in_use(opened))
            freeze_start_up_heap()
            engine.start(workers, schedules=scheduler)
            logger.info(
                "worker %s started: %d threads, selection %s, batch %d, lease %gs, poll %gs,"
                " %d trees, database %s",
                engine.name,
                workers,
                shown(engine.selection),
                batch_size,
                lease_seconds,
                poll_interval,
                len(engine.trees),
                engine.database_url,
            )
            while not stopping.wait(1.0):
                pass
            logger.info(
                "worker %s: %s received, stopping", engine.name, signal.Signals(received[0]).name
            )
            engine.stop(shutdown_seconds)
            logger.info("worker %s stopped", engine.name)
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


__all__ = ["limit_options", "processing_options", "processing_settings", "worker"]
