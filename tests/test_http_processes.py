"""The process API over a real server, on SQLite and PostgreSQL: list, read, deploy YAML (new
versions, runs in flight staying on theirs, every problem of a bad definition listed and
nothing stored), and administrators only.

Each deploying test deploys a tree of its own (a name unique to the test), so the tests share
one server per database.
"""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from engine.server import ServerSettings

from .live_server import DATABASES, Live, live_server, module_engine

YAML = {"Content-Type": "application/yaml"}
BODY_CAP = 16_384


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    settings = ServerSettings(workers=0, max_body_bytes=BODY_CAP)
    with (
        module_engine(request, tmp_path_factory) as engine,
        live_server(engine, settings) as server,
    ):
        server.add_user("root", "admin")
        server.add_user("ada", "user")
        yield server


@pytest.fixture(scope="module")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("root")) as client:
        yield client


def claim_tree(name: str, *, greeting: str = "Claim", extra_field: str = "") -> str:
    return textwrap.dedent(f"""\
        source: Kianda
        group: Finance
        name: {name}
        description: An expense claim, approved by a manager.
        fields:
          Amount:
            label: Amount claimed
            default: 0
          {extra_field or "Currency: {default: EUR, settable: false}"}
        nodes:
          Start:
            handler: system_start_v1
            connectors:
              - to: Approve
          Approve:
            handler: utilities_defer_v1
            defers: true
            connectors:
              - to: Done
          Done:
            handler: utilities_echo_v1
            parameters:
              input: "{greeting} {{{{ values['Amount'] }}}}"
        """)


def unique_name() -> tuple[str, str]:
    suffix = secrets.token_hex(3)
    return f"Expense Claim {suffix}", f"expense-claim-{suffix}"


def stored_versions(live: Live, tree_name: str) -> list[int]:
    with live.engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT version FROM tree_versions WHERE name = :name ORDER BY version"),
            {"name": tree_name},
        )
        return [row[0] for row in rows]


def test_processes_are_listed_with_their_fields(live: Live, admin: httpx.Client) -> None:
    response = admin.get("/api/processes")
    assert response.status_code == 200
    listed = {p["processName"]: p for p in response.json()}
    assert {"new-training-process", "process-registration", "provision-equipment"} <= set(listed)
    training = listed["new-training-process"]
    assert training == {
        "processName": "new-training-process",
        "sourceName": "Kianda",
        "sourceGroup": "HR > Training",
        "treeName": "New Training Process",
        "version": 1,
        "status": "Active",
        "description": "Ask for a training course; a manager approves or declines it.",
        "fields": [
            {
                "name": "Reason",
                "label": "Why the training is needed",
                "default": None,
                "settable": True,
                "description": "",
            },
            {
                "name": "Course",
                "label": "Course title",
                "default": "To be chosen",
                "settable": True,
                "description": "",
            },
            {
                "name": "Days",
                "label": "Days away from work",
                "default": 1,
                "settable": True,
                "description": "",
            },
            {
                "name": "Budget Code",
                "label": "Budget code (set by the process, not by requesters)",
                "default": "HR-TRAINING",
                "settable": False,
                "description": "",
            },
        ],
        "createdAt": training["createdAt"],
    }
    assert listed["process-registration"]["fields"] == []


def test_a_process_with_its_definition_and_versions(live: Live, admin: httpx.Client) -> None:
    response = admin.get("/api/processes/process-registration")
    assert response.status_code == 200
    body = response.json()
    assert (body["processName"], body["treeName"], body["version"]) == (
        "process-registration",
        "Process Registration",
        1,
    )
    assert body["definition"]["nodes"]["Review"]["handler"] == "utilities_defer_v1"
    [version] = body["versions"]
    assert (version["version"], version["status"]) == (1, "Active")
    assert len(version["digest"]) == 64
    missing = admin.get("/api/processes/no-such-process")
    assert missing.status_code == 404
    assert missing.json() == {
        "status": 404,
        "message": "Unable to locate a process named 'no-such-process'",
    }


def test_deploying_yaml_makes_new_versions_and_runs_stay_on_theirs(
    live: Live, admin: httpx.Client
) -> None:
    tree_name, process = unique_name()
    first = admin.post("/api/processes", content=claim_tree(tree_name), headers=YAML)
    assert first.status_code == 201, first.text
    assert (first.json()["processName"], first.json()["version"]) == (process, 1)
    assert first.json()["created"] is True

    created = admin.post(
        "/api/instances/create",
        json={"processName": process, "FieldsMappings": [{"fieldname": "Amount", "value": 12}]},
    )
    assert created.status_code == 200, created.text
    old_instance = created.json()["instanceID"]
    live.engine.run_until_idle()  # its run waits at Approve, on version 1

    changed = claim_tree(tree_name, greeting="Paid", extra_field="Note: {label: A note}")
    second = admin.post("/api/processes", content=changed, headers=YAML)
    assert second.status_code == 201, second.text
    body = second.json()
    assert (body["version"], body["created"]) == (2, True)
    assert [f["name"] for f in body["fields"]] == ["Amount", "Note"]
    assert [v["version"] for v in body["versions"]] == [1, 2]
    again = admin.post("/api/processes", content=changed, headers=YAML)
    assert (again.status_code, again.json()["created"], again.json()["version"]) == (200, False, 2)
    assert stored_versions(live, tree_name) == [1, 2]

    # The run in flight finishes on version 1; a new instance starts on version 2.
    old_run = live.engine.get_run(live.engine.get_instance(old_instance).run_id)
    token = next(t.token for t in old_run.tasks if t.name == "Approve")
    assert token is not None
    live.engine.create_deferred(token=token, action="Complete")
    new = admin.post(
        "/api/instances/create",
        json={"processName": process, "FieldsMappings": [{"fieldname": "Note", "value": "n"}]},
    )
    assert new.status_code == 200, new.text
    live.engine.run_until_idle()
    old_run = live.engine.get_run(old_run.id)
    done = next(t for t in old_run.tasks if t.name == "Done")
    assert (old_run.tree_version, done.results["output"]) == (1, "Claim 12")
    new_run = live.engine.get_run(live.engine.get_instance(new.json()["instanceID"]).run_id)
    assert new_run.tree_version == 2
    old_fields = admin.get(f"/api/instances/{old_instance}").json()["fields"]
    assert [f["name"] for f in old_fields] == ["Amount", "Currency"]


def test_a_bad_definition_lists_every_problem_and_stores_nothing(
    live: Live, admin: httpx.Client
) -> None:
    tree_name, process = unique_name()
    bad = claim_tree(tree_name).replace("utilities_echo_v1", "no_such_handler_v1")
    bad = bad.replace("default: 0", "default: [0]").replace("- to: Done", "- to: Nowhere")
    response = admin.post("/api/processes", content=bad, headers=YAML)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == 400
    # (Done is now unreachable too: a warning, as in a tree file, not a problem.)
    assert body["message"].startswith("3 problems in tree definition:")

    def line(fragment: str) -> int:
        [number] = [n for n, text in enumerate(bad.splitlines(), 1) if fragment in text]
        return number

    assert body["problems"] == [
        {
            "file": "<deployed>",
            "line": line("default: [0]"),
            "node": None,
            "message": "field 'Amount': 'default' must be a text, number, boolean or null, "
            "not a list",
        },
        {
            "file": "<deployed>",
            "line": line("to: Nowhere"),
            "node": "Approve",
            "message": "connector to unknown node 'Nowhere'",
        },
        {
            "file": "<deployed>",
            "line": line("no_such_handler_v1"),
            "node": "Done",
            "message": body["problems"][2]["message"],
        },
    ]
    assert body["problems"][2]["message"].startswith("unknown handler 'no_such_handler_v1'")
    assert stored_versions(live, tree_name) == []
    assert admin.get(f"/api/processes/{process}").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("source: [unclosed", "invalid YAML"),
        ("just text", "a tree is a mapping, not a text"),
        ("", "the document is empty"),
    ],
)
def test_text_that_is_not_a_tree_is_refused(admin: httpx.Client, body: str, message: str) -> None:
    response = admin.post("/api/processes", content=body, headers=YAML)
    assert response.status_code == 400
    [problem] = response.json()["problems"]
    assert message in problem["message"]


def test_a_process_name_of_another_tree_is_refused(live: Live, admin: httpx.Client) -> None:
    tree_name, _ = unique_name()
    text = claim_tree(tree_name).replace("fields:", "process: new-training-process\nfields:", 1)
    response = admin.post("/api/processes", content=text, headers=YAML)
    assert response.status_code == 400
    assert response.json()["problems"] == [
        {
            "file": "<deployed>",
            "line": None,
            "node": None,
            "message": "process name 'new-training-process' is already the process of tree "
            "'Kianda :: HR > Training :: New Training Process'",
        }
    ]
    assert stored_versions(live, tree_name) == []


def test_bodies_over_the_cap_and_not_utf8_are_refused(live: Live, admin: httpx.Client) -> None:
    tree_name, _ = unique_name()
    padded = claim_tree(tree_name) + "#" * BODY_CAP
    response = admin.post("/api/processes", content=padded, headers=YAML)
    assert response.status_code == 413
    assert response.json() == {
        "status": 413,
        "message": f"the request body of {len(padded)} bytes is over the limit of {BODY_CAP} bytes",
    }
    latin = admin.post("/api/processes", content="name: Caf\xe9".encode("latin-1"), headers=YAML)
    assert latin.status_code == 400
    assert latin.json()["message"].startswith("Invalid body: a definition is UTF-8 text")
    assert stored_versions(live, tree_name) == []


def test_processes_are_for_administrators(live: Live) -> None:
    tree_name, _ = unique_name()
    with live.client(live.token("ada")) as ada:
        for response in (
            ada.get("/api/processes"),
            ada.get("/api/processes/new-training-process"),
            ada.post("/api/processes", content=claim_tree(tree_name), headers=YAML),
        ):
            assert response.status_code == 403
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith('Bearer realm="treeflow", error="insufficient_scope"')
            assert response.json() == {
                "status": 403,
                "message": "user 'ada' has the role 'user'; this needs admin",
            }
    with live.client() as anonymous:
        assert anonymous.get("/api/processes").status_code == 401
    assert stored_versions(live, tree_name) == []
