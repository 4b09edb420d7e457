"""Kinetic Task 4's REST API v1 (run-tree, complete- and update-deferred-task) over a real
server, on SQLite and PostgreSQL: what each call starts or resumes, its answer, and bad input
answered 400 (401 without a token) with nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

from engine import RunStatus, TaskStatus

from .live_server import DATABASES, FORM, Live, live_server, module_engine
from .support import counts

ECHO_DATA = {
    "source": "Kinetic Request",
    "group": "V1 Tests",
    "name": "Echo Data",
    "nodes": {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
        "Echo": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ source.data['Name'] }} / {{ source.id }}"},
        },
    },
}
COMPLETE = "/app/api/v1/complete-deferred-task/Kinetic%20Request"
UPDATE = "/app/api/v1/update-deferred-task/Kinetic%20Request"
NOTHING = {"runs": 0, "triggers": 0, "tasks": 0, "errors": 0}
Written = Callable[[], dict[str, int]]


def run_tree_url(source: str, group: str, tree: str) -> str:
    parts = (quote(part, safe="") for part in (source, group, tree))
    return "/app/api/v1/run-tree/" + "/".join(parts)


REGISTRATION = run_tree_url(
    "Kinetic Request", "KEG Catalog > Conference Registration", "Process Registration"
)
TICKET = run_tree_url("Kinetic Request", "Service Desk", "Ticket Progress")
ECHO_URL = run_tree_url(ECHO_DATA["source"], ECHO_DATA["group"], ECHO_DATA["name"])


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        engine.load_tree(ECHO_DATA)
        server.add_user("ada", "user")
        yield server


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("ada")) as authorized:
        yield authorized


@pytest.fixture
def written(live: Live) -> Iterator[Written]:
    before = counts(live.engine)
    yield lambda: {table: n - before[table] for table, n in counts(live.engine).items()}


def source_data(live: Live, run_id: int) -> Any:
    with live.engine.database.read() as connection:
        row = connection.execute(
            sa.text("SELECT source_data FROM runs WHERE id = :id"), {"id": run_id}
        ).scalar_one()
    return json.loads(row) if isinstance(row, str) else row


def started(live: Live, response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    run_id = int(response.json()["run"]["id"])
    live.engine.run_until_idle()
    return run_id


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    for word in words:
        assert word in body["message"]


# -- run-tree ------------------------------------------------------------------------------------


def test_run_tree_with_a_json_body_makes_it_source_data(live: Live, client: httpx.Client) -> None:
    data = {"Name": "Ada", "Count": 3, "Tags": ["a", "b"]}
    response = client.post(ECHO_URL, json=data, params={"sourceId": "KS-1"})

    run_id = started(live, response)
    body = response.json()
    assert response.headers["Content-Type"] == "application/json"
    assert body["message"] == (
        f"Initiated run #{run_id} for the tree 'Kinetic Request :: V1 Tests :: Echo Data'."
    )
    assert body["run"] == {
        "id": run_id,
        "sourceName": "Kinetic Request",
        "sourceGroup": "V1 Tests",
        "tree": "Echo Data",
        "sourceId": "KS-1",
        "status": "Staged",
        "triggerId": body["run"]["triggerId"],
    }
    assert source_data(live, run_id) == data
    run = live.engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Echo").results["output"] == "Ada / KS-1"


def test_run_tree_with_a_form_body_makes_it_source_data(live: Live, client: httpx.Client) -> None:
    response = client.post(
        ECHO_URL, content="Name=Grace%20Hopper&Empty=", headers={"Content-Type": FORM}
    )

    run_id = started(live, response)
    assert source_data(live, run_id) == {"Name": "Grace Hopper", "Empty": ""}
    assert live.engine.get_run(run_id).task("Echo").results["output"] == "Grace Hopper / "


def test_run_tree_with_no_body_has_empty_source_data(live: Live, client: httpx.Client) -> None:
    run_id = started(live, client.post(REGISTRATION))

    assert source_data(live, run_id) == {}
    assert live.engine.get_run(run_id).open_tokens["Review"]


def test_run_tree_of_an_unknown_tree_is_a_bad_request(
    client: httpx.Client, written: Written
) -> None:
    response = client.post(run_tree_url("Kinetic Request", "V1 Tests", "Nope"), json={})

    assert_error(response, 400, "Nope")
    assert written() == NOTHING


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", ("body", "not valid JSON")),
        (b"[1, 2]", ("body", "JSON object")),
        (b'{"a": NaN}', ("body", "NaN")),
        (b'{"a": "x\\u0000y"}', ("body", "NUL")),
    ],
)
def test_run_tree_refuses_a_bad_body(
    client: httpx.Client, written: Written, body: bytes, words: tuple[str, ...]
) -> None:
    response = client.post(ECHO_URL, content=body, headers={"Content-Type": "application/json"})

    assert_error(response, 400, *words)
    assert written() == NOTHING


def test_run_tree_refuses_a_repeated_form_field(client: httpx.Client, written: Written) -> None:
    response = client.post(ECHO_URL, content="a=1&a=2", headers={"Content-Type": FORM})

    assert_error(response, 400, "more than once")
    assert written() == NOTHING


# -- complete- and update-deferred-task ----------------------------------------------------------


def test_complete_by_token_with_results_as_an_object(live: Live, client: httpx.Client) -> None:
    run_id = started(live, client.post(REGISTRATION, params={"sourceId": "R-7"}))
    token = live.engine.get_run(run_id).open_tokens["Review"]

    response = client.post(
        COMPLETE,
        json={"token": token, "message": "approved", "results": {"Status": "Approved", "N": 2}},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"message": f"Completed the deferred task with token {token}."}
    live.engine.run_until_idle()
    run = live.engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Review").status is TaskStatus.CLOSED
    assert run.task("Review").results["N"] == "2"
    assert run.task("Approved").results["output"] == "Registration R-7 approved: Approved"


def test_complete_by_token_with_results_as_xml(live: Live, client: httpx.Client) -> None:
    run_id = started(live, client.post(REGISTRATION))
    token = live.engine.get_run(run_id).open_tokens["Review"]
    results = '<results><result name="Status">Denied</result></results>'

    response = client.post(COMPLETE, json={"token": token, "results": results})

    assert response.status_code == 200, response.text
    live.engine.run_until_idle()
    run = live.engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Denied").status is TaskStatus.CLOSED


def test_update_by_token_fires_the_update_connectors(live: Live, client: httpx.Client) -> None:
    run_id = started(live, client.post(TICKET, params={"sourceId": "T-1"}))
    token = live.engine.get_run(run_id).open_tokens["Work Ticket"]

    response = client.post(UPDATE, json={"token": token, "results": {"Progress": "50%"}})

    assert response.status_code == 200, response.text
    assert response.json() == {"message": f"Updated the deferred task with token {token}."}
    live.engine.run_until_idle()
    run = live.engine.get_run(run_id)
    assert run.task("Progress Note").results["output"] == "ticket T-1: 50%"
    assert run.open_tokens["Work Ticket"] == token  # still deferred: Update does not close it
    assert run.status is not RunStatus.COMPLETED


def test_an_unknown_token_is_a_bad_request(client: httpx.Client, written: Written) -> None:
    for url in (COMPLETE, UPDATE):
        response = client.post(url, json={"token": "0" * 40, "message": "x"})
        assert_error(response, 400, "0" * 40)
    assert written() == NOTHING


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{oops", ("body", "not valid JSON")),
        (b'"token"', ("body", "JSON object")),
        (b'{"message": "no token"}', ("token", "missing")),
        (b'{"token": 5}', ("token", "string")),
        (b'{"token": "t", "extra": 1}', ("extra",)),
        (b'{"token": "t", "results": [1]}', ("results",)),
        (b'{"token": "t", "results": {"": "x"}}', ("name",)),
        (b'{"token": "t", "message": 3}', ("message", "string")),
    ],
)
def test_complete_and_update_refuse_a_bad_body(
    client: httpx.Client, written: Written, body: bytes, words: tuple[str, ...]
) -> None:
    for url in (COMPLETE, UPDATE):
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert_error(response, 400, *words)
    assert written() == NOTHING


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [ECHO_URL, COMPLETE, UPDATE])
def test_every_call_needs_a_bearer_token(live: Live, written: Written, url: str) -> None:
    with live.client() as anonymous:
        response = anonymous.post(url, json={"token": "t"})

    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert written() == NOTHING
