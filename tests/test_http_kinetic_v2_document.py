"""schemathesis against Kinetic Data's official Task API v2 document (not treeflow's own
``/openapi.json``): every operation treeflow implements is called with inputs generated from
the document, under the Platform's prefix the document's ``servers`` names, authenticated with
HTTP Basic as an administrator, on SQLite and PostgreSQL. No answer may be a 5xx, and each
answer the document describes must fit its schema and content type. Bounded (``MAX_EXAMPLES``
per operation, derandomized, no shrinking) so CI sees the same cases each time."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from engine.server.kinetic_v2 import implemented
from engine.server.kinetic_v2.document import document

from .live_server import DATABASES, PASSWORD, Live, live_server, module_engine

MAX_EXAMPLES = 5
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
BASE = "/app/components/task/app/api/v2"


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("configurator", "admin")
        engine.create_start(
            source_name="Kinetic Request", source_group="Service Desk", tree_name="Ticket Progress"
        )
        engine.run_until_idle()
        yield server


def test_implemented_operations_answer_as_the_official_document_says(live: Live) -> None:
    schema = schemathesis.openapi.from_dict(document())
    wanted = {operation.operation_id for operation in implemented()}
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.definition.raw.get("operationId") in wanted
    ]
    assert {o.definition.raw["operationId"] for o in operations} == wanted
    assert len(wanted) >= 26
    credentials = base64.b64encode(f"configurator:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=live.url + BASE, headers=headers, checks=CHECKS)

        try:
            answers_as_documented()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
