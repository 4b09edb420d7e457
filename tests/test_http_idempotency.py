"""``Idempotency-Key`` on the routes that accept a trigger, over a real server on SQLite and
PostgreSQL: a repeat is answered as the first call was and writes nothing more, the key with
another request is 422 and writes nothing, keys are per user, a bad key is 400; and the engine
call underneath refuses a reused key with another fingerprint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine, IdempotencyKeyReused

from .live_server import DATABASES, Live, live_server, module_engine
from .support import APPROVED, REGISTRATION, race, small_tree

START = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED = "/kineticTask/rest/v1/Trigger/createDeferred"
RUN_TREE = (
    "/app/api/v1/run-tree/Kinetic%20Request/KEG%20Catalog%20%3E%20Conference%20Registration"
    "/Process%20Registration"
)
COMPLETE = "/app/api/v1/complete-deferred-task/Kinetic%20Request"
UPDATE = "/app/api/v1/update-deferred-task/Kinetic%20Request"
CREATE = "/api/instances/create"
TABLES = ("runs", "triggers", "tasks", "instances", "request_keys")
DENIED = '<results><result name="Status">Denied</result></results>'
REUSED = (
    "the Idempotency-Key {key!r} was already used for a different request (another method, "
    "path or body); a new request needs a new key"
)


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("ada", "admin")
        server.add_user("bob", "user")
        yield server


@pytest.fixture(scope="module")
def tokens(live: Live) -> dict[str, str]:
    return {name: live.token(name) for name in ("ada", "bob")}


def written(engine: Engine) -> dict[str, int]:
    with engine.database.read() as connection:
        return {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES
        }


def review_token(engine: Engine) -> str:
    """A fresh deferral token: a registration run waiting at Review."""
    trigger = engine.create_start(**REGISTRATION, source_id="to-review")
    engine.run_until_idle()
    return engine.get_run(trigger.run_id).open_tokens["Review"]


@dataclass(frozen=True)
class Route:
    """A keyed call: ``first``, the same request written differently, and another request."""

    path: str
    form: bool  # form fields (the seed's API), else a JSON body
    first: Callable[[str], object]  # each takes a deferral token (unused by the starts)
    same: Callable[[str], object]
    other: Callable[[str], object]
    deferred: bool = False

    def send(self, client: httpx.Client, key: str | None, body: object) -> httpx.Response:
        headers = {} if key is None else {"Idempotency-Key": key}
        if self.form:
            return client.post(self.path, data=body, headers=headers)  # type: ignore[arg-type]
        text = body if isinstance(body, str) else json.dumps(body)
        headers["Content-Type"] = "application/json"
        return client.post(self.path, content=text, headers=headers)


SEED_FIELDS = {**REGISTRATION, "source_id": "REG-7"}
ROUTES = {
    "seed-createStart": Route(
        START,
        form=True,
        first=lambda _t: SEED_FIELDS,
        same=lambda _t: dict(reversed(SEED_FIELDS.items())),  # another order, the same fields
        other=lambda _t: {**SEED_FIELDS, "source_id": "REG-8"},
    ),
    "seed-createDeferred": Route(
        DEFERRED,
        form=True,
        first=lambda t: {"token": t, "action": "Complete", "results": APPROVED},
        same=lambda t: {"results": APPROVED, "action": "Complete", "token": t},
        other=lambda t: {"token": t, "action": "Complete", "results": DENIED},
        deferred=True,
    ),
    "run-tree": Route(
        f"{RUN_TREE}?sourceId=REG-9",
        form=False,
        first=lambda _t: '{"Attendee": "Ada", "Days": 2}',
        same=lambda _t: '{ "Days":2,\n  "Attendee":"Ada" }',
        other=lambda _t: '{"Attendee": "Grace", "Days": 2}',
    ),
    "complete-deferred-task": Route(
        COMPLETE,
        form=False,
        first=lambda t: {"token": t, "results": {"Status": "Approved"}},
        same=lambda t: {"results": {"Status": "Approved"}, "token": t},
        other=lambda t: {"token": t, "results": {"Status": "Denied"}},
        deferred=True,
    ),
    "update-deferred-task": Route(
        UPDATE,
        form=False,
        first=lambda t: {"token": t, "results": {"Note": "seen"}},
        same=lambda t: {"results": {"Note": "seen"}, "token": t},
        other=lambda t: {"token": t, "results": {"Note": "changed"}},
        deferred=True,
    ),
    "instances-create": Route(
        CREATE,
        form=False,
        first=lambda _t: {
            "processName": "new-training-process",
            "FieldsMappings": [{"fieldname": "Reason", "value": "New employee"}],
        },
        same=lambda _t: {
            "FieldsMappings": [{"value": "New employee", "fieldname": "Reason"}],
            "processName": "new-training-process",
            "instanceID": None,
        },
        other=lambda _t: {
            "processName": "new-training-process",
            "FieldsMappings": [{"fieldname": "Reason", "value": "Promotion"}],
        },
    ),
}
ROUTE_IDS = list(ROUTES)


@pytest.mark.parametrize("route_id", ROUTE_IDS)
def test_a_repeat_with_the_key_returns_the_first_answer_and_writes_nothing_more(
    live: Live, tokens: dict[str, str], route_id: str
) -> None:
    route = ROUTES[route_id]
    token = review_token(live.engine) if route.deferred else ""
    key = f"repeat-{route_id}"
    with live.client(tokens["ada"], Accept="application/json") as client:
        first = route.send(client, key, route.first(token))
        assert first.status_code == 200, first.text
        live.engine.run_until_idle()  # a deferred task is closed now: its token names nothing
        before = written(live.engine)

        repeats = [route.send(client, key, route.same(token)) for _ in range(2)]

    assert [(r.status_code, r.content) for r in repeats] == [(200, first.content)] * 2
    assert written(live.engine) == before
    assert live.engine.count_open_triggers() == 0


def test_a_deferred_call_repeated_without_a_key_is_refused_once_the_token_is_used(
    live: Live, tokens: dict[str, str]
) -> None:
    """What the key changes: without one, the repeat of a Complete is an unknown token."""
    token = review_token(live.engine)
    route = ROUTES["complete-deferred-task"]
    with live.client(tokens["ada"]) as client:
        assert route.send(client, None, route.first(token)).status_code == 200
        again = route.send(client, None, route.first(token))

    assert again.status_code == 400
    assert again.json()["message"] == (
        f"Unable to locate a task instance with the specified deferral token ({token})"
    )


@pytest.mark.parametrize("route_id", ROUTE_IDS)
def test_the_key_with_another_request_is_422_naming_it_and_writes_nothing(
    live: Live, tokens: dict[str, str], route_id: str
) -> None:
    route = ROUTES[route_id]
    token = review_token(live.engine) if route.deferred else ""
    key = f"other-{route_id}"
    with live.client(tokens["ada"], Accept="application/json") as client:
        assert route.send(client, key, route.first(token)).status_code == 200
        live.engine.run_until_idle()
        before = written(live.engine)

        refused = route.send(client, key, route.other(token))

    assert refused.status_code == 422
    assert refused.json() == {"status": 422, "message": REUSED.format(key=key)}
    assert written(live.engine) == before


def test_the_seed_api_refuses_a_reused_key_in_its_own_format(
    live: Live, tokens: dict[str, str]
) -> None:
    route = ROUTES["seed-createStart"]
    with live.client(tokens["ada"]) as client:  # no Accept: the seed's plain text
        assert route.send(client, "seed-plain", route.first("")).status_code == 200
        refused = route.send(client, "seed-plain", route.other(""))

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "text/plain;charset=UTF-8"
    assert refused.text == REUSED.format(key="seed-plain")
    assert refused.headers["X-Error-Message"] == REUSED.format(key="seed-plain")


def test_one_key_on_two_routes_is_two_requests(live: Live, tokens: dict[str, str]) -> None:
    with live.client(tokens["ada"]) as client:
        started = ROUTES["seed-createStart"].send(client, "two-routes", SEED_FIELDS)
        assert started.status_code == 200, started.text
        before = written(live.engine)

        refused = ROUTES["run-tree"].send(client, "two-routes", "{}")

    assert refused.status_code == 422
    assert refused.json()["message"] == REUSED.format(key="two-routes")
    assert written(live.engine) == before


def test_a_key_is_per_user(live: Live, tokens: dict[str, str]) -> None:
    route = ROUTES["seed-createStart"]
    answers = {}
    for user in ("ada", "bob"):
        with live.client(tokens[user], Accept="application/json") as client:
            answers[user] = [route.send(client, "shared", SEED_FIELDS) for _ in range(2)]

    ids = {user: {r.json()["result"]["id"] for r in sent} for user, sent in answers.items()}
    assert all(len(one) == 1 for one in ids.values())  # each user's repeat is its first
    assert ids["ada"] != ids["bob"]  # and the two users' keys are two requests
    runs = {live.engine.get_trigger(int(next(iter(one)))).run_id for one in ids.values()}
    assert len(runs) == 2


def test_concurrent_first_calls_with_one_key_start_one_run(
    live: Live, tokens: dict[str, str]
) -> None:
    before = written(live.engine)

    def call() -> tuple[int, bytes]:
        with live.client(tokens["ada"], Accept="application/json") as client:
            answer = ROUTES["seed-createStart"].send(client, "racing", SEED_FIELDS)
            return answer.status_code, answer.content

    outcomes = race(8, call)

    assert len(set(outcomes)) == 1, outcomes
    assert next(iter(outcomes))[0] == 200  # type: ignore[index]
    after = written(live.engine)
    assert (after["runs"] - before["runs"], after["request_keys"] - before["request_keys"]) == (
        1,
        1,
    )


def test_a_repeat_is_answered_after_its_tree_was_made_inactive(
    live: Live, tokens: dict[str, str]
) -> None:
    tree = small_tree(
        "Idempotent Inactive", {"Start": {"handler": "system_start_v1", "connectors": []}}
    )
    live.engine.load_tree(tree)
    fields = {"source_name": "Tests", "source_group": "Semantics", "tree_name": tree["name"]}
    with live.client(tokens["ada"], Accept="application/json") as client:
        first = client.post(START, data=fields, headers={"Idempotency-Key": "inactive"})
        assert first.status_code == 200, first.text
        live.engine.load_tree({**tree, "status": "Inactive"})

        repeat = client.post(START, data=fields, headers={"Idempotency-Key": "inactive"})
        fresh = client.post(START, data=fields, headers={"Idempotency-Key": "inactive-2"})

    assert (repeat.status_code, repeat.content) == (200, first.content)
    assert fresh.status_code == 400
    assert "Idempotent Inactive" in fresh.json()["message"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (b"", "must be 1 to 255 characters, not 0"),
        (b"k" * 256, "must be 1 to 255 characters, not 256"),
        ("clé".encode(), "must be printable ASCII, not 'clÃ©'"),  # header bytes are Latin-1
        (b"a\tb", "must be printable ASCII, not 'a\\tb'"),
    ],
    ids=["empty", "too-long", "not-ascii", "control-character"],
)
def test_a_bad_key_is_refused_naming_the_header_and_writes_nothing(
    live: Live, tokens: dict[str, str], key: bytes, reason: str
) -> None:
    before = written(live.engine)
    with live.client(tokens["ada"], Accept="application/json") as client:
        refused = client.post(START, data=SEED_FIELDS, headers={"Idempotency-Key": key})  # type: ignore[dict-item]

    assert refused.status_code == 400
    assert refused.json() == {"status": 400, "message": f"Invalid Idempotency-Key: {reason}"}
    assert written(live.engine) == before


def test_the_engine_refuses_a_reused_key_with_another_fingerprint(engine: Engine) -> None:
    first = engine.create_start(**REGISTRATION, idempotency_key="k", fingerprint="one")
    assert engine.create_start(**REGISTRATION, idempotency_key="k", fingerprint="one") == first
    before = written(engine)

    message = (
        r"^the idempotency key 'k' was already used for a different request \(another method, "
        r"path or body\); a new request needs a new key$"
    )
    with pytest.raises(IdempotencyKeyReused, match=message):
        engine.create_start(**REGISTRATION, idempotency_key="k", fingerprint="two")
    with pytest.raises(IdempotencyKeyReused, match=message):
        engine.create_deferred(token="t" * 40, idempotency_key="k", fingerprint="two")
    with pytest.raises(IdempotencyKeyReused, match=message):
        engine.create_instance("new-training-process", idempotency_key="k", fingerprint="two")
    assert written(engine) == before
