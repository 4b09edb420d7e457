"""When a schedule fires: the kinds Kianda offers, checked, and turned into APScheduler triggers.

A schedule's ``when`` is plain data (stored as JSON in the ``schedules`` table, never pickled)::

    {"kind": "once", "at": "2027-01-04T09:00"}
    {"kind": "interval", "every": 15, "unit": "minutes"}       # seconds .. months
    {"kind": "weekdays", "time": "08:30"}                      # Monday to Friday
    {"kind": "weekly", "days": ["mon", "thu"], "time": "17:00"}
    {"kind": "monthly", "day": "last", "time": "23:00"}        # 1..31 or "last"
    {"kind": "cron", "cron": "*/5 9-17 * * mon-fri"}           # 5 fields, or 6 with seconds first

Date-times without an offset, and every time of day, are in the schedule's time zone. Recurring
kinds take an optional ``start`` (not before) and ``end`` (not after). An interval counts from
its ``start``, which defaults to one interval after the schedule was created and is then stored,
so the slots stay put when the scheduler restarts.

A month interval is calendar months, not 30 days: the start's day of the month, at its time,
every N months, on the last day of months too short for it (a 31st becomes Feb 28 or 29, then
Mar 31 again). APScheduler 3's IntervalTrigger has no months, hence :class:`MonthlyTrigger`.

Cron day-of-week numbers follow crontab (0 or 7 is Sunday), not APScheduler 3's own numbering
(0 is Monday): they are translated to names before APScheduler sees them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engine.errors import BadRequest
from engine.schedule.kinds import Kind, Unit

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # 0..7
# Beyond this an interval is a mistake, and timedelta arithmetic would overflow.
MAX_EVERY = {Unit.SECONDS: 10**8, Unit.MINUTES: 10**7, Unit.HOURS: 10**6, Unit.DAYS: 36_500}
MAX_EVERY |= {Unit.WEEKS: 5_200, Unit.MONTHS: 1_200}
_FIELDS = ("at", "every", "unit", "time", "days", "day", "cron", "start", "end")
_USES: dict[Kind, frozenset[str]] = {
    Kind.ONCE: frozenset({"at"}),
    Kind.INTERVAL: frozenset({"every", "unit", "start", "end"}),
    Kind.WEEKDAYS: frozenset({"time", "start", "end"}),
    Kind.WEEKLY: frozenset({"days", "time", "start", "end"}),
    Kind.MONTHLY: frozenset({"day", "time", "start", "end"}),
    Kind.CRON: frozenset({"cron", "start", "end"}),
}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DOW_NUMBER = re.compile(r"(?<![/\d])\d+")
MAX_CRON = 256


@dataclass(frozen=True)
class When:
    """A checked ``when``: only the fields its kind uses are set."""

    kind: Kind
    at: str | None = None
    every: int | None = None
    unit: Unit | None = None
    time: str | None = None
    days: tuple[str, ...] | None = None
    day: str | None = None
    cron: str | None = None
    start: str | None = None
    end: str | None = None

    @classmethod
    def stored(cls, data: Mapping[str, Any]) -> When:
        """A ``when`` read back from the database (checked when it was stored)."""
        values = dict(data)
        values["kind"] = Kind(values["kind"])
        if "unit" in values:
            values["unit"] = Unit(values["unit"])
        if "days" in values:
            values["days"] = tuple(values["days"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The JSON stored and shown: the kind and the fields that are set."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if self.days is not None:
            data["days"] = list(self.days)
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in data.items()}


def zone(name: object) -> ZoneInfo:
    """The IANA time zone ``name``; BadRequest naming it if there is none."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise BadRequest(field="timezone", reason=f"expected an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(field="timezone", reason=f"unknown time zone {name!r}") from None


def check_when(data: Mapping[str, Any], *, tz: ZoneInfo, now: float) -> When:
    """``data`` checked: a known kind, only its fields, each well formed. Names what is wrong.

    An interval without ``start`` gets one (``now`` plus one interval). A one-off date must be
    in the future, and every schedule must have a firing still to come.
    """
    if not isinstance(data, Mapping):
        raise BadRequest(field="when", reason=f"expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"kind", *_FIELDS})
    if unknown:
        raise BadRequest(field="when", reason=f"unknown fields {unknown}")
    try:
        kind = Kind(data.get("kind", ""))
    except ValueError:
        choices = ", ".join(k.value for k in Kind)
        raise BadRequest(
            field="when.kind", reason=f"expected one of {choices}, got {data.get('kind')!r}"
        ) from None
    given = {k for k in _FIELDS if data.get(k) is not None}
    stray = sorted(given - _USES[kind])
    if stray:
        raise BadRequest(field=f"when.{stray[0]}", reason=f"not used by a {kind} schedule")
    values: dict[str, Any] = {"kind": kind}
    for name in ("start", "end"):
        if name in given:
            values[name] = _iso(_datetime(f"when.{name}", data[name], tz))
    if kind is Kind.ONCE:
        at = _datetime("when.at", data.get("at"), tz)
        if at.timestamp() <= now:
            raise BadRequest(field="when.at", reason=f"{at.isoformat()} is in the past")
        values["at"] = _iso(at)
    elif kind is Kind.INTERVAL:
        values |= _interval(data, tz=tz, now=now, start=values.get("start"))
    elif kind is Kind.CRON:
        values["cron"] = _cron_text(data.get("cron"))
    else:
        values["time"] = _time_of_day(data.get("time", "00:00"))
        if kind is Kind.WEEKLY:
            values["days"] = _days(data.get("days"))
        elif kind is Kind.MONTHLY:
            values["day"] = _day_of_month(data.get("day"))
    when = When(**values)
    try:
        trigger = build_trigger(when, tz)
        upcoming = trigger.get_next_fire_time(None, datetime.fromtimestamp(now, tz))
    except (OverflowError, ValueError) as exc:  # a date near year 9999, or the like
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest(field="when", reason=f"cannot compute its firings: {exc}") from None
    if upcoming is None:
        raise BadRequest(field="when", reason="it never fires after now (check end and cron)")
    return when


def build_trigger(when: When, tz: ZoneInfo) -> BaseTrigger:
    """The APScheduler trigger for a checked ``when`` (BadRequest if APScheduler refuses it)."""
    start = None if when.start is None else datetime.fromisoformat(when.start)
    end = None if when.end is None else datetime.fromisoformat(when.end)
    if start is not None and end is not None and end <= start:
        raise BadRequest(field="when.end", reason="must be after when.start")
    bounds: dict[str, Any] = {"start_date": start, "end_date": end, "timezone": tz}
    if when.kind is Kind.ONCE:
        return DateTrigger(run_date=datetime.fromisoformat(str(when.at)), timezone=tz)
    if when.kind is Kind.INTERVAL:
        if when.unit is Unit.MONTHS:
            return MonthlyTrigger(int(when.every or 0), _required(start), end)
        return IntervalTrigger(**{str(when.unit): int(when.every or 0)}, **bounds)
    if when.kind is Kind.CRON:
        return _cron_trigger(str(when.cron), bounds)
    hour, minute, second = (int(part) for part in str(when.time).split(":"))
    clock = {"hour": hour, "minute": minute, "second": second}
    if when.kind is Kind.WEEKDAYS:
        return CronTrigger(day_of_week="mon-fri", **clock, **bounds)
    if when.kind is Kind.WEEKLY:
        return CronTrigger(day_of_week=",".join(when.days or ()), **clock, **bounds)
    return CronTrigger(day=when.day, **clock, **bounds)


class MonthlyTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 has no types
    """Every ``months`` calendar months from ``start`` (day clamped to the month's end)."""

    __slots__ = ("end", "months", "start")

    def __init__(self, months: int, start: datetime, end: datetime | None = None) -> None:
        self.months = months
        self.start = start
        self.end = end

    def __getstate__(self) -> dict[str, Any]:
        return {"months": self.months, "start": self.start, "end": self.end}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.months, self.start, self.end = state["months"], state["start"], state["end"]

    def occurrence(self, number: int) -> datetime:
        total = self.start.month - 1 + number * self.months
        year, month = self.start.year + total // 12, total % 12 + 1
        day = min(self.start.day, calendar.monthrange(year, month)[1])
        return self.start.replace(year=year, month=month, day=day)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or now
        elapsed = (after.year - self.start.year) * 12 + after.month - self.start.month
        number = max(0, elapsed // self.months - 1)
        while True:
            candidate = self.occurrence(number)
            due = candidate > previous_fire_time if previous_fire_time else candidate >= now
            if due:
                break
            number += 1
        return None if self.end is not None and candidate > self.end else candidate

    def __str__(self) -> str:
        return f"every {self.months} months from {self.start.isoformat()}"


def describe(when: Mapping[str, Any]) -> str:
    """A stored ``when`` in a few words, as tables show it: ``every 15 minutes from ...``,
    ``weekdays at 08:30:00``, ``day last of the month at 23:00:00``, ``cron */5 * * * *``."""
    kind = when.get("kind")
    at = f" at {when['time']}" if "time" in when else ""
    if kind == "once":
        return f"once at {when['at']}"
    if kind == "interval":
        every, unit = when["every"], str(when["unit"])
        start = f" from {when['start']}" if when.get("start") else ""
        return (
            f"every {unit.removesuffix('s')}" if every == 1 else f"every {every} {unit}"
        ) + start
    if kind == "weekdays":
        return f"weekdays{at}"
    if kind == "weekly":
        return f"weekly on {', '.join(when['days'])}{at}"
    if kind == "monthly":
        return f"day {when['day']} of the month{at}"
    return f"cron {when.get('cron')}"


def _required(value: datetime | None) -> datetime:
    if value is None:
        raise BadRequest(field="when.start", reason="a month interval needs a start")
    return value


def _iso(value: datetime) -> str:
    return value.isoformat()


def _datetime(field: str, value: object, tz: ZoneInfo) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field=field, reason=f"expected an ISO 8601 date-time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(field=field, reason=f"not an ISO 8601 date-time: {value!r}") from None
    try:
        parsed = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed
        parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadRequest(field=field, reason=f"out of range: {value!r}") from None
    return parsed


def _interval(
    data: Mapping[str, Any], *, tz: ZoneInfo, now: float, start: str | None
) -> dict[str, Any]:
    try:
        unit = Unit(data.get("unit", ""))
    except ValueError:
        choices = ", ".join(u.value for u in Unit)
        raise BadRequest(
            field="when.unit", reason=f"expected one of {choices}, got {data.get('unit')!r}"
        ) from None
    every = data.get("every")
    if isinstance(every, bool) or not isinstance(every, int):
        raise BadRequest(field="when.every", reason=f"expected a whole number, got {every!r}")
    if not 1 <= every <= MAX_EVERY[unit]:
        raise BadRequest(
            field="when.every", reason=f"must be between 1 and {MAX_EVERY[unit]}, not {every}"
        )
    if start is None:
        begin = datetime.fromtimestamp(now, tz).replace(microsecond=0)
        if unit is Unit.MONTHS:
            start = _iso(MonthlyTrigger(every, begin).occurrence(1))
        else:
            start = _iso(begin + timedelta(**{unit.value: every}))
    return {"every": every, "unit": unit, "start": start}


def _time_of_day(value: object) -> str:
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise BadRequest(field="when.time", reason=f"expected HH:MM or HH:MM:SS, got {value!r}")
    hour, minute, second = (int(part or 0) for part in match.groups())
    return time(hour, minute, second).isoformat()


def _days(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise BadRequest(field="when.days", reason=f"expected a list of days, got {value!r}")
    days: list[str] = []
    for item in value:
        name = item.lower()[:3] if isinstance(item, str) else None
        if name not in DAYS or not str(item).lower().startswith(name):
            raise BadRequest(field="when.days", reason=f"unknown day {item!r}: use {DAYS}")
        if name not in days:
            days.append(name)
    return tuple(sorted(days, key=DAYS.index))


def _day_of_month(value: object) -> str:
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text == "last" or (text.isdigit() and 1 <= int(text) <= 31):
        return text if text == "last" else str(int(text))
    raise BadRequest(field="when.day", reason=f"expected 1 to 31 or 'last', got {value!r}")


def _cron_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field="when.cron", reason=f"expected a cron expression, got {value!r}")
    if len(value) > MAX_CRON:
        raise BadRequest(field="when.cron", reason=f"longer than {MAX_CRON} characters")
    fields = value.split()
    if len(fields) not in (5, 6):
        raise BadRequest(
            field="when.cron",
            reason=f"expected 5 fields (minute hour day month weekday) or 6 (seconds first), "
            f"got {len(fields)} in {value!r}",
        )
    return " ".join(fields)


def _cron_trigger(expression: str, bounds: dict[str, Any]) -> CronTrigger:
    fields = expression.split()
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, day_of_week = fields
    try:
        day_of_week = _DOW_NUMBER.sub(_crontab_day, day_of_week)
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            **bounds,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequest(field="when.cron", reason=f"{exc} in {expression!r}") from None


def _crontab_day(match: re.Match[str]) -> str:
    number = int(match.group())
    if number >= len(_CRONTAB_DAYS):
        raise ValueError(f"day of week {number} is out of range 0-7")
    return _CRONTAB_DAYS[number]


__all__ = ["DAYS", "MonthlyTrigger", "When", "build_trigger", "check_when", "describe", "zone"]
