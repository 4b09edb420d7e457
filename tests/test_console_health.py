"""The console's Health page over a real server (SQLite): the backlog (open and due), claims
and their leases, which processes closed the latest triggers, recent errors, the scheduler,
the live part htmx refreshes, and administrators only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine import Engine
from engine.store import queue

from .console_pages import CONSOLE, console_server, page, signed_in, text_of
from .live_server import Live
from .support import ExplodePlugin, small_tree

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    with Engine(database_url, plugins=[ExplodePlugin()]) as engine:
        engine.load_tree(
            small_tree(
                "Explode",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Boom"}]},
                    "Boom": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
                },
            )
        )
        with console_server(engine, root="admin", ada="user") as server:
            yield server


EXPLODE = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Explode"}


def test_the_backlog_claims_and_closers_are_shown(live: Live) -> None:
    engine = live.engine
    for n in range(3):
        engine.create_start(**EXPLODE, source_id=f"queued-{n}")
    with signed_in(live, "root") as root:
        queued = page(root, "/health")
        assert text_of(queued, "//ul[@id='backlog-totals']/li")[:2] == ["Open 3", "Due 3"]
        [row] = queued.xpath("//table[@id='backlog']/tbody/tr")
        assert text_of(row, "./td")[:4] == ["default", "New", "3", "3"]
        assert row.xpath("./td[5]/time/@datetime") != []
        with engine.database.write() as connection:
            [claimed] = queue.claim(
                connection, claim_id="feedc0de", now=engine.clock(), lease_seconds=60, limit=1
            )
        during = page(root, "/health")
        assert text_of(during, "//table[@id='claims']/tbody/tr/td[1]") == ["feedc0de"]
        assert text_of(during, "//table[@id='claims']/tbody/tr/td[2]") == ["1"]  # triggers
        assert text_of(during, "//table[@id='claims']/tbody/tr/td[3]") == ["1"]  # runs leased
        with engine.database.write() as connection:
            queue.release(connection, claim_id="feedc0de", trigger_ids=[claimed.id])
        engine.run_until_idle()
        drained = page(root, "/health")
    assert text_of(drained, "//ul[@id='backlog-totals']/li")[:2] == ["Open 0", "Due 0"]
    assert "The queue is empty" in text_of(drained, "//p[@class='empty']")[0]
    assert text_of(drained, "//table[@id='closers']/tbody/tr/td[1]") == [
        f"{engine.name} this server"
    ]
    assert text_of(drained, "//table[@id='closers']/tbody/tr/td[2]") == ["3"]
    rows = drained.xpath("//table[@id='recent-errors']/tbody/tr")
    assert len(rows) == 3
    assert {tuple(text_of(r, "./td[3]")) for r in rows} == {("Boom",)}
    assert text_of(drained, "//main//a[@href='/console/errors']") == ["3 active errors"]


def test_the_scheduler_and_the_live_part(live: Live) -> None:
    engine = live.engine
    schedule = engine.schedules.create(
        name="Daily", **EXPLODE, when={"kind": "interval", "every": 1, "unit": "days"}
    )
    engine.schedules.run_now(schedule.id)
    with signed_in(live, "root") as root:
        document = page(root, "/health")
        [live_part] = document.xpath("//div[@id='health']")
        assert live_part.get("hx-get") == f"{CONSOLE}/health/live"
        assert live_part.get("hx-trigger") == "every 5s"
        leader = text_of(document, "//p[@id='leader']")[0]
        assert leader.startswith("This server does not run the scheduler (SQLite")
        assert f"The latest firing was recorded by {engine.name}" in leader
        partial = root.get(f"{CONSOLE}/health/live")
    assert partial.status_code == 200
    assert partial.text.startswith('<div id="health"')
    assert "<html" not in partial.text


def test_an_idle_engine_says_what_to_do(live: Live) -> None:
    with signed_in(live, "root") as root:
        document = page(root, "/health")
    assert "Start treeflow serve with workers" in text_of(document, "//div[@id='health']")[0]
    assert text_of(document, "//main//a[@href='/console/errors']") == ["0 active errors"]


def test_health_is_for_administrators(live: Live) -> None:
    with signed_in(live, "ada") as ada:
        page(ada, "/health", status=403)
        assert ada.get(f"{CONSOLE}/health/live").status_code == 403
