"""The console's Schedules pages over a real server (SQLite): the list with next firings, a
schedule with its history, the confirmations, enable / disable / run now (each a POST with
CSRF, its effect in the database), refusals, and administrators only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from engine import Engine
from engine.records import Schedule

from .console_pages import CONSOLE, console_server, csrf_of, page, signed_in, text_of
from .live_server import Live
from .support import REGISTRATION

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
EVERY_HOUR = {"kind": "interval", "every": 1, "unit": "hours"}


@pytest.fixture
def live(engine: Engine) -> Iterator[Live]:
    with console_server(engine, root="admin", ada="user") as server:
        yield server


def hourly(engine: Engine, name: str = "Hourly checks") -> Schedule:
    return engine.schedules.create(name=name, **REGISTRATION, source_id="hourly", when=EVERY_HOUR)


def confirm(client: httpx.Client, schedule_id: int, action: str) -> httpx.Response:
    """Open the action's confirmation page and post its form, as a person clicking would."""
    document = page(client, f"/schedules/{schedule_id}/confirm?action={action}")
    [form] = document.xpath("//main//form[@method='post']")
    return client.post(form.get("action"), data={"csrf_token": csrf_of(document)})


def test_the_list_shows_what_each_schedule_starts_and_its_next_firings(live: Live) -> None:
    schedule = hourly(live.engine)
    with signed_in(live, "root") as root:
        document = page(root, "/schedules")
    [row] = document.xpath("//table[@id='schedules']/tbody/tr")
    assert text_of(row, "./td[@data-label='Schedule']") == ["Hourly checks"]
    assert text_of(row, "./td[@data-label='Starts']") == [
        "Kinetic Request :: KEG Catalog > Conference Registration :: Process Registration"
    ]
    assert text_of(row, "./td[@data-label='When']") == [
        f"every hour from {schedule.when['start']} (UTC)"
    ]
    assert text_of(row, "./td[@data-label='State']") == ["Enabled"]
    times = row.xpath("./td[@data-label='Next firings']//time/@datetime")
    assert len(times) == 3
    upcoming = live.engine.schedules.next_fire_times(schedule, 3)
    assert [datetime.fromisoformat(t).timestamp() for t in times] == upcoming


def test_the_list_pages(live: Live) -> None:
    for n in range(52):
        hourly(live.engine, f"Schedule {n:02d}")
    with signed_in(live, "root") as root:
        first = page(root, "/schedules")
        second = page(root, "/schedules?offset=50")
    assert len(first.xpath("//table[@id='schedules']/tbody/tr")) == 50
    assert text_of(second, "//table[@id='schedules']/tbody/tr/td[1]") == [
        "Schedule 50",
        "Schedule 51",
    ]
    assert text_of(second, "//nav[@class='pager']/span") == ["51\u201352 of 52"]


def test_an_empty_list_says_how_to_make_one(live: Live) -> None:
    with signed_in(live, "root") as root:
        document = page(root, "/schedules")
    assert text_of(document, "//div[@class='empty']/p[1]") == ["No schedules yet."]
    assert "POST /api/tasks" in text_of(document, "//div[@class='empty']/p[2]")[0]


def test_disable_and_enable_after_confirming(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="treeflow.console")
    schedule = hourly(live.engine)
    with signed_in(live, "root") as root:
        shown = page(root, f"/schedules/{schedule.id}")
        assert text_of(shown, "//dd[@id='state']") == ["enabled"]
        assert len(shown.xpath("//ol[@id='upcoming']/li")) == 5
        confirmation = page(root, f"/schedules/{schedule.id}/confirm?action=disable")
        assert text_of(confirmation, "//h1") == ["Disable \u201cHourly checks\u201d?"]
        assert live.engine.schedules.get(schedule.id).enabled  # showing it changed nothing
        response = confirm(root, schedule.id, "disable")
        assert response.status_code == 303
        assert response.headers["location"] == f"{CONSOLE}/schedules/{schedule.id}?done=disable"
        assert live.engine.schedules.get(schedule.id).enabled is False
        after = page(root, f"/schedules/{schedule.id}?done=disable")
        assert text_of(after, "//p[@id='done']") == ["The schedule is disabled."]
        assert text_of(after, "//dd[@id='state']") == ["disabled"]
        assert text_of(after, "//p[@id='upcoming']") == ["None: enable it to fire again."]
        assert confirm(root, schedule.id, "enable").status_code == 303
        assert live.engine.schedules.get(schedule.id).enabled is True
    root_id = next(u.id for u in live.accounts.list_users() if u.name == "root")
    assert [r.getMessage() for r in caplog.records if r.name == "treeflow.console"] == [
        f"console: disable schedule {schedule.id} by root ({root_id})",
        f"console: enable schedule {schedule.id} by root ({root_id})",
    ]


def test_run_now_fires_once_and_the_history_shows_it(live: Live) -> None:
    schedule = hourly(live.engine)
    with signed_in(live, "root") as root:
        empty = page(root, f"/schedules/{schedule.id}")
        assert "It has not fired yet." in text_of(empty, "//div[@class='empty']")[0]
        response = confirm(root, schedule.id, "run-now")
        assert response.status_code == 303
        [firing] = live.engine.schedules.history(schedule.id)
        assert (firing.outcome, firing.manual) == ("Started", True)
        assert firing.run_id is not None
        assert live.engine.get_run(firing.run_id).source_id == "hourly"
        assert response.headers["location"].endswith(f"?done=run-now&run_id={firing.run_id}")
        after = page(root, response.headers["location"].removeprefix(CONSOLE))
    assert text_of(after, "//p[@id='done']") == [f"Fired now: run #{firing.run_id}."]
    [row] = after.xpath("//table[@id='history']/tbody/tr")
    assert text_of(row, "./td[@data-label='Outcome']") == ["Started run now"]
    assert row.xpath("./td[@data-label='Run']//a/@href") == [f"{CONSOLE}/runs/{firing.run_id}"]
    assert text_of(row, "./td[@data-label='Recorded by']") == [live.engine.name]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(live: Live) -> None:
    schedule = hourly(live.engine)
    with signed_in(live, "root") as root:
        for data in ({}, {"csrf_token": "forged"}):
            for action in ("disable", "run-now"):
                response = root.post(f"{CONSOLE}/schedules/{schedule.id}/{action}", data=data)
                assert response.status_code == 403, response.text
                assert "The form was refused" in response.text
    assert live.engine.schedules.get(schedule.id).enabled is True
    assert live.engine.schedules.count_history(schedule.id) == 0


def test_bad_actions_and_unknown_schedules_are_refused(live: Live) -> None:
    schedule = hourly(live.engine)
    with signed_in(live, "root") as root:
        page(root, f"/schedules/{schedule.id}/confirm?action=delete", status=400)
        page(root, "/schedules/999", status=404)
        token = csrf_of(page(root, f"/schedules/{schedule.id}/confirm?action=disable"))
        response = root.post(
            f"{CONSOLE}/schedules/{schedule.id}/delete", data={"csrf_token": token}
        )
        assert response.status_code == 400
        missing = root.post(f"{CONSOLE}/schedules/999/disable", data={"csrf_token": token})
        assert missing.status_code == 404
    assert live.engine.schedules.get(schedule.id).enabled is True


def test_schedules_are_for_administrators(live: Live) -> None:
    schedule = hourly(live.engine)
    with signed_in(live, "ada") as ada:
        for path in ("/schedules", f"/schedules/{schedule.id}"):
            page(ada, path, status=403)
        document = page(ada, "/instances")  # a page a plain user may open, for its token
        response = ada.post(
            f"{CONSOLE}/schedules/{schedule.id}/disable", data={"csrf_token": csrf_of(document)}
        )
        assert response.status_code == 403
    assert live.engine.schedules.get(schedule.id).enabled is True
