"""The Kianda-style instance API over a real server, on SQLite and PostgreSQL: create, read,
fields by name, PUT (version in the body or If-Match), PATCH, and who may do what.

Tokens are signed in per test (the tests move the server's clock), and every test creates its
own instances, so the tests share one server per database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .live_server import DATABASES, Live, live_server, module_engine
from .support import counts, race

CREATE = "/api/instances/create"
PROCESS = "new-training-process"
INVALID_TOKEN = "security token is invalid or has expired"
DEFAULTS = {"Reason": None, "Course": "To be chosen", "Days": 1, "Budget Code": "HR-TRAINING"}


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("root", "admin")
        server.add_user("ada", "user")
        server.add_user("bob", "user")
        yield server


def client(live: Live, name: str) -> httpx.Client:
    return live.client(live.token(name))


def create(http: httpx.Client, **fields: Any) -> str:
    mappings = [{"fieldname": k, "text": str(v), "value": v} for k, v in fields.items()]
    response = http.post(CREATE, json={"processName": PROCESS, "FieldsMappings": mappings})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return str(body["instanceID"])


def values(body: dict[str, Any]) -> dict[str, Any]:
    return {field["name"]: field["value"] for field in body["fields"]}


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": status, "message": message}


def test_create_then_read_an_instance(live: Live) -> None:
    with client(live, "ada") as ada:
        response = ada.post(
            CREATE,
            json={
                "processName": PROCESS,
                "instanceID": PROCESS,
                "TriggerField": "Reason",
                "FieldsMappings": [
                    {"fieldname": "Reason", "text": "New employee", "value": "New employee"},
                    {"fieldname": "Days", "text": "two days", "value": 2},
                ],
            },
        )
        assert response.status_code == 200, response.text
        name = response.json()["instanceID"]
        assert name.startswith(f"{PROCESS}-")
        assert response.json() == {"success": True, "instanceID": name}
        got = ada.get(f"/api/instances/{name}")
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    body = got.json()
    instance = live.engine.get_instance(name)
    assert body == {
        "instanceID": name,
        "processName": PROCESS,
        "status": "Staged",
        "version": 1,
        "fields": [
            {"name": "Reason", "text": "New employee", "value": "New employee"},
            {"name": "Course", "text": "To be chosen", "value": "To be chosen"},
            {"name": "Days", "text": "two days", "value": 2},
            {"name": "Budget Code", "text": "HR-TRAINING", "value": "HR-TRAINING"},
        ],
        "runId": instance.run_id,
        "createdAt": instance.created_at,
        "updatedAt": instance.updated_at,
    }
    run = live.engine.get_run(instance.run_id)
    assert (run.source_id, run.values["Days"]) == (name, 2)


def test_fields_by_name(live: Live) -> None:
    with client(live, "ada") as ada:
        name = create(ada, Reason="r")
        response = ada.get(f"/api/instances/{name}/fields", params={"names": "Days,Reason"})
        assert response.status_code == 200
        assert response.json() == [
            {"name": "Days", "text": "1", "value": 1},
            {"name": "Reason", "text": "r", "value": "r"},
        ]
        assert len(ada.get(f"/api/instances/{name}/fields").json()) == 4
        refused(
            ada.get(f"/api/instances/{name}/fields", params={"names": "Days,Colour"}),
            400,
            f"Invalid fields: the process '{PROCESS}' has no field 'Colour' "
            "(its fields: 'Reason', 'Course', 'Days', 'Budget Code')",
        )


def test_put_with_the_version_in_the_body_then_in_if_match(live: Live) -> None:
    with client(live, "ada") as ada:
        name = create(ada, Reason="r", Days=3)
        first = ada.put(
            f"/api/instances/{name}",
            json={"version": 1, "fields": [{"name": "Course", "text": "Go", "value": "go-1"}]},
        )
        assert first.status_code == 200, first.text
        assert first.headers["ETag"] == '"2"'
        assert first.json()["version"] == 2
        assert values(first.json()) == {**DEFAULTS, "Course": "go-1"}  # the rest: defaults
        second = ada.put(
            f"/api/instances/{name}",
            json={"fields": [{"name": "Reason", "value": "again"}]},
            headers={"If-Match": '"2"'},
        )
        assert second.status_code == 200, second.text
        assert second.json()["version"] == 3
        assert values(ada.get(f"/api/instances/{name}").json()) == {**DEFAULTS, "Reason": "again"}
    assert live.engine.get_run(live.engine.get_instance(name).run_id).values["Reason"] == "again"


def test_a_stale_put_is_409_and_writes_nothing(live: Live) -> None:
    with client(live, "ada") as ada:
        name = create(ada, Reason="r")
        assert ada.patch(f"/api/instances/{name}", json={"fields": [{"name": "Days", "value": 5}]})
        before = ada.get(f"/api/instances/{name}").json()
        for request in (
            {"json": {"version": 1, "fields": [{"name": "Reason", "value": "late"}]}},
            {
                "json": {"fields": [{"name": "Reason", "value": "late"}]},
                "headers": {"If-Match": "1"},
            },
        ):
            refused(
                ada.put(f"/api/instances/{name}", **request),  # type: ignore[arg-type]
                409,
                f"the instance '{name}' is at version 2, but the change was based on version 1",
            )
        assert ada.get(f"/api/instances/{name}").json() == before


def test_put_needs_a_version_and_a_well_formed_one(live: Live) -> None:
    with client(live, "ada") as ada:
        name = create(ada)
        url = f"/api/instances/{name}"
        fields = {"fields": [{"name": "Reason", "value": "x"}]}
        refused(
            ada.put(url, json=fields),
            428,
            f"Invalid version: replacing the instance '{name}' needs the version it was based on "
            "('version' in the body, or an If-Match header)",
        )
        refused(
            ada.put(url, json={**fields, "version": 1}, headers={"If-Match": '"2"'}),
            400,
            "Invalid version: the body says 1 and If-Match says 2",
        )
        refused(
            ada.put(url, json=fields, headers={"If-Match": "*"}),
            400,
            "Invalid If-Match: must be one version as an entity tag, e.g. \"3\"; not '*'",
        )
        assert ada.get(url).json()["version"] == 1


def test_patch_changes_only_the_fields_given(live: Live) -> None:
    with client(live, "ada") as ada:
        name = create(ada, Reason="r", Course="Go")
        url = f"/api/instances/{name}"
        patched = ada.patch(url, json={"fields": [{"name": "Days", "text": "4 days", "value": 4}]})
        assert patched.status_code == 200, patched.text
        assert patched.headers["ETag"] == '"2"'
        assert values(patched.json()) == {**DEFAULTS, "Reason": "r", "Course": "Go", "Days": 4}
        stale = ada.patch(
            url, json={"fields": [{"name": "Days", "value": 6}]}, headers={"If-Match": '"1"'}
        )
        assert stale.status_code == 409
        assert ada.get(url).json()["version"] == 2
        assert (
            ada.patch(url, json={"version": 2, "fields": [{"name": "Days", "value": 6}]}).json()[
                "version"
            ]
            == 3
        )


def test_unknown_and_unsettable_fields_are_refused_by_name(live: Live) -> None:
    with client(live, "ada") as ada:
        before = counts(live.engine)
        refused(
            ada.post(
                CREATE,
                json={
                    "processName": PROCESS,
                    "FieldsMappings": [
                        {"fieldname": "Colour", "value": "red"},
                        {"fieldname": "Reason", "value": "r"},
                        {"fieldname": "Size", "value": 2},
                    ],
                },
            ),
            400,
            f"Invalid fields: the process '{PROCESS}' has no field 'Colour', 'Size' "
            "(its fields: 'Reason', 'Course', 'Days', 'Budget Code')",
        )
        refused(
            ada.post(
                CREATE,
                json={"processName": PROCESS, "FieldsMappings": [{"fieldname": "Budget Code"}]},
            ),
            400,
            f"Invalid fields: callers may not set 'Budget Code' of the process '{PROCESS}'",
        )
        assert counts(live.engine) == before
        name = create(ada)
        url = f"/api/instances/{name}"
        refused(
            ada.put(url, json={"version": 1, "fields": [{"name": "Budget Code", "value": "X"}]}),
            400,
            f"Invalid fields: callers may not set 'Budget Code' of the process '{PROCESS}'",
        )
        assert ada.patch(url, json={"fields": [{"name": "Colour", "value": 1}]}).status_code == 400
        assert ada.get(url).json()["version"] == 1


def test_bodies_with_unknown_keys_are_refused_naming_them(live: Live) -> None:
    with client(live, "ada") as ada:
        response = ada.post(
            CREATE, json={"processName": PROCESS, "FieldMappings": [{"fieldname": "Reason"}]}
        )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["type"], problem["loc"]) == ("extra_forbidden", ["body", "FieldMappings"])


def test_an_unknown_process_is_404_naming_it(live: Live) -> None:
    with client(live, "ada") as ada:
        refused(
            ada.post(CREATE, json={"processName": "no-such-process"}),
            404,
            "Unable to locate a process named 'no-such-process'",
        )


def test_a_user_reaches_only_its_own_instances(live: Live) -> None:
    with client(live, "ada") as ada, client(live, "bob") as bob, client(live, "root") as root:
        mine = create(bob, Reason="bob's")
        missing = f"{PROCESS}-999999"
        for name in (mine, missing):
            message = f"Unable to locate an instance named '{name}'"
            url = f"/api/instances/{name}"
            refused(ada.get(url), 404, message)
            refused(ada.get(f"{url}/fields", params={"names": "Reason"}), 404, message)
            refused(ada.put(url, json={"version": 1, "fields": []}), 404, message)
            refused(ada.patch(url, json={"fields": [{"name": "Days", "value": 2}]}), 404, message)
        assert bob.get(f"/api/instances/{mine}").json()["version"] == 1  # nothing was written
        # An administrator reaches every instance.
        assert root.get(f"/api/instances/{mine}").status_code == 200
        patched = root.patch(
            f"/api/instances/{mine}", json={"fields": [{"name": "Days", "value": 2}]}
        )
        assert patched.json()["version"] == 2


def test_tokens_are_checked(live: Live) -> None:
    with live.client() as anonymous:
        response = anonymous.post(CREATE, json={"processName": PROCESS})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="treeflow"'
    token = live.token("ada")
    with live.client(token) as ada:
        name = create(ada)
        live.clock.advance(300)  # tokens live 299 seconds
        for response in (
            ada.get(f"/api/instances/{name}"),
            ada.post(CREATE, json={"processName": PROCESS}),
        ):
            assert response.status_code == 401
            assert response.json() == {"status": 401, "message": INVALID_TOKEN}
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_creating_an_instance_counts_as_an_accepted_trigger(live: Live) -> None:
    def accepted_roots() -> float:
        with client(live, "ada") as signed_in:  # /metrics needs a token
            text = signed_in.get("/metrics").text
        line = next(
            line
            for line in text.splitlines()
            if line.startswith('treeflow_triggers_accepted_total{action="Root"}')
        )
        return float(line.rsplit(" ", 1)[1])

    with client(live, "ada") as ada:
        create(ada)
        before = accepted_roots()
        create(ada)
        create(ada)
    assert accepted_roots() == before + 2


def test_of_concurrent_puts_based_on_one_version_one_wins_the_rest_are_409(live: Live) -> None:
    token = live.token("ada")
    with live.client(token) as ada:
        name = create(ada)
    writers = iter(range(6))

    def put() -> httpx.Response:
        body = {"version": 1, "fields": [{"name": "Reason", "value": f"writer {next(writers)}"}]}
        with live.client(token) as http:
            return http.put(f"/api/instances/{name}", json=body)

    outcomes = race(6, put)
    statuses = sorted(r.status_code for r in outcomes if isinstance(r, httpx.Response))
    assert statuses == [200, 409, 409, 409, 409, 409], outcomes
    [won] = [r for r in outcomes if isinstance(r, httpx.Response) and r.status_code == 200]
    with live.client(token) as ada:
        current = ada.get(f"/api/instances/{name}").json()
    assert current["version"] == 2
    assert values(current)["Reason"] == values(won.json())["Reason"]
