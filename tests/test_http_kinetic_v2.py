"""The Kinetic Task API v2 over a real server, on SQLite and PostgreSQL: runs (with tasks and
their tokens), trees and routines (by title, Kinetic XML out and in), errors (batch resolve),
handlers, sources, engine; bad input answered 400/404/409 with nothing written; every other
operation of the official document 501 naming itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from engine import RunStatus, TaskStatus
from engine.server.kinetic_v2 import implemented
from engine.server.kinetic_v2.document import operations

from .live_server import DATABASES, Live, basic, live_server, module_engine
from .support import counts

V2 = "/kinetic-task/app/api/v2"
FIXTURES = Path(__file__).parent / "fixtures" / "kinetic"
TICKET = "Kinetic Request :: Service Desk :: Ticket Progress"
BROKEN = {
    "source": "Kinetic Request",
    "group": "V2 Tests",
    "name": "Broken Lookup",
    "nodes": {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Lookup"}]},
        "Lookup": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ results['Now' ~ 'here']['value'] }}"},
        },
    },
}


def title_path(title: str) -> str:
    return f"{V2}/trees/{quote(title, safe='')}"


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        engine.load_tree(BROKEN)
        server.add_user("grace", "admin")
        server.add_user("linus", "user")
        yield server


@pytest.fixture
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(**basic("grace")) as client:
        yield client


@pytest.fixture
def user(live: Live) -> Iterator[httpx.Client]:
    with live.client(**basic("linus")) as client:
        yield client


def ticket_run(live: Live, source_id: str) -> int:
    trigger = live.engine.create_start(
        source_name="Kinetic Request",
        source_group="Service Desk",
        tree_name="Ticket Progress",
        source_id=source_id,
    )
    live.engine.run_until_idle()
    return trigger.run_id


# -- runs ----------------------------------------------------------------------------------------


def test_search_runs_with_tasks_gives_each_task_its_deferral_token(
    live: Live, user: httpx.Client
) -> None:
    run_id = ticket_run(live, "T-search")
    token = live.engine.get_run(run_id).open_tokens["Work Ticket"]
    response = user.get(
        f"{V2}/runs", params={"include": "details,tasks", "sourceId": "T-search", "limit": 5}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["limit"], body["offset"], body["more"]) == (1, 5, 0, False)
    [run] = body["runs"]
    assert (run["id"], run["status"], run["sourceId"]) == (run_id, "Started", "T-search")
    assert run["tree"]["title"] == TICKET
    tasks = {task["nodeName"]: task for task in run["tasks"]}
    assert tasks["Work Ticket"]["token"] == token
    assert tasks["Work Ticket"]["status"] == "Deferred"
    assert tasks["Work Ticket"]["definitionId"] == "utilities_defer_v1"
    assert "token" not in tasks["Start"]  # no deferral, no token


def test_search_runs_by_id_tree_and_status_and_without_tasks(
    live: Live, user: httpx.Client
) -> None:
    run_id = ticket_run(live, "T-filters")
    by_id = user.get(f"{V2}/runs", params={"id": run_id}).json()["runs"]
    by_tree = user.get(f"{V2}/runs", params={"tree": "Ticket Progress", "status": "Started"})
    none_completed = user.get(
        f"{V2}/runs", params={"tree": "Ticket Progress", "status": "Completed"}
    )

    assert [run["id"] for run in by_id] == [run_id]
    assert "tasks" not in by_id[0]
    assert run_id in [run["id"] for run in by_tree.json()["runs"]]
    assert run_id not in [run["id"] for run in none_completed.json()["runs"]]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"groupFragment": "Desk"}, "cannot filter runs by 'groupFragment'"),
        ({"limit": 0}, "limit: must be from 1 to 1000"),
        ({"offset": -1}, "offset: must be from 0"),
    ],
)
def test_search_runs_refuses_what_it_cannot_answer_naming_it(
    user: httpx.Client, params: dict[str, Any], words: str
) -> None:
    response = user.get(f"{V2}/runs", params=params)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]


def test_create_run_with_source_data_then_read_it_and_its_tasks(
    live: Live, user: httpx.Client
) -> None:
    response = user.post(
        f"{V2}/runs",
        params={
            "sourceName": "Kinetic Request",
            "sourceGroup": "Service Desk",
            "name": "Ticket Progress",
        },
        json={"Ticket": "T-9", "Priority": 2},
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["run"]["id"]
    assert response.json()["id"] == run_id  # the fields at the top level too, as Kinetic answers
    live.engine.run_until_idle()

    read = user.get(f"{V2}/runs/{run_id}", params={"include": "tasks,inputs"})
    tasks = user.get(f"{V2}/runs/{run_id}/tasks")

    assert read.status_code == 200
    assert read.json()["run"]["status"] == "Started"
    names = [task["nodeName"] for task in tasks.json()["tasks"]]
    assert names == ["Start", "Work Ticket"]
    task_id = tasks.json()["tasks"][1]["id"]
    one = user.get(f"{V2}/runs/{run_id}/tasks/{task_id}")
    assert one.status_code == 200
    assert one.json()["task"]["nodeName"] == "Work Ticket"


def test_create_run_of_an_unknown_tree_writes_nothing(live: Live, user: httpx.Client) -> None:
    before = counts(live.engine)
    response = user.post(
        f"{V2}/runs", params={"sourceName": "Nope", "sourceGroup": "Nope", "name": "Nope"}, json={}
    )
    assert response.status_code == 400
    assert "Unable to locate the tree 'Nope'" in response.json()["message"]
    assert counts(live.engine) == before


def test_unknown_runs_and_tasks_are_404(user: httpx.Client) -> None:
    assert user.get(f"{V2}/runs/999999").status_code == 404
    response = user.get(f"{V2}/runs/1/tasks/no-such-task")
    assert response.status_code == 404


def test_complete_and_update_a_deferred_task_by_its_token(live: Live, user: httpx.Client) -> None:
    run_id = ticket_run(live, "T-complete")
    token = live.engine.get_run(run_id).open_tokens["Work Ticket"]
    results = '<results><result name="Progress">half</result></results>'
    updated = user.put(f"{V2}/runs/task/{token}", json={"message": "going", "results": results})
    live.engine.run_until_idle()
    completed = user.post(f"{V2}/runs/task/{token}", json={"message": "done"})
    live.engine.run_until_idle()

    assert updated.status_code == 200, updated.text
    assert completed.json() == {
        "messageType": "success",
        "message": f"Completed the deferred task with token {token}.",
    }
    run = live.engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Progress Note").results["output"] == "ticket T-complete: half"
    assert user.post(f"{V2}/runs/task/{token}", json={}).status_code == 400  # closed now


# -- trees and routines -------------------------------------------------------------------------


def test_search_trees_and_routines_with_filters(user: httpx.Client) -> None:
    everything = user.get(f"{V2}/trees").json()
    routines = user.get(f"{V2}/trees", params={"type": "Global Routine"}).json()["trees"]
    desk = user.get(f"{V2}/trees", params={"groupFragment": "service"}).json()["trees"]

    titles = [tree["title"] for tree in everything["trees"]]
    assert titles == sorted(titles) and TICKET in titles
    assert everything["count"] == len(titles)
    assert [(r["name"], r["definitionId"]) for r in routines] == [
        ("Compose Welcome", "routine_compose_welcome_v1")
    ]
    assert [tree["title"] for tree in desk] == [TICKET]


def test_retrieve_a_tree_by_its_title_with_its_export(user: httpx.Client) -> None:
    response = user.get(title_path(TICKET), params={"include": "details,export"})
    missing = user.get(title_path("Kinetic Request :: Service Desk :: Nope"))

    assert response.status_code == 200, response.text
    tree = response.json()
    assert tree["tree"]["title"] == tree["title"] == TICKET
    assert (tree["sourceName"], tree["sourceGroup"], tree["type"]) == (
        "Kinetic Request",
        "Service Desk",
        "Tree",
    )
    assert "<name>Ticket Progress</name>" in tree["export"]
    assert missing.status_code == 404
    assert "Unable to locate the tree" in missing.json()["message"]


def test_an_export_imports_again_into_the_same_definition(live: Live, admin: httpx.Client) -> None:
    exported = admin.get(f"{title_path(TICKET)}/export").json()["tree"]
    before = live.engine.tree_version(
        next(t.key for t in live.engine.trees if t.key.name == "Ticket Progress")
    )
    again = admin.post(
        f"{V2}/trees", params={"force": "true"}, files={"content": ("t.xml", exported)}
    )

    assert again.status_code == 200, again.text
    key = next(t.key for t in live.engine.trees if t.key.name == "Ticket Progress")
    assert live.engine.tree_version(key) == before  # the same definition: no new version


def test_import_a_kinetic_export_as_the_sdk_sends_it(live: Live, admin: httpx.Client) -> None:
    document = (FIXTURES / "greet-routine.xml").read_bytes()
    created = admin.post(f"{V2}/trees", files={"content": ("greet.xml", document, "text/xml")})
    again = admin.post(f"{V2}/trees", files={"content": ("greet.xml", document, "text/xml")})
    forced = admin.post(
        f"{V2}/trees", params={"force": "true"}, files={"content": ("greet.xml", document)}
    )

    assert created.status_code == 200, created.text
    assert created.json() == {
        "messageType": "success",
        "message": "Imported the tree '- :: - :: Greet'.",
    }
    assert again.status_code == 409
    assert "force=true" in again.json()["message"]
    assert forced.status_code == 200
    routine = admin.get(title_path("- :: - :: Greet")).json()
    assert (routine["type"], routine["definitionId"]) == ("Global Routine", "routine_greet_v1")


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ({"content": ("x.xml", b"<tree><taskTree>")}, 400, "Kinetic export"),
        ({"content": ("x.xml", b'<!DOCTYPE x [<!ENTITY a "b">]><tree/>')}, 400, "line 1"),
        ({"other": ("x.xml", b"<tree/>")}, 400, "no 'content' part"),
    ],
    ids=["malformed", "entity", "no content part"],
)
def test_bad_imports_are_refused_and_change_nothing(
    live: Live, admin: httpx.Client, files: dict[str, Any], status: int, words: str
) -> None:
    trees = len(live.engine.trees)
    response = admin.post(f"{V2}/trees", files=files)
    assert response.status_code == status, response.text
    assert words in response.text
    assert len(live.engine.trees) == trees


def test_changing_trees_needs_an_administrator(user: httpx.Client) -> None:
    document = (FIXTURES / "greet-routine.xml").read_bytes()
    assert user.post(f"{V2}/trees", files={"content": ("g.xml", document)}).status_code == 403
    assert user.put(title_path(TICKET), json={"status": "Inactive"}).status_code == 403
    assert user.delete(title_path(TICKET)).status_code == 403


def test_update_then_delete_a_tree_makes_it_inactive(live: Live, admin: httpx.Client) -> None:
    live.engine.load_tree({**BROKEN, "name": "Short Lived"})
    title = "Kinetic Request :: V2 Tests :: Short Lived"
    noted = admin.put(title_path(title), json={"notes": "going soon"})
    renamed = admin.put(title_path(title), json={"name": "Other"})
    deleted = admin.delete(title_path(title))
    start = admin.post(
        f"{V2}/runs",
        params={"sourceName": "Kinetic Request", "sourceGroup": "V2 Tests", "name": "Short Lived"},
    )

    assert noted.status_code == 200, noted.text
    assert noted.json()["tree"]["notes"] == "going soon"
    assert renamed.status_code == 400
    assert "renaming a tree is not supported" in renamed.json()["message"]
    assert deleted.json()["tree"]["status"] == "Inactive"
    assert start.status_code == 400  # no new runs of an inactive tree


def test_missing_handlers_and_routines_are_read_from_the_refused_files(
    tmp_path: Path,
) -> None:
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "old.yaml").write_text(
        "source: Kinetic Request\ngroup: Legacy\nname: Old\nnodes:\n"
        "  Start:\n    handler: system_start_v1\n    connectors: [{to: Mail}, {to: Lookup}]\n"
        "  Mail:\n    handler: kinetic_email_send_v1\n"
        "  Lookup:\n    handler: routine_person_lookup_v1\n"
    )
    from engine import Engine

    with (
        Engine(f"sqlite:///{tmp_path / 't.db'}", trees=trees) as engine,
        live_server(engine) as server,
    ):
        server.add_user("grace", "admin")
        with server.client(**basic("grace")) as client:
            handlers = client.get(f"{V2}/handlers/missing").json()["missingHandlers"]
            routines = client.get(f"{V2}/trees/missing").json()["missingRoutines"]

    by_id = {item["definitionId"]: item for item in handlers}
    assert by_id["kinetic_email_send_v1"]["treeCount"] == 1
    assert by_id["kinetic_email_send_v1"]["totalNodeCount"] == 1
    assert [item["definitionId"] for item in routines] == ["routine_person_lookup_v1"]


# -- errors --------------------------------------------------------------------------------------


def test_list_read_and_batch_resolve_errors(live: Live, admin: httpx.Client) -> None:
    trigger = live.engine.create_start(
        source_name="Kinetic Request", source_group="V2 Tests", tree_name="Broken Lookup"
    )
    live.engine.run_until_idle()
    listed = admin.get(f"{V2}/errors", params={"runId": trigger.run_id, "include": "text,run"})
    [error] = listed.json()["errors"]
    one = admin.get(f"{V2}/errors/{error['id']}")
    wrong_action = admin.post(
        f"{V2}/errors/resolve",
        json={"ids": [error["id"]], "action": "Cancel Branch", "resolution": "no"},
    )
    unknown = admin.post(
        f"{V2}/errors/resolve",
        json={"ids": [error["id"], "no-such-error"], "action": "Do Nothing", "resolution": "x"},
    )
    resolved = admin.post(
        f"{V2}/errors/resolve",
        json={"ids": [error["id"]], "action": "Do Nothing", "resolution": "looked at it"},
    )
    live.engine.run_until_idle()

    assert listed.status_code == 200, listed.text
    assert (error["type"], error["status"]) == ("Node Parameter Error", "Active")
    assert error["run"]["tree"]["name"] == "Broken Lookup"
    assert one.json()["error"]["id"] == error["id"]
    assert wrong_action.status_code == 400
    assert unknown.status_code == 404
    assert resolved.json()["messageType"] == "success"
    stored = live.engine.get_error(error["id"])
    assert (stored.status, stored.resolution_action) == ("Handled", "Do Nothing")
    assert stored.resolution_message == "looked at it"


def test_errors_refuse_unsupported_filters_and_users_cannot_resolve(user: httpx.Client) -> None:
    assert user.get(f"{V2}/errors", params={"nodeId": "x"}).status_code == 400
    response = user.post(f"{V2}/errors/resolve", json={"ids": [1], "action": "Do Nothing"})
    assert response.status_code == 403


# -- handlers, sources, engine -------------------------------------------------------------------


def test_handlers_sources_engine_environment_and_version(user: httpx.Client) -> None:
    handlers = user.get(f"{V2}/handlers").json()["handlers"]
    echo = user.get(f"{V2}/handlers/utilities_echo_v1", params={"include": "parameters"}).json()
    sources = user.get(f"{V2}/sources").json()
    source = user.get(f"{V2}/sources/Kianda")
    engine = user.get(f"{V2}/engine").json()
    environment = user.get(f"{V2}/environment").json()
    version = user.get(f"{V2}/version").json()
    root = user.get(V2).json()

    assert "utilities_defer_v1" in [h["definitionId"] for h in handlers]
    assert next(h for h in handlers if h["definitionId"] == "utilities_defer_v1")["deferrable"]
    assert echo["handler"]["definitionName"] == "utilities_echo"
    assert [p["name"] for p in echo["parameters"]] == ["input"]
    assert [s["name"] for s in sources["sourceRoots"]] == ["-", "Kianda", "Kinetic Request"]
    assert source.json()["source"]["status"] == "Active"
    assert user.get(f"{V2}/sources/Nope").status_code == 404
    assert user.get(f"{V2}/handlers/nope_v1").status_code == 404
    assert engine["engine"]["status"] == "Stopped"  # this test server runs no workers
    assert environment["Engine Information"]["Version"] == version["metadata"]["version"]
    assert root["version"] == version["version"] > "04.03.0z"


def test_every_operation_treeflow_lacks_answers_501_naming_itself(user: httpx.Client) -> None:
    done = {operation.operation_id for operation in implemented()}
    lacking = [operation for operation in operations() if operation.operation_id not in done]
    assert len(operations()) == 106 and len(lacking) == 106 - len(done)
    for operation in lacking:
        path = operation.path.replace("{", "").replace("}", "")  # a value for each parameter
        response = user.request(operation.method, f"{V2}{path}")
        assert response.status_code == 501, (operation, response.text)
        assert response.json()["message"] == (
            f"The Kinetic Task API v2 operation {operation.operation_id} "
            f"({operation.method} {operation.path}) is not implemented by treeflow"
        )


def test_no_credentials_is_401_on_v2(live: Live) -> None:
    with live.client() as client:
        response = client.get(f"{V2}/runs")
    assert response.status_code == 401
    assert response.json()["message"] == "security token not provided"


def test_tasks_status_values_are_treeflows(live: Live) -> None:
    assert {status.value for status in TaskStatus} >= {"Deferred", "Closed"}


# -- triggers ------------------------------------------------------------------------------------


def test_triggers_all_one_and_the_backlog_by_run(live: Live, user: httpx.Client) -> None:
    run_id = ticket_run(live, "T-triggers")
    token = live.engine.get_run(run_id).open_tokens["Work Ticket"]
    live.engine.create_deferred(token=token, action="Complete")  # accepted, not yet processed

    listed = user.get(f"{V2}/triggers", params={"runId": run_id}).json()
    backlog = user.get(f"{V2}/triggers/backlog", params={"runId": run_id}).json()
    closed = user.get(f"{V2}/triggers", params={"runId": run_id, "status": "Closed"}).json()
    paused = user.get(f"{V2}/triggers/paused", params={"runId": run_id}).json()
    one = user.get(f"{V2}/triggers/{backlog['triggers'][0]['id']}").json()
    live.engine.run_until_idle()
    drained = user.get(f"{V2}/triggers/backlog", params={"runId": run_id}).json()

    assert [t["action"] for t in listed["triggers"]] == ["Complete", "Root"]  # newest first
    assert listed["count"] == 2
    assert [(t["action"], t["status"], t["token"]) for t in backlog["triggers"]] == [
        ("Complete", "New", token)
    ]
    assert [t["action"] for t in closed["triggers"]] == ["Root"]
    assert paused["triggers"] == []
    assert one["trigger"]["runId"] == run_id
    assert drained["count"] == 0


def test_triggers_refuse_what_they_cannot_answer(user: httpx.Client) -> None:
    assert user.get(f"{V2}/triggers", params={"status": "Sleeping"}).status_code == 400
    assert user.get(f"{V2}/triggers", params={"tree": "x"}).status_code == 400
    assert user.get(f"{V2}/triggers/999999").status_code == 404
