"""The Kinetic Task API v2 deleteRun and createRootTrigger over a real server, on SQLite and
PostgreSQL: a finished run goes with its whole call tree and every row about it; a routine's
run, an unfinished run and bad root triggers are refused naming why, with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from engine import RunStatus, TaskStatus
from engine.store.tables import errors, runs, tasks, triggers

from .live_server import DATABASES, Live, basic, live_server, module_engine
from .support import counts

V2 = "/kinetic-task/app/api/v2"
STARTER = (
    '<results><result name="Employee">Ada</result><result name="Team">Ops</result>'
    '<result name="Buddy">Bo</result></results>'
)
BROKEN = {
    "source": "Kinetic Request",
    "group": "V2 Run Control",
    "name": "Broken Lookup",
    "nodes": {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Lookup"}]},
        "Lookup": {
            "handler": "utilities_echo_v1",
            "parameters": {"input": "{{ results['Now' ~ 'here']['value'] }}"},
        },
    },
}


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


def started(live: Live, group: str, name: str, results: str | None = None) -> int:
    trigger = live.engine.create_start(
        source_name="Kinetic Request", source_group=group, tree_name=name, results=results
    )
    live.engine.run_until_idle()
    return trigger.run_id


def welcome_run(live: Live) -> tuple[int, list[int]]:
    """A Completed Welcome Starter run and the two routine runs it called."""
    root = started(live, "HR > Starters", "Welcome Starter", STARTER)
    run = live.engine.get_run(root)
    assert run.status is RunStatus.COMPLETED
    children = [link.run_id for link in run.children]
    assert len(children) == 2
    return root, children


def ticket_run(live: Live) -> int:
    """A Started run, waiting at its deferred Work Ticket."""
    return started(live, "Service Desk", "Ticket Progress")


def rows_of(live: Live, run_ids: list[int]) -> dict[str, int]:
    with live.engine.database.read() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table).where(column.in_(run_ids))
            ).scalar_one()
            for table, column in (
                (runs, runs.c.id),
                (tasks, tasks.c.run_id),
                (triggers, triggers.c.run_id),
                (errors, errors.c.run_id),
            )
        }


# -- deleteRun -----------------------------------------------------------------------------------


def test_delete_a_finished_run_answers_it_and_deletes_its_call_tree(
    live: Live, admin: httpx.Client
) -> None:
    root, children = welcome_run(live)
    kept = ticket_run(live)
    tree = [root, *children]
    assert rows_of(live, tree)["tasks"] > 0
    kept_rows = rows_of(live, [kept])
    before = counts(live.engine)
    gone = rows_of(live, tree)

    response = admin.delete(f"{V2}/runs/{root}", params={"include": "tasks,children"})

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert (run["id"], run["status"]) == (root, "Completed")
    assert run["tree"]["name"] == "Welcome Starter"
    assert {task["nodeName"] for task in run["tasks"]} >= {"Start", "Welcome Starter", "Send"}
    assert [child["id"] for child in run["children"]] == children
    assert rows_of(live, tree) == {"runs": 0, "tasks": 0, "triggers": 0, "errors": 0}
    after = counts(live.engine)
    assert {table: before[table] - after[table] for table in before} == gone
    assert rows_of(live, [kept]) == kept_rows  # another run is untouched
    for run_id in tree:
        assert admin.get(f"{V2}/runs/{run_id}").status_code == 404
    assert admin.delete(f"{V2}/runs/{root}").status_code == 404  # gone already


def test_a_failed_run_goes_with_its_active_error(live: Live, admin: httpx.Client) -> None:
    run_id = started(live, "V2 Run Control", "Broken Lookup")
    assert live.engine.get_run(run_id).status is RunStatus.FAILED
    assert rows_of(live, [run_id])["errors"] == 1

    response = admin.delete(f"{V2}/runs/{run_id}", params={"include": "exceptions"})

    assert response.status_code == 200, response.text
    [error] = response.json()["run"]["exceptions"]
    assert error["status"] == "Active"
    assert rows_of(live, [run_id]) == {"runs": 0, "tasks": 0, "triggers": 0, "errors": 0}
    assert admin.get(f"{V2}/errors", params={"runId": run_id}).json()["errors"] == []


def test_an_unknown_run_is_404_in_the_v2_error_shape(admin: httpx.Client) -> None:
    response = admin.delete(f"{V2}/runs/999999")

    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "message": "Unable to locate a run with the id 999999",
    }
    assert admin.delete(f"{V2}/runs/0").status_code == 400


def test_an_unfinished_run_is_refused_until_cancelled(live: Live, admin: httpx.Client) -> None:
    run_id = ticket_run(live)
    before = counts(live.engine)

    refused = admin.delete(f"{V2}/runs/{run_id}")

    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "status": 409,
        "message": f"Run {run_id} cannot be deleted: it is Started: cancel it first, "
        "or wait until it ends",
    }
    assert counts(live.engine) == before
    assert live.engine.get_run(run_id).status is RunStatus.STARTED
    live.engine.cancel_run(run_id, "not needed", "grace")
    live.engine.run_until_idle()
    assert admin.delete(f"{V2}/runs/{run_id}").json()["run"]["status"] == "Cancelled"
    assert rows_of(live, [run_id])["runs"] == 0


def test_a_routines_run_is_refused_naming_its_top_level_run(
    live: Live, admin: httpx.Client
) -> None:
    root, children = welcome_run(live)
    before = counts(live.engine)

    refused = admin.delete(f"{V2}/runs/{children[0]}")

    assert refused.status_code == 409, refused.text
    assert refused.json()["message"] == (
        f"Run {children[0]} cannot be deleted: it is a routine's run, called by run {root}; "
        f"it goes with its call tree: delete the top-level run {root}"
    )
    assert counts(live.engine) == before


def test_a_finished_run_with_an_open_trigger_is_refused_until_it_is_processed(
    live: Live, admin: httpx.Client
) -> None:
    run_id = started(live, "V2 Run Control", "Broken Lookup")
    [error] = live.engine.get_run(run_id).errors
    live.engine.resolve_error(error.id, "Do Nothing", resolved_by="grace")  # open until processed
    before = counts(live.engine)

    refused = admin.delete(f"{V2}/runs/{run_id}")

    assert refused.status_code == 409, refused.text
    assert refused.json()["message"] == (
        f"Run {run_id} cannot be deleted: a routine run it called is unfinished, or one of its "
        "runs has an open trigger: cancel it first, or wait until the trigger is processed"
    )
    assert counts(live.engine) == before
    live.engine.run_until_idle()
    assert admin.delete(f"{V2}/runs/{run_id}").status_code == 200
    assert rows_of(live, [run_id])["runs"] == 0


def test_deleting_needs_an_administrator(live: Live, user: httpx.Client) -> None:
    root, _children = welcome_run(live)

    assert user.delete(f"{V2}/runs/{root}").status_code == 403
    assert live.engine.get_run(root).status is RunStatus.COMPLETED


# -- createRootTrigger ---------------------------------------------------------------------------


def test_a_root_trigger_at_start_runs_the_tree_again_in_the_run(
    live: Live, admin: httpx.Client
) -> None:
    run_id = ticket_run(live)

    response = admin.post(
        f"{V2}/runs/{run_id}/triggers", json={"nodeId": "Start", "loopIndex": "/"}
    )
    live.engine.run_until_idle()

    assert response.status_code == 200, response.text
    [trigger] = [t for t in live.engine.list_triggers(run_id=run_id)[1] if t.node == "Start"]
    assert response.json() == {
        "messageType": "success",
        "message": f"Created root trigger {trigger.id} at 'Start' for run {run_id}.",
    }
    assert (trigger.action.value, trigger.requested_by) == ("Manual", "grace")
    assert trigger.message == "Kinetic Task API v2 createRootTrigger at 'Start'"
    run = live.engine.get_run(run_id)
    starts = [task for task in run.tasks if task.name == "Start"]
    assert [task.status for task in starts] == [TaskStatus.CLOSED, TaskStatus.CLOSED]
    assert run.status is RunStatus.STARTED


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"nodeId": "Work Ticket"}, "only at the tree's Start node ('Start'), not 'Work Ticket'"),
        ({}, "nodeId: the node to trigger is required"),
        ({"nodeId": "Start", "loopIndex": "/0"}, "loopIndex: the Start node has only '/'"),
        ({"nodeId": "Start", "branchId": 3}, "branchId: the Start node has only 0"),
        ({"nodeId": "Start", "scheduledAt": "2030-01-01T00:00:00Z"}, "scheduledAt: treeflow"),
        ({"nodeId": "Start", "node": "x"}, "unknown property 'node'"),
    ],
)
def test_bad_root_triggers_are_refused_naming_why(
    live: Live, admin: httpx.Client, body: dict[str, object], says: str
) -> None:
    run_id = ticket_run(live)
    before = counts(live.engine)

    response = admin.post(f"{V2}/runs/{run_id}/triggers", json=body)

    assert response.status_code == 400, response.text
    assert says in response.json()["message"]
    assert counts(live.engine) == before


def test_root_triggers_of_finished_or_unknown_runs_and_by_users_are_refused(
    live: Live, admin: httpx.Client, user: httpx.Client
) -> None:
    root, _children = welcome_run(live)
    start = {"nodeId": "Start"}
    before = counts(live.engine)

    completed = admin.post(f"{V2}/runs/{root}/triggers", json=start)

    assert completed.status_code == 409, completed.text
    assert "Completed" in completed.json()["message"]
    assert admin.post(f"{V2}/runs/999999/triggers", json=start).status_code == 404
    assert user.post(f"{V2}/runs/{root}/triggers", json=start).status_code == 403
    assert counts(live.engine) == before
