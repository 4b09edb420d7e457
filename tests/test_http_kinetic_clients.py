"""Kinetic Task's clients over a real server, on SQLite and PostgreSQL: HTTP Basic (a password,
an access key) beside bearer tokens on every route, under every Kinetic URL prefix, refused
with the seed's 401 texts and throttled like ``POST /token``."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from engine.auth.access_keys import AccessKeys

from .live_server import DATABASES, PASSWORD, Live, basic, live_server, module_engine

ECHO = {
    "source": "Kinetic Request",
    "group": "Client Tests",
    "name": "Echo",
    "nodes": {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Echo"}]},
        "Echo": {"handler": "utilities_echo_v1", "parameters": {"input": "{{ source.id }}"}},
    },
}
RUN_TREE = "/app/api/v1/run-tree/Kinetic%20Request/Client%20Tests/Echo"
PREFIXES = ("", "/kinetic-task", "/app/components/task", "/kinetic")
INVALID = "security token is invalid or has expired"
MISSING = "security token not provided"


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        engine.load_tree(ECHO)
        server.add_user("grace", "admin")
        server.add_user("linus", "user")
        yield server


@pytest.fixture(scope="module")
def key_headers(live: Live) -> dict[str, str]:
    made = AccessKeys(live.engine).add("linus", description="portal")
    return basic(made.key.id, made.secret)


@pytest.fixture
def credentials(live: Live, key_headers: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "basic": basic("grace", PASSWORD),
        "bearer": {"Authorization": f"Bearer {live.token('grace')}"},
        "access key": key_headers,
    }


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("kind", ["basic", "bearer", "access key"])
def test_v1_run_tree_and_v2_runs_answer_every_credential_under_every_prefix(
    live: Live, credentials: dict[str, dict[str, str]], prefix: str, kind: str
) -> None:
    with live.client(**credentials[kind]) as client:
        started = client.post(
            f"{prefix}{RUN_TREE}", params={"sourceId": f"{kind}{prefix}"}, json={}
        )
        assert started.status_code == 200, started.text
        run_id = started.json()["run"]["id"]
        live.engine.run_until_idle()

        found = client.get(f"{prefix}/app/api/v2/runs/{run_id}", params={"include": "tasks"})
        engine_info = client.get(f"{prefix}/app/api/v2/engine")

    assert found.status_code == 200, found.text
    run = found.json()["run"]
    assert (run["id"], run["sourceId"], run["status"]) == (run_id, f"{kind}{prefix}", "Completed")
    assert [task["nodeName"] for task in run["tasks"]] == ["Start", "Echo"]
    assert engine_info.status_code == 200
    assert engine_info.json()["engine"]["status"] == "Stopped"


def test_the_trigger_api_answers_under_task_3s_path_with_basic(live: Live) -> None:
    form = {"source_name": "Kinetic Request", "source_group": "Client Tests", "tree_name": "Echo"}
    before = live.engine.count_runs()
    with live.client(**basic("linus", PASSWORD), Accept="application/json") as client:
        response = client.post("/kinetic/rest/v1/Trigger/createStart", data=form)
        refused = client.post("/kinetic/rest/v1/Trigger/createStart", data={"source_name": "x"})

    assert response.status_code == 200, response.text
    assert live.engine.count_runs() == before + 1
    assert refused.status_code == 400  # the seed's format and status on Task 3's path too
    assert refused.headers["X-Error-Message"]
    assert live.engine.count_runs() == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        basic("grace", "wrong password"),
        basic("nobody", PASSWORD),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()},
        basic("tfk_0123456789abcdef", "not a secret"),
    ],
    ids=["wrong password", "unknown user", "not base64", "no colon", "unknown key"],
)
def test_bad_basic_credentials_are_refused_with_the_seeds_401_text(
    live: Live, headers: dict[str, str]
) -> None:
    before = live.engine.count_runs()
    with live.client(**headers) as client:
        v1 = client.post(RUN_TREE, json={})
        v2 = client.get("/kinetic-task/app/api/v2/runs")

    for response in (v1, v2):
        assert response.status_code == 401, response.text
        assert response.json() == {"status": 401, "message": INVALID}
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="treeflow"')
    assert live.engine.count_runs() == before


def test_no_credentials_is_the_seeds_missing_token_text(live: Live) -> None:
    with live.client() as client:
        response = client.get("/app/components/task/app/api/v2/trees")
    assert response.status_code == 401
    assert response.json()["message"] == MISSING


def test_basic_password_failures_count_with_token_sign_ins_and_lock_out(live: Live) -> None:
    live.add_user("mallory", "user")
    try:
        with live.client(**basic("mallory", "guess")) as guessing:
            refused = [guessing.get("/app/api/v2/engine").status_code for _ in range(5)]
        with live.client(**basic("mallory", PASSWORD)) as right:
            locked = right.get("/app/api/v2/engine")
        with live.client() as client:
            token = client.post("/token", data={"username": "mallory", "password": PASSWORD})

        assert refused == [401] * 5
        assert live.accounts.failed_sign_ins("mallory") == 5
        assert locked.status_code == 429, locked.text
        assert "too many failed sign-ins" in locked.json()["message"]
        assert int(locked.headers["Retry-After"]) > 0
        assert token.status_code == 429  # the same counts as POST /token
    finally:
        live.accounts.unlock("mallory")
        live.accounts.remove_user("mallory")


def test_an_access_key_acts_as_its_user_until_removed_or_the_user_is_disabled(live: Live) -> None:
    keys = AccessKeys(live.engine)
    live.add_user("service", "user")
    try:
        made = keys.add("service", description="callback client")
        headers = basic(made.key.id, made.secret)
        with live.client(**headers) as client:
            allowed = client.get("/kinetic-task/app/api/v2/runs", params={"limit": 1})
            admin_only = client.post("/kinetic-task/app/api/v2/errors/resolve", json={})
        with live.client(**basic(made.key.id, made.secret + "x")) as client:
            wrong_secret = client.get("/kinetic-task/app/api/v2/runs")

        live.accounts.set_disabled("service", True)
        with live.client(**headers) as client:
            disabled = client.get("/kinetic-task/app/api/v2/runs")
        live.accounts.set_disabled("service", False)
        assert [key.id for key in keys.list("service")] == [made.key.id]
        keys.remove(made.key.id)
        with live.client(**headers) as client:
            removed = client.get("/kinetic-task/app/api/v2/runs")

        assert allowed.status_code == 200, allowed.text
        assert admin_only.status_code == 403  # the key has its user's role, no more
        assert [r.status_code for r in (wrong_secret, disabled, removed)] == [401, 401, 401]
        assert keys.list("service") == []
    finally:
        live.accounts.remove_user("service")


def test_the_secret_is_stored_only_as_its_hash(live: Live) -> None:
    made = AccessKeys(live.engine).add("linus")
    stored = live.engine.users.key(made.key.id)
    assert stored is not None
    assert made.secret not in stored.secret_hash and len(stored.secret_hash) == 64
    AccessKeys(live.engine).remove(made.key.id)
