"""The real handlers behind Kinetic's ids: SMTP e-mail, an HTTP request, CSV / JSON / XML.

Each runs in a real engine over SQLite, against real local servers: an aiosmtpd SMTP server and
an HTTP server on loopback. Bad input fails the node with a Handler Error naming what was wrong;
``error_handling: Error Message`` returns the reason as the result ``Handler Error Message``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from engine import Engine, RunStatus
from engine.records import Run

CSV = 'Name,Age\nAda,36\n"Lovelace, A.",\n'


def run_node(tmp_path: Path, handler: str, parameters: dict[str, str]) -> Run:
    tree = {
        "source": "Tests",
        "group": "Handlers",
        "name": "One Node",
        "nodes": {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Node"}]},
            "Node": {"handler": handler, "parameters": parameters},
        },
    }
    with Engine(f"sqlite:///{tmp_path / 'h.db'}", load_entry_points=False) as engine:
        engine.load_tree(yaml.safe_dump(tree))
        trigger = engine.create_start(source_name="Tests", source_group="Handlers",
                                      tree_name="One Node")  # fmt: skip
        engine.run_until_idle()
        return engine.get_run(trigger.run_id)


def handler_error(run: Run) -> str:
    assert run.status is RunStatus.FAILED
    (error,) = run.errors
    assert error.type == "Handler Error"
    return error.summary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- smtp_email_send_v1 against aiosmtpd -----------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("TREEFLOW_SMTP_SERVER", "127.0.0.1")
    monkeypatch.setenv("TREEFLOW_SMTP_PORT", str(port))
    try:
        yield box
    finally:
        controller.stop()


MAIL = {
    "error_handling": "Raise Error",
    "from": "Service Desk <desk@example.com>",
    "to": "ada@example.com, grace@example.com",
    "bcc": "audit@example.com",
    "subject": "Request REQ-1 approved",
    "htmlbody": "<p>Approved</p>",
    "textbody": "Approved",
}


def test_smtp_sends_a_multipart_message_to_every_recipient(tmp_path: Path, inbox: Inbox) -> None:
    run = run_node(tmp_path, "smtp_email_send_v1", MAIL)

    assert run.status is RunStatus.COMPLETED, run.errors
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "desk@example.com"
    assert envelope.rcpt_tos == ["ada@example.com", "grace@example.com", "audit@example.com"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"] == "Request REQ-1 approved"
    assert "audit@example.com" not in message.as_string()  # Bcc stays off the message
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content().strip() for part in message.iter_parts())
    assert (text, html) == ("Approved", "<p>Approved</p>")
    results = run.task("Node").results
    task_id = run.task("Node").id
    assert results == {
        "Message Id": f"<{task_id}.treeflow@example.com>",
        "Handler Error Message": "",
    }
    assert message["Message-ID"] == results["Message Id"]


def test_smtp_refuses_a_bad_address_by_parameter_and_sends_nothing(
    tmp_path: Path, inbox: Inbox
) -> None:
    run = run_node(tmp_path, "smtp_email_send_v1", {**MAIL, "to": "ada at example"})

    assert "parameter 'to': 'ada at example' is not an e-mail address" in handler_error(run)
    assert inbox.envelopes == []


def test_smtp_error_message_mode_returns_the_reason_as_a_result(
    tmp_path: Path, inbox: Inbox
) -> None:
    mail = {**MAIL, "error_handling": "Error Message", "subject": "Hi\r\nBcc: x@evil.example"}
    run = run_node(tmp_path, "smtp_email_send_v1", mail)

    assert run.status is RunStatus.COMPLETED
    results = run.task("Node").results
    assert results["Message Id"] == ""
    assert results["Handler Error Message"].startswith("a header cannot be written")
    assert inbox.envelopes == []  # never injected


def test_smtp_without_a_configured_server_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TREEFLOW_SMTP_SERVER", raising=False)
    run = run_node(tmp_path, "smtp_email_send_v1", MAIL)

    assert "not configured: set TREEFLOW_SMTP_SERVER" in handler_error(run)


def test_smtp_server_that_is_down_is_a_handler_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREEFLOW_SMTP_SERVER", "127.0.0.1")
    monkeypatch.setenv("TREEFLOW_SMTP_PORT", str(free_port()))  # nobody listens there
    run = run_node(tmp_path, "smtp_email_send_v1", MAIL)

    assert "sending through 127.0.0.1:" in handler_error(run)


# -- http_request_v1 against a loopback HTTP server ------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(3_000_000))
            self.end_headers()
            for _ in range(300):
                self.wfile.write(b"x" * 10_000)
            return
        if self.path == "/slow":
            self.release.wait(60)  # until the test is over: the client's timeout comes first
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = json.dumps(
            {"method": self.command, "body": body, "token": self.headers.get("X-Token")}
        ).encode()
        self.send_response(404 if self.path == "/missing" else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Handler.release.set()
        server.shutdown()
        server.server_close()


def test_http_request_returns_code_headers_and_body(tmp_path: Path, web: str) -> None:
    parameters = {"method": "POST", "url": f"{web}/items", "headers": '{"X-Token": "t-1"}',
                  "body": '{"name": "Ada"}'}  # fmt: skip
    run = run_node(tmp_path, "http_request_v1", parameters)

    assert run.status is RunStatus.COMPLETED, run.errors
    results = run.task("Node").results
    assert results["Response Code"] == "201"
    assert json.loads(results["Response Body"]) == {
        "method": "POST", "body": '{"name": "Ada"}', "token": "t-1"
    }  # fmt: skip
    assert json.loads(results["Response Headers"])["content-type"] == "application/json"
    assert results["Handler Error Message"] == ""


def test_http_error_status_is_an_answer_and_a_redirect_is_not_followed(
    tmp_path: Path, web: str
) -> None:
    missing = run_node(tmp_path, "http_request_v1", {"url": f"{web}/missing"})
    assert missing.task("Node").results["Response Code"] == "404"
    (tmp_path / "m").mkdir()
    moved = run_node(tmp_path / "m", "http_request_v1", {"url": f"{web}/moved"})
    results = moved.task("Node").results
    assert results["Response Code"] == "302"
    assert json.loads(results["Response Headers"])["location"] == "/elsewhere"


def test_http_response_over_the_cap_fails_naming_the_limit(
    tmp_path: Path, web: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREEFLOW_HTTP_MAX_BYTES", "100000")
    run = run_node(tmp_path, "http_request_v1", {"url": f"{web}/big"})

    assert "response body is over 100000 bytes (TREEFLOW_HTTP_MAX_BYTES)" in handler_error(run)


def test_http_timeout_fails_the_node_or_fills_the_error_message(tmp_path: Path, web: str) -> None:
    parameters = {"url": f"{web}/slow", "timeout": "0.2", "error_handling": "Error Message"}
    run = run_node(tmp_path, "http_request_v1", parameters)

    assert run.status is RunStatus.COMPLETED
    results = run.task("Node").results
    assert results["Handler Error Message"] == f"GET {web}/slow timed out after 0.2s"
    assert results["Response Code"] == ""


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"url": "file:///etc/passwd"}, "it must start with http:// or https://"),
        ({"url": "http://x", "headers": "[1]"}, "'headers' must be a JSON object of strings"),
        ({"url": "http://x", "headers": "{"}, "parameter 'headers' is not JSON"),
        ({"url": "http://x", "timeout": "soon"}, "'timeout' is 'soon', not a number of seconds"),
        ({"url": "http://x", "timeout": "900"}, "above 0 and at most 300"),
    ],
)
def test_http_bad_parameters_are_refused_by_name(
    tmp_path: Path, parameters: dict[str, str], message: str
) -> None:
    assert message in handler_error(run_node(tmp_path, "http_request_v1", parameters))


# -- CSV / JSON / XML utilities ------------------------------------------------------------------


def test_csv_to_json_makes_a_table_of_header_keyed_rows(tmp_path: Path) -> None:
    run = run_node(tmp_path, "utility_csv_to_json_v1", {"csv": CSV})

    assert json.loads(run.task("Node").results["JSON"]) == {
        "table": [{"Name": "Ada", "Age": "36"}, {"Name": "Lovelace, A.", "Age": ""}]
    }


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("Name,Name\na,b", "the header repeats 'Name'"),
        ("Name,\na,b", "the header has an empty name"),
        ("Name,Age\na,b,c", "row 2 has 3 values for 2 columns"),
        ('Name\n"open', "parameter 'csv' is not CSV"),
    ],
)
def test_csv_to_json_refuses_bad_csv_naming_the_row(tmp_path: Path, csv: str, message: str) -> None:
    assert message in handler_error(run_node(tmp_path, "utility_csv_to_json_v1", {"csv": csv}))


def test_csv_to_xml_lists_every_value_for_a_loop_head(tmp_path: Path) -> None:
    run = run_node(tmp_path, "utility_csv_to_xml_v1", {"csv": "a,b\nc & d,<e>"})

    assert run.task("Node").results["XML"] == (
        "<list>\n  <item>a</item>\n  <item>b</item>\n  <item>c &amp; d</item>\n"
        "  <item>&lt;e&gt;</item>\n</list>"
    )


def test_json_to_xml_names_ruby_classes_and_keys(tmp_path: Path) -> None:
    document = (
        '{"name": "Ada", "age": 36, "score": 1.5, "admin": true, "boss": null, "tags": ["x"]}'
    )
    run = run_node(tmp_path, "utility_json_to_xml_v1", {"json": document})

    assert run.task("Node").results["XML"] == (
        '<node type="Object">\n'
        '  <node type="String" name="name">Ada</node>\n'
        '  <node type="Integer" name="age">36</node>\n'
        '  <node type="Float" name="score">1.5</node>\n'
        '  <node type="TrueClass" name="admin">true</node>\n'
        '  <node type="NilClass" name="boss" />\n'
        '  <node type="Array" name="tags">\n'
        '    <node type="String">x</node>\n'
        "  </node>\n"
        "</node>"
    )


def test_json_to_xml_refuses_what_is_not_json(tmp_path: Path) -> None:
    summary = handler_error(run_node(tmp_path, "utility_json_to_xml_v1", {"json": "{'a': 1}"}))
    assert "utility_json_to_xml_v1: parameter 'json' is not JSON" in summary
