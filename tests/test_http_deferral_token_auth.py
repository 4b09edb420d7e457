"""Deferral-token authentication over a real server, on SQLite and PostgreSQL: with
``deferral_token_auth`` on, a callback completes or updates a deferred task of a tree that opts
in by its token alone (v1, v2 and the seed's createDeferred); every other call still needs
credentials, failures are throttled per address, and acceptances are logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from engine import TaskStatus
from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine


def ticket(name: str, *, opt_in: bool | None) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "source": "Callbacks",
        "group": "Tokens",
        "name": name,
        "nodes": {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Wait"}]},
            "Wait": {"handler": "utilities_defer_v1", "defers": True},
        },
    }
    if opt_in is not None:
        tree["deferral_token_auth"] = opt_in
    return tree


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    settings = ServerSettings(workers=0, deferral_token_auth=True)
    with module_engine(request, tmp_path_factory) as engine:
        engine.load_tree(ticket("Opted In", opt_in=True))
        engine.load_tree(ticket("Not Opted In", opt_in=None))
        with live_server(engine, settings) as server:
            yield server


@pytest.fixture(autouse=True)
def fresh_throttle(live: Live) -> Iterator[None]:
    yield
    live.accounts.throttle.unlock("address:127.0.0.1", now=live.clock())
    live.accounts.throttle.unlock("user:deferral-token@127.0.0.1", now=live.clock())


def deferred(live: Live, tree: str) -> tuple[int, str]:
    trigger = live.engine.create_start(
        source_name="Callbacks", source_group="Tokens", tree_name=tree
    )
    live.engine.run_until_idle()
    run = live.engine.get_run(trigger.run_id)
    return run.id, run.open_tokens["Wait"]


def wait_task(live: Live, run_id: int) -> TaskStatus:
    return live.engine.get_run(run_id).task("Wait").status


def test_v1_complete_by_the_token_alone_for_a_tree_that_opts_in(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    run_id, token = deferred(live, "Opted In")
    with caplog.at_level(logging.WARNING, logger="treeflow.security"), live.client() as client:
        response = client.post(
            "/kinetic-task/app/api/v1/complete-deferred-task/Callbacks",
            json={"token": token, "results": {"Answer": "yes"}},
        )
    live.engine.run_until_idle()

    assert response.status_code == 200, response.text
    assert wait_task(live, run_id) is TaskStatus.CLOSED
    assert live.engine.get_run(run_id).task("Wait").results["Answer"] == "yes"
    assert any(f"run {run_id} was resumed by its token alone" in r.message for r in caplog.records)


def test_v2_update_then_the_seeds_create_deferred_by_the_token_alone(live: Live) -> None:
    run_id, token = deferred(live, "Opted In")
    with live.client() as client:
        updated = client.put(f"/app/api/v2/runs/task/{token}", json={"message": "halfway"})
        completed = client.post(
            "/kineticTask/rest/v1/Trigger/createDeferred",
            data={"token": token, "action": "Complete"},
        )
    live.engine.run_until_idle()

    assert updated.status_code == 200, updated.text
    assert updated.json()["messageType"] == "success"
    assert completed.status_code == 200, completed.text
    assert wait_task(live, run_id) is TaskStatus.CLOSED


def test_a_tree_that_does_not_opt_in_still_needs_credentials(live: Live) -> None:
    run_id, token = deferred(live, "Not Opted In")
    with live.client() as client:
        v1 = client.post("/app/api/v1/complete-deferred-task/Callbacks", json={"token": token})
        v2 = client.post(f"/app/api/v2/runs/task/{token}", json={})
    live.engine.run_until_idle()

    for response in (v1, v2):
        assert response.status_code == 401, response.text
        assert response.json()["message"] == "security token is invalid or has expired"
    assert wait_task(live, run_id) is TaskStatus.DEFERRED


def test_other_routes_and_bad_tokens_are_refused_and_failures_lock_the_address_out(
    live: Live,
) -> None:
    run_id, token = deferred(live, "Opted In")
    with live.client() as client:
        other_route = client.get(f"/app/api/v2/runs/{run_id}")
        guesses = [
            client.post(f"/app/api/v2/runs/task/{'0' * 39}{n}", json={}).status_code
            for n in range(5)
        ]
        locked = client.post(f"/app/api/v2/runs/task/{token}", json={})

    assert other_route.status_code == 401
    assert other_route.json()["message"] == "security token not provided"
    assert guesses == [401] * 5
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["Retry-After"]) > 0
    live.engine.run_until_idle()
    assert wait_task(live, run_id) is TaskStatus.DEFERRED


def test_off_by_default(live: Live) -> None:
    run_id, token = deferred(live, "Opted In")
    with live_server(live.engine) as default, default.client() as client:
        response = client.post(f"/app/api/v2/runs/task/{token}", json={})
    assert response.status_code == 401
    assert response.json()["message"] == "security token not provided"
    assert wait_task(live, run_id) is TaskStatus.DEFERRED


def test_the_tree_setting_must_be_a_boolean(live: Live) -> None:
    from engine.errors import TreeError

    with pytest.raises(TreeError, match="deferral_token_auth must be true or false"):
        live.engine.load_tree({**ticket("Bad Setting", opt_in=None), "deferral_token_auth": "yes"})
