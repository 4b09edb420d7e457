"""``POST /token`` and bearer tokens over a real server, on SQLite and PostgreSQL.

Each test gets its own server (so its own clock and throttles) over an engine shared by the
module, and its own user. Expiry is tested by moving the server's clock, never by sleeping.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine
from engine.auth import Accounts
from engine.server import ServerSettings
from engine.store.tables import access_tokens, users

from .live_server import DATABASES, PASSWORD, Live, live_server, module_engine

SUBSCRIPTION = "6f1c2a9e-0d4b-4f8e-9a57-3c2b1d0e9f88"
START_URL = "/kineticTask/rest/v1/Trigger/createStart"
START = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
INVALID_TOKEN = "security token is invalid or has expired"
INVALID_CHALLENGE = (
    f'Bearer realm="treeflow", error="invalid_token", error_description="{INVALID_TOKEN}"'
)


@pytest.fixture(scope="module", params=DATABASES)
def shared_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with module_engine(request, tmp_path_factory) as engine:
        yield engine


def settings(**overrides: object) -> ServerSettings:
    values: dict[str, object] = {
        "workers": 0,
        "subscription_id": SUBSCRIPTION,
        "failures_per_address": 1000,
    }
    return ServerSettings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def live(shared_engine: Engine) -> Iterator[Live]:
    with live_server(shared_engine, settings()) as server:
        yield server


@pytest.fixture
def name(live: Live) -> str:
    """A user of role ``user`` made for this test (its password is ``PASSWORD``)."""
    user = f"user-{secrets.token_hex(4)}"
    live.add_user(user)
    return user


def sign_in(live: Live, name: str, password: str = PASSWORD, **form: str) -> httpx.Response:
    with live.client() as client:
        return client.post("/token", data={"username": name, "password": password, **form})


def call(live: Live, authorization: str | None) -> httpx.Response:
    """A simulated createStart: authenticated like a real one, writes nothing."""
    headers = {"X-Simulate-Success": "42"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with live.client(**headers) as client:
        return client.post(START_URL, data=START)


def assert_oauth_error(response: httpx.Response, status: int, error: str, text: str) -> None:
    assert (response.status_code, response.json()) == (
        status,
        {"error": error, "error_description": text},
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"


def assert_refused(response: httpx.Response, message: str, challenge: str) -> None:
    assert (response.status_code, response.text) == (401, message)
    assert response.headers["X-Error-Message"] == message
    assert response.headers["WWW-Authenticate"] == challenge


# -- issuing -------------------------------------------------------------------------------------


def test_token_response_has_the_seed_fields(live: Live, name: str) -> None:
    response = sign_in(live, name, scope=SUBSCRIPTION, grant_type="password")

    body = response.json()
    user = next(u for u in live.accounts.list_users() if u.name == name)
    assert response.status_code == 200
    assert body == {
        "access_token": body["access_token"],
        "token_type": "bearer",
        "expires_in": 299,
        "userName": name,
        "userId": user.id,
        "subscriptionId": SUBSCRIPTION,
        "securityStamp": user.security_stamp,
        "hostURL": live.url,
        ".issued": formatdate(live.clock.now, usegmt=True),
        ".expires": formatdate(live.clock.now + 299, usegmt=True),
    }
    assert len(body["access_token"]) == 43
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_token_lifetime_is_a_setting(shared_engine: Engine) -> None:
    with live_server(shared_engine, settings(token_seconds=60)) as live:
        live.add_user(user := f"user-{secrets.token_hex(4)}")
        response = sign_in(live, user)

    assert response.json()["expires_in"] == 60


def test_the_token_is_stored_only_as_its_sha256(live: Live, name: str) -> None:
    token = sign_in(live, name).json()["access_token"]

    with live.engine.database.read() as connection:
        stored = connection.execute(sa.select(access_tokens.c.token_hash)).scalars().all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


def test_passwords_are_stored_as_argon2id_hashes(live: Live, name: str) -> None:
    with live.engine.database.read() as connection:
        stored = connection.execute(
            sa.select(users.c.password_hash).where(users.c.name == name)
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("role", ["admin", "user"])
def test_either_role_may_call_the_trigger_api(live: Live, role: str) -> None:
    live.add_user(user := f"{role}-{secrets.token_hex(4)}", role)

    response = call(live, f"Bearer {live.token(user)}")

    assert (response.status_code, response.text) == (200, "ID=42")


# -- refusing to issue ---------------------------------------------------------------------------


def test_a_wrong_password_is_an_invalid_grant(live: Live, name: str) -> None:
    response = sign_in(live, name, "not the password")

    text = f"the user name or password is incorrect for '{name}'"
    assert_oauth_error(response, 400, "invalid_grant", text)


def test_an_unknown_user_is_answered_like_a_wrong_password(live: Live) -> None:
    response = sign_in(live, "nobody")

    text = "the user name or password is incorrect for 'nobody'"
    assert_oauth_error(response, 400, "invalid_grant", text)


@pytest.mark.parametrize(
    ("form", "status", "error", "text"),
    [
        pytest.param(
            {"grant_type": "client_credentials"},
            400,
            "unsupported_grant_type",
            "the grant type 'client_credentials' is not supported: use 'password'",
            id="grant-type",
        ),
        pytest.param(
            {"scope": "someone-else"},
            400,
            "invalid_scope",
            "the scope 'someone-else' is not this installation's subscription id",
            id="scope",
        ),
        pytest.param(
            {"client_id": "x"},
            400,
            "invalid_request",
            "Invalid form: unknown parameter 'client_id' (expected username, password, scope, "
            "grant_type)",
            id="unknown-parameter",
        ),
    ],
)
def test_a_bad_token_request_is_refused_as_rfc_6749_says(
    live: Live, name: str, form: dict[str, str], status: int, error: str, text: str
) -> None:
    assert_oauth_error(sign_in(live, name, **form), status, error, text)


def test_a_token_request_without_a_password_names_it(live: Live) -> None:
    with live.client() as client:
        response = client.post("/token", data={"username": "ada"})

    assert_oauth_error(
        response, 400, "invalid_request", "Invalid password: the parameter is missing"
    )


# -- using tokens --------------------------------------------------------------------------------


def test_a_token_expires_after_its_lifetime(live: Live, name: str) -> None:
    token = live.token(name)

    live.clock.advance(298)
    assert call(live, f"Bearer {token}").status_code == 200
    live.clock.advance(1)
    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)


def test_rotating_the_security_stamp_revokes_issued_tokens(live: Live, name: str) -> None:
    token = live.token(name)
    assert call(live, f"Bearer {token}").status_code == 200

    live.accounts.rotate(name)

    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)
    assert call(live, f"Bearer {live.token(name)}").status_code == 200


def test_a_disabled_user_can_neither_use_its_tokens_nor_sign_in(live: Live, name: str) -> None:
    token = live.token(name)

    live.accounts.set_disabled(name, True)

    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)
    text = f"the user name or password is incorrect for '{name}'"
    assert_oauth_error(sign_in(live, name), 400, "invalid_grant", text)
    live.accounts.set_disabled(name, False)
    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)
    assert call(live, f"Bearer {live.token(name)}").status_code == 200


@pytest.mark.parametrize(
    ("authorization", "message", "challenge"),
    [
        pytest.param(None, "security token not provided", 'Bearer realm="treeflow"', id="none"),
        pytest.param(  # HTTP Basic is checked now (Coming from Kinetic Task): a wrong password
            "Basic YWRhOnNlY3JldA==", INVALID_TOKEN, INVALID_CHALLENGE, id="wrong basic"
        ),
        pytest.param(
            "Bearer", "security token not provided", 'Bearer realm="treeflow"', id="empty"
        ),
        pytest.param(
            "Bearer " + secrets.token_urlsafe(32), INVALID_TOKEN, INVALID_CHALLENGE, id="forged"
        ),
        pytest.param("Bearer " + "x" * 300, INVALID_TOKEN, INVALID_CHALLENGE, id="overlong"),
    ],
)
def test_a_missing_or_invalid_token_is_refused_as_rfc_6750_says(
    live: Live, authorization: str | None, message: str, challenge: str
) -> None:
    assert_refused(call(live, authorization), message, challenge)


def test_the_scheme_is_case_insensitive(live: Live, name: str) -> None:
    assert call(live, f"bearer {live.token(name)}").status_code == 200


# -- the token cache ------------------------------------------------------------------------------


def another_process(live: Live) -> Accounts:
    """Accounts over the server's database but not the server's own, as ``treeflow users``
    running in another process has."""
    return Accounts(live.engine, clock=live.clock)


def test_a_cached_token_is_refused_the_moment_it_expires(live: Live, name: str) -> None:
    token = live.token(name)
    live.clock.advance(298.5)
    assert call(live, f"Bearer {token}").status_code == 200
    assert len(live.accounts.token_cache) == 1

    live.clock.advance(0.5)

    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)


@pytest.mark.parametrize("change", ["rotate", "disable"])
def test_a_change_made_through_the_servers_accounts_refuses_a_cached_token_at_once(
    live: Live, name: str, change: str
) -> None:
    token = live.token(name)
    assert call(live, f"Bearer {token}").status_code == 200
    assert len(live.accounts.token_cache) == 1

    if change == "rotate":
        live.accounts.rotate(name)
    else:
        live.accounts.set_disabled(name, True)

    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)


def test_a_rotation_by_another_process_is_seen_once_the_cache_period_is_over(
    live: Live, name: str
) -> None:
    token = live.token(name)
    assert call(live, f"Bearer {token}").status_code == 200

    another_process(live).rotate(name)

    assert call(live, f"Bearer {token}").status_code == 200  # the documented staleness
    live.clock.advance(2)
    assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)


def test_without_the_cache_a_rotation_by_another_process_is_seen_at_once(
    shared_engine: Engine,
) -> None:
    with live_server(shared_engine, settings(token_cache_seconds=0)) as live:
        live.add_user(user := f"user-{secrets.token_hex(4)}")
        token = live.token(user)
        assert call(live, f"Bearer {token}").status_code == 200

        another_process(live).rotate(user)

        assert_refused(call(live, f"Bearer {token}"), INVALID_TOKEN, INVALID_CHALLENGE)
        assert len(live.accounts.token_cache) == 0


# -- throttling ----------------------------------------------------------------------------------


def test_repeated_failures_for_a_user_are_throttled_until_the_window_passes(
    live: Live, name: str
) -> None:
    for _ in range(5):
        assert sign_in(live, name, "wrong password").status_code == 400

    response = sign_in(live, name)

    text = f"too many failed sign-ins for user '{name}'; retry after 900 seconds"
    assert_oauth_error(response, 429, "invalid_grant", text)
    assert response.headers["Retry-After"] == "900"
    live.clock.advance(600)
    assert sign_in(live, name).headers["Retry-After"] == "300"
    live.clock.advance(300)
    assert sign_in(live, name).status_code == 200


def test_a_success_clears_the_users_failures(live: Live, name: str) -> None:
    for _ in range(4):
        sign_in(live, name, "wrong password")
    assert sign_in(live, name).status_code == 200

    for _ in range(4):
        sign_in(live, name, "wrong password")

    assert sign_in(live, name).status_code == 200


def test_repeated_failures_from_an_address_are_throttled(shared_engine: Engine) -> None:
    with live_server(shared_engine, settings(failures_per_address=3)) as live:
        live.add_user(user := f"user-{secrets.token_hex(4)}")
        for guess in ("root", "admin", "guest"):
            assert sign_in(live, guess, "password1").status_code == 400

        response = sign_in(live, user)

    text = "too many failed sign-ins for address 127.0.0.1; retry after 900 seconds"
    assert_oauth_error(response, 429, "invalid_grant", text)
