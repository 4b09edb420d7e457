"""Security over a real server, on SQLite and PostgreSQL: the bound on concurrent password
checks, security events in the log and in ``/metrics``, and who may read ``/metrics`` and
``/docs`` (whose page loads nothing from elsewhere)."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import Engine
from engine.server import ServerSettings

from .live_server import DATABASES, PASSWORD, CountingPasswords, Live, live_server, module_engine
from .support import wait_for

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
UNLIMITED = {"failures_per_address": 10_000}


@pytest.fixture(scope="module", params=DATABASES)
def shared_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with module_engine(request, tmp_path_factory) as engine:
        yield engine


def settings(**overrides: object) -> ServerSettings:
    return ServerSettings(**{"workers": 0, **UNLIMITED, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def live(shared_engine: Engine) -> Iterator[Live]:
    with live_server(shared_engine, settings()) as server:
        yield server


def new_user(live: Live, role: str = "user") -> str:
    name = f"{role}-{secrets.token_hex(4)}"
    live.add_user(name, role)
    return name


def sign_in(live: Live, name: str, password: str = PASSWORD) -> httpx.Response:
    with live.client() as client:
        return client.post("/token", data={"username": name, "password": password})


# -- the bound on password checks -----------------------------------------------------------------


def test_concurrent_password_checks_never_exceed_the_bound(shared_engine: Engine) -> None:
    passwords = CountingPasswords(hold=True)
    bounded = settings(hash_concurrency=2, hash_wait_seconds=120)
    with live_server(shared_engine, bounded, passwords=passwords) as live:
        names = [new_user(live) for _ in range(12)]
        statuses: list[int] = []
        clients = [
            threading.Thread(
                target=lambda name=name: statuses.append(sign_in(live, name).status_code)
            )
            for name in names
        ]
        for client in clients:
            client.start()
        for released in range(12):  # one check at a time, once the bound's two are held
            wait_for(lambda left=12 - released: passwords.in_flight >= min(2, left))
            passwords.let_through()
        for client in clients:
            client.join()

    assert (passwords.calls, passwords.peak) == (12, 2)
    assert statuses == [200] * 12


# -- security events ------------------------------------------------------------------------------


def samples(live: Live) -> dict[str, float]:
    with live.client(live.token(admin := new_user(live, "admin"))) as client:
        text = client.get("/metrics").text
    live.accounts.remove_user(admin)
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "treeflow_auth_failures_total"
    }


def security_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "treeflow.security"]


def test_failed_and_throttled_sign_ins_are_logged_and_counted(
    shared_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with live_server(shared_engine, settings(failures_per_user=2)) as live:
        name = new_user(live)
        before = samples(live)
        caplog.clear()
        caplog.set_level(logging.WARNING, "treeflow.security")
        secret = "not the password, never logged"

        statuses = [sign_in(live, user, secret).status_code for user in ("nobody", name, name)]
        statuses.append(sign_in(live, name).status_code)

        lines = security_lines(caplog)
        after = samples(live)
    assert statuses == [400, 400, 400, 429]
    who = f"user '{name}' from 127.0.0.1"
    assert lines == [
        (logging.WARNING, "sign-in failed for user 'nobody' from 127.0.0.1: unknown user"),
        (logging.WARNING, f"sign-in failed for {who}: wrong password"),
        (logging.WARNING, f"sign-in failed for {who}: wrong password"),
        (
            logging.WARNING,
            f"sign-in throttled for {who}: too many failed sign-ins for user '{name}'; "
            "retry after 900 seconds",
        ),
    ]
    assert all(secret not in record.getMessage() for record in caplog.records)
    for reason, more in (("unknown_user", 1), ("wrong_password", 2), ("throttled", 1)):
        assert after.get(reason, 0) - before.get(reason, 0) == more, reason


def test_refused_tokens_and_calls_are_logged_and_counted(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    name = new_user(live)
    token = live.token(name)
    forged = secrets.token_urlsafe(32)
    before = samples(live)
    caplog.clear()
    caplog.set_level(logging.WARNING, "treeflow.security")

    with live.client(forged) as client:
        forged_status = client.get("/api/errors").status_code
    with live.client(token) as client:
        role_status = client.get("/api/errors").status_code
    with live.client() as client:
        missing_status = client.get("/api/errors").status_code
    live.clock.advance(300)
    with live.client(token) as client:
        expired_status = client.get("/api/errors").status_code

    lines = security_lines(caplog)
    after = samples(live)
    assert [forged_status, role_status, missing_status, expired_status] == [401, 403, 401, 401]
    assert lines == [
        (logging.WARNING, "bearer token refused from 127.0.0.1: unknown token"),
        (
            logging.WARNING,
            f"call refused for user '{name}' from 127.0.0.1: user '{name}' has the role "
            "'user'; this needs admin",
        ),
        (logging.WARNING, f"bearer token refused from 127.0.0.1: token of user '{name}' expired"),
    ]
    assert all(token not in r.getMessage() and forged not in r.getMessage() for r in caplog.records)
    for reason in ("unknown_token", "insufficient_role", "missing_token", "expired_token"):
        assert after.get(reason, 0) - before.get(reason, 0) == 1, reason


# -- /metrics, /docs and /openapi.json ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/docs/assets/swagger-ui-bundle.js"])
def test_metrics_and_docs_need_a_token(live: Live, path: str) -> None:
    with live.client() as anonymous:
        refused = anonymous.get(path)
    with live.client(live.token(new_user(live))) as signed_in:
        served = signed_in.get(path)

    assert (refused.status_code, refused.text) == (
        401,
        '{"status":401,"message":"security token not provided"}',
    )
    assert served.status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/openapi.json"])
def test_public_metrics_serves_metrics_and_docs_without_a_token(
    shared_engine: Engine, path: str
) -> None:
    with live_server(shared_engine, settings(public_metrics=True)) as live, live.client() as client:
        assert client.get(path).status_code == 200


def test_the_openapi_document_needs_no_token(live: Live) -> None:
    with live.client() as anonymous:
        response = anonymous.get("/openapi.json")

    assert response.status_code == 200
    assert "/token" in response.json()["paths"]
    assert "/docs" not in response.json()["paths"]


class Loads(HTMLParser):
    """Every URL a page loads: script sources and linked stylesheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for attribute in ("src", "href"):
            if found.get(attribute) and tag in ("script", "link", "img"):
                self.urls.append(str(found[attribute]))


def test_the_docs_page_loads_only_what_this_server_serves(live: Live) -> None:
    with live.client(live.token(new_user(live))) as client:
        page = client.get("/docs")
        loads = Loads()
        loads.feed(page.text)
        assets = {url: client.get(url) for url in loads.urls}

    assert page.headers["content-type"].startswith("text/html")
    assert sorted(loads.urls) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    assert all(not urlsplit(url).scheme and not urlsplit(url).netloc for url in loads.urls)
    assert {url: r.status_code for url, r in assets.items()} == dict.fromkeys(loads.urls, 200)
    assert (
        assets["/docs/assets/swagger-ui-bundle.js"]
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert b"SwaggerUIBundle" in assets["/docs/assets/swagger-ui-bundle.js"].content
    assert '"validatorUrl": null' in page.text
    assert "url: '/openapi.json'" in page.text
