"""The Tasks API (``/api/tasks``) over a real server with engine workers and the scheduler running,
on SQLite and PostgreSQL.

Each test makes its own tasks and finds them by id, so the tests share one server per database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine
from .support import small_tree, wait_for

TICK = small_tree(
    "Tick",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
        "Echo": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ source.id }} {{ inputs['Colour'] }}"},
        },
    },
)
TASK: dict[str, Any] = {
    "name": "Nightly tick",
    "source_name": "Tests",
    "source_group": "Semantics",
    "tree_name": "Tick",
    "source_id": "from-a-task",
    "values": {"Colour": "blue"},
    "when": {"kind": "cron", "cron": "0 2 * * *"},
    "timezone": "Europe/Dublin",
}


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(
        request, tmp_path_factory, schedule_poll_seconds=0.2, poll_interval=0.05
    ) as engine:
        engine.load_tree(TICK)
        with live_server(engine, ServerSettings(workers=1)) as server:
            server.add_user("root", "admin")
            server.add_user("plain", "user")
            yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def create(admin: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = admin.post("/api/tasks", json=TASK | changes)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def total(admin: httpx.Client) -> int:
    return int(admin.get("/api/tasks").json()["total"])


def test_create_read_list_change_and_delete_a_task(admin: httpx.Client) -> None:
    task = create(admin)
    assert task["name"] == "Nightly tick"
    assert task["when"] == {"kind": "cron", "cron": "0 2 * * *"}
    assert task["results"] == '<results><result name="Colour">blue</result></results>'
    assert (task["enabled"], task["grace_seconds"], task["coalesce"]) == (True, 300, True)
    assert task["created_by"] == "root"
    assert task["next_fire_at"].endswith(("T02:00:00+00:00", "T01:00:00+00:00"))
    assert admin.get(f"/api/tasks/{task['id']}").json() == task

    other = create(admin, name="second")
    page = admin.get("/api/tasks", params={"limit": 1}).json()
    assert page["limit"] == 1 and page["total"] >= 2 and page["next"] is not None
    listed = admin.get("/api/tasks", params={"limit": 100}).json()["items"]
    assert [t["id"] for t in listed if t["id"] in (task["id"], other["id"])] == [
        task["id"],
        other["id"],
    ]

    patched = admin.patch(f"/api/tasks/{task['id']}", json={"enabled": False})
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["revision"] == task["revision"] + 1
    assert patched.json()["next_fire_time"] is None
    assert patched.json()["name"] == task["name"]

    replaced = admin.put(
        f"/api/tasks/{task['id']}",
        json=TASK | {"name": "Weekly", "when": {"kind": "weekly", "days": ["fri"], "time": "9:30"}},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["name"], body["enabled"]) == ("Weekly", True)
    assert body["when"] == {"kind": "weekly", "days": ["fri"], "time": "09:30:00"}

    assert admin.delete(f"/api/tasks/{task['id']}").status_code == 204
    gone = admin.get(f"/api/tasks/{task['id']}")
    assert gone.status_code == 404
    assert gone.json()["message"] == f"Unable to locate a schedule with the id {task['id']}"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"when": {"kind": "cron", "cron": "every tuesday"}}, "when.cron"),
        ({"when": {"kind": "once", "at": "2001-01-01T09:00:00Z"}}, "when.at"),
        ({"when": {"kind": "interval", "every": 0, "unit": "minutes"}}, "when.every"),
        ({"timezone": "Atlantis/Capital"}, "timezone"),
        ({"tree_name": "No Such Tree"}, "'No Such Tree'"),
        ({"values": None, "results": "<results><oops"}, "results XML"),
        ({"results": "<results/>"}, "give results or values, not both"),
    ],
)
def test_bad_input_is_400_naming_it_and_stores_nothing(
    admin: httpx.Client, changes: dict[str, Any], named: str
) -> None:
    before = total(admin)
    response = admin.post("/api/tasks", json=TASK | changes)
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
    assert total(admin) == before


def test_a_body_of_the_wrong_shape_is_422(admin: httpx.Client) -> None:
    before = total(admin)
    response = admin.post("/api/tasks", json=TASK | {"when": {"kind": "interval", "every": "x"}})
    assert response.status_code == 422
    assert admin.post("/api/tasks", json=TASK | {"colour": "red"}).status_code == 422
    assert total(admin) == before


def test_a_bad_change_is_refused_and_the_task_is_unchanged(admin: httpx.Client) -> None:
    task = create(admin)
    response = admin.patch(
        f"/api/tasks/{task['id']}", json={"when": {"kind": "cron", "cron": "* * * * * * *"}}
    )
    assert response.status_code == 400
    assert "when.cron" in response.json()["message"]
    assert admin.get(f"/api/tasks/{task['id']}").json() == task


def test_run_now_starts_a_run_that_the_workers_complete(live: Live, admin: httpx.Client) -> None:
    task = create(admin, enabled=False)
    response = admin.post(f"/api/tasks/{task['id']}/run-now")
    assert response.status_code == 202, response.text
    firing = response.json()
    assert (firing["outcome"], firing["manual"], firing["task_id"]) == ("Started", True, task["id"])

    def completed() -> bool:
        run = admin.get(f"/api/runs/{firing['run_id']}").json()
        return bool(run["status"] == "Completed")

    wait_for(completed)
    run = admin.get(f"/api/runs/{firing['run_id']}").json()
    assert run["source_id"] == "from-a-task"
    history = admin.get(f"/api/tasks/{task['id']}/history").json()
    assert [item["id"] for item in history["items"]] == [firing["id"]]


def test_a_task_fires_on_its_schedule_and_its_history_shows_it(admin: httpx.Client) -> None:
    task = create(admin, when={"kind": "interval", "every": 1, "unit": "seconds"})

    def fired() -> list[dict[str, Any]]:
        items = admin.get(f"/api/tasks/{task['id']}/history").json()["items"]
        return [item for item in items if item["outcome"] == "Started"]

    wait_for(lambda: len(fired()) >= 2)
    admin.patch(f"/api/tasks/{task['id']}", json={"enabled": False})
    firings = fired()
    assert all(not item["manual"] and item["run_id"] for item in firings)
    assert firings[0]["fire_time"] > firings[1]["fire_time"], "newest first"
    run = admin.get(f"/api/runs/{firings[0]['run_id']}").json()
    assert run["inputs"] == {"Colour": "blue"}


def test_a_one_off_fires_once(admin: httpx.Client) -> None:
    # Far enough ahead that a slow request on a loaded machine cannot find it in the past.
    task = create(admin, when={"kind": "once", "at": in_seconds(3)})
    wait_for(lambda: admin.get(f"/api/tasks/{task['id']}").json()["done"])
    items = admin.get(f"/api/tasks/{task['id']}/history").json()["items"]
    assert [item["outcome"] for item in items] == ["Started"]


ROUTES = [
    ("POST", "/api/tasks", TASK),
    ("GET", "/api/tasks", None),
    ("GET", "/api/tasks/1", None),
    ("PUT", "/api/tasks/1", TASK),
    ("PATCH", "/api/tasks/1", {"enabled": False}),
    ("DELETE", "/api/tasks/1", None),
    ("POST", "/api/tasks/1/run-now", None),
    ("GET", "/api/tasks/1/history", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_an_administrator(
    live: Live, method: str, path: str, body: dict[str, Any] | None
) -> None:
    with live.client() as anonymous:
        response = anonymous.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="treeflow"'
    with live.client(live.token("plain")) as plain:
        response = plain.request(method, path, json=body)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES[2:])
def test_an_unknown_task_is_404(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = admin.request(method, path.replace("/1", "/987654"), json=body)
    assert response.status_code == 404
    assert "987654" in response.json()["message"]


PROCESS_TASK: dict[str, Any] = {
    "name": "Training",
    "processName": "new-training-process",
    "fields": {"Reason": "Yearly refresher", "Days": 2},
    "when": {"kind": "cron", "cron": "0 2 * * *"},
}


def test_a_process_task_creates_instances_with_its_fields(live: Live, admin: httpx.Client) -> None:
    response = admin.post("/api/tasks", json=PROCESS_TASK)
    assert response.status_code == 201, response.text
    task = response.json()
    assert (task["processName"], task["fields"], task["instance"]) == (
        "new-training-process",
        {"Reason": "Yearly refresher", "Days": 2},
        None,
    )
    assert (task["source_name"], task["tree_name"], task["results"]) == ("", "", None)
    assert admin.get(f"/api/tasks/{task['id']}").json() == task

    fired = admin.post(f"/api/tasks/{task['id']}/run-now")
    assert fired.status_code == 202, fired.text
    firing = fired.json()
    assert firing["outcome"] == "Started" and firing["trigger_id"] and firing["run_id"]
    name = firing["instance"]
    got = admin.get(f"/api/instances/{name}")
    assert got.status_code == 200, got.text
    instance = got.json()
    assert (instance["processName"], instance["version"], instance["runId"]) == (
        "new-training-process",
        1,
        firing["run_id"],
    )
    assert {f["name"]: f["value"] for f in instance["fields"]} == {
        "Reason": "Yearly refresher",
        "Course": "To be chosen",
        "Days": 2,
        "Budget Code": "HR-TRAINING",
    }
    [root] = [user for user in live.accounts.list_users() if user.name == "root"]
    assert live.engine.get_instance(name).created_by == root.id
    history = admin.get(f"/api/tasks/{task['id']}/history").json()["items"]
    assert [(item["id"], item["instance"]) for item in history] == [(firing["id"], name)]

    copying = admin.patch(
        f"/api/tasks/{task['id']}", json={"instance": name, "fields": {"Course": "Go"}}
    )
    assert copying.status_code == 200, copying.text
    assert copying.json()["instance"] == name
    copied = admin.post(f"/api/tasks/{task['id']}/run-now").json()["instance"]
    fields = admin.get(f"/api/instances/{copied}").json()["fields"]
    assert {f["name"]: f["value"] for f in fields} == {
        "Reason": "Yearly refresher",
        "Course": "Go",
        "Days": 2,
        "Budget Code": "HR-TRAINING",
    }

    as_tree = admin.patch(f"/api/tasks/{task['id']}", json={"processName": None, **TASK})
    assert as_tree.status_code == 200, as_tree.text
    assert (as_tree.json()["processName"], as_tree.json()["tree_name"]) == (None, "Tick")
    assert as_tree.json()["fields"] is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"processName": "no-such-process"}, "Invalid process: no process is named"),
        ({"fields": {"Colour": "red"}}, "has no field 'Colour'"),
        ({"fields": {"Budget Code": "X"}}, "may not set 'Budget Code'"),
        ({"instance": "no-such-process-1"}, "Invalid instance: no instance is named"),
        ({"tree_name": "Tick"}, "name a process or a tree (tree_name), not both"),
        ({"processName": None}, "name a process, or a tree by source_name"),
        ({"values": {"Colour": "red"}}, "gives its inputs as fields"),
    ],
)
def test_a_bad_process_task_is_400_naming_it_and_stores_nothing(
    admin: httpx.Client, changes: dict[str, Any], named: str
) -> None:
    before = total(admin)
    response = admin.post("/api/tasks", json=PROCESS_TASK | changes)
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
    assert total(admin) == before


def test_a_process_task_fires_on_its_schedule(admin: httpx.Client) -> None:
    task = create(
        admin,
        **{field: "" for field in ("source_name", "source_group", "tree_name", "source_id")},
        values=None,
        processName="new-training-process",
        fields={"Reason": "every second"},
        when={"kind": "interval", "every": 1, "unit": "seconds"},
    )

    def fired() -> list[dict[str, Any]]:
        items = admin.get(f"/api/tasks/{task['id']}/history").json()["items"]
        return [item for item in items if item["outcome"] == "Started"]

    wait_for(lambda: len(fired()) >= 1)
    admin.patch(f"/api/tasks/{task['id']}", json={"enabled": False})
    firing = fired()[-1]
    assert not firing["manual"]
    instance = admin.get(f"/api/instances/{firing['instance']}").json()
    assert instance["runId"] == firing["run_id"]
    assert instance["fields"][0] == {
        "name": "Reason",
        "text": "every second",
        "value": "every second",
    }
