"""Scheduled tasks as the engine offers them: ``engine.schedules.create(...)`` and the rest.

A schedule names a tree (source name, group, tree name), the source id and inputs its runs start
with (results XML, or ``values`` written as one), or a process whose instances it creates with
``fields`` (:mod:`engine.schedule.targets`), and when it fires (:mod:`engine.schedule.when`) in a
time zone. Everything is checked before anything is written, and a refusal names the field: an
unknown tree, process, field or instance, a bad cron expression, a one-off in the past, an interval
of zero, an unknown time zone. What is stored is picked up by the scheduler of whichever engine
process leads (:mod:`engine.schedule.scheduler`), at once in this process.

Misfire policy, per schedule: ``grace_seconds`` (default 300) is how late a firing may still
start its run, and ``coalesce`` (default on) makes a backlog of due firings one run. Five
minutes covers a restart or a deploy, and a failover of the scheduler's lock, without letting a
run meant for 02:00 start at noon after an outage; coalescing means an engine that was down
never starts a burst of identical runs when it comes back. APScheduler's own default (one
second, no coalescing) would drop firings on any busy restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from engine import inputs
from engine.errors import BadRequest
from engine.kianda.instances import InstanceBook
from engine.records import Firing, Schedule, TreeKey
from engine.results_xml import parse_results, write_results
from engine.schedule.firing import Firer
from engine.schedule.scheduler import Scheduler
from engine.schedule.targets import MAX_USER_ID, PROCESS_FIELDS, TREE_FIELDS, checked_target
from engine.schedule.when import When, build_trigger, check_when, zone
from engine.store import schedules as store
from engine.store.database import Database
from engine.tree.catalog import TreeCatalog

DEFAULT_GRACE_SECONDS = 300
MAX_GRACE_SECONDS = 7 * 86_400
MAX_NAME = 200
# What create and update take; update takes any of them.
FIELDS = (
    "name",
    *TREE_FIELDS,
    *PROCESS_FIELDS,
    "source_id",
    "results",
    "values",
    "when",
    "timezone",
    "enabled",
    "grace_seconds",
    "coalesce",
)


class Schedules:
    """The engine's schedules: definitions in the database, fired by the leading scheduler."""

    def __init__(
        self,
        database: Database,
        *,
        catalog: TreeCatalog,
        instances: InstanceBook,
        firer: Firer,
        scheduler: Scheduler,
        clock: Callable[[], float],
        max_results_bytes: int,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.instances = instances
        self.firer = firer
        self.scheduler = scheduler
        self.clock = clock
        self.max_results_bytes = max_results_bytes

    def create(
        self,
        *,
        name: str,
        when: Mapping[str, Any],
        source_name: str = "",
        source_group: str = "",
        tree_name: str = "",
        process: str | None = None,
        fields: Mapping[str, Any] | None = None,
        instance: str | None = None,
        timezone: str = "UTC",
        source_id: str = "",
        results: str | None = None,
        values: Mapping[str, str] | None = None,
        enabled: bool = True,
        grace_seconds: int = DEFAULT_GRACE_SECONDS,
        coalesce: bool = True,
        created_by: str | None = None,
        creator_id: str | None = None,
        creation_key: str | None = None,
    ) -> Schedule:
        """Store a new schedule; nothing is written if any field is refused.

        It names a tree (``source_name``, ``source_group``, ``tree_name``) or a ``process``,
        whose instances it creates with ``fields`` (name: value) over the current fields of
        ``instance``, if given (:mod:`engine.schedule.targets`). Those instances' creator is
        ``creator_id`` (the HTTP API gives the caller's user id), else ``created_by``.

        ``creation_key`` makes the call idempotent: a second call with the same key returns
        the schedule the first one created (a tree's node uses its task id).
        """
        creation_key = inputs.optional("creation_key", creation_key)
        if creation_key is not None:
            with self.database.read() as connection:
                existing = store.find_by_creation_key(connection, creation_key)
            if existing is not None:
                return self._shown(existing)
        created_by = inputs.optional("created_by", created_by)
        creator_id = inputs.optional("creator_id", creator_id, limit=MAX_USER_ID)
        given = {
            "creator": creator_id or created_by,
            "name": name,
            "source_name": source_name,
            "source_group": source_group,
            "tree_name": tree_name,
            "process": process,
            "fields": fields,
            "instance": instance,
            "when": when,
            "timezone": timezone,
            "source_id": source_id,
            "results": results,
            "values": values,
            "enabled": enabled,
            "grace_seconds": grace_seconds,
            "coalesce": coalesce,
        }
        now = self.clock()
        columns = self._checked(given, now=now, check_target=True, check_when_=True)
        columns |= {
            "created_by": created_by,
            "creator_id": creator_id,
            "creation_key": creation_key,
            "created_at": now,
            "updated_at": now,
        }

        def write(connection: Connection) -> Schedule:
            return store.read_schedule(connection, store.insert_schedule(connection, columns))

        schedule, written = self.database.write_once(
            creation_key,
            find=lambda connection: store.find_by_creation_key(connection, creation_key or ""),
            write=write,
        )
        if written:
            self.scheduler.wake()
        return self._shown(schedule)

    def update(self, schedule_id: int, **changes: Any) -> Schedule:
        """Change some fields (a PATCH); the rest stay. Checked whole, as create checks.

        Changing ``when`` or the time zone starts the schedule's slots afresh (an interval
        without a ``start`` counts from now again); enabling a schedule does not bring back
        the slots it had while disabled. Giving ``process`` to a schedule that names a tree
        makes it name that process instead (its tree, source id and inputs cleared); giving
        ``process=None`` with a tree does the opposite (its fields and instance cleared).
        """
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise BadRequest(field=unknown[0], reason=f"not a field of a schedule: use {FIELDS}")
        current = self.get(schedule_id)
        given: dict[str, Any] = {
            "creator": current.creator_id or current.created_by,
            "name": current.name,
            "source_name": current.source_name,
            "source_group": current.source_group,
            "tree_name": current.tree_name,
            "process": current.process,
            "fields": current.fields,
            "instance": current.instance,
            "source_id": current.source_id,
            "results": current.results,
            "values": None,
            "when": current.when,
            "timezone": current.timezone,
            "enabled": current.enabled,
            "grace_seconds": current.grace_seconds,
            "coalesce": current.coalesce,
        }
        if "values" in changes and "results" not in changes:
            given["results"] = None
        given |= self._switched(current, changes)
        given |= changes
        now = self.clock()
        columns = self._checked(
            given,
            now=now,
            check_target=any(field in changes for field in (*TREE_FIELDS, *PROCESS_FIELDS)),
            check_when_="when" in changes or "timezone" in changes,
        )
        if "when" in changes or "timezone" in changes:
            columns["done"] = False
        columns["updated_at"] = now
        with self.database.write() as connection:
            store.update_schedule(connection, schedule_id, columns)
            schedule = store.read_schedule(connection, schedule_id)
        self.scheduler.wake()
        return self._shown(schedule)

    def delete(self, schedule_id: int) -> None:
        """Delete a schedule and its history; a firing already started keeps its run."""
        with self.database.write() as connection:
            store.delete_schedule(connection, schedule_id)
        self.scheduler.wake()

    def get(self, schedule_id: int) -> Schedule:
        with self.database.read() as connection:
            return self._shown(store.read_schedule(connection, schedule_id))

    def count(self) -> int:
        with self.database.read() as connection:
            return store.count_schedules(connection)

    def run_now(self, schedule_id: int) -> Firing:
        """Fire once now, enabled or not, outside its slots; recorded in its history."""
        schedule = self.get(schedule_id)
        return self.firer.fire(schedule, self.clock(), manual=True)

    def history(self, schedule_id: int, *, limit: int = 50, offset: int = 0) -> list[Firing]:
        """The schedule's firings, newest first: runs started and slots skipped, with why."""
        with self.database.read() as connection:
            store.read_schedule(connection, schedule_id)
            return store.list_firings(connection, schedule_id, limit=limit, offset=offset)

    def count_history(self, schedule_id: int) -> int:
        with self.database.read() as connection:
            return store.count_firings(connection, schedule_id)

    # -- checks ----------------------------------------------------------------------------------

    def _checked(
        self, given: Mapping[str, Any], *, now: float, check_target: bool, check_when_: bool
    ) -> dict[str, Any]:
        """The columns for ``given``, every field checked; raises naming the first bad one."""
        columns: dict[str, Any] = {"name": inputs.text("name", given["name"], limit=MAX_NAME)}
        columns |= checked_target(given, instances=self.instances, check=check_target)
        columns["source_id"] = inputs.text("source_id", given["source_id"], required=False)
        columns["results"] = self._results(given.get("results"), given.get("values"))
        tz = zone(given["timezone"])
        columns["timezone"] = tz.key
        if check_when_:
            when = check_when(given["when"], tz=tz, now=now)
        else:
            when = When.stored(given["when"])
        columns["kind"] = when.kind.value
        columns["when"] = when.as_dict()
        for field in ("enabled", "coalesce"):
            flag = given[field]
            if not isinstance(flag, bool):
                raise BadRequest(field=field, reason=f"expected true or false, not {flag!r}")
            columns[field] = flag
        grace = given["grace_seconds"]
        if isinstance(grace, bool) or not isinstance(grace, int):
            raise BadRequest(field="grace_seconds", reason=f"expected whole seconds, not {grace!r}")
        if not 1 <= grace <= MAX_GRACE_SECONDS:
            raise BadRequest(
                field="grace_seconds", reason=f"must be between 1 and {MAX_GRACE_SECONDS}"
            )
        columns["grace_seconds"] = grace
        if check_target and columns["process"] is None:
            self.catalog.startable(TreeKey(*(columns[field] for field in TREE_FIELDS)))
        return columns

    @staticmethod
    def _switched(current: Schedule, changes: Mapping[str, Any]) -> dict[str, Any]:
        """What a change from naming a tree to naming a process (or back) clears: the other
        form's fields, unless given too (then both are named, and refused)."""
        if "process" not in changes:
            return {}
        if changes["process"] is None:
            return {"fields": None, "instance": None}
        if current.process is None:
            return {field: "" for field in TREE_FIELDS} | {"source_id": "", "results": None}
        return {}

    def _results(self, results: object, values: object) -> str | None:
        if results is not None and values is not None:
            raise BadRequest(field="values", reason="give results or values, not both")
        if values is not None:
            if not isinstance(values, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()
            ):
                raise BadRequest(field="values", reason="expected an object of text values")
            results = write_results(values)
        if results is None:
            return None
        text = inputs.text("results", results, required=False, limit=self.max_results_bytes)
        parse_results(text, max_bytes=self.max_results_bytes)
        return text or None

    def next_fire_times(self, schedule: Schedule, count: int = 5) -> list[float]:
        """The next ``count`` times (UNIX seconds) the schedule's slots fall on, from now; none
        when it is disabled or a one-off that fired, fewer when its ``end`` comes first.

        They are computed as the scheduler computes its jobs' next runs, so they are the slots
        the scheduler will fire (what the misfire policy then does with a late one aside).
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise BadRequest(field="count", reason="must be a whole number from 1 to 100")
        if not schedule.enabled or schedule.done:
            return []
        tz = zone(schedule.timezone)
        trigger = build_trigger(When.stored(schedule.when), tz)
        times: list[float] = []
        now = datetime.fromtimestamp(time.time(), tz)
        previous: datetime | None = None
        while len(times) < count:
            try:
                upcoming = trigger.get_next_fire_time(previous, now)
            except (OverflowError, ValueError):  # past year 9999: nothing to come
                break
            if upcoming is None:
                break
            times.append(upcoming.timestamp())
            previous = upcoming
            now = upcoming + timedelta(microseconds=1)
        return times

    def _shown(self, schedule: Schedule) -> Schedule:
        """The schedule with its next firing time (none if disabled or a one-off that fired)."""
        upcoming = self.next_fire_times(schedule, 1)
        if not upcoming:
            return schedule
        return replace(schedule, next_fire_time=upcoming[0])

    # Last in the class, so that ``list`` in the annotations above is the builtin.
    def list(self, *, limit: int = 50, offset: int = 0) -> list[Schedule]:
        """Schedules in the order they were created."""
        with self.database.read() as connection:
            found = store.list_schedules(connection, limit=limit, offset=offset)
        return [self._shown(schedule) for schedule in found]


__all__ = ["DEFAULT_GRACE_SECONDS", "FIELDS", "Schedules"]
