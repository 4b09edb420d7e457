"""Property-based fuzzing of the whole HTTP API from its own ``/openapi.json`` (schemathesis).

Every operation the document lists, the form-encoded trigger API and ``POST /token`` included
(their ``requestBody`` is documented, so schemathesis generates form bodies for them), and the
process deploy (YAML bodies generated from the documented tree schema), is called with
generated valid inputs against a real server, authenticated as an administrator. Each
response must not be a 5xx and must match the document: a documented status code, a documented
content type, a body that fits its schema and the documented headers. The run is bounded in
count (``MAX_EXAMPLES`` per operation, derandomized, so CI sees the same cases each time, no
shrinking phase); it takes seconds per database, under the suite's per-test timeout, and
nothing asserts on timing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .live_server import DATABASES, Live, live_server, module_engine

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("root", "admin")
        yield server


def test_every_operation_answers_as_its_openapi_says(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.token('root')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    assert {operation.label for operation in operations} >= {
        "POST /api/instances/create",
        "GET /api/instances/{name}",
        "GET /api/instances/{name}/fields",
        "PUT /api/instances/{name}",
        "PATCH /api/instances/{name}",
        "GET /api/processes",
        "GET /api/processes/{name}",
        "POST /api/processes",
    }

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
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS)

        try:
            answers_as_documented()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
