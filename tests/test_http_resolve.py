"""Resolving errors over HTTP (``POST /api/errors/{id}/resolve``), on SQLite and PostgreSQL.

The server runs engine workers (``ServerSettings.workers``): runs fail and resolutions are
applied by them, not by the test, which waits on the condition it expects (never a duration).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine
from .support import ExplodePlugin, small_tree, wait_for

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
TREE = {"source_name": "Tests", "source_group": "Resolve", "tree_name": "Explode Then Echo"}


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(
        request, tmp_path_factory, plugins=[ExplodePlugin()], poll_interval=0.05
    ) as engine:
        engine.load_tree(
            small_tree(
                TREE["tree_name"],
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                    "Send": {
                        "handler": "tests_explode_v1",
                        "parameters": {"to": "x"},
                        "connectors": [{"to": "Next"}],
                    },
                    "Next": {"handler": "utilities_echo_v1", "parameters": {"input": "on"}},
                },
            )
            | {"source": TREE["source_name"], "group": TREE["source_group"]}
        )
        with live_server(engine, ServerSettings(workers=2)) as server:
            server.add_user("root", "admin")
            server.add_user("ada", "user")
            yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


def run_body(admin: httpx.Client, run_id: int) -> dict[str, Any]:
    response = admin.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def failed_error(admin: httpx.Client) -> dict[str, Any]:
    """Start a run over HTTP; once the workers have failed it, its one error as listed."""
    response = admin.post(START_URL, data={**TREE, "source_id": secrets.token_hex(4)})
    assert response.status_code == 200, response.text
    trigger = admin.get(f"/api/triggers/{response.headers['X-ID']}").json()
    wait_for(lambda: run_body(admin, trigger["run_id"])["status"] == "Failed", timeout=30)
    [error] = admin.get("/api/errors", params={"run_id": trigger["run_id"]}).json()["items"]
    return dict(error)


def resolve(client: httpx.Client, error_id: str, **body: str) -> httpx.Response:
    return client.post(f"/api/errors/{error_id}/resolve", json=body)


def test_skip_task_over_http_completes_the_run_once_a_worker_applies_it(
    admin: httpx.Client,
) -> None:
    error = failed_error(admin)
    assert (error["type"], error["status"], error["resolution_action"]) == (
        "Handler Error",
        "Active",
        None,
    )

    response = resolve(admin, error["id"], action="Skip Task", message="mailed by hand")

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted == {
        "id": accepted["id"],
        "run_id": error["run_id"],
        "action": "Resolve",
        "status": "New",
    }
    wait_for(lambda: run_body(admin, error["run_id"])["status"] == "Completed", timeout=30)
    run = run_body(admin, error["run_id"])
    assert [task["name"] for task in run["tasks"]] == ["Start", "Send", "Next"]
    [listed] = admin.get("/api/errors", params={"run_id": error["run_id"]}).json()["items"]
    assert listed == run["errors"][0]
    assert listed["status"] == "Handled"
    assert (
        listed["resolution_action"],
        listed["resolution_message"],
        listed["resolved_by"],
        listed["resolution_trigger_id"],
    ) == ("Skip Task", "mailed by hand", "root", accepted["id"])
    assert listed["resolved_at"] >= listed["created_at"]
    trigger = admin.get(f"/api/triggers/{accepted['id']}").json()
    assert (trigger["action"], trigger["status"]) == ("Resolve", "Closed")


def test_an_action_the_type_does_not_allow_is_400_naming_the_allowed_ones(
    admin: httpx.Client,
) -> None:
    error = failed_error(admin)

    response = resolve(admin, error["id"], action="Continue Branch")

    assert (response.status_code, response.json()) == (
        400,
        {
            "status": 400,
            "message": "The action 'Continue Branch' cannot resolve a Handler Error: "
            "expected one of Retry Task, Skip Task, Do Nothing",
        },
    )
    [listed] = admin.get("/api/errors", params={"run_id": error["run_id"]}).json()["items"]
    assert listed == error  # nothing written


def test_an_unknown_error_id_is_404(admin: httpx.Client) -> None:
    response = resolve(admin, "no-such-error", action="Skip Task")

    assert (response.status_code, response.json()) == (
        404,
        {"status": 404, "message": "Unable to locate an error with the id 'no-such-error'"},
    )


def test_a_second_resolution_is_409(admin: httpx.Client) -> None:
    error = failed_error(admin)
    assert resolve(admin, error["id"], action="Do Nothing").status_code == 202

    response = resolve(admin, error["id"], action="Skip Task")

    assert response.status_code == 409
    assert response.json()["status"] == 409
    assert f"The error {error['id']!r} has already been resolved" in response.json()["message"]
    wait_for(lambda: run_body(admin, error["run_id"])["errors"][0]["status"] == "Handled")
    [listed] = admin.get("/api/errors", params={"run_id": error["run_id"]}).json()["items"]
    assert listed["resolution_action"] == "Do Nothing"  # the first one, not the refused one


def test_a_plain_user_gets_403_and_nothing_is_resolved(live: Live, admin: httpx.Client) -> None:
    error = failed_error(admin)

    with live.client(live.token("ada")) as client:
        response = resolve(client, error["id"], action="Skip Task")

    assert response.status_code == 403
    assert "user 'ada' has the role 'user'; this needs admin" in response.json()["message"]
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="treeflow", error="insufficient_scope"'
    )
    [listed] = admin.get("/api/errors", params={"run_id": error["run_id"]}).json()["items"]
    assert listed == error


def test_no_token_is_401(live: Live) -> None:
    with live.client() as client:
        response = resolve(client, "any", action="Skip Task")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="treeflow"'
