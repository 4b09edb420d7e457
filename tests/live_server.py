"""A real treeflow HTTP server on a free loopback port, for the HTTP tests.

uvicorn runs the app built by ``create_app`` on a thread of the test process (so a test can
hand it a clock it moves), listening on a socket bound to port 0 before the server starts: no
port is guessed and none can be taken in between. Clients are real ``httpx`` clients.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from engine import Engine
from engine.auth import Accounts, Passwords
from engine.server import ServerSettings, create_app
from engine.server.protocols import uvicorn_options
from engine.store.tables import sign_in_failures

from .conftest import TREES, postgres_schema_url

PASSWORD = "correct horse battery"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Still Argon2id, at a cost a test suite can pay a hundred times (the CLI tests use the default).
CHEAP_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
FORM = "application/x-www-form-urlencoded"


def basic(name: str, secret: str = PASSWORD) -> dict[str, str]:
    """The ``Authorization`` header of HTTP Basic for ``name`` (Kinetic's clients sign in so)."""
    value = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


class CountingPasswords(Passwords):
    """The cheap hasher, counting password checks: how many, how many at once at most, and
    (with ``hold``) keeping each check waiting until the test lets one through."""

    def __init__(self, *, hold: bool = False) -> None:
        super().__init__(CHEAP_PASSWORDS.hasher)
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.hold = hold
        self.permits = threading.Semaphore(0)
        self._lock = threading.Lock()

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold and not self.permits.acquire(timeout=60):
                raise RuntimeError("the test never let this password check through")
            return super().verify(password_hash, password)
        finally:
            with self._lock:
                self.in_flight -= 1

    def let_through(self, count: int = 1) -> None:
        for _ in range(count):
            self.permits.release()


class Clock:
    """A clock the test moves by hand (UNIX seconds); starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Live:
    """A running server: its base URL, the engine behind it, its accounts and clock."""

    url: str
    engine: Engine
    accounts: Accounts
    clock: Clock

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def add_user(self, name: str, role: str = "user", password: str = PASSWORD) -> None:
        self.accounts.add_user(name, password, role=role)

    def token(self, name: str, password: str = PASSWORD) -> str:
        with self.client() as client:
            response = client.post("/token", data={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@contextmanager
def live_server(
    engine: Engine,
    settings: ServerSettings | None = None,
    *,
    http: str = "auto",
    passwords: Passwords = CHEAP_PASSWORDS,
) -> Iterator[Live]:
    """Serve ``engine`` until the block ends; the app's lifespan runs as under ``serve``, and
    uvicorn is configured as ``serve`` configures it (``http`` picks its HTTP parser)."""
    settings = settings or ServerSettings(workers=0)
    clock = Clock()
    with engine.database.write() as connection:  # failures counted by earlier servers' clocks
        connection.execute(sign_in_failures.delete())
    app = create_app(engine, settings, clock=clock, passwords=passwords)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        **uvicorn_options(settings, http=http),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Live(f"http://127.0.0.1:{port}", engine, app.state.accounts, clock)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def module_engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    **options: Any,
) -> Iterator[Engine]:
    """An engine with the example trees on a fresh database of the kind ``request.param``
    names, for a module-scoped server (the ``database_url`` convention, one scope up);
    ``options`` are the Engine's (plugins, poll intervals)."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('http') / 't.db'}"])
    else:
        urls = postgres_schema_url()
    url = next(urls)
    try:
        with Engine(url, trees=TREES, **options) as engine:
            yield engine
    finally:
        next(urls, None)  # drops the PostgreSQL schema
