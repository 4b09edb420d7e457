"""A real treeflow HTTP server on a free loopback port, for the HTTP tests.

uvicorn runs the app built by ``create_app`` on a thread of the test process (so a test can
hand it a clock it moves), listening on a socket bound to port 0 before the server starts: no
port is guessed and none can be taken in between. Clients are real ``httpx`` clients.
"""

from __future__ import annotations

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

from .conftest import TREES, postgres_schema_url

PASSWORD = "correct horse battery"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Still Argon2id, at a cost a test suite can pay a hundred times (the CLI tests use the default).
CHEAP_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
FORM = "application/x-www-form-urlencoded"


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
def live_server(engine: Engine, settings: ServerSettings | None = None) -> Iterator[Live]:
    """Serve ``engine`` until the block ends; the app's lifespan runs as under ``serve``."""
    settings = settings or ServerSettings(workers=0)
    clock = Clock()
    app = create_app(engine, settings, clock=clock, passwords=CHEAP_PASSWORDS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
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
