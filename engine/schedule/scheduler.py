"""The scheduler layer: APScheduler 3, run by the one engine process that leads.

``Scheduler.start`` (called by ``Engine.start``) starts a thread that tries to lead
(:mod:`engine.schedule.leader`) and, once it does, runs an APScheduler ``BackgroundScheduler`` whose
job store is a table of the engine's own database (``schedule_jobs``; an in-memory engine keeps its
jobs in memory). The thread then keeps APScheduler's jobs in step with the ``schedules`` table, in
this one place: every ``poll_seconds``, and at once when this process changed a schedule. Other
processes' changes are picked up within ``poll_seconds``; a non-leader tries the lock as often. When
the lock's connection fails, the scheduler is shut down at once and the process goes back to trying.

A job is named by the schedule's id and revision (``schedule-<id>-r<revision>``), so the
comparison reads ids only: a job whose id no enabled schedule has is removed, and a schedule
whose job is missing gets one. A job kept across a restart keeps its next run time in the job
store, which is how slots missed while no scheduler ran come back, to the misfire policy of
:mod:`engine.schedule.firing`. Jobs carry only the schedule id and revision (and APScheduler's
trigger); the job function is :func:`fire_job`, and the :class:`Firer` reaches it through the
executor, so no job refers to an engine object and no process-wide registry is needed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from engine.schedule.firing import Firer
from engine.schedule.leader import Leadership
from engine.schedule.when import When, build_trigger
from engine.store import schedules as store
from engine.store.database import Database

JOB_TABLE = "schedule_jobs"
FIRING_THREADS = 4
MAX_BACKOFF = 30.0
# Firings of one schedule may overlap (a slow database, a backlog being coalesced): each slot
# is its own firing, so APScheduler must not skip a slot because the last one is still running.
MAX_INSTANCES = 64


def fire_job(
    schedule_id: int, revision: int, *, slots: Sequence[float] = (), firer: Firer | None = None
) -> None:
    """Every APScheduler job's function: fire the slots that came due for one schedule.

    ``slots`` and ``firer`` come from the executor when it runs the job, not from the job.
    """
    if firer is None:
        raise RuntimeError("fire_job runs under the engine's scheduler, which passes its firer")
    firer.fire_slots(schedule_id, revision, slots)


class _FiringExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs jobs on a thread pool, handing them all their due slots and the engine's Firer.

    APScheduler's own executors drop the scheduled time before calling the job, and apply the
    grace time without a record of what they skipped; this one passes the slots on instead.
    """

    def __init__(self, firer: Firer, max_workers: int = FIRING_THREADS) -> None:
        super().__init__()
        self._firer = firer
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix="treeflow-schedule"
        )

    def _do_submit_job(self, job: Job, run_times: Sequence[datetime]) -> None:
        slots = [run_time.timestamp() for run_time in run_times]

        def run() -> None:
            job.func(*job.args, slots=slots, firer=self._firer, **job.kwargs)

        def done(future: concurrent.futures.Future[None]) -> None:
            error = future.exception()
            if error is None:
                self._run_job_success(job.id, [])
            else:
                self._run_job_error(job.id, error, error.__traceback__)

        self._pool.submit(run).add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


# How soon APScheduler's loop asks again when the job store could not be read: its own retry
# interval for a failed look-up of due jobs (``jobstore_retry_interval``'s default).
LOOKUP_RETRY_SECONDS = 10.0


class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy job store on the engine's own connection pool.

    Its ``shutdown`` would dispose of the pool it was given, under the feet of the engine's
    workers: the pool is the engine's, and is disposed of when the engine closes.

    APScheduler's loop survives a failed look-up of the jobs due, but not a failed look-up of
    the next firing time, which it makes right after: a connection lost at that moment (a
    database restarting, a backend terminated) ended its thread, and with it every firing in
    this process until a restart. Here that failure is logged and answered "in a few
    seconds", so the loop goes on and meets the outage again at its next look-up of due jobs,
    which it logs and retries.
    """

    def __init__(self, *, logger: logging.Logger, **options: Any) -> None:
        super().__init__(**options)
        self.outage_logger = logger

    def get_next_run_time(self) -> datetime | None:
        try:
            next_run_time: datetime | None = super().get_next_run_time()
        except sa.exc.DBAPIError as exc:  # the driver's errors: a lost or refused connection
            self.outage_logger.warning(
                "the scheduler could not read its next firing time (%s); asking again in %gs",
                type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
                LOOKUP_RETRY_SECONDS,
            )
            return datetime.now(UTC) + timedelta(seconds=LOOKUP_RETRY_SECONDS)
        return next_run_time

    def shutdown(self) -> None:
        pass


class Scheduler:
    """Runs APScheduler while this process leads; keeps its jobs in step with the schedules."""

    def __init__(
        self,
        database: Database,
        firer: Firer,
        *,
        poll_seconds: float,
        logger: logging.Logger,
        duties: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.database = database
        self.duties = tuple(duties)  # what the leader also does after each poll (retention)
        self.firer = firer
        self.poll_seconds = poll_seconds
        self.logger = logger
        self.leadership = Leadership(database, logger=logger)
        self._aps: BackgroundScheduler | None = None
        self._store: BaseJobStore | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def leading(self) -> bool:
        """Whether this process runs the scheduler now."""
        return self._aps is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the engine's scheduler is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._lead, name="treeflow-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)

    def wake(self) -> None:
        """A schedule changed in this process: bring the jobs in step now, not at the next poll."""
        self._wake.set()

    def _lead(self) -> None:
        backoff = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                    backoff = 0.0
                except Exception:  # the database restarted, say: log, back off, try again
                    self.logger.exception("the scheduler failed; retrying")
                    self._shut_down()
                    self.leadership.release()
                    backoff = min(MAX_BACKOFF, max(self.poll_seconds, backoff * 2))
                    self._stopping.wait(backoff)
                    continue
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        finally:
            self._shut_down()
            self.leadership.release()

    def _step(self) -> None:
        if self._aps is None:
            if not self.leadership.acquire():
                return
            self.logger.info("this process runs the scheduler")
            self._start_up()
        elif not self.leadership.held():
            self.logger.warning("the scheduler's lock was lost: stopping the scheduler")
            self._shut_down()
            return
        self.sync()
        for duty in self.duties:
            try:
                duty()
            except Exception:  # a duty's failure is its own: the schedules go on
                self.logger.exception("a duty of the scheduler's leader failed")

    def _start_up(self) -> None:
        if self.database.memory:
            jobstore: BaseJobStore = MemoryJobStore()
        else:
            jobstore = JobStore(
                engine=self.database.engine, tablename=JOB_TABLE, logger=self.logger
            )
        aps = BackgroundScheduler(
            jobstores={"default": jobstore},
            executors={"default": _FiringExecutor(self.firer)},
            # The policy is ours (engine.schedule.firing): hand every due slot over.
            job_defaults={
                "coalesce": False,
                "misfire_grace_time": None,
                "max_instances": MAX_INSTANCES,
            },
            timezone=UTC,
        )
        if isinstance(jobstore, SQLAlchemyJobStore):
            # A write transaction (BEGIN IMMEDIATE on SQLite): the check-then-create must not
            # upgrade a read snapshot to a write while the workers write, which SQLite refuses
            # at once with "database is locked" instead of waiting.
            with self.database.write() as connection:
                jobstore.jobs_t.create(connection, checkfirst=True)
        try:
            self._sync(aps, jobstore)  # before starting, so start-up sees every job that is due
            aps.start()
        except BaseException:
            if aps.running:
                aps.shutdown(wait=False)
            raise
        # Published only once started: a scheduler not yet started answers get_jobs with its
        # pending jobs only, not those in the job store, so it must not be seen as leading.
        self._store = jobstore
        self._aps = aps

    def _shut_down(self) -> None:
        aps, self._aps = self._aps, None
        self._store = None
        if aps is not None and aps.running:
            aps.shutdown(wait=True)

    def _job_ids(self, aps: BackgroundScheduler, jobstore: BaseJobStore) -> set[str]:
        if isinstance(jobstore, SQLAlchemyJobStore):
            table = jobstore.jobs_t
            with self.database.read() as connection:
                return set(connection.execute(sa.select(table.c.id)).scalars())
        return {job.id for job in aps.get_jobs()}

    def sync(self) -> None:
        """Add a job for each enabled schedule that lacks one; remove jobs no schedule has."""
        aps, jobstore = self._aps, self._store
        if aps is None or jobstore is None:
            return
        self._sync(aps, jobstore)

    def _sync(self, aps: BackgroundScheduler, jobstore: BaseJobStore) -> None:
        with self.database.read() as connection:
            wanted = store.active_job_ids(connection)
        present = self._job_ids(aps, jobstore)
        for stale in present - set(wanted):
            with contextlib.suppress(JobLookupError):  # gone already (a one-off that fired)
                aps.remove_job(stale)
        for missing in set(wanted) - present:
            try:
                self._add_job(aps, wanted[missing])
            except Exception:  # one schedule APScheduler cannot take must not stop the others
                self.logger.exception("schedule %s could not be scheduled", wanted[missing])

    def _add_job(self, aps: BackgroundScheduler, schedule_id: int) -> None:
        try:
            with self.database.read() as connection:
                schedule = store.read_schedule(connection, schedule_id)
        except LookupError:
            return  # deleted since
        trigger = build_trigger(When.stored(schedule.when), ZoneInfo(schedule.timezone))
        options: dict[str, Any] = {"id": schedule.job_id, "name": schedule.name}
        args = [schedule.id, schedule.revision]
        aps.add_job(fire_job, trigger, args=args, replace_existing=True, **options)


__all__ = ["JOB_TABLE", "LOOKUP_RETRY_SECONDS", "JobStore", "Scheduler", "fire_job"]
