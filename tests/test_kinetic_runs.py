"""Imported Kinetic trees run as Kinetic runs them: Ruby's nil, Request CE's bindings.

``submitted-approval-tree.xml`` is a Request CE "Submitted" tree written for these tests in the
format Kinetic exports: it reads the submission through ``@submission``, ``@values``, ``@form``,
``@kapp`` and ``@space_attributes``, defers for an approval and branches on its Status. Its
source data is what Request CE posts with a webhook (the run-tree body). A callback client
that completes the approval without results takes the Denied branch, as in Kinetic, where the
missing Status is nil; the same tree without ``missing: nil`` fails on the missing key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from engine import Engine, RunStatus, TaskStatus
from engine.errors import TreeError
from engine.kinetic.importer import convert_kinetic
from engine.run.source_bindings import source_bindings

from .live_server import live_server

EXPORT = Path(__file__).resolve().parent / "fixtures" / "kinetic" / "submitted-approval-tree.xml"
SOURCE, GROUP, NAME = "Kinetic Request CE", "Submissions > services > laptop-request", "Submitted"
# A Request CE submission webhook body, nested as Request CE nests it.
WEBHOOK: dict[str, Any] = {
    "action": "Submitted",
    "submission": {
        "id": "sub 42",
        "coreState": "Submitted",
        "submittedBy": "ada@acme.example",
        "closedAt": None,
        "values": {"Requested For": " Ada Lovelace ", "Teams": ["HR", "IT"], "Urgent": "Yes"},
        "form": {
            "name": "Laptop Request",
            "slug": "laptop-request",
            "attributes": [{"name": "Approver", "values": ["grace", "alan"]}],
            "kapp": {
                "slug": "services",
                "space": {
                    "slug": "acme",
                    "attributes": [{"name": "Web Server Url", "values": ["https://acme.example"]}],
                },
            },
        },
    },
}
NOTIFY = (
    "URGENT Laptop Request sub 42 (Submitted) for Ada Lovelace, 2 teams: "
    "https://acme.example/#/kapps/services/requests/sub%2042"
)


def imported() -> str:
    return convert_kinetic(EXPORT.read_bytes(), file=EXPORT.name).yaml()


def start(engine: Engine, data: dict[str, Any]) -> int:
    trigger = engine.create_start(
        source_name=SOURCE, source_group=GROUP, tree_name=NAME, source_id="sub 42", source_data=data
    )
    engine.run_until_idle()
    return trigger.run_id


def test_bindings_follow_request_ce_webhook_data() -> None:
    bindings = source_bindings(WEBHOOK)

    assert bindings["submission"] == {
        "Id": "sub 42",
        "Core State": "Submitted",
        "Submitted By": "ada@acme.example",
    }
    assert bindings["values"] == {
        "Requested For": " Ada Lovelace ",
        "Teams": '["HR","IT"]',
        "Urgent": "Yes",
    }
    assert bindings["form"] == {"Name": "Laptop Request", "Slug": "laptop-request"}
    assert bindings["form_attributes"] == {"Approver": '["grace","alan"]'}
    assert bindings["kapp"] == {"Slug": "services"}
    assert bindings["space"] == {"Slug": "acme"}
    assert bindings["space_attributes"] == {"Web Server Url": "https://acme.example"}
    assert bindings["answers"] == bindings["values"]
    assert bindings["team"] == bindings["user"] == bindings["dataset"] == {}


def test_bindings_of_top_level_objects_and_of_plain_fields() -> None:
    data = {
        "team": {"name": "Role::Approver", "slug": "abc", "attributesMap": {"Icon": ["fa-x"]}},
        "user": {"username": "ada", "displayName": "Ada", "profileAttributes": [
            {"name": "Phone", "values": ["555"]}]},
        "values": {"Count": 3, "Done": True},
    }  # fmt: skip

    bindings = source_bindings(data)

    assert bindings["team"] == {"Name": "Role::Approver", "Slug": "abc"}
    assert bindings["team_attributes"] == {"Icon": "fa-x"}
    assert bindings["user"] == {"Username": "ada", "Display Name": "Ada"}
    assert bindings["user_profile_attributes"] == {"Phone": "555"}
    assert bindings["values"] == {"Count": "3", "Done": "true"}
    assert source_bindings({"Name": "Ada", "Empty": ""})["values"] == {"Name": "Ada", "Empty": ""}


def test_a_deferral_completed_without_results_takes_the_denied_branch(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(imported())
        run_id = start(engine, WEBHOOK)
        run = engine.get_run(run_id)
        assert run.task("Notify").results["output"] == NOTIFY
        token = run.open_tokens["Approval"]

        engine.create_deferred(token=token, action="Complete")  # no results at all
        engine.run_until_idle()

        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.errors == ()
        assert run.task("Denied").status is TaskStatus.CLOSED
        assert run.task("Denied").results["output"] == "Denied: no reason given"
        assert "Approved" not in {task.name for task in run.tasks}


def test_a_deferral_completed_with_a_status_takes_its_branch(database_url: str) -> None:
    with Engine(database_url) as engine:
        engine.load_tree(imported())
        run_id = start(engine, WEBHOOK)
        token = engine.get_run(run_id).open_tokens["Approval"]
        approved = '<results><result name="Status">Approved</result></results>'

        engine.create_deferred(token=token, action="Complete", results=approved)
        engine.run_until_idle()

        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Approved").results["output"] == "Approved by "  # no Approver: nil
        assert "Denied" not in {task.name for task in run.tasks}


def test_without_missing_nil_the_same_tree_fails_on_the_missing_key(database_url: str) -> None:
    strict = imported().replace("missing: nil\n", "")
    assert "missing:" not in strict
    with Engine(database_url) as engine:
        engine.load_tree(strict)
        run_id = start(engine, WEBHOOK)
        token = engine.get_run(run_id).open_tokens["Approval"]

        engine.create_deferred(token=token, action="Complete")
        engine.run_until_idle()

        run = engine.get_run(run_id)
        assert {task.name for task in run.tasks} == {"Start", "Notify", "Approval"}
        assert [error.type for error in run.errors] == ["Connector Error"] * 2
        assert all("missing key 'Status'" in error.summary for error in run.errors)


def test_an_unknown_missing_setting_is_refused_by_name() -> None:
    with Engine("sqlite://") as engine, pytest.raises(TreeError) as caught:
        engine.load_tree(imported().replace("missing: nil", "missing: empty"))

    [problem] = caught.value.problems
    assert problem.message == "missing 'empty' is not one of error, nil"
    assert problem.line == 5


def test_run_tree_over_http_reads_the_webhook_body_as_request_ce_bindings(
    database_url: str,
) -> None:
    with Engine(database_url) as engine, live_server(engine) as server:
        engine.load_tree(imported())
        server.add_user("ada", "user")
        path = "/".join(quote(part, safe="") for part in (SOURCE, GROUP, NAME))
        with server.client(server.token("ada")) as client:
            response = client.post(f"/app/api/v1/run-tree/{path}", json=WEBHOOK)
            assert response.status_code == 200, response.text
            run_id = int(response.json()["run"]["id"])
            engine.run_until_idle()
            run = engine.get_run(run_id)
            assert run.task("Notify").results["output"] == NOTIFY

            token = run.open_tokens["Approval"]
            done = client.post(
                "/app/api/v1/complete-deferred-task/Kinetic%20Request%20CE", json={"token": token}
            )
            assert done.status_code == 200, done.text
            engine.run_until_idle()

        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED
        assert run.task("Denied").results["output"] == "Denied: no reason given"
