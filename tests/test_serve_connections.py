"""Connection timeouts and limits of a real ``treeflow serve``, seen through real sockets.

The server is the installed console script in its own process group, killed with it. Its
timeouts come from ``TREEFLOW_*`` variables, set low so that waiting for them is cheap; every
wait is for a condition (the server closing the socket, an answer) with one generous deadline,
and nothing measures how long anything took.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine
from engine.auth import Accounts
from engine.server.connections import ConnectionGuard

from .live_server import CHEAP_PASSWORDS
from .support import TREEFLOW, _environment, run_treeflow, wait_for
from .test_serve_cli import PASSWORD, TREES, free_port

DEADLINE = 60.0  # seconds a socket waits for the server before the test fails
LOW_TIMEOUTS = {
    "TREEFLOW_KEEP_ALIVE_SECONDS": "1",
    "TREEFLOW_REQUEST_HEAD_SECONDS": "1",
    "TREEFLOW_REQUEST_BODY_SECONDS": "1",
}
START = "/kineticTask/rest/v1/Trigger/createStart"
START_FORM = (
    "source_name=Kinetic+Request&source_group=KEG+Catalog+%3E+Conference+Registration"
    "&tree_name=Process+Registration&source_id=slow"
)
RUN_TREE = (
    "/app/api/v1/run-tree/Kinetic%20Request/KEG%20Catalog%20%3E%20Conference%20Registration"
    "/Process%20Registration"
)
STORED = ("runs", "triggers", "instances")
INSTANCE = '{"processName": "new-training-process", "FieldsMappings": []}'


@dataclass
class Server:
    url: str
    port: int
    database: str
    process: subprocess.Popen[bytes]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        return sock

    def healthy(self, timeout: float = 5.0) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"treeflow serve exited with {self.process.returncode}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=timeout).status_code == 200
        except httpx.TransportError:
            return False

    def counts(self) -> dict[str, int]:
        engine = sa.create_engine(self.database)
        try:
            with engine.connect() as connection:
                return {
                    table: int(
                        connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
                    )
                    for table in STORED
                }
        finally:
            engine.dispose()


def _limit_open_files(files: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))


@contextmanager
def serve(
    folder: Path, env: dict[str, str], *, open_files: int | None = None, admin: bool = False
) -> Iterator[Server]:
    """``treeflow serve`` (no engine workers) on a scratch SQLite database, in its own process
    group (killed when the block ends); with ``admin``, an administrator ``ada`` exists."""
    database = f"sqlite:///{folder / 't.db'}"
    if admin:
        with Engine(database) as engine:
            Accounts(engine, passwords=CHEAP_PASSWORDS).add_user("ada", PASSWORD, role="admin")
    port = free_port()
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--trees", str(TREES), "--workers", "0"],
        cwd=folder,
        env=_environment({"TREEFLOW_DATABASE_URL": database, **env}),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as one
        preexec_fn=None if open_files is None else lambda: _limit_open_files(open_files),
    )
    log.close()
    server = Server(f"http://127.0.0.1:{port}", port, database, process)
    try:
        wait_for(server.healthy, timeout=DEADLINE)
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("serve"), LOW_TIMEOUTS, admin=True) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    answer = httpx.post(f"{server.url}/token", data={"username": "ada", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within DEADLINE)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: Server,
) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: treeflow\r\n\r\n")
        answered = read_response(sock)

        assert answered.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"connection: close" not in answered.lower()  # kept alive, then idle
        assert read_to_end(sock) == b""


def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout(
    server: Server,
) -> None:
    with server.connect() as sock:
        assert read_to_end(sock) == b""


def test_half_a_request_head_is_answered_408_and_the_connection_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(f"POST {START} HTTP/1.1\r\nHost: treeflow\r\nContent-".encode())

        assert read_to_end(sock) == (
            b"HTTP/1.1 408 Request Timeout\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\n"
            b"content-length: 47\r\n\r\n"
            b"The request head did not arrive within 1 second"
        )


def test_a_stray_byte_after_a_response_does_not_keep_the_connection_open(server: Server) -> None:
    """A byte after a response cancels uvicorn's keep-alive timer; the head timer closes it."""
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: treeflow\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        sock.sendall(b"\r\n")

        assert read_to_end(sock).startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def _head(path: str, token: str, media: str, accept: str, framing: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: treeflow\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {media}\r\nAccept: {accept}\r\n{framing}\r\n"
    ).encode()


SLOW_BODIES = [
    pytest.param(
        START,
        "application/x-www-form-urlencoded",
        "application/xml",
        START_FORM,
        b"<response><status>408</status><message>the request body did not arrive within 1 "
        b"second (%d bytes received); nothing was done</message></response>",
        id="seed-createStart-xml",
    ),
    pytest.param(
        RUN_TREE,
        "application/json",
        "application/json",
        '{"Attendee": "Ada Lovelace"}',
        b'{"status":408,"message":"the request body did not arrive within 1 second (%d bytes '
        b'received); nothing was done"}',
        id="kinetic-v1-run-tree",
    ),
    pytest.param(
        "/api/instances/create",
        "application/json",
        "application/json",
        INSTANCE,
        b'{"status":408,"message":"the request body did not arrive within 1 second (%d bytes '
        b'received); nothing was done"}',
        id="instances-create",
    ),
]


@pytest.mark.parametrize(("path", "media", "accept", "body", "expected"), SLOW_BODIES)
def test_a_slow_body_is_answered_408_in_the_callers_format_and_nothing_is_stored(
    server: Server, token: str, path: str, media: str, accept: str, body: str, expected: bytes
) -> None:
    sent = body.encode()[:20]
    before = server.counts()
    with server.connect() as sock:
        framing = f"Content-Length: {len(body.encode())}\r\n"
        sock.sendall(_head(path, token, media, accept, framing) + sent)  # ... and no more
        answer = read_to_end(sock)

    head, _, answered = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nconnection: close" in head.lower()
    assert answered == expected % len(sent)
    assert server.counts() == before


def test_a_slow_chunked_body_is_answered_408_and_nothing_is_stored(
    server: Server, token: str
) -> None:
    """A body without a length is read by the body limit itself, under the same deadline."""
    chunk = START_FORM.encode()[:30]
    before = server.counts()
    with server.connect() as sock:
        head = _head(START, token, "application/x-www-form-urlencoded", "application/json", "")
        framing = b"Transfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head[:-2] + framing + b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = read_to_end(sock)

    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(
        b'{"status":408,"message":"the request body did not arrive within 1 second (30 bytes '
        b'received); nothing was done"}'
    )
    assert server.counts() == before


def test_a_prompt_body_is_served_as_ever(server: Server, token: str) -> None:
    before = server.counts()
    answer = httpx.post(
        f"{server.url}{START}",
        content=START_FORM,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": "prompt-body",
        },
    )

    assert answer.status_code == 200, answer.text
    assert server.counts() == {
        **before,
        "runs": before["runs"] + 1,
        "triggers": before["triggers"] + 1,
    }


def test_idle_connections_beyond_the_open_file_limit_do_not_stop_healthz(
    tmp_path: Path,
) -> None:
    """128 files allow 96 connections by default: 200 idle sockets, and /healthz answers.

    The head timeout is out of reach, so only closing idle connections at the cap makes room.
    """
    env = {"TREEFLOW_REQUEST_HEAD_SECONDS": "600"}
    with serve(tmp_path, env, open_files=128) as limited:
        idle = [limited.connect() for _ in range(200)]
        try:
            wait_for(limited.healthy, timeout=DEADLINE)
            assert read_to_end(idle[0]) == b""  # the oldest idle one made room
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (
            ("--request-head-seconds", "0"),
            {},
            "Invalid value for '--request-head-seconds' (env var: "
            "'TREEFLOW_REQUEST_HEAD_SECONDS'): 0.0 is not in the range x>0.",
        ),
        (
            (),
            {"TREEFLOW_MAX_CONNECTIONS": "0"},
            "Invalid value for '--max-connections' (env var: 'TREEFLOW_MAX_CONNECTIONS'): "
            "0 is not in the range x>=1.",
        ),
    ],
    ids=["flag", "variable"],
)
def test_a_bad_connection_setting_is_refused_naming_it_before_anything_is_opened(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    database = tmp_path / "t.db"
    result = run_treeflow(
        "serve", *flags, cwd=tmp_path, env={"TREEFLOW_DATABASE_URL": f"sqlite:///{database}", **env}
    )

    assert result.returncode == 2
    assert result.stderr.endswith(f"Error: {message}\n")
    assert not database.exists()


class Conn:
    """A connection as the guard sees it: busy or not, and whether it was closed."""

    def __init__(self, busy: bool) -> None:
        self.busy = busy
        self.closed = False

    def close_idle(self) -> None:
        self.closed = True


def test_the_guard_closes_the_oldest_idle_connection_at_the_cap() -> None:
    guard = ConnectionGuard(head_seconds=10, max_connections=3)
    busy, oldest_idle, idle = Conn(True), Conn(False), Conn(False)
    for connection in (busy, oldest_idle, idle):
        assert guard.admit(connection)  # type: ignore[arg-type]

    newest = Conn(False)
    assert guard.admit(newest)  # type: ignore[arg-type]
    assert [c.closed for c in (busy, oldest_idle, idle, newest)] == [False, True, False, False]
    assert list(guard) == [busy, idle, newest]


def test_the_guard_refuses_a_connection_when_every_one_is_handling_a_request() -> None:
    guard = ConnectionGuard(head_seconds=10, max_connections=2)
    first, second = Conn(True), Conn(True)
    assert guard.admit(first)  # type: ignore[arg-type]
    assert guard.admit(second)  # type: ignore[arg-type]

    assert not guard.admit(Conn(False))  # type: ignore[arg-type]
    assert list(guard) == [first, second]
    assert not first.closed and not second.closed
