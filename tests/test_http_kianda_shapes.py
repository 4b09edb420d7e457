"""Kianda's ``FieldsMappings`` both ways over a real server, on SQLite and PostgreSQL: ``PUT``
and ``PATCH`` take the shape ``POST /api/instances/create`` takes (``fieldname``, ``text``,
``value``) beside the read shape (``fields`` with ``name``); both at once, or neither, is
refused and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .live_server import DATABASES, Live, live_server, module_engine

CREATE = "/api/instances/create"
PROCESS = "new-training-process"
DEFAULTS = {"Reason": None, "Course": "To be chosen", "Days": 1, "Budget Code": "HR-TRAINING"}


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("ada", "user")
        yield server


@pytest.fixture
def ada(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("ada")) as client:
        yield client


def created(ada: httpx.Client) -> str:
    mappings = [{"fieldname": "Reason", "text": "r", "value": "r"}]
    response = ada.post(CREATE, json={"processName": PROCESS, "FieldsMappings": mappings})
    assert response.status_code == 200, response.text
    return str(response.json()["instanceID"])


def fields(body: dict[str, Any]) -> dict[str, Any]:
    return {field["name"]: (field["text"], field["value"]) for field in body["fields"]}


def test_put_takes_fields_mappings_as_create_does(live: Live, ada: httpx.Client) -> None:
    name = created(ada)
    mappings = [{"fieldname": "Course", "text": "Go, two days", "value": "go-2"}]
    response = ada.put(f"/api/instances/{name}", json={"version": 1, "FieldsMappings": mappings})

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert fields(response.json())["Course"] == ("Go, two days", "go-2")
    assert fields(response.json())["Reason"] == ("", None)  # PUT replaces: the rest defaults
    run = live.engine.get_run(live.engine.get_instance(name).run_id)
    assert run.values["Course"] == "go-2"


def test_patch_takes_fields_mappings_and_changes_only_those(live: Live, ada: httpx.Client) -> None:
    name = created(ada)
    response = ada.patch(
        f"/api/instances/{name}",
        json={"FieldsMappings": [{"fieldname": "Days", "text": "three", "value": 3}]},
        headers={"If-Match": '"1"'},
    )

    assert response.status_code == 200, response.text
    assert fields(response.json())["Days"] == ("three", 3)
    assert fields(response.json())["Reason"] == ("r", "r")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    "body",
    [
        {"version": 1},
        {
            "version": 1,
            "fields": [{"name": "Days", "value": 2}],
            "FieldsMappings": [{"fieldname": "Days", "value": 2}],
        },
    ],
    ids=["neither shape", "both shapes"],
)
def test_one_shape_is_required_and_a_refusal_changes_nothing(
    ada: httpx.Client, method: str, body: dict[str, Any]
) -> None:
    name = created(ada)
    response = ada.request(method, f"/api/instances/{name}", json=body)

    assert response.status_code == 422, response.text
    assert "either 'fields' or 'FieldsMappings'" in response.text
    assert ada.get(f"/api/instances/{name}").json()["version"] == 1


def test_a_misspelt_mapping_key_is_refused_naming_it(ada: httpx.Client) -> None:
    name = created(ada)
    body = {"version": 1, "FieldsMappings": [{"field_name": "Days", "value": 2}]}
    response = ada.put(f"/api/instances/{name}", json=body)

    assert response.status_code == 422
    locations = [problem["loc"] for problem in response.json()["detail"]]
    assert ["body", "FieldsMappings", 0, "field_name"] in locations
