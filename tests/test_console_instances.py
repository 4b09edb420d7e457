"""The console's Instances pages over a real server (SQLite): instances by process with their
fields and versions, paging and the process filter, one instance's page, and who sees what
(a plain user its own instances only, by the list and by direct URL; an administrator every
one, with the processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine import Engine

from .console_pages import CONSOLE, console_server, page, signed_in, text_of
from .live_server import Live

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PROCESS = "new-training-process"


@pytest.fixture
def live(engine: Engine) -> Iterator[Live]:
    with console_server(engine, root="admin", ada="user", bob="user") as server:
        yield server


def user_id(live: Live, name: str) -> str:
    [user] = [u for u in live.accounts.list_users() if u.name == name]
    return user.id


def test_a_plain_user_sees_its_own_instances_with_fields_and_versions(live: Live) -> None:
    engine = live.engine
    ada, bob = user_id(live, "ada"), user_id(live, "bob")
    mine = engine.create_instance(PROCESS, {"Reason": "New role", "Days": 2}, created_by=ada)
    theirs = engine.create_instance(PROCESS, {"Reason": "Bob's"}, created_by=bob)
    engine.patch_instance_fields(mine.name, {"Course": "Rust"})
    with signed_in(live, "ada") as client:
        document = page(client, "/instances")
        [row] = document.xpath("//table[@id='instances']/tbody/tr")
        assert text_of(row, "./td[@data-label='Instance']") == [mine.name]
        assert text_of(row, "./td[@data-label='Process']") == [f"{PROCESS} v1"]
        assert text_of(row, "./td[@data-label='Version']") == ["2"]
        assert text_of(row, "./td[@data-label='Fields']") == [
            "Reason: New role; Course: Rust; Days: 2; Budget Code: HR-TRAINING"
        ]
        assert document.xpath("//table[@id='processes']") == []  # processes: administrators'
        one = page(client, f"/instances/{mine.name}")
        assert text_of(one, "//dd[@id='version']")[0].startswith("2 ")
        assert text_of(one, "//table[@id='fields']/tbody/tr/td[@data-label='Value']") == [
            '"New role"',
            '"Rust"',
            "2",
            '"HR-TRAINING"',
        ]
        assert one.xpath("//a[starts-with(@href, '/console/runs/')]/@href") == [
            f"{CONSOLE}/runs/{mine.run_id}"
        ]
        refused = page(client, f"/instances/{theirs.name}", status=404)
        assert theirs.name in refused.text_content()
        page(client, "/instances/no-such-instance-1", status=404)


def test_an_administrator_sees_every_instance_and_the_processes(live: Live) -> None:
    engine = live.engine
    for name in ("ada", "bob"):
        engine.create_instance(PROCESS, created_by=user_id(live, name))
    with signed_in(live, "root") as root:
        document = page(root, "/instances")
        assert text_of(document, "//table[@id='instances']/tbody/tr/td[1]") == [
            f"{PROCESS}-2",
            f"{PROCESS}-1",
        ]
        [process] = document.xpath(f"//table[@id='processes']/tbody/tr[td[1]/a = '{PROCESS}']")
        assert text_of(process, "./td[@data-label='Fields']") == [
            "Reason, Course, Days, Budget Code (fixed)"
        ]
        assert process.xpath("./td[1]/a/@href") == [f"{CONSOLE}/instances?process={PROCESS}"]
        filtered = page(root, f"/instances?process={PROCESS}")
        assert len(filtered.xpath("//table[@id='instances']/tbody/tr")) == 2
        none = page(root, "/instances?process=other-process")
        assert text_of(none, "//div[@class='empty']/p[1]") == ["No instance of other-process."]


def test_the_list_pages_newest_first(live: Live) -> None:
    ada = user_id(live, "ada")
    for _ in range(53):
        live.engine.create_instance(PROCESS, created_by=ada)
    with signed_in(live, "ada") as client:
        first = page(client, "/instances")
        second = page(client, "/instances?offset=50")
    assert len(first.xpath("//table[@id='instances']/tbody/tr")) == 50
    assert text_of(first, "//table[@id='instances']/tbody/tr[1]/td[1]") == [f"{PROCESS}-53"]
    assert text_of(second, "//table[@id='instances']/tbody/tr/td[1]") == [
        f"{PROCESS}-3",
        f"{PROCESS}-2",
        f"{PROCESS}-1",
    ]
    assert text_of(second, "//nav[@class='pager']/span") == ["51\u201353 of 53"]


def test_empty_states_say_what_to_do_next(live: Live) -> None:
    live.engine.create_instance(PROCESS, created_by=user_id(live, "bob"))
    with signed_in(live, "ada") as client:
        document = page(client, "/instances")
    assert text_of(document, "//div[@class='empty']/p[1]") == ["You have created no instances yet."]
    assert "POST /api/instances/create" in text_of(document, "//div[@class='empty']/p[2]")[0]
