"""Hostile JSON bodies over a real server, on SQLite and PostgreSQL: every route that reads a
JSON body answers 400 ``{"status": 400, "message": ...}`` naming the problem and its place,
stores nothing, and logs no error (lone surrogates, NaN and infinities, integers outside 64
bits, numbers too large for a double, nesting deeper than the limit, a key given twice, NUL)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine

from .live_server import DATABASES, FORM, Live, live_server, module_engine
from .support import ExplodePlugin, small_tree

RANGE = "is outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"
NESTED = "the value is nested deeper than 64 levels"
HOSTILE = {
    "lone-surrogate": ('{"a": "\\ud800"}', "the text at $.a holds a lone surrogate '\\ud800'"),
    "surrogate-key": ('{"\\udfff": 1}', "a key at $ holds a lone surrogate '\\udfff'"),
    "nan": ('{"a": NaN}', "NaN at $.a is not JSON"),
    "infinity": ('{"a": Infinity}', "Infinity at $.a is not JSON"),
    "minus-infinity": ('{"a": -Infinity}', "-Infinity at $.a is not JSON"),
    "2**64": ('{"a": 18446744073709551616}', f"the integer 18446744073709551616 at $.a {RANGE}"),
    "1e400": ('{"a": 1e400}', "the number 1e400 at $.a is too large for a double"),
    "nested-300": ('{"a": ' + "[" * 300 + "]" * 300 + "}", NESTED),
    "nested-989": ('{"a": ' + "[" * 989 + "]" * 989 + "}", NESTED),
    "key-twice": ('{"a": 1, "a": 2}', "the object at $ gives the key 'a' twice"),
    "nul": ('{"a": "\\u0000"}', "the text at $.a holds a NUL character"),
}
EXPLODING = small_tree(
    "Explode Once",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Boom"}]},
        "Boom": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
    },
)
V1 = "/app/api/v1"
REGISTRATION = (
    f"{V1}/run-tree/Kinetic%20Request/KEG%20Catalog%20%3E%20Conference%20Registration/"
    "Process%20Registration"
)
TABLES = ("runs", "triggers", "tasks", "errors", "instances", "schedules", "schedule_firings")


class Errors(logging.Handler):
    """Every ERROR record of the server's loggers (uvicorn's do not reach the root logger)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with (
        module_engine(request, tmp_path_factory, plugins=[ExplodePlugin()]) as engine,
        live_server(engine) as server,
    ):
        engine.load_tree(EXPLODING)
        server.add_user("root", "admin")
        yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


@pytest.fixture(scope="module")
def targets(live: Live, admin: httpx.Client) -> dict[str, tuple[str, str]]:
    """Every route that reads a JSON body, each at something that exists."""
    engine = live.engine
    run = engine.create_start(
        source_name="Kinetic Request",
        source_group="KEG Catalog > Conference Registration",
        tree_name="Process Registration",
    )
    exploding = engine.create_start(source_name="Tests", source_group="Semantics",
                                    tree_name="Explode Once")  # fmt: skip
    engine.run_until_idle()
    token = engine.get_run(run.run_id).open_tokens["Review"]
    [error] = engine.get_run(exploding.run_id).errors
    instance = admin.post("/api/instances/create", json={"processName": "new-training-process"})
    task = admin.post(
        "/api/tasks",
        json={"name": "t", "source_name": "Tests", "source_group": "Semantics",
              "tree_name": "Explode Once", "when": {"kind": "cron", "cron": "0 2 * * *"}},
    )  # fmt: skip
    assert instance.status_code == 200 and task.status_code == 201, (instance.text, task.text)
    name, task_id = instance.json()["instanceID"], task.json()["id"]
    assert token
    return {
        "run-tree": ("POST", REGISTRATION),
        "complete-deferred-task": ("POST", f"{V1}/complete-deferred-task/Kinetic%20Request"),
        "update-deferred-task": ("POST", f"{V1}/update-deferred-task/Kinetic%20Request"),
        "create-instance": ("POST", "/api/instances/create"),
        "replace-instance": ("PUT", f"/api/instances/{name}"),
        "patch-instance": ("PATCH", f"/api/instances/{name}"),
        "create-task": ("POST", "/api/tasks"),
        "replace-task": ("PUT", f"/api/tasks/{task_id}"),
        "patch-task": ("PATCH", f"/api/tasks/{task_id}"),
        "resolve-error": ("POST", f"/api/errors/{error.id}/resolve"),
        "cancel-run": ("POST", f"/api/runs/{run.run_id}/cancel"),
        "run-again": ("POST", f"/api/runs/{run.run_id}/run-again"),
        "manual-trigger": ("POST", f"/api/runs/{run.run_id}/manual-trigger"),
    }


@pytest.fixture
def server_errors() -> Iterator[Errors]:
    errors = Errors()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(errors)
    try:
        yield errors
    finally:
        for logger in loggers:
            logger.removeHandler(errors)


def stored(engine: Engine) -> dict[str, Any]:
    """Row counts, and what a refused write could have changed in the rows that exist."""
    with engine.database.read() as connection:
        found: dict[str, Any] = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }
        found["instance versions"] = connection.execute(
            sa.text("SELECT sum(version) FROM instances")
        ).scalar_one()
        found["schedule revisions"] = connection.execute(
            sa.text("SELECT sum(revision) FROM schedules")
        ).scalar_one()
    return found


ROUTES = [
    "run-tree", "complete-deferred-task", "update-deferred-task", "create-instance",
    "replace-instance", "patch-instance", "create-task", "replace-task", "patch-task",
    "resolve-error", "cancel-run", "run-again", "manual-trigger",
]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_json_body_is_a_400_naming_it_and_stores_nothing(
    live: Live,
    admin: httpx.Client,
    targets: dict[str, tuple[str, str]],
    server_errors: Errors,
    route: str,
    body: tuple[str, str],
) -> None:
    text, reason = body
    method, url = targets[route]
    before = stored(live.engine)

    response = admin.request(
        method,
        url,
        content=text.encode("utf-8", "surrogatepass"),  # lone surrogates as \u escapes only
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"status": 400, "message": f"Invalid body: {reason}"}
    assert stored(live.engine) == before
    assert server_errors.records == []


def test_every_documented_json_body_is_read_strictly(
    live: Live, admin: httpx.Client, server_errors: Errors
) -> None:
    paths = admin.get("/openapi.json").json()["paths"]
    json_routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    before = stored(live.engine)

    answers = {
        (method, path): admin.request(
            method,
            path.replace("{", "").replace("}", ""),  # path parameters as their own names
            content=b'{"a": NaN}',
            headers={"Content-Type": "application/json"},
        )
        for method, path in json_routes
    }

    assert len(json_routes) == len(ROUTES)
    for route, response in answers.items():
        assert (route, response.status_code) == (route, 400)
        assert response.json() == {"status": 400, "message": "Invalid body: NaN at $.a is not JSON"}
    assert stored(live.engine) == before
    assert server_errors.records == []


def test_values_at_the_limits_are_stored_and_given_back(live: Live, admin: httpx.Client) -> None:
    data = {"max": 2**63 - 1, "min": -(2**63), "big": 1e308, "pair": "😀", "nested": [[[1]]]}

    response = admin.post(REGISTRATION, json=data)

    assert response.status_code == 200, response.text
    with live.engine.database.read() as connection:
        row = connection.execute(
            sa.text("SELECT source_data FROM runs WHERE id = :id"),
            {"id": response.json()["run"]["id"]},
        ).scalar_one()
    assert (json.loads(row) if isinstance(row, str) else row) == data


DEPLOYED = 'source: Kianda\ngroup: Hostile\nname: Deployed\ndescription: "a\\ud800"\nnodes:\n'
DEPLOYED += "  Start:\n    handler: system_start_v1\n"


def test_a_deployed_tree_holding_a_value_the_store_cannot_keep_is_refused(
    live: Live, admin: httpx.Client, server_errors: Errors
) -> None:
    before = stored(live.engine)

    response = admin.post(
        "/api/processes", content=DEPLOYED, headers={"Content-Type": "application/yaml"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["problems"] == [
        {"file": "<deployed>", "line": 4, "node": None,
         "message": "the text holds a lone surrogate '\\ud800'"}
    ]  # fmt: skip
    assert admin.get("/api/processes/deployed").status_code == 404
    assert stored(live.engine) == before
    assert server_errors.records == []


@pytest.mark.parametrize(
    ("accept", "body"),
    [
        ("application/json", '{"status":400,"message":"Invalid form: not UTF-8 text: %s"}'),
        ("application/xml", "<response><status>400</status><message>Invalid form: not UTF-8 "
         "text: %s</message></response>"),
    ],
    ids=["json", "xml"],
)  # fmt: skip
def test_the_seed_api_refuses_a_form_holding_a_lone_surrogate_in_its_own_format(
    live: Live, admin: httpx.Client, accept: str, body: str
) -> None:
    before = stored(live.engine)
    form = "source_name=a&source_group=b&tree_name=c&results=%ED%A0%80"  # UTF-8 of U+D800

    response = admin.post(
        "/kineticTask/rest/v1/Trigger/createStart",
        content=form,
        headers={"Content-Type": FORM, "Accept": accept},
    )

    assert response.status_code == 400
    assert response.text == body % "invalid continuation byte"
    assert stored(live.engine) == before
