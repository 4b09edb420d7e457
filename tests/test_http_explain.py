"""``GET /api/runs/{id}/explain`` on a live server: the explanation as JSON, admins only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with (
        module_engine(request, tmp_path_factory) as engine,
        live_server(engine, ServerSettings(workers=0)) as server,
    ):
        server.add_user("root", "admin")
        server.add_user("ada", "user")
        yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


def test_an_admin_reads_what_a_run_waits_for(live: Live, admin: httpx.Client) -> None:
    response = admin.post(START_URL, data={**REGISTRATION, "source_id": "HTTP-1"})
    assert response.status_code == 200, response.text
    live.engine.run_until_idle()
    run = live.engine.get_run(live.engine.get_trigger(int(response.headers["X-ID"])).run_id)
    review = run.task("Review")

    response = admin.get(f"/api/runs/{run.id}/explain")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "run_id": run.id,
        "status": "Started",
        "summary": f"run {run.id} is Started: 1 open",
        "waiting": [
            {
                "kind": "deferral",
                "node": "Review",
                "loop_index": "/",
                "waits_for": f"a createDeferred Complete (or Update) with its token {review.token}",
                "task_id": review.id,
                "token": review.token,
                "due_at": None,
                "child_run_id": None,
                "missing": [],
            }
        ],
        "children": [],
    }


def test_an_unknown_run_is_404(admin: httpx.Client) -> None:
    response = admin.get("/api/runs/999999/explain")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "message": "Unable to locate a run with the id 999999",
    }


def test_a_plain_user_gets_403_and_no_token_401(live: Live) -> None:
    with live.client(live.token("ada")) as client:
        refused = client.get("/api/runs/1/explain")
    assert refused.status_code == 403
    assert "user 'ada' has the role 'user'; this needs admin" in refused.json()["message"]
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    with live.client() as client:
        assert client.get("/api/runs/1/explain").status_code == 401


def test_the_route_is_in_the_openapi_document(admin: httpx.Client) -> None:
    document = admin.get("/openapi.json").json()
    operation = document["paths"]["/api/runs/{run_id}/explain"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExplanationOut"
    }
