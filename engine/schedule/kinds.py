"""The kinds of schedule and the units of an interval, as their values are written.

Apart from ``engine.schedule.when`` (which turns them into APScheduler triggers), so that what
offers them as choices (the Tasks API's models, the ``system_schedule_create_v1`` node's menus)
loads no scheduler.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    ONCE = "once"
    INTERVAL = "interval"
    WEEKDAYS = "weekdays"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    CRON = "cron"


class Unit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"


__all__ = ["Kind", "Unit"]
