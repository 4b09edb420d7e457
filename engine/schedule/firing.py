"""What one firing of a schedule does: the misfire policy, createStart, and the history row.

The scheduler hands over every slot that came due (APScheduler's own coalescing and grace
check are off), so the policy is applied here, where the skipped slots can be written down:

- a slot later than the schedule's grace time is **Missed** (the engine was down, or no process
  held the scheduler's lock, for longer than that);
- of the slots within the grace time, with ``coalesce`` all but the last are **Coalesced** into
  it, and the last one starts a run; without ``coalesce`` each starts a run of its own.

Skipped slots are recorded one row per group (first and last slot, how many, why), not one row
per slot: a schedule firing every second that was down for a day leaves two rows, not 86,400.

A run is started through createStart with the idempotency key ``schedule:<id>:<slot>`` (the
scheduled time in UTC, ISO 8601), never the wall-clock time of the firing, so a slot fired twice
(two processes, or a scheduler that died between firing and noting it) starts one run. Lateness
is measured on the wall clock, the one APScheduler schedules by. A schedule that names a
process creates an instance instead, with the same key (:mod:`engine.schedule.targets`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from engine.errors import ScheduleNotFound, TreeflowError
from engine.kianda.instances import InstanceBook
from engine.records import Firing, Schedule, Trigger
from engine.schedule.targets import create_instance
from engine.store import schedules as store
from engine.store.database import Database

StartRun = Callable[..., Trigger]


class Outcome(StrEnum):
    STARTED = "Started"
    MISSED = "Missed"
    COALESCED = "Coalesced"
    FAILED = "Failed"  # createStart refused it (the tree is gone or inactive, say)


def slot_text(fire_time: float) -> str:
    return datetime.fromtimestamp(fire_time, UTC).isoformat()


def idempotency_key(schedule_id: int, fire_time: float) -> str:
    return f"schedule:{schedule_id}:{slot_text(fire_time)}"


class Firer:
    """Fires schedules' slots for one engine: shared by its scheduler and by ``run now``."""

    def __init__(
        self,
        database: Database,
        *,
        start: StartRun,
        instances: InstanceBook,
        clock: Callable[[], float],
        engine_name: str,
        logger: logging.Logger,
    ) -> None:
        self.database = database
        self.start = start
        self.instances = instances
        self.clock = clock
        self.engine_name = engine_name
        self.logger = logger

    def fire_slots(self, schedule_id: int, revision: int, slots: Sequence[float]) -> None:
        """Apply the misfire policy to the slots that came due and fire what it keeps."""
        try:
            with self.database.read() as connection:
                schedule = store.read_schedule(connection, schedule_id)
        except ScheduleNotFound:
            self.logger.info("schedule %s is gone; its job fires nothing", schedule_id)
            return
        if schedule.revision != revision or not schedule.enabled or schedule.done:
            self.logger.info("schedule %s changed since its job was made; skipped", schedule_id)
            return
        now = time.time()
        late = [slot for slot in slots if now - slot > schedule.grace_seconds]
        on_time = [slot for slot in slots if now - slot <= schedule.grace_seconds]
        if late:
            self._record_group(
                schedule,
                late,
                Outcome.MISSED,
                f"missed, {now - late[-1]:.0f}s late, over the grace time of "
                f"{schedule.grace_seconds}s (no scheduler was running then)",
            )
        if on_time and schedule.coalesce and len(on_time) > 1:
            self._record_group(
                schedule,
                on_time[:-1],
                Outcome.COALESCED,
                f"coalesced into the firing at {slot_text(on_time[-1])}",
            )
            on_time = on_time[-1:]
        for slot in on_time:
            self.fire(schedule, slot, manual=False)
        if schedule.when.get("kind") == "once":
            with self.database.write() as connection:
                store.mark_done(connection, schedule.id, revision=revision, now=self.clock())

    def fire(self, schedule: Schedule, slot: float, *, manual: bool) -> Firing:
        """Start the run of one slot and record it. A manual firing raises what createStart
        raises, recording nothing; a scheduled one records the refusal as Failed."""
        stamp = slot_text(slot)
        values: dict[str, Any] = {"fire_time": slot, "first_fire_time": slot, "manual": manual}
        key = idempotency_key(schedule.id, slot)
        source_data = {
            "schedule_id": schedule.id,
            "schedule_name": schedule.name,
            "fire_time": stamp,
            "manual": manual,
        }
        try:
            if schedule.process is not None:
                instance, trigger_id = create_instance(
                    self.instances, schedule, idempotency_key=key, source_data=source_data
                )
                started = {
                    "trigger_id": trigger_id,
                    "run_id": instance.run_id,
                    "instance": instance.name,
                }
            else:
                trigger = self.start(
                    source_name=schedule.source_name,
                    source_group=schedule.source_group,
                    tree_name=schedule.tree_name,
                    source_id=schedule.source_id,
                    results=schedule.results,
                    idempotency_key=key,
                    source_data=source_data,
                )
                started = {"trigger_id": trigger.id, "run_id": trigger.run_id}
        except TreeflowError as exc:
            if manual:
                raise
            self.logger.warning("schedule %s could not start its run: %s", schedule.id, exc)
            values |= {"outcome": Outcome.FAILED.value, "reason": str(exc)}
        else:
            values |= {
                "outcome": Outcome.STARTED.value,
                "reason": "run now" if manual else "",
                **started,
            }
        return self._record(schedule.id, values)

    def _record_group(
        self, schedule: Schedule, slots: Sequence[float], outcome: Outcome, why: str
    ) -> None:
        count = len(slots)
        if count > 1:
            what = f"{count} firings from {slot_text(slots[0])} to {slot_text(slots[-1])}"
        else:
            what = f"the firing at {slot_text(slots[0])}"
        reason = f"{what}: {why}"
        self.logger.warning("schedule %s: %s", schedule.id, reason)
        self._record(
            schedule.id,
            {
                "fire_time": slots[-1],
                "first_fire_time": slots[0],
                "slots": count,
                "outcome": outcome.value,
                "reason": reason,
                "manual": False,
            },
        )

    def _record(self, schedule_id: int, values: dict[str, Any]) -> Firing:
        row = {
            "schedule_id": schedule_id,
            "engine": self.engine_name,
            "recorded_at": self.clock(),
            "slots": 1,
            "reason": "",
            "trigger_id": None,
            "run_id": None,
            "instance": None,
            **values,
        }
        try:
            with self.database.write() as connection:
                firing_id = store.insert_firing(connection, row)
        except sa.exc.IntegrityError:  # another process recorded this slot first: keep its row
            with self.database.read() as connection:
                found = (
                    connection.execute(
                        sa.select(store.schedule_firings).where(
                            store.schedule_firings.c.schedule_id == schedule_id,
                            store.schedule_firings.c.fire_time == values["fire_time"],
                        )
                    )
                    .mappings()
                    .first()
                )
            if found is None:  # the schedule was deleted meanwhile
                return store.firing_record({**row, "id": 0})
            return store.firing_record(found)
        return store.firing_record({**row, "id": firing_id})


__all__ = ["Firer", "Outcome", "idempotency_key", "slot_text"]
