"""The ``when`` of a schedule: checks, the month interval, and crontab's weekday numbers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine import BadRequest
from engine.schedule.when import MonthlyTrigger, build_trigger, check_when, zone

DUBLIN = ZoneInfo("Europe/Dublin")
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=DUBLIN).timestamp()


def test_a_month_interval_keeps_its_day_and_clamps_it_to_short_months() -> None:
    trigger = MonthlyTrigger(1, datetime(2027, 1, 31, 9, 0, tzinfo=DUBLIN))
    fired: list[datetime] = []
    previous = None
    now = datetime(2027, 1, 1, tzinfo=DUBLIN)
    for _ in range(4):
        previous = trigger.get_next_fire_time(previous, now)
        assert previous is not None
        fired.append(previous)
    assert [(d.month, d.day, d.hour) for d in fired] == [
        (1, 31, 9),
        (2, 28, 9),
        (3, 31, 9),
        (4, 30, 9),
    ]
    assert fired[2].utcoffset() != fired[0].utcoffset(), "09:00 local time across summer time"


def test_every_three_months_from_a_start_in_the_past() -> None:
    trigger = MonthlyTrigger(3, datetime(2025, 11, 15, 8, 0, tzinfo=DUBLIN))
    nxt = trigger.get_next_fire_time(None, datetime(2026, 6, 1, tzinfo=DUBLIN))
    assert nxt == datetime(2026, 8, 15, 8, 0, tzinfo=DUBLIN)


def test_an_interval_without_start_counts_from_one_interval_after_now() -> None:
    when = check_when({"kind": "interval", "every": 2, "unit": "months"}, tz=DUBLIN, now=NOW)
    assert when.start == "2026-03-10T12:00:00+00:00"
    when = check_when({"kind": "interval", "every": 90, "unit": "minutes"}, tz=DUBLIN, now=NOW)
    assert when.start == "2026-01-10T13:30:00+00:00"


@pytest.mark.parametrize(
    ("cron", "weekday"),
    [
        ("0 9 * * 0", "Sunday"),
        ("0 9 * * 7", "Sunday"),
        ("0 9 * * 1", "Monday"),
        ("0 9 * * sat", "Saturday"),
    ],
)
def test_cron_weekday_numbers_are_crontabs(cron: str, weekday: str) -> None:
    when = check_when({"kind": "cron", "cron": cron}, tz=DUBLIN, now=NOW)
    nxt = build_trigger(when, DUBLIN).get_next_fire_time(None, datetime.fromtimestamp(NOW, DUBLIN))
    assert nxt is not None and nxt.strftime("%A") == weekday and nxt.hour == 9


def test_a_six_field_cron_has_seconds_first() -> None:
    when = check_when({"kind": "cron", "cron": "*/10 * * * * *"}, tz=DUBLIN, now=NOW)
    start = datetime.fromtimestamp(NOW, DUBLIN)
    nxt = build_trigger(when, DUBLIN).get_next_fire_time(None, start)
    assert nxt is not None and (nxt - start).total_seconds() == 0


def test_weekdays_skip_the_weekend() -> None:
    when = check_when({"kind": "weekdays", "time": "08:30"}, tz=DUBLIN, now=NOW)  # a Saturday
    nxt = build_trigger(when, DUBLIN).get_next_fire_time(None, datetime.fromtimestamp(NOW, DUBLIN))
    assert nxt == datetime(2026, 1, 12, 8, 30, tzinfo=DUBLIN)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "cron", "cron": "* * * * 8"}, "when.cron"),
        ({"kind": "interval", "every": True, "unit": "days"}, "when.every"),
        ({"kind": "interval", "every": 10**9, "unit": "seconds"}, "when.every"),
        ({"kind": "once", "at": "tomorrow"}, "when.at"),
        ({"kind": "weekly", "days": []}, "when.days"),
        ({"kind": "cron", "cron": "0 0 * * *", "end": "2025-01-01T00:00"}, "when"),
        (
            {
                "kind": "interval",
                "every": 1,
                "unit": "days",
                "start": "2027-01-01",
                "end": "2026-12-01",
            },
            "when.end",
        ),
        ({"kind": "cron", "cron": "0 0 * * *", "colour": "red"}, "when"),
        ("daily", "when"),
    ],
)
def test_bad_whens_are_refused_naming_the_field(data: object, field: str) -> None:
    with pytest.raises(BadRequest) as raised:
        check_when(data, tz=DUBLIN, now=NOW)  # type: ignore[arg-type]
    assert raised.value.field == field


@pytest.mark.parametrize("name", ["", "Nowhere/Land", "../../etc/passwd", "UTC\x00", 5])
def test_unknown_time_zones_are_refused(name: object) -> None:
    with pytest.raises(BadRequest, match="timezone"):
        zone(name)
