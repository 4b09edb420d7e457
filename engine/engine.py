"""The embedding API: one :class:`Engine` per process, shared by the host's threads.

``create_start`` and ``create_deferred`` check everything they can at once (the tree exists and
is active, the results XML is safe, the token names a task still deferred) and write nothing
when a check fails; what they accept is a trigger row, durable once they return. Triggers are
processed by ``run_until_idle`` on the caller's thread (tests, scripts) or by worker threads
after ``start()``; both go through the same :class:`~engine.processing.runner.Runner`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from engine import ids, inputs
from engine.errors import BadAction, Problem, TreeError, TreeflowError
from engine.facade.health import HealthReads
from engine.facade.inspection import Inspection
from engine.facade.kianda import Kianda
from engine.facade.run_control import RUN_AGAIN_VERSIONS, RunControl
from engine.facade.trees import TreeReads
from engine.handlers.handler import Handler, ScheduleReceipt, TriggerReceipt
from engine.handlers.registry import HandlerRegistry
from engine.json_input import check_json
from engine.kianda.instances import InstanceBook
from engine.kianda.processes import ProcessShelf
from engine.processing.hand_off import HandOff
from engine.processing.intake import StartRequest, TriggerIntake
from engine.processing.observers import CloseObserver
from engine.processing.outage import Outage, is_database_error
from engine.processing.run_cache import DEFAULT_BYTES, DEFAULT_RUNS, RunCache
from engine.processing.runner import Runner
from engine.processing.workers import WorkerPool
from engine.records import StartCall, TreeKey, Trigger
from engine.results_xml import MAX_RESULTS_BYTES, parse_results
from engine.run.budgets import Budgets
from engine.schedule.firing import Firer
from engine.schedule.retention import RetentionPolicy
from engine.schedule.scheduler import Scheduler
from engine.schedule.schedules import Schedules
from engine.statuses import TriggerAction
from engine.store import schema
from engine.store.database import Database
from engine.store.users import UserBook
from engine.tree.catalog import TreeCatalog, TreeSource
from engine.tree.expressions import Expressions
from engine.tree.files import read_tree_files
from engine.tree.model import Tree
from engine.tree.selection import worker_selection

DEFERRED_ACTIONS = (TriggerAction.COMPLETE.value, TriggerAction.UPDATE.value)
RUN_CACHE_RUNS, RUN_CACHE_BYTES = DEFAULT_RUNS, DEFAULT_BYTES  # unless the engine is told
DEFAULT_BUDGETS = Budgets()  # what runs are held to unless the engine is told otherwise


class _HandlerGateway:
    """What a node's handler may ask of its engine (``HandlerContext.triggers``): a Complete or
    Update of another deferred task, or a schedule. It answers with receipts, not the engine's
    records, so handlers depend on the plugin API alone."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_deferred(
        self,
        *,
        token: str,
        action: str,
        results: str | None,
        message: str | None,
        idempotency_key: str | None,
    ) -> TriggerReceipt:
        trigger = self._engine.create_deferred(
            token=token,
            action=action,
            results=results,
            message=message,
            idempotency_key=idempotency_key,
        )
        return TriggerReceipt(trigger_id=trigger.id, run_id=trigger.run_id)

    def create_schedule(self, *, creation_key: str, **fields: Any) -> ScheduleReceipt:
        """A schedule made by a tree's node, keyed by its task so that a retry finds it."""
        schedule = self._engine.schedules.create(**fields, creation_key=creation_key)
        return ScheduleReceipt(schedule_id=schedule.id, next_fire_time=schedule.next_fire_time)


class Engine(Inspection, RunControl, Kianda, TreeReads, HealthReads):
    """A treeflow engine over one database.

    ``url`` is a SQLAlchemy URL (``sqlite:///treeflow.db``, ``postgresql+psycopg://...``); without
    one the engine uses a private in-memory SQLite database. ``trees`` is a directory or file of
    YAML trees loaded (and versioned) at construction: a file that does not validate is left out,
    logged and listed in ``tree_problems``, and the others are served (``strict_trees=True`` raises
    TreeError instead, naming every problem of every file). What a loaded file carries that
    Kinetic Task accepts (an unreachable node, a routine without a return: ``engine.tree.leniency``)
    is logged at WARNING and listed in ``tree_warnings``; ``strict_checks=True`` refuses it instead,
    in files and in ``load_tree``. ``plugins`` are extra pluggy plugins
    besides the ``treeflow.nodes`` entry points. ``clock`` returns UNIX seconds and is injectable
    for tests. ``batch_size`` is how many due triggers one claim takes: they are processed in order
    and committed in one transaction (group commit), so a larger batch means fewer commits under
    load and a longer wait before the first of them is visible. ``selection`` dedicates this
    engine's processing to the trees with those labels (``engine.tree.selection``; ``default`` names
    unlabelled trees); without it, it processes all. ``max_attempts`` is how many claims of a
    trigger may end without closing it (a worker killed, a commit lost) before it is closed as
    Failed with a Trigger Error. Scheduled tasks are ``engine.schedules``
    (:class:`~engine.schedule.schedules.Schedules`: create, update, delete, list, run now, history);
    ``start()`` runs their scheduler. ``schedule_poll_seconds`` is how often the process that runs
    the scheduler picks up schedules changed by other processes, and how often the others try to
    take it over.
    ``run_cache_runs`` and ``run_cache_bytes`` bound the run states the engine keeps between the
    batches of a run (``engine.processing.run_cache``): at most that many, together estimated at
    no more than that many bytes (0 keeps none). ``max_tasks_per_run``, ``max_child_runs`` (the
    routine runs started under one top-level run, however deep) and ``max_step_rows`` (the rows
    one trigger's step adds, and one transaction holds) are the budgets runs are held to: a node
    whose work would go past one fails with a Budget Error (``engine.run.budgets``).
    ``wrap_handlers`` replaces each handler by what it returns for it (``treeflow test`` gives
    nodes the results a test case names: ``engine.testing``).
    ``retention`` purges finished runs on a schedule, in the process that runs the scheduler
    (``engine.schedule.retention``; :meth:`purge_runs` is the same on demand).
    ``upgrade`` lets the engine upgrade a database made by an earlier release to its schema
    (``engine.store.schema``); without it such a database is refused with SchemaMismatch naming
    both revisions and ``treeflow db upgrade``. An empty database always gets the schema.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        trees: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        batch_size: int = 64,
        max_results_bytes: int = MAX_RESULTS_BYTES,
        pool_size: int = 10,
        selection: Iterable[str] | None = None,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        schedule_poll_seconds: float = 5.0,
        strict_trees: bool = False,
        strict_checks: bool = False,
        run_cache_runs: int = RUN_CACHE_RUNS,
        run_cache_bytes: int = RUN_CACHE_BYTES,
        max_tasks_per_run: int = DEFAULT_BUDGETS.tasks_per_run,
        max_child_runs: int = DEFAULT_BUDGETS.child_runs,
        max_step_rows: int = DEFAULT_BUDGETS.step_rows,
        wrap_handlers: Callable[[Handler], Handler] | None = None,
        upgrade: bool = False,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger("treeflow")
        self.clock = clock
        self.name = ids.worker_name()
        self.max_results_bytes = max_results_bytes
        self.batch_size = batch_size
        run_cache = RunCache(run_cache_runs, run_cache_bytes)  # checked before anything opens
        budgets = Budgets(max_tasks_per_run, max_child_runs, max_step_rows)
        self.registry = HandlerRegistry(
            plugins, load_entry_points=load_entry_points, wrap=wrap_handlers
        )
        self.expressions = Expressions()
        self.database = Database(url, pool_size=pool_size)
        try:
            schema.prepare(self.database, upgrade=upgrade)
        except BaseException:
            self.database.dispose()
            raise
        self.catalog = TreeCatalog(
            self.database,
            registry=self.registry,
            expressions=self.expressions,
            clock=clock,
            strict=strict_checks,
        )
        self.runner = Runner(
            self.database,
            resolve_tree=self.catalog.for_version,
            gateway=_HandlerGateway(self),
            clock=clock,
            lease_seconds=lease_seconds,
            engine_name=self.name,
            logger=self.logger,
            max_attempts=max_attempts,
            selection=worker_selection(selection),
            routine_lookup=self.catalog.routine,
            run_cache=run_cache,
            budgets=budgets,
        )
        # Starts claimed by their accept (engine.processing.hand_off), a claim's size at most.
        self.hand_off = HandOff(limit=batch_size)
        self.workers = WorkerPool(
            self.runner,
            batch_size=batch_size,
            poll_interval=poll_interval,
            logger=self.logger,
            hand_off=self.hand_off,
        )
        self.intake = TriggerIntake(
            self.database,
            clock=clock,
            wake=self.workers.wake,
            current_version=self.catalog.current,
            hand_off=self.hand_off,
            lease_seconds=lease_seconds,
            serves=self._serves,
        )
        self.instances = InstanceBook(
            self.database, self.catalog, clock=clock, wake=self.workers.wake
        )
        self.processes = ProcessShelf(self.database, self.catalog)
        self.users = UserBook(self.database)  # what engine.auth's rules read and write
        firer = Firer(
            self.database,
            start=self.create_start,
            instances=self.instances,
            clock=clock,
            engine_name=self.name,
            logger=self.logger,
        )
        self.schedules = Schedules(
            self.database,
            catalog=self.catalog,
            instances=self.instances,
            firer=firer,
            scheduler=Scheduler(
                self.database,
                firer,
                poll_seconds=schedule_poll_seconds,
                logger=self.logger,
                duties=() if retention is None else [self._retention_duty(retention)],
            ),
            clock=clock,
            max_results_bytes=max_results_bytes,
        )
        # The problems of the tree files that were refused (none with strict_trees: it raises).
        self.tree_problems: tuple[Problem, ...] = ()
        # What the loaded tree files carry that Kinetic accepts (engine.tree.leniency).
        self.tree_warnings: tuple[Problem, ...] = ()
        if trees is not None:
            paths = [trees] if isinstance(trees, str | os.PathLike) else list(trees)
            try:
                self._load_tree_files(paths, strict=strict_trees, strict_checks=strict_checks)
            except BaseException:
                self.database.dispose()  # the caller gets no engine to close
                raise

    def _load_tree_files(
        self, paths: list[str | os.PathLike[str]], *, strict: bool, strict_checks: bool
    ) -> None:
        """Register every tree file that is valid; report (or, ``strict``, raise for) the rest.

        One bad file must not take the others down: a folder of trees is deployed file by file,
        and a typo in one would otherwise stop every run of every tree. A refused file's tree
        keeps what is stored: its runs go on on their versions, and new runs start on its latest
        stored version, if it has one.
        """
        found = read_tree_files(
            paths,
            registry=self.registry,
            expressions=self.expressions,
            routines=self.catalog.routine_signatures(),
            strict=strict_checks,
        )
        if strict and found.problems:
            raise TreeError(problems=found.problems)
        problems = list(found.problems)
        for tree in found.trees:
            try:
                self.catalog.register(tree)
            except TreeError as exc:  # its names are taken in the database (another tree's)
                if strict:
                    raise
                problems.extend(exc.problems)
        for problem in problems:
            self.logger.error("tree file refused: %s", problem)
        self.tree_problems = tuple(problems)
        loaded = {tree.file for tree in found.trees} - {problem.file for problem in problems}
        self.tree_warnings = tuple(w for w in found.warnings if w.file in loaded)
        for warning in self.tree_warnings:
            self.logger.warning("tree file warning: %s", warning)

    @classmethod
    def when_reachable(
        cls,
        url: str | None = None,
        *,
        within: float,
        stopping: threading.Event | None = None,
        **options: Any,
    ) -> Engine | None:
        """An engine on ``url``, trying again while its database is briefly away.

        A host that starts with its database (restarting, its backend terminated mid-start)
        retries for up to ``within`` seconds, with back-off and one log line per outage
        (``engine.processing.outage``); None if ``stopping`` is set meanwhile. Any other problem
        (a bad URL, a tree that does not load) raises at once. ``options`` are the Engine's.
        """
        logger = options.get("logger") or logging.getLogger("treeflow")
        outage = Outage(logger, "opening the database")
        deadline = time.monotonic() + within
        while True:
            try:
                return cls(url, **options)
            except Exception as exc:
                if not is_database_error(exc) or time.monotonic() > deadline:
                    raise
                if (stopping or threading.Event()).wait(outage.failed(exc)):
                    return None

    @staticmethod
    def schema_state(url: str | None) -> schema.SchemaState:
        """The schema revision of the database at ``url`` and the one this code needs."""
        return schema.on_database(url, schema.state)

    @staticmethod
    def upgrade_schema(url: str | None) -> tuple[schema.SchemaState, schema.SchemaState]:
        """Upgrade the database at ``url`` to this code's schema (``treeflow db upgrade``):
        its state before and after; nothing changes if a revision fails."""
        return schema.on_database(url, schema.upgrade_schema)

    @staticmethod
    def is_database_error(exc: BaseException) -> bool:
        """Whether ``exc``, raised by a call of an engine, means its database could not be
        reached (the connection refused, lost or invalidated), rather than a refusal of the call:
        the call may be made again, with its idempotency key if it writes."""
        return is_database_error(exc)

    # -- trees -----------------------------------------------------------------------------------

    def load_tree(self, source: TreeSource) -> Tree:
        """Register a tree from YAML text, a dict or a file; a changed tree is a new version."""
        return self.catalog.load(source)

    @property
    def trees(self) -> list[Tree]:
        return self.catalog.trees

    def tree_version(self, key: TreeKey) -> int | None:
        """The version number new runs of ``key`` start on, if the tree is known here."""
        return self.catalog.version_of(key)

    # -- the trigger API -------------------------------------------------------------------------

    def create_start(
        self,
        *,
        source_name: str,
        source_group: str,
        tree_name: str,
        source_id: str = "",
        results: str | bytes | None = None,
        message: str | None = None,
        idempotency_key: str | None = None,
        source_data: Mapping[str, Any] | None = None,
        created_by: str | None = None,
        fingerprint: str | None = None,
    ) -> Trigger:
        """Accept a run of a tree: durable when this returns; nothing written if it raises.

        ``created_by`` is the id of the API user starting it, recorded with the run so that
        users can later be limited to the runs they created. A repeat with an
        ``idempotency_key`` returns the first call's trigger (even if the tree has since been
        made inactive). ``fingerprint`` (up to 128 characters) says what a keyed call asks:
        stored with the key, and a later call with the key but another fingerprint raises
        IdempotencyKeyReused and writes nothing.
        """
        return self.intake.start(
            self._start_request(
                source_name,
                source_group,
                tree_name,
                source_id,
                results,
                message,
                idempotency_key,
                source_data,
                created_by,
                fingerprint,
            )
        )

    def create_starts(self, calls: Iterable[StartCall]) -> list[Trigger | Exception]:
        """Accept many runs in one transaction (group commit): one commit for all of them.

        For a host that takes starts in bulk (a queue consumer's batch of messages, a server's
        concurrent requests): each call is what ``create_start`` takes, checked as it checks
        it, and the answer is each call's outcome in order, its trigger or the exception that
        refused it (a ``TreeflowError``; nothing of that call is written, the others are). Every
        accepted start is durable when this returns; a database error raises, and then nothing
        of any call is written. A refused call costs the others nothing: refusals are found
        before a call writes (its fields, its results, its tree, its idempotency key).
        """
        requests: list[StartRequest] = []
        refusals: list[Exception | None] = []
        for call in calls:
            try:
                requests.append(
                    self._start_request(
                        call.source_name,
                        call.source_group,
                        call.tree_name,
                        call.source_id,
                        call.results,
                        call.message,
                        call.idempotency_key,
                        call.source_data,
                        call.created_by,
                        call.fingerprint,
                    )
                )
                refusals.append(None)
            except TreeflowError as exc:
                refusals.append(exc)
        accepted = iter(self.intake.start_all(requests) if requests else ())
        return [next(accepted) if refusal is None else refusal for refusal in refusals]

    def _start_request(
        self,
        source_name: str,
        source_group: str,
        tree_name: str,
        source_id: str,
        results: str | bytes | None,
        message: str | None,
        idempotency_key: str | None,
        source_data: Mapping[str, Any] | None,
        created_by: str | None,
        fingerprint: str | None,
    ) -> StartRequest:
        """A start's arguments checked: its fields, source data and results; a TreeflowError
        names a bad one. Positional, as the hot path calls it (``create_start``)."""
        key = TreeKey(
            inputs.text("source_name", source_name),
            inputs.text("source_group", source_group),
            inputs.text("tree_name", tree_name),
        )
        source_id = inputs.text("source_id", source_id, required=False)
        message = inputs.optional("message", message, inputs.MAX_MESSAGE)
        idempotency_key = inputs.optional("idempotency_key", idempotency_key, inputs.MAX_TEXT)
        fingerprint = inputs.optional("fingerprint", fingerprint, inputs.MAX_FINGERPRINT)
        if source_data is not None:
            source_data = dict(source_data)
            check_json(source_data, field="source_data")
        return StartRequest(
            key,
            source_id,
            parse_results(results, max_bytes=self.max_results_bytes),
            results.decode() if isinstance(results, bytes) else results,
            message,
            idempotency_key,
            source_data,
            created_by,
            fingerprint,
        )

    def create_deferred(
        self,
        *,
        token: str,
        action: str = "Complete",
        results: str | bytes | None = None,
        message: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Trigger:
        """Complete or update the deferred task ``token`` names (seed semantics).

        A repeat with an ``idempotency_key`` returns the first call's trigger, even once the
        task is no longer deferred; ``fingerprint`` is as for :meth:`create_start`.
        """
        if action not in DEFERRED_ACTIONS:
            raise BadAction(action=action, allowed=DEFERRED_ACTIONS)
        token = inputs.text("token", token, limit=128)
        message = inputs.optional("message", message, inputs.MAX_MESSAGE)
        idempotency_key = inputs.optional("idempotency_key", idempotency_key, inputs.MAX_TEXT)
        fingerprint = inputs.optional("fingerprint", fingerprint, inputs.MAX_FINGERPRINT)
        parse_results(results, max_bytes=self.max_results_bytes)
        raw_results = results.decode() if isinstance(results, bytes) else results
        return self.intake.deferred(
            token=token,
            action=action,
            raw_results=raw_results,
            message=message,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )

    def resolve_error(
        self,
        error_id: str,
        action: str,
        *,
        message: str | None = None,
        resolved_by: str | None = None,
    ) -> Trigger:
        """Resolve an active error with ``action``; durable when this returns, applied by a worker.

        The action must be one Kinetic Task allows for the error's type (``engine.run.resolution``
        says what each does). Refused, with nothing written: an unknown id (ErrorNotFound), an
        error resolved already or whose resolution is queued (ErrorAlreadyResolved; of
        concurrent resolutions exactly one is accepted), an action the type does not allow
        (BadResolution, naming the action, the type and the allowed actions).
        """
        error_id = inputs.text("error_id", error_id, limit=64)
        action = inputs.text("action", action, limit=64)
        message = inputs.optional("message", message, inputs.MAX_MESSAGE)
        resolved_by = inputs.optional("resolved_by", resolved_by, inputs.MAX_TEXT)
        return self.intake.resolution(
            error_id=error_id, action=action, message=message, resolved_by=resolved_by
        )

    # -- processing ------------------------------------------------------------------------------

    def run_until_idle(self, *, max_triggers: int | None = None) -> int:
        """Process due triggers on this thread until none is left; returns how many closed.

        The start this thread accepted last is processed first, without a claim: once a thread
        has called this, the next start it accepts is claimed by its own accept
        (``engine.processing.hand_off``). Whether anything else is due is asked read-only before
        each claim that may find nothing, so a call with nothing due writes nothing.
        """
        done = 0
        claim = self.hand_off.inline() if max_triggers is None or max_triggers > 0 else None
        if claim is not None and claim.expired(self.clock()):
            self.runner.hand_back(claim)  # releases only what this claim still holds
            claim = None
        ask = True  # whether to ask read-only before claiming; each step answers for the next
        while max_triggers is None or done < max_triggers:
            if claim is None:
                if ask and not self.runner.due():
                    break
                limit = (
                    self.batch_size
                    if max_triggers is None
                    else min(self.batch_size, max_triggers - done)
                )
                claim = self.runner.claim(limit)
                if not claim.triggers:
                    break
            closed, more = self.runner.process_and_ask(claim)
            done, claim, ask = done + closed, None, False
            if not more:
                break
        return done

    def _serves(self, version_id: int) -> bool:
        """Whether this engine's selection claims the runs of a stored version."""
        selection = self.runner.selection
        return selection is None or self.catalog.for_version(version_id).selection in selection

    def start(self, workers: int = 4, *, schedules: bool = True) -> None:
        """Process triggers on ``workers`` background threads until :meth:`stop`.

        With ``schedules`` the process also takes part in running the scheduler: it runs it
        when it holds the scheduler's lock (always, on SQLite), and waits to take over if not.
        """
        self.workers.start(workers)
        if schedules:
            self.schedules.scheduler.start()

    def add_close_observer(self, observer: CloseObserver) -> None:
        """Call ``observer`` after each commit with the triggers it closed (metrics).

        It runs on the worker's thread, once per commit: it must be quick, and what it raises is
        logged and dropped (``engine.processing.observers``).
        """
        self.runner.observers.add(observer)

    def remove_close_observer(self, observer: CloseObserver) -> None:
        self.runner.observers.remove(observer)

    @property
    def selection(self) -> Sequence[str] | None:
        """The stored labels of the trees this engine processes; None: all of them."""
        return self.runner.selection

    @property
    def database_url(self) -> str:
        """The database's URL as it may be logged: with any password hidden."""
        return self.database.url.render_as_string(hide_password=True)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop claiming, then the scheduler; finish the trigger in hand, hand the rest back.

        A firing after the workers stopped is a durable trigger that waits for the next start.
        """
        self.workers.stop(timeout)
        self.schedules.scheduler.stop(timeout)

    def close(self) -> None:
        self.stop()
        self.database.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["DEFAULT_BUDGETS", "RUN_AGAIN_VERSIONS", "RUN_CACHE_BYTES", "RUN_CACHE_RUNS", "Engine"]
