"""The seed's trigger API over a real server (uvicorn on loopback), on SQLite and PostgreSQL.

The seed's two example calls are sent verbatim and their responses checked byte for byte; then
every response format, every simulation header, and every kind of bad input, each answered in
the caller's format with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from engine import RunStatus, TaskStatus
from engine.server import ServerSettings, trigger_api
from engine.store import users as user_store

from .live_server import DATABASES, FORM, Live, live_server, module_engine
from .support import counts

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
DEFERRED_URL = "/kineticTask/rest/v1/Trigger/createDeferred"
# The seed's createStart example, verbatim.
SEED_START = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "source_id": "e67069a7392dc8ca7347f2edd127f779ef440dc1",
    "tree_name": "Process Registration",
}
# The seed's createDeferred example, verbatim (typographic quotes included); its token is ours.
SEED_RESULTS = "<results><result name=“Status”>Approved</result></results>"
SEED_MESSAGE = "Request approved by Ben Christenson on March 1st."
SIMULATED_ID = "AG005056b50003ralGTwMDGfEgBLzN"
PLAIN = "text/plain;charset=UTF-8"
JSON = "application/json;charset=UTF-8"
XML = "application/xml;charset=UTF-8"


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server per database for the module: tests compare row counts before and after."""
    with module_engine(request, tmp_path_factory) as engine, live_server(engine) as server:
        server.add_user("ada", "user")
        yield server


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client(live.token("ada")) as authorized:
        yield authorized


@pytest.fixture
def written(live: Live) -> Iterator[Written]:
    """Rows added to each table since the test began."""
    before = counts(live.engine)
    yield lambda: {table: n - before[table] for table, n in counts(live.engine).items()}


NOTHING = {"runs": 0, "triggers": 0, "tasks": 0, "errors": 0}
Written = Callable[[], dict[str, int]]


def deferred_token(live: Live, response: httpx.Response) -> str:
    """Process the run a createStart answered and return Review's deferral token."""
    live.engine.run_until_idle()
    trigger = live.engine.get_trigger(int(response.headers["X-ID"]))
    return live.engine.get_run(trigger.run_id).open_tokens["Review"]


def ok(fmt: str, trigger_id: str) -> tuple[str, str]:
    """The seed's success body in each format, with its content type."""
    message = f"Created trigger '{trigger_id}'."
    return {
        "plain": (PLAIN, f"ID={trigger_id}"),
        "json": (
            JSON,
            f'{{"status":200,"message":"{message}","result":{{"id":"{trigger_id}"}}}}',
        ),
        "xml": (
            XML,
            f"<response><status>200</status><message>{message}</message>"
            f"<results><id>{trigger_id}</id></results></response>",
        ),
    }[fmt]


def failed(fmt: str, status: int, message: str) -> tuple[str, str]:
    """The seed's failure body in each format, with its content type."""
    return {
        "plain": (PLAIN, message),
        "json": (JSON, f'{{"status":{status},"message":"{message}"}}'),
        "xml": (
            XML,
            f"<response><status>{status}</status><message>{message}</message></response>",
        ),
    }[fmt]


def assert_failure(response: httpx.Response, status: int, message: str, fmt: str = "plain") -> None:
    content_type, body = failed(fmt, status, message)
    assert (response.status_code, response.text) == (status, body)
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Error-Message"] == message
    assert "X-ID" not in response.headers


# -- the seed's examples -------------------------------------------------------------------------


def test_seed_create_start_answers_the_trigger_id_in_plain_text(
    live: Live, client: httpx.Client
) -> None:
    response = client.post(START_URL, data=SEED_START)

    trigger_id = response.headers["X-ID"]
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert response.headers["X-Message"] == f"Created trigger '{trigger_id}'."
    assert response.text == f"ID={trigger_id}"
    trigger = live.engine.get_trigger(int(trigger_id))
    run = live.engine.get_run(trigger.run_id)
    assert (run.tree_name, run.source_id) == ("Process Registration", SEED_START["source_id"])


def test_seed_create_deferred_with_accept_json_completes_the_review(
    live: Live, client: httpx.Client
) -> None:
    token = deferred_token(live, client.post(START_URL, data=SEED_START))
    payload = {"token": token, "action": "Complete", "results": SEED_RESULTS}

    response = client.post(
        DEFERRED_URL,
        data={**payload, "message": SEED_MESSAGE},
        headers={"Accept": "application/json"},
    )

    trigger_id = response.headers["X-ID"]
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["X-Message"] == f"Created trigger '{trigger_id}'."
    assert response.text == (
        f'{{"status":200,"message":"Created trigger \'{trigger_id}\'.",'
        f'"result":{{"id":"{trigger_id}"}}}}'
    )
    live.engine.run_until_idle()
    trigger = live.engine.get_trigger(int(trigger_id))
    run = live.engine.get_run(trigger.run_id)
    assert trigger.message == SEED_MESSAGE
    assert run.status is RunStatus.COMPLETED
    assert run.task("Review").results["Status"] == "Approved"


def test_seed_sample_payload_is_accepted_as_the_raw_body(live: Live, client: httpx.Client) -> None:
    token = deferred_token(live, client.post(START_URL, data=SEED_START))
    body = (
        f"action=Complete&token={token}&results=%3Cresults%3E%3Cresult+name%3D%E2%80%9CStatus"
        "%E2%80%9D%3EApproved%3C%2Fresult%3E%3C%2Fresults%3E&"
    )

    response = client.post(DEFERRED_URL, content=body, headers={"Content-Type": FORM})

    assert response.status_code == 200, response.text
    live.engine.run_until_idle()
    run_id = live.engine.get_trigger(int(response.headers["X-ID"])).run_id
    assert live.engine.get_run(run_id).task("Approved").status is TaskStatus.CLOSED


def test_update_keeps_the_task_deferred(live: Live, client: httpx.Client) -> None:
    token = deferred_token(live, client.post(START_URL, data=SEED_START))

    response = client.post(DEFERRED_URL, data={"token": token, "action": "Update"})

    assert response.status_code == 200
    live.engine.run_until_idle()
    run_id = live.engine.get_trigger(int(response.headers["X-ID"])).run_id
    assert live.engine.get_run(run_id).task("Review").status is TaskStatus.DEFERRED


def test_the_run_records_the_user_who_created_it(live: Live, client: httpx.Client) -> None:
    response = client.post(START_URL, data=SEED_START)

    run_id = live.engine.get_trigger(int(response.headers["X-ID"])).run_id
    with live.engine.database.read() as connection:
        creator = user_store.run_creator(connection, run_id)
    assert creator == live.accounts.list_users()[0].id


# -- formats -------------------------------------------------------------------------------------

FORMAT_HEADERS = [
    pytest.param({}, "plain", id="default"),
    pytest.param({"Accept": "application/json"}, "json", id="accept-json"),
    pytest.param({"Accept": "application/xml"}, "xml", id="accept-xml"),
    pytest.param({"Accepts": "application/json"}, "json", id="accepts-json"),
    pytest.param({"Accepts": "application/xml", "Accept": "*/*"}, "xml", id="accepts-wins"),
    pytest.param({"Accept": "text/xml"}, "xml", id="text-xml"),
    pytest.param({"Accept": "text/plain, application/json"}, "json", id="first-known"),
    pytest.param({"Accept": "application/json;q=0.5, application/xml"}, "xml", id="q-values"),
    pytest.param({"Accept": "text/html"}, "plain", id="unknown-type"),
]


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS)
def test_success_format_follows_accept_or_accepts(
    client: httpx.Client, headers: dict[str, str], fmt: str
) -> None:
    response = client.post(START_URL, data=SEED_START, headers=headers)

    trigger_id = response.headers["X-ID"]
    content_type, body = ok(fmt, trigger_id)
    assert (response.status_code, response.text) == (200, body)
    assert response.headers["Content-Type"] == content_type


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS)
def test_seed_api_failure_in_each_format(
    written: Written, live: Live, client: httpx.Client, headers: dict[str, str], fmt: str
) -> None:
    token = "e67069a7392dc8ca7347f2edd127f779ef440dc1"  # the seed's example of an unknown token

    response = client.post(
        DEFERRED_URL, data={"token": token, "action": "Complete"}, headers=headers
    )

    message = f"Unable to locate a task instance with the specified deferral token ({token})"
    assert_failure(response, 400, message, fmt)
    assert written() == NOTHING


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS[:5])
@pytest.mark.parametrize("url", [START_URL, DEFERRED_URL])
def test_missing_security_token_in_each_format(
    written: Written, live: Live, url: str, headers: dict[str, str], fmt: str
) -> None:
    with live.client() as anonymous:
        response = anonymous.post(url, data=SEED_START, headers=headers)

    assert_failure(response, 401, "security token not provided", fmt)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="treeflow"'
    assert written() == NOTHING


# -- simulation headers --------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS[:5])
@pytest.mark.parametrize("url", [START_URL, DEFERRED_URL])
def test_simulated_success_answers_the_given_id_and_writes_nothing(
    written: Written, live: Live, client: httpx.Client, url: str, headers: dict[str, str], fmt: str
) -> None:
    response = client.post(
        url, data={"ignored": "x"}, headers={**headers, "X-Simulate-Success": SIMULATED_ID}
    )

    content_type, body = ok(fmt, SIMULATED_ID)
    assert (response.status_code, response.text) == (200, body)
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-ID"] == SIMULATED_ID
    assert response.headers["X-Message"] == f"Created trigger '{SIMULATED_ID}'."
    assert written() == NOTHING


SIMULATED_ERRORS = [
    ("API", 400, "Simulated API error (X-Simulate-Error: API)"),
    ("AUTHORIZATION", 401, "Simulated authorization error (X-Simulate-Error: AUTHORIZATION)"),
    ("SERVER", 500, "Simulated server error (X-Simulate-Error: SERVER)"),
]


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS[:5])
@pytest.mark.parametrize(("kind", "status", "message"), SIMULATED_ERRORS)
def test_simulated_errors_answer_as_the_seed_says_and_write_nothing(
    written: Written,
    live: Live,
    client: httpx.Client,
    headers: dict[str, str],
    fmt: str,
    kind: str,
    status: int,
    message: str,
) -> None:
    response = client.post(
        START_URL,
        data=SEED_START,
        headers={**headers, "X-Simulate-Error": kind, "X-Simulate-Success": SIMULATED_ID},
    )

    assert_failure(response, status, message, fmt)
    assert written() == NOTHING


def test_an_unknown_simulated_error_is_a_bad_request(
    written: Written, live: Live, client: httpx.Client
) -> None:
    response = client.post(START_URL, data=SEED_START, headers={"X-Simulate-Error": "DISK"})

    message = "Invalid X-Simulate-Error: 'DISK' is not one of API, AUTHORIZATION, SERVER"
    assert_failure(response, 400, message)
    assert written() == NOTHING


def test_simulation_still_needs_a_security_token(live: Live) -> None:
    with live.client() as anonymous:
        response = anonymous.post(
            START_URL, data=SEED_START, headers={"X-Simulate-Success": SIMULATED_ID}
        )

    assert_failure(response, 401, "security token not provided")


# -- bad input: 400 in the caller's format, nothing written --------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    "<results><result name='a'>&lol2;</result></results>"
)
DOCTYPE = "Invalid results XML: results document has a DOCTYPE; DTDs and entity declarations "
DOCTYPE += "are refused"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        pytest.param(
            {**SEED_START, "tree_name": "No Such Tree"},
            "Unable to locate the tree 'No Such Tree' for source 'Kinetic Request', "
            "group 'KEG Catalog > Conference Registration'",
            id="unknown-tree",
        ),
        pytest.param(
            {**SEED_START, "results": "<results><result name='a'>x</results>"},
            "Invalid results XML at line 1, column 38: results document is not well-formed: "
            "Opening and ending tag mismatch: result line 1 and results",
            id="malformed-xml",
        ),
        pytest.param({**SEED_START, "results": BILLION_LAUGHS}, DOCTYPE, id="entity-expansion"),
        pytest.param(
            {
                **SEED_START,
                "results": '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                "<results><result name='a'>&x;</result></results>",
            },
            DOCTYPE,
            id="external-entity",
        ),
        pytest.param(
            {**SEED_START, "results": "<answers/>"},
            "Invalid results XML: the root element is 'answers', expected 'results'",
            id="wrong-root",
        ),
        pytest.param(
            {k: v for k, v in SEED_START.items() if k != "tree_name"},
            "Invalid tree_name: the parameter is missing",
            id="missing-tree-name",
        ),
        pytest.param(
            {**SEED_START, "tree_name": ""},
            "Invalid tree_name: must not be empty",
            id="empty-tree-name",
        ),
        pytest.param(
            {**SEED_START, "sourceName": "x"},
            "Invalid form: unknown parameter 'sourceName' (expected source_name, source_group, "
            "tree_name, source_id, results, message)",
            id="unknown-parameter",
        ),
        pytest.param(
            {**SEED_START, "source_id": "a\x00b"},
            "Invalid source_id: contains a NUL character",
            id="nul-character",
        ),
    ],
)
def test_bad_create_start_is_refused_naming_the_problem(
    written: Written, live: Live, client: httpx.Client, form: dict[str, str], message: str
) -> None:
    response = client.post(START_URL, data=form)

    assert_failure(response, 400, message)
    assert written() == NOTHING


def test_results_over_the_engine_cap_are_refused(
    written: Written, live: Live, client: httpx.Client
) -> None:
    results = "<results><result name='a'>" + "x" * 1_048_576 + "</result></results>"

    response = client.post(START_URL, data={**SEED_START, "results": results})

    assert_failure(
        response,
        400,
        f"Invalid results XML: results document is {len(results)} bytes, "
        "over the limit of 1048576 bytes",
    )
    assert written() == NOTHING


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        pytest.param(
            '{"tree_name": "x"}',
            "application/json",
            "Invalid Content-Type: 'application/json' is not application/x-www-form-urlencoded",
            id="json-body",
        ),
        pytest.param(
            "tree_name=a&tree_name=b",
            FORM,
            "Invalid tree_name: is given more than once",
            id="repeated-parameter",
        ),
        pytest.param(
            b"source_name=\xff",
            FORM,
            "Invalid form: not UTF-8 text: invalid start byte",
            id="not-utf8",
        ),
        pytest.param(
            "",
            FORM,
            "Invalid source_name: the parameter is missing",
            id="empty-body",
        ),
    ],
)
def test_a_body_that_is_not_the_expected_form_is_refused(
    written: Written,
    live: Live,
    client: httpx.Client,
    content: str | bytes,
    content_type: str,
    message: str,
) -> None:
    response = client.post(START_URL, content=content, headers={"Content-Type": content_type})

    assert_failure(response, 400, message)
    assert written() == NOTHING


TASK3_START_URL = "/kinetic/rest/v1/Trigger/createStart"


@pytest.mark.parametrize("url", [START_URL, TASK3_START_URL, DEFERRED_URL])
@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        pytest.param(
            "source_name=Kinetic%zzRequest",
            FORM,
            "Invalid source_name: has '%zz': a '%' must be followed by two hex digits",
            id="bad-escape-in-a-value",
        ),
        pytest.param(
            "source_name=50%",
            FORM,
            "Invalid source_name: has '%': a '%' must be followed by two hex digits",
            id="cut-escape-at-the-end",
        ),
        pytest.param(
            "tree%4=x",
            FORM,
            "Invalid form: has '%4': a '%' must be followed by two hex digits",
            id="bad-escape-in-a-name",
        ),
        pytest.param(
            "message=%C3%28",
            FORM,
            "Invalid form: not UTF-8 text: invalid continuation byte",
            id="escaped-bytes-not-utf8",
        ),
        pytest.param(
            "&".join(f"f{number}=x" for number in range(33)),
            FORM,
            "Invalid form: Max number of fields exceeded",
            id="too-many-fields",
        ),
        pytest.param(
            "message=a&message=b",
            FORM,
            "Invalid message: is given more than once",
            id="repeated-parameter",
        ),
        pytest.param(
            "tree%5Fname=a&tree_name=b",
            FORM,
            "Invalid tree_name: is given more than once",
            id="repeated-once-escaped",
        ),
        pytest.param(
            "message=a%00b",
            FORM,
            "Invalid message: contains a NUL character",
            id="nul-character",
        ),
        pytest.param(
            "tree_name=x",
            "text/plain",
            "Invalid Content-Type: 'text/plain' is not application/x-www-form-urlencoded",
            id="wrong-content-type",
        ),
        pytest.param(
            "tree_name=x",
            "",
            "Invalid Content-Type: missing: expected application/x-www-form-urlencoded",
            id="no-content-type",
        ),
    ],
)
def test_the_form_parser_refuses_what_no_client_encodes_on_each_trigger_path(
    written: Written,
    client: httpx.Client,
    url: str,
    content: str,
    content_type: str,
    message: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(url, content=content, headers=headers)

    assert_failure(response, 400, message)
    assert written() == NOTHING


def test_the_form_parser_reads_what_clients_send(live: Live, client: httpx.Client) -> None:
    """Spaces as ``+`` or ``%20``, escaped names, a name without ``=`` and empty parts."""
    body = (
        "source_name=Kinetic+Request&source%5Fgroup=KEG%20Catalog%20%3E%20Conference%20"
        "Registration&&tree_name=Process+Registration&message&source_id=caf%C3%A9"
    )
    response = client.post(START_URL, content=body, headers={"Content-Type": FORM})

    assert response.status_code == 200, response.text
    trigger = live.engine.get_trigger(int(response.text.removeprefix("ID=")))
    run = live.engine.get_run(trigger.run_id)
    assert (run.source_group, run.source_id, trigger.message) == (
        SEED_START["source_group"],
        "café",
        None,
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        pytest.param(
            {"action": "Complete"}, "Invalid token: the parameter is missing", id="missing-token"
        ),
        pytest.param(
            {"token": "{token}", "action": "Finish"},
            "Invalid action 'Finish': expected one of Complete, Update",
            id="bad-action",
        ),
        pytest.param(
            {"token": "{token}"}, "Invalid action: the parameter is missing", id="missing-action"
        ),
        pytest.param(
            {"token": "0" * 40, "action": "Complete"},
            f"Unable to locate a task instance with the specified deferral token ({'0' * 40})",
            id="unknown-token",
        ),
        pytest.param(
            {"token": "{token}", "action": "Complete", "results": "<results>"},
            "Invalid results XML at line 1, column 10: results document is not well-formed: "
            "Premature end of data in tag results line 1",
            id="malformed-xml",
        ),
    ],
)
def test_bad_create_deferred_is_refused_naming_the_problem(
    live: Live, client: httpx.Client, form: dict[str, str], message: str
) -> None:
    token = deferred_token(live, client.post(START_URL, data=SEED_START))
    before = counts(live.engine)
    form = {name: value.format(token=token) for name, value in form.items()}

    response = client.post(DEFERRED_URL, data=form, headers={"Accept": "application/xml"})

    assert_failure(response, 400, message.format(token=token), "xml")
    assert counts(live.engine) == before


def test_a_consumed_token_is_refused_with_the_seed_message(
    live: Live, client: httpx.Client
) -> None:
    token = deferred_token(live, client.post(START_URL, data=SEED_START))
    complete = {"token": token, "action": "Complete", "results": SEED_RESULTS}
    assert client.post(DEFERRED_URL, data=complete).status_code == 200
    before = counts(live.engine)

    response = client.post(DEFERRED_URL, data=complete, headers={"Accept": "application/json"})

    message = f"Unable to locate a task instance with the specified deferral token ({token})"
    assert_failure(response, 400, message, "json")
    assert counts(live.engine) == before


def test_a_message_quoting_non_ascii_input_is_escaped_in_the_header(
    client: httpx.Client,
) -> None:
    response = client.post(START_URL, data={**SEED_START, "tree_name": "Ünïcode “tree”"})

    assert response.status_code == 400
    assert response.text.startswith("Unable to locate the tree 'Ünïcode “tree”'")
    assert response.headers["X-Error-Message"].startswith(
        "Unable to locate the tree '\\u00dcn\\u00efcode \\u201ctree\\u201d'"
    )


# -- methods and paths ---------------------------------------------------------------------------


def test_a_wrong_method_is_answered_in_the_callers_format(client: httpx.Client) -> None:
    response = client.get(START_URL, headers={"Accept": "application/json"})

    assert_failure(response, 405, "Method Not Allowed", "json")
    assert response.headers["Allow"] == "POST"


def test_an_unknown_api_method_is_not_found_in_the_callers_format(client: httpx.Client) -> None:
    response = client.post("/kineticTask/rest/v1/Trigger/createStop", data=SEED_START)

    assert_failure(response, 404, "Not Found")


def test_healthz_needs_no_token_and_writes_nothing(written: Written, live: Live) -> None:
    with live.client() as anonymous:
        response = anonymous.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert written() == NOTHING


# -- body size -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_body(live: Live) -> Iterator[Live]:
    """A second server on the same engine, with a 2 KiB body limit."""
    with live_server(live.engine, ServerSettings(workers=0, max_body_bytes=2048)) as server:
        yield server


@pytest.mark.parametrize(("headers", "fmt"), FORMAT_HEADERS[:3])
def test_an_oversized_body_is_refused_with_413_in_the_callers_format(
    written: Written, small_body: Live, headers: dict[str, str], fmt: str
) -> None:
    form = {**SEED_START, "message": "m" * 4000}
    size = len(httpx.QueryParams(form).__str__().encode())

    with small_body.client(small_body.token("ada")) as client:
        response = client.post(START_URL, data=form, headers=headers)

    message = f"the request body of {size} bytes is over the limit of 2048 bytes"
    assert_failure(response, 413, message, fmt)
    assert written() == NOTHING


def test_an_oversized_chunked_body_is_refused_with_413(written: Written, small_body: Live) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"source_name=Kinetic+Request&message="
        for _ in range(10):
            yield b"m" * 1000

    with small_body.client(small_body.token("ada")) as client:
        response = client.post(START_URL, content=chunks(), headers={"Content-Type": FORM})

    assert_failure(response, 413, "the request body is over the limit of 2048 bytes")
    assert written() == NOTHING


def test_a_chunked_body_under_the_limit_is_accepted(written: Written, small_body: Live) -> None:
    def chunks() -> Iterator[bytes]:
        yield httpx.QueryParams(SEED_START).__str__().encode()

    with small_body.client(small_body.token("ada")) as client:
        response = client.post(START_URL, content=chunks(), headers={"Content-Type": FORM})

    assert response.status_code == 200, response.text
    assert written()["runs"] == 1


def test_openapi_still_documents_the_forms_the_lane_reads(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for url, form in ((START_URL, "START_FORM"), (DEFERRED_URL, "DEFERRED_FORM")):
        post = paths[url]["post"]
        schema = post["requestBody"]["content"][FORM]["schema"]
        spec = getattr(trigger_api, form)
        assert list(schema["properties"]) == list(spec.known)
        assert schema["required"] == list(spec.required)
        assert [parameter["name"] for parameter in post["parameters"]] == ["Idempotency-Key"]
