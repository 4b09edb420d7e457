"""Run control over HTTP on a live server: cancel, run again, manual trigger, and their metrics.

The server runs engine workers: the test waits on the condition it expects, never a duration.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from engine import Handler, HandlerContext, hookimpl
from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine
from .support import ExplodePlugin, approval_tree, small_tree, wait_for
from .test_http_resolve import run_body

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED_URL = "/kineticTask/rest/v1/Trigger/createDeferred"
KEY = {"source_name": "Tests", "source_group": "Semantics"}
NAME = '<results><result name="Name">Ada</result></results>'


class FailsOnce:
    """``tests_fails_once_v1``: each task's first call raises, its second answers."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def execute(self, context: HandlerContext) -> dict[str, str]:
        if context.task_id not in self.seen:
            self.seen.add(context.task_id)
            raise ConnectionError("first call fails")
        return {}

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [Handler("tests_fails_once_v1", self.execute)]


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(
        request, tmp_path_factory, plugins=[ExplodePlugin(), FailsOnce()], poll_interval=0.05
    ) as engine:
        engine.load_tree(approval_tree())
        engine.load_tree(
            small_tree(
                "Flaky",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Call"}]},
                    "Call": {
                        "handler": "tests_fails_once_v1",
                        "retry": {"attempts": 2, "backoff": {"initial": "10ms"}},
                    },
                },
            )
        )
        with live_server(engine, ServerSettings(workers=2)) as server:
            server.add_user("root", "admin")
            server.add_user("ada", "user")
            yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


def _deferred_run(admin: httpx.Client) -> tuple[int, str]:
    """A run of Approval waiting at Approve: (its id, Approve's token)."""
    fields = {**KEY, "tree_name": "Approval", "source_id": secrets.token_hex(4), "results": NAME}
    response = admin.post(START_URL, data=fields)
    assert response.status_code == 200, response.text
    run_id = admin.get(f"/api/triggers/{response.headers['X-ID']}").json()["run_id"]
    wait_for(lambda: any(t["token"] for t in run_body(admin, run_id)["tasks"]), timeout=30)
    token = next(t["token"] for t in run_body(admin, run_id)["tasks"] if t["token"])
    return run_id, token


def _metric(admin: httpx.Client, line_start: str) -> float:
    text = admin.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


def test_cancel_over_http_stops_the_run_and_its_token(admin: httpx.Client) -> None:
    run_id, token = _deferred_run(admin)
    cancelled_before = _metric(admin, "treeflow_runs_cancelled_total")
    response = admin.post(f"/api/runs/{run_id}/cancel", json={"reason": "withdrawn"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["action"], body["run_id"], body["message"]) == ("Cancel", run_id, "withdrawn")
    assert body["requested_by"] == "root"
    wait_for(lambda: run_body(admin, run_id)["status"] == "Cancelled", timeout=30)

    refused = admin.post(DEFERRED_URL, data={"token": token, "action": "Complete"})
    assert refused.status_code == 400
    assert f"run {run_id} was cancelled" in refused.headers["X-Error-Message"]
    again = admin.post(f"/api/runs/{run_id}/cancel", json={})
    assert (again.status_code, again.json()["id"]) == (202, body["id"])
    wait_for(lambda: _metric(admin, "treeflow_runs_cancelled_total") >= cancelled_before + 1)
    assert _metric(admin, 'treeflow_run_control_total{request="cancel"}') >= 2


def test_cancel_of_a_completed_run_is_409_and_of_an_unknown_run_404(admin: httpx.Client) -> None:
    run_id, token = _deferred_run(admin)
    approved = '<results><result name="Status">Approved</result></results>'
    completed = admin.post(
        DEFERRED_URL, data={"token": token, "action": "Complete", "results": approved}
    )
    assert completed.status_code == 200
    wait_for(lambda: run_body(admin, run_id)["status"] == "Completed", timeout=30)
    response = admin.post(f"/api/runs/{run_id}/cancel", json={"reason": "late"})
    assert response.status_code == 409
    assert response.json()["message"].startswith(f"Run {run_id} is Completed")
    assert admin.post("/api/runs/987654/cancel", json={}).status_code == 404
    unknown = admin.post(f"/api/runs/{run_id}/cancel", json={"why": "x"})
    assert unknown.status_code == 422


def test_run_again_over_http_with_edited_inputs(admin: httpx.Client) -> None:
    first, _ = _deferred_run(admin)
    response = admin.post(
        f"/api/runs/{first}/run-again", json={"inputs": {"Name": "Grace"}, "version": "same"}
    )
    assert response.status_code == 202, response.text
    new_run = response.json()["run_id"]
    wait_for(lambda: any(t["token"] for t in run_body(admin, new_run)["tasks"]), timeout=30)
    body = run_body(admin, new_run)
    assert (body["again_of"], body["inputs"]) == (first, {"Name": "Grace"})
    bad = admin.post(f"/api/runs/{first}/run-again", json={"version": "newest"})
    assert bad.status_code == 422


def test_manual_trigger_over_http_is_for_admins_and_resumes_the_run(
    live: Live, admin: httpx.Client
) -> None:
    run_id, _ = _deferred_run(admin)
    body = {
        "node": "Approve",
        "results": '<results><result name="Status">Approved</result></results>',
        "reason": "approved on the phone",
    }
    with live.client(live.token("ada")) as user:
        assert user.post(f"/api/runs/{run_id}/manual-trigger", json=body).status_code == 403
    unknown = admin.post(f"/api/runs/{run_id}/manual-trigger", json={**body, "node": "Nope"})
    assert unknown.status_code == 400
    assert "'Nope' is not a node of the run's tree" in unknown.json()["message"]

    response = admin.post(f"/api/runs/{run_id}/manual-trigger", json=body)
    assert response.status_code == 202, response.text
    trigger = response.json()
    assert (trigger["action"], trigger["node"], trigger["requested_by"]) == (
        "Manual",
        "Approve",
        "root",
    )
    assert trigger["message"] == "approved on the phone"
    wait_for(lambda: run_body(admin, run_id)["status"] == "Completed", timeout=30)
    notify = next(t for t in run_body(admin, run_id)["tasks"] if t["name"] == "Notify")
    assert notify["results"] == {"output": "Ada: Approved"}


def test_a_retried_handler_completes_and_the_attempt_is_counted(admin: httpx.Client) -> None:
    before = _metric(admin, "treeflow_retry_attempts_total")
    fields = {**KEY, "tree_name": "Flaky", "source_id": secrets.token_hex(4)}
    response = admin.post(START_URL, data=fields)
    assert response.status_code == 200, response.text
    run_id = admin.get(f"/api/triggers/{response.headers['X-ID']}").json()["run_id"]
    wait_for(lambda: run_body(admin, run_id)["status"] == "Completed", timeout=30)
    call = next(t for t in run_body(admin, run_id)["tasks"] if t["name"] == "Call")
    assert (call["status"], call["attempt"]) == ("Closed", 2)
    assert call["last_error"] == "tests_fails_once_v1 raised ConnectionError: first call fails"
    assert run_body(admin, run_id)["errors"] == []
    wait_for(lambda: _metric(admin, "treeflow_retry_attempts_total") >= before + 1)
