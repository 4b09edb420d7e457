"""Inspection and metrics over a real server, on SQLite and PostgreSQL.

``GET /api/runs/{id}``, ``/api/runs``, ``/api/triggers/{id}`` and ``/api/errors`` are compared
with bodies built here from the engine's own read models, field by field; lists are filtered by
a source id unique to each test, so the tests share one server per database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine import Run
from engine.server import ServerSettings
from engine.server.paging import MAX_ID

from .live_server import DATABASES, Live, live_server, module_engine
from .support import ExplodePlugin, small_tree

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED_URL = "/kineticTask/rest/v1/Trigger/createDeferred"
REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
EXPLODE = {"source_name": "Tests", "source_group": "Inspection", "tree_name": "Explode"}
SUMMARY = "tests_explode_v1 raised RuntimeError: the mail server said no"
PAGE_CAP = 20
INVALID_TOKEN = "security token is invalid or has expired"


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory, plugins=[ExplodePlugin()]) as engine:
        engine.load_tree(
            small_tree(
                "Explode",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                    "Send": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
                },
            )
            | {"source": EXPLODE["source_name"], "group": EXPLODE["source_group"]}
        )
        settings = ServerSettings(workers=0, max_page_size=PAGE_CAP)
        with live_server(engine, settings) as server:
            server.add_user("root", "admin")
            server.add_user("ada", "user")
            yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


@pytest.fixture
def source_id() -> str:
    return f"insp-{secrets.token_hex(4)}"


def start(admin: httpx.Client, form: dict[str, str], source_id: str) -> int:
    response = admin.post(START_URL, data={**form, "source_id": source_id})
    assert response.status_code == 200, response.text
    return int(response.headers["X-ID"])


def started_run(live: Live, admin: httpx.Client, form: dict[str, str], source_id: str) -> Run:
    trigger_id = start(admin, form, source_id)
    live.engine.run_until_idle()
    return live.engine.get_run(live.engine.get_trigger(trigger_id).run_id)


def summary_body(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status.value,
        "source_name": run.source_name,
        "source_group": run.source_group,
        "tree_name": run.tree_name,
        "tree_version": run.tree_version,
        "source_id": run.source_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "parent_run_id": run.parent_run_id,
        "parent_task_id": run.parent_task_id,
        "again_of": run.again_of,
    }


def error_bodies(run: Run) -> list[dict[str, Any]]:
    return [
        {
            "id": error.id,
            "run_id": run.id,
            "type": error.type,
            "status": error.status,
            "node": error.node,
            "loop_index": error.loop_index,
            "summary": error.summary,
            "text": error.text,
            "task_id": error.task_id,
            "trigger_id": error.trigger_id,
            "connector_to": error.connector_to,
            "created_at": error.created_at,
            "resolution_action": error.resolution_action,
            "resolution_message": error.resolution_message,
            "resolved_by": error.resolved_by,
            "resolved_at": error.resolved_at,
            "resolution_trigger_id": error.resolution_trigger_id,
        }
        for error in reversed(run.errors)  # the list is newest first
    ]


# -- runs ----------------------------------------------------------------------------------------


def test_run_shows_status_inputs_values_tasks_with_tokens(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    results = '<results><result name="Note">hello</result></results>'
    response = admin.post(
        START_URL, data={**REGISTRATION, "source_id": source_id, "results": results}
    )
    live.engine.run_until_idle()
    run = live.engine.get_run(live.engine.get_trigger(int(response.headers["X-ID"])).run_id)

    body = admin.get(f"/api/runs/{run.id}")

    assert body.status_code == 200
    assert body.headers["Content-Type"] == "application/json"
    assert body.json() == {
        **summary_body(run),
        "inputs": {"Note": "hello"},
        "values": dict(run.values),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "handler_id": task.handler_id,
                "status": task.status.value,
                "results": dict(task.results),
                "token": task.token,
                "loop_index": task.loop_index,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
                "attempt": task.attempt,
                "last_error": task.last_error,
            }
            for task in run.tasks
        ],
        "errors": [],
        "children": [],
    }
    assert body.json()["status"] == "Started"
    assert body.json()["tree_version"] == 1
    review = next(task for task in body.json()["tasks"] if task["name"] == "Review")
    assert (review["status"], review["token"]) == ("Deferred", run.open_tokens["Review"])


def test_run_shows_its_errors(live: Live, admin: httpx.Client, source_id: str) -> None:
    run = started_run(live, admin, EXPLODE, source_id)

    body = admin.get(f"/api/runs/{run.id}").json()

    assert body["status"] == "Failed"
    assert body["errors"] == error_bodies(run)
    [error] = body["errors"]
    assert (error["type"], error["status"], error["node"], error["summary"]) == (
        "Handler Error",
        "Active",
        "Send",
        SUMMARY,
    )


def test_run_shows_the_routine_runs_it_called_and_a_routine_run_its_caller(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    starter = (
        "<results><result name='Employee'>Ada</result><result name='Team'>Ops</result>"
        "<result name='Buddy'>Lin</result></results>"
    )
    form = {
        "source_name": "Kinetic Request",
        "source_group": "HR > Starters",
        "tree_name": "Welcome Starter",
        "results": starter,
    }
    run = started_run(live, admin, form, source_id)

    body = admin.get(f"/api/runs/{run.id}").json()

    calls = [run.task("Welcome Starter").id, run.task("Welcome Buddy").id]
    assert body["status"] == "Completed"
    assert (body["parent_run_id"], body["parent_task_id"]) == (None, None)
    assert [(c["task_id"], c["tree_name"], c["status"]) for c in body["children"]] == [
        (calls[0], "Compose Welcome", "Completed"),
        (calls[1], "Compose Welcome", "Completed"),
    ]
    child = admin.get(f"/api/runs/{body['children'][0]['run_id']}").json()
    assert (child["parent_run_id"], child["parent_task_id"]) == (run.id, calls[0])
    assert child["inputs"] == {"Name": "Ada", "Team": "Ops"}
    assert child["children"] == []
    listed = admin.get("/api/runs", params={"source_id": source_id}).json()["items"]
    assert [(r["id"], r["parent_run_id"]) for r in listed] == [
        (body["children"][1]["run_id"], run.id),
        (body["children"][0]["run_id"], run.id),
        (run.id, None),
    ]


def test_a_run_shows_the_definition_of_its_own_tree_version(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    def versioned(text: str) -> dict[str, Any]:
        tree = small_tree(
            "Versioned",
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Wait"}]},
                "Wait": {"handler": "utilities_defer_v1", "defers": True},
            },
        )
        tree["nodes"]["Wait"]["parameters"] = {"deferred_value": text}
        return tree | {"source": "Tests", "group": "Inspection"}

    form = {"source_name": "Tests", "source_group": "Inspection", "tree_name": "Versioned"}
    live.engine.load_tree(versioned(f"first {source_id}"))
    old = started_run(live, admin, form, source_id)
    live.engine.load_tree(versioned(f"second {source_id}"))
    new = started_run(live, admin, form, source_id)

    old_tree = admin.get(f"/api/runs/{old.id}/tree").json()
    new_tree = admin.get(f"/api/runs/{new.id}/tree").json()

    assert old_tree == {
        "run_id": old.id,
        "source_name": "Tests",
        "source_group": "Inspection",
        "tree_name": "Versioned",
        "tree_version": old.tree_version,
        "definition": versioned(f"first {source_id}"),
    }
    assert new_tree["tree_version"] == old.tree_version + 1
    assert new_tree["definition"] == versioned(f"second {source_id}")
    missing = admin.get(f"/api/runs/{MAX_ID}/tree")
    assert missing.status_code == 404
    assert missing.json()["message"] == f"Unable to locate a run with the id {MAX_ID}"


def test_runs_are_listed_newest_first_by_source_id_with_total(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    runs = [started_run(live, admin, REGISTRATION, source_id) for _ in range(3)]

    body = admin.get("/api/runs", params={"source_id": source_id}).json()

    assert body == {
        "items": [summary_body(live.engine.get_run(run.id)) for run in reversed(runs)],
        "total": 3,
        "limit": PAGE_CAP,  # the default, 50, cut to the cap
        "offset": 0,
        "next": None,
    }


def test_runs_are_paged_with_a_next_link_keeping_the_filters(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    ids = [started_run(live, admin, REGISTRATION, source_id).id for _ in range(3)]

    first = admin.get("/api/runs", params={"source_id": source_id, "limit": 2}).json()
    second = admin.get(first["next"]).json()

    assert [run["id"] for run in first["items"]] == ids[::-1][:2]
    assert first["next"] == f"/api/runs?source_id={source_id}&limit=2&offset=2"
    assert [run["id"] for run in second["items"]] == ids[:1]
    assert (second["total"], second["offset"], second["next"]) == (3, 2, None)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "Failed"}, ["Explode"]),
        ({"status": "Started"}, ["Process Registration"]),
        ({"tree_name": "Explode"}, ["Explode"]),
        ({"tree_name": "Process Registration", "status": "Failed"}, []),
    ],
    ids=["status-failed", "status-started", "tree-name", "tree-and-status"],
)
def test_runs_are_filtered_by_status_and_tree(
    live: Live,
    admin: httpx.Client,
    source_id: str,
    params: dict[str, str],
    expected: list[str],
) -> None:
    started_run(live, admin, REGISTRATION, source_id)
    started_run(live, admin, EXPLODE, source_id)

    body = admin.get("/api/runs", params={"source_id": source_id, **params}).json()

    assert [run["tree_name"] for run in body["items"]] == expected
    assert body["total"] == len(expected)


def test_a_status_that_is_not_a_run_status_is_refused_naming_the_statuses(
    admin: httpx.Client,
) -> None:
    response = admin.get("/api/runs", params={"status": "Running"})

    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["query", "status"]
    assert detail["msg"] == (
        "Input should be 'Staged', 'Started', 'Completed', 'Failed' or 'Cancelled'"
    )


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            "/api/runs",
            {"limit": PAGE_CAP + 1},
            f"Invalid limit: must be between 1 and {PAGE_CAP}, not {PAGE_CAP + 1}",
        ),
        ("/api/runs", {"limit": 0}, f"Invalid limit: must be between 1 and {PAGE_CAP}, not 0"),
        ("/api/runs", {"offset": -1}, "Invalid offset: must be 0 or more, not -1"),
        (
            "/api/errors",
            {"limit": PAGE_CAP + 1},
            f"Invalid limit: must be between 1 and {PAGE_CAP}, not {PAGE_CAP + 1}",
        ),
        (
            "/api/errors",
            {"offset": 5 * 10**21},
            f"Invalid offset: must be at most 2147483647, not {5 * 10**21}",
        ),
        ("/api/runs", {"source_id": "a\x00b"}, "Invalid source_id: contains a NUL character"),
        ("/api/errors", {"type": "x" * 4097}, "Invalid type: longer than 4096 characters"),
    ],
    ids=[
        "over-cap",
        "zero",
        "negative-offset",
        "errors-over-cap",
        "errors-offset-overflow",
        "nul",
        "too-long",
    ],
)
def test_paging_over_the_cap_and_bad_filters_are_refused(
    admin: httpx.Client, path: str, params: dict[str, object], message: str
) -> None:
    response = admin.get(path, params=params)

    assert (response.status_code, response.json()) == (400, {"status": 400, "message": message})


# -- triggers ------------------------------------------------------------------------------------


def trigger_body(live: Live, trigger_id: int) -> dict[str, Any]:
    trigger = live.engine.get_trigger(trigger_id)
    return {
        "id": trigger.id,
        "action": trigger.action.value,
        "status": trigger.status.value,
        "run_id": trigger.run_id,
        "task_id": trigger.task_id,
        "token": trigger.token,
        "message": trigger.message,
        "created_at": trigger.created_at,
        "closed_at": trigger.closed_at,
        "engine": trigger.engine,
        "error": trigger.error,
        "requested_by": trigger.requested_by,
        "node": trigger.node,
    }


def test_a_trigger_shows_its_run_before_and_after_processing(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    trigger_id = start(admin, REGISTRATION, source_id)
    before = admin.get(f"/api/triggers/{trigger_id}").json()
    live.engine.run_until_idle()
    after = admin.get(f"/api/triggers/{trigger_id}").json()

    run_id = live.engine.get_trigger(trigger_id).run_id
    assert before == trigger_body(live, trigger_id) | {
        "status": "New",
        "closed_at": None,
        "engine": None,
    }
    assert (before["action"], before["run_id"]) == ("Root", run_id)
    assert after == trigger_body(live, trigger_id)
    assert (after["status"], after["engine"]) == ("Closed", live.engine.name)
    assert after["closed_at"] >= after["created_at"]


def test_a_deferred_trigger_names_its_task_and_token(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    run = started_run(live, admin, REGISTRATION, source_id)
    token = run.open_tokens["Review"]
    response = admin.post(DEFERRED_URL, data={"token": token, "action": "Complete"})

    body = admin.get(f"/api/triggers/{response.headers['X-ID']}").json()

    assert body == trigger_body(live, int(response.headers["X-ID"]))
    assert (body["action"], body["run_id"], body["token"]) == ("Complete", run.id, token)
    assert body["task_id"] == run.task("Review").id


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/runs/987654321", "Unable to locate a run with the id 987654321"),
        ("/api/triggers/987654321", "Unable to locate a trigger with the id 987654321"),
    ],
    ids=["run", "trigger"],
)
def test_unknown_ids_are_404_in_json(admin: httpx.Client, path: str, message: str) -> None:
    response = admin.get(path)

    assert (response.status_code, response.json()) == (404, {"status": 404, "message": message})
    assert response.headers["Content-Type"] == "application/json"


# -- errors --------------------------------------------------------------------------------------


def test_errors_are_listed_by_run_newest_first(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    first = started_run(live, admin, EXPLODE, source_id)
    second = started_run(live, admin, EXPLODE, source_id)

    body = admin.get("/api/errors", params={"run_id": second.id}).json()
    both = [
        admin.get("/api/errors", params={"run_id": run.id}).json()["items"][0]["run_id"]
        for run in (first, second)
    ]

    assert body == {
        "items": error_bodies(second),
        "total": 1,
        "limit": PAGE_CAP,  # the default, 50, cut to the cap
        "offset": 0,
        "next": None,
    }
    assert both == [first.id, second.id]


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"status": "Active", "type": "Handler Error"}, True),
        ({"status": "Handled"}, False),
        ({"type": "Connector Error"}, False),
    ],
    ids=["active-handler-error", "handled", "other-type"],
)
def test_errors_are_filtered_by_status_and_type(
    live: Live, admin: httpx.Client, source_id: str, params: dict[str, str], found: bool
) -> None:
    run = started_run(live, admin, EXPLODE, source_id)

    body = admin.get("/api/errors", params={"run_id": run.id, **params}).json()

    assert body["items"] == (error_bodies(run) if found else [])
    assert body["total"] == int(found)


def test_errors_are_paged(live: Live, admin: httpx.Client, source_id: str) -> None:
    for _ in range(3):
        started_run(live, admin, EXPLODE, source_id)
    params = {"type": "Handler Error", "status": "Active", "limit": 1}

    first = admin.get("/api/errors", params=params).json()
    second = admin.get(first["next"]).json()

    assert first["total"] >= 3
    assert first["next"] == "/api/errors?type=Handler+Error&status=Active&limit=1&offset=1"
    assert second["offset"] == 1
    assert second["items"][0]["id"] != first["items"][0]["id"]


def test_an_error_status_that_is_not_one_is_refused(admin: httpx.Client) -> None:
    response = admin.get("/api/errors", params={"status": "Open"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Input should be 'Active' or 'Handled'"


# -- who may inspect -----------------------------------------------------------------------------

PATHS = ["/api/runs/1", "/api/runs/1/tree", "/api/runs", "/api/triggers/1", "/api/errors"]
ADMIN_PATHS = ["/api/runs/1/tree", "/api/triggers/1", "/api/errors"]


def test_a_plain_user_reads_its_own_runs_only(
    live: Live, admin: httpx.Client, source_id: str
) -> None:
    others = started_run(live, admin, REGISTRATION, source_id)
    with live.client(live.token("ada")) as ada:
        own = started_run(live, ada, REGISTRATION, source_id)
        assert ada.get(f"/api/runs/{own.id}").json()["id"] == own.id
        refused = ada.get(f"/api/runs/{others.id}")
        listed = ada.get("/api/runs", params={"source_id": source_id}).json()
    assert refused.status_code == 404
    assert refused.json()["message"] == f"Unable to locate a run with the id {others.id}"
    assert [item["id"] for item in listed["items"]] == [own.id]
    assert listed["total"] == 1
    everyone = admin.get("/api/runs", params={"source_id": source_id}).json()
    assert [item["id"] for item in everyone["items"]] == [own.id, others.id]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_a_plain_user_gets_403_insufficient_scope(live: Live, path: str) -> None:
    with live.client(live.token("ada")) as client:
        response = client.get(path)

    message = "user 'ada' has the role 'user'; this needs admin"
    assert response.status_code == 403
    assert response.json()["status"] == 403
    assert message in response.json()["message"]
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="treeflow", error="insufficient_scope"'
    )


@pytest.mark.parametrize("path", PATHS)
def test_no_token_is_401_with_a_bare_challenge(live: Live, path: str) -> None:
    with live.client() as client:
        response = client.get(path)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="treeflow"'


@pytest.mark.parametrize("path", PATHS)
def test_an_expired_token_is_401_invalid_token(live: Live, path: str) -> None:
    token = live.token("root")
    live.clock.advance(300)
    try:
        with live.client(token) as client:
            response = client.get(path)
    finally:
        live.clock.advance(-300)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="treeflow", error="invalid_token", error_description="{INVALID_TOKEN}"'
    )


@pytest.mark.parametrize("path", ["/api/runs/2147483648", "/api/triggers/0"], ids=["over", "zero"])
def test_an_id_outside_the_columns_range_is_refused_as_a_bad_parameter(
    admin: httpx.Client, path: str
) -> None:
    response = admin.get(path)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "path"
