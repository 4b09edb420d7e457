"""A database that goes away under a live server: 503 with ``Retry-After`` in the caller's
format, never a 500 or a traceback, and a retry with the same ``Idempotency-Key`` that makes
exactly one run, on PostgreSQL.

Each test's server connects with an ``application_name`` of its own, and only backends with
that name are terminated; the outages that need a stream cut come from a proxy of the test's
own (``tests/db_proxy.py``). Nothing sleeps: the test waits for the blocked backend to show in
``pg_stat_activity``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine
from engine.server import ServerSettings

from .conftest import TREES, postgres_schema_url
from .db_proxy import Proxy, proxied_url
from .fault_support import terminate_backends, with_application_name
from .live_server import Live, live_server
from .support import REGISTRATION, wait_for

pytestmark = pytest.mark.postgres

START = "/kineticTask/rest/v1/Trigger/createStart"
RUN_TREE = (
    "/app/api/v1/run-tree/Kinetic%20Request/KEG%20Catalog%20%3E%20Conference%20Registration"
    "/Process%20Registration"
)
UNAVAILABLE = "The database is unavailable; try again in 1 second"
SETTINGS = ServerSettings(workers=0, token_cache_seconds=0)  # every request reads the database


@dataclass
class Outage:
    live: Live
    admin_url: str  # the test's own schema, not through the proxy
    application_name: str
    proxy: Proxy
    token: str

    def count(self, table: str) -> int:
        admin = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        try:
            with admin.connect() as connection:
                return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar())
        finally:
            admin.dispose()


@pytest.fixture
def outage() -> Iterator[Outage]:
    urls = postgres_schema_url()
    url = next(urls)
    name = f"tf_outage_{secrets.token_hex(4)}"
    proxy = Proxy()
    try:
        with (
            Engine(proxied_url(url, proxy.port, name), trees=TREES) as engine,
            live_server(engine, SETTINGS) as live,
        ):
            live.add_user("ada", "admin")
            yield Outage(live, url, name, proxy, live.token("ada"))
    finally:
        proxy.close()
        next(urls, None)


def test_a_backend_terminated_during_a_request_is_503_and_a_retry_with_the_key_makes_one_run(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    locker = sa.create_engine(
        with_application_name(outage.admin_url, "tf_outage_locker"), poolclass=sa.pool.NullPool
    )
    answers: list[httpx.Response] = []
    headers = {"Accept": "application/json", "Idempotency-Key": "terminated"}
    client = outage.live.client(outage.token, **headers)
    try:
        with locker.connect() as connection, connection.begin():
            # The request's insert waits on this lock: its backend is busy in the request.
            connection.execute(sa.text("LOCK TABLE runs IN EXCLUSIVE MODE"))
            sender = threading.Thread(
                target=lambda: answers.append(client.post(START, data=REGISTRATION))
            )
            sender.start()
            wait_for(lambda: _waiting_on_a_lock(outage.admin_url, outage.application_name))
            assert terminate_backends(outage.admin_url, outage.application_name) >= 1
            sender.join(60)
        (answer,) = answers

        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json() == {"status": 503, "message": UNAVAILABLE}
        assert answer.headers["X-Error-Message"] == UNAVAILABLE
        assert outage.count("runs") == 0

        retries = [client.post(START, data=REGISTRATION) for _ in range(2)]
    finally:
        client.close()
        locker.dispose()

    assert [r.status_code for r in retries] == [200, 200]
    assert retries[0].content == retries[1].content
    assert (outage.count("runs"), outage.count("triggers")) == (1, 1)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "answered POST /kineticTask/rest/v1/Trigger/createStart with 503" in caplog.text


def _waiting_on_a_lock(admin_url: str, application_name: str) -> bool:
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                    " AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            ).scalar()
    finally:
        admin.dispose()
    return bool(waiting)


def test_a_commit_whose_answer_was_lost_is_503_and_the_retry_returns_its_run(
    outage: Outage,
) -> None:
    """The case a key exists for: the first call committed, but its caller heard 503."""
    headers = {"Accept": "application/json", "Idempotency-Key": "lost-commit"}
    with outage.live.client(outage.token, **headers) as client:
        outage.proxy.lose_next_commit_reply()
        lost = client.post(START, data=REGISTRATION)
        assert outage.proxy.lost_commits == 1
        assert lost.status_code == 503
        assert lost.headers["Retry-After"] == "1"
        assert outage.count("runs") == 1  # it did commit

        retry = client.post(START, data=REGISTRATION)

    (trigger_id,) = _column(outage, "SELECT id FROM triggers")
    assert retry.status_code == 200
    assert retry.json() == {
        "status": 200,
        "message": f"Created trigger '{trigger_id}'.",
        "result": {"id": str(trigger_id)},
    }
    assert (outage.count("runs"), outage.count("triggers")) == (1, 1)


def _column(outage: Outage, query: str) -> list[object]:
    admin = sa.create_engine(outage.admin_url, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            return list(connection.execute(sa.text(query)).scalars())
    finally:
        admin.dispose()


def test_an_unreachable_database_is_503_with_retry_after_on_every_route_in_its_format(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    uvicorn_errors = logging.getLogger("uvicorn.error")  # where uvicorn logs a traceback
    uvicorn_errors.addHandler(caplog.handler)
    bearer = {"Authorization": f"Bearer {outage.token}"}
    try:
        outage.proxy.cut()
        with outage.live.client() as client:
            token = client.post("/token", data={"username": "ada", "password": "x" * 12})
            seed = client.post(START, data=REGISTRATION, headers={**bearer, "Accept": "text/xml"})
            kinetic = client.post(RUN_TREE, json={}, headers=bearer)
            run = client.get("/api/runs/1", headers=bearer)
            metrics = client.get("/metrics", headers=bearer)  # it needs a token
            health = client.get("/healthz")
        outage.proxy.mend()
        with outage.live.client(outage.token) as client:
            after = client.get("/api/runs?limit=1")
    finally:
        uvicorn_errors.removeHandler(caplog.handler)

    for answer in (token, seed, kinetic, run, metrics):
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1"), answer.text
    assert token.json() == {"error": "temporarily_unavailable", "error_description": UNAVAILABLE}
    assert seed.text == (
        f"<response><status>503</status><message>{UNAVAILABLE}</message></response>"
    )
    for answer in (kinetic, run, metrics):
        assert answer.json() == {"status": 503, "message": UNAVAILABLE}
    assert health.status_code == 200  # liveness does not touch the database
    assert after.status_code == 200  # and the pool reconnects once it is back
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert caplog.text.count("the database is unreachable: answered") == 5
