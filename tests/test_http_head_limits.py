"""Caps on request heads, for both of uvicorn's HTTP parsers, over a real server; and what a
``treeflow serve`` process holds when sent headers of many megabytes (its VmHWM)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine import Engine
from engine.server import ServerSettings

from .conftest import TREES
from .live_server import Live, live_server
from .support import TREEFLOW, _environment, wait_for
from .test_serve_cli import free_port

TOO_LARGE = "the request line and headers are over the limit of 4096 bytes"
TOO_MANY = "the request has more than 10 header fields"


@pytest.fixture(scope="module", params=["httptools", "h11"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    settings = ServerSettings(workers=0, max_header_bytes=4096, max_headers=10)
    with Engine() as engine, live_server(engine, settings, http=request.param) as server:
        yield server


def exchange(live: Live, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read the answer until the server closes it."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def head(*headers: str, path: str = "/healthz") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


def refusal(answer: bytes) -> tuple[str, dict[str, str], object]:
    status, _, rest = answer.partition(b"\r\n")
    fields, _, body = rest.partition(b"\r\n\r\n")
    names = dict(line.decode().split(": ", 1) for line in fields.split(b"\r\n"))
    return status.decode(), names, json.loads(body)


def assert_431(answer: bytes, message: str) -> None:
    status, headers, body = refusal(answer)
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["connection"] == "close"
    assert body == {"status": 431, "message": message}


def test_a_header_over_the_size_cap_is_answered_431(live: Live) -> None:
    assert_431(exchange(live, head("X-Big: " + "a" * 5000)), TOO_LARGE)


def test_a_long_request_line_counts_against_the_cap(live: Live) -> None:
    assert_431(exchange(live, head(path="/healthz?" + "a" * 5000)), TOO_LARGE)


def test_more_header_fields_than_the_cap_is_answered_431(live: Live) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(10)]  # with Host, eleven

    assert_431(exchange(live, head(*fields)), TOO_MANY)


def test_a_head_within_the_caps_is_served(live: Live) -> None:
    fields = [f"X-Field-{n}: {'v' * 400}" for n in range(8)]  # ten with Host, about 3.3 KiB

    answer = exchange(live, head("Connection: close", *fields))

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_large_bodies_and_many_requests_on_one_connection_are_not_counted_as_heads(
    live: Live,
) -> None:
    with live.client() as client:
        for _ in range(3):  # the body arrives in reads far larger than the 4 KiB cap
            response = client.post("/token", data={"username": "a" * 200_000, "password": "x"})
            assert response.status_code == 400
        assert client.get("/healthz").status_code == 200


# -- a serve process sent megabytes of headers --------------------------------------------------


def peak_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM line")


def send_big_header(port: int, size: int) -> bytes:
    """Send a header of ``size`` bytes; what the server answered before it closed, if any."""
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ")
            chunk = b"a" * (1 << 20)
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
            while part := sock.recv(65536):
                answer += part
    except OSError:  # the server closed the connection while we were still sending
        pass
    return answer


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``treeflow serve`` believing proxy headers from loopback, its log in a file."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(TREEFLOW), "serve", "--port", str(port), "--workers", "0"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "--trees", str(TREES), "--forwarded-allow-ips", "127.0.0.1"],
            cwd=tmp_path,
            env=_environment({"TREEFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Served(process, port, log)
    try:
        wait_for(server.up)
        yield server
    finally:
        process.terminate()
        process.wait(30)


def test_a_serve_process_holds_no_more_than_the_cap_of_megabyte_headers(served: Served) -> None:
    before = peak_rss_mib(served.process.pid)
    answers: list[bytes] = []
    senders = [
        threading.Thread(target=lambda: answers.append(send_big_header(served.port, 32 << 20)))
        for _ in range(4)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    after = peak_rss_mib(served.process.pid)

    assert after - before < 32, (before, after)  # four 32 MiB headers held would be 128 or more
    assert served.up()
    for answer in answers:  # the 431, unless the close overtook it while we were sending
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]


def test_serve_believes_x_forwarded_for_from_the_proxies_it_is_given(served: Served) -> None:
    response = httpx.post(
        f"{served.url}/token",
        data={"username": "nobody", "password": "a guess"},
        headers={"X-Forwarded-For": "203.0.113.7"},
        timeout=60,
    )

    assert response.status_code == 400
    expected = "sign-in failed for user 'nobody' from 203.0.113.7: unknown user"
    wait_for(lambda: expected in served.log.read_text())
