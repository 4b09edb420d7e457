"""``/metrics`` over a real server, on SQLite and PostgreSQL.

The text is parsed with prometheus_client's own parser and compared before and after each step:
the counters move as triggers are accepted over HTTP and closed by the engine, the backlog
gauge follows the open triggers. Nothing is timed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import TriggerStatus
from engine.processing.observers import ClosedTrigger
from engine.server.metrics import Metrics

from .live_server import DATABASES, Live, live_server, module_engine

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED_URL = "/kineticTask/rest/v1/Trigger/createDeferred"
REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
ROOT = ("action", "Root")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("ada", "user")
        yield server


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("ada")) as authorized:
        yield authorized


def start(client: httpx.Client) -> int:
    data = {**REGISTRATION, "source_id": f"metrics-{secrets.token_hex(4)}"}
    response = client.post(START_URL, data=data)
    assert response.status_code == 200, response.text
    return int(response.headers["X-ID"])


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_samples(live: Live) -> Samples:
    """Every sample of ``/metrics`` by name and labels (fetched with a user's token)."""
    with live.client(live.token("ada")) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(response.text)


def delta(before: Samples, after: Samples, name: str, *labels: tuple[str, str]) -> float:
    return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)


def test_metrics_are_prometheus_text(live: Live) -> None:
    with live.client(live.token("ada")) as signed_in:
        response = signed_in.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= {
        "treeflow_triggers_accepted",
        "treeflow_triggers_processed",
        "treeflow_triggers_failed",
        "treeflow_trigger_latency_seconds",
        "treeflow_triggers_open",
        "treeflow_auth_failures",
    }


def test_counters_move_as_a_createstart_is_accepted_and_processed(
    live: Live, client: httpx.Client
) -> None:
    live.engine.run_until_idle()
    before = metric_samples(live)
    start(client)
    accepted = metric_samples(live)
    live.engine.run_until_idle()
    processed = metric_samples(live)

    assert delta(before, accepted, "treeflow_triggers_accepted_total", ROOT) == 1
    assert delta(before, accepted, "treeflow_triggers_processed_total", ROOT) == 0
    assert delta(before, accepted, "treeflow_triggers_open") == 1
    assert delta(before, processed, "treeflow_triggers_processed_total", ROOT) == 1
    assert delta(before, processed, "treeflow_triggers_failed_total", ROOT) == 0
    assert delta(before, processed, "treeflow_trigger_latency_seconds_count") == 1
    assert delta(before, processed, "treeflow_triggers_open") == 0


def test_createdeferred_is_counted_by_its_action(live: Live, client: httpx.Client) -> None:
    trigger_id = start(client)
    live.engine.run_until_idle()
    run = live.engine.get_run(live.engine.get_trigger(trigger_id).run_id)
    before = metric_samples(live)
    data = {"token": run.open_tokens["Review"], "action": "Update"}
    assert client.post(DEFERRED_URL, data=data).status_code == 200
    live.engine.run_until_idle()
    after = metric_samples(live)

    update = ("action", "Update")
    assert delta(before, after, "treeflow_triggers_accepted_total", update) == 1
    assert delta(before, after, "treeflow_triggers_processed_total", update) == 1


def test_simulated_calls_are_not_counted(live: Live, client: httpx.Client) -> None:
    before = metric_samples(live)
    response = client.post(START_URL, headers={"X-Simulate-Success": "7"}, data=REGISTRATION)
    after = metric_samples(live)

    assert response.status_code == 200
    assert delta(before, after, "treeflow_triggers_accepted_total", ROOT) == 0


def test_a_failed_close_counts_as_processed_and_failed(live: Live) -> None:
    """The observer's contract, fed directly: a Failed close is hard to cause over HTTP."""
    metrics = Metrics(live.engine)

    metrics.observe(
        [
            ClosedTrigger(id=1, action="Complete", status=TriggerStatus.FAILED, latency=0.5),
            ClosedTrigger(id=2, action="Complete", status=TriggerStatus.CLOSED, latency=2.0),
        ]
    )

    samples = parse(metrics.render().decode())
    complete = (("action", "Complete"),)
    assert samples[("treeflow_triggers_processed_total", complete)] == 2
    assert samples[("treeflow_triggers_failed_total", complete)] == 1
    assert samples[("treeflow_trigger_latency_seconds_sum", ())] == 2.5
    assert samples[("treeflow_trigger_latency_seconds_bucket", (("le", "1.0"),))] == 1


def test_kinetic_v1_calls_and_instance_creation_count_as_accepted(
    live: Live, client: httpx.Client
) -> None:
    before = metric_samples(live)
    path = "/".join(quote(part, safe="") for part in REGISTRATION.values())
    started = client.post(f"/app/api/v1/run-tree/{path}", json={"Attendee": "Ada"})
    assert started.status_code == 200, started.text
    created = client.post("/api/instances/create", json={"processName": "new-training-process"})
    assert created.status_code == 200, created.text
    accepted = metric_samples(live)
    live.engine.run_until_idle()
    run = live.engine.get_run(started.json()["run"]["id"])
    source = quote(REGISTRATION["source_name"], safe="")
    body = {"token": run.open_tokens["Review"], "results": {"Status": "Approved"}}
    completed = client.post(f"/app/api/v1/complete-deferred-task/{source}", json=body)
    assert completed.status_code == 200, completed.text
    after = metric_samples(live)

    assert delta(before, accepted, "treeflow_triggers_accepted_total", ROOT) == 2
    complete = ("action", "Complete")
    assert delta(accepted, after, "treeflow_triggers_accepted_total", complete) == 1
