"""The sign-in throttle over real servers, on SQLite and PostgreSQL.

Attempts are counted in the database before a password is checked, per user name and per
client address; the client address is the connection's unless a trusted proxy says otherwise;
and a lock-out made by any process is seen, and lifted by ``treeflow users unlock``, in every
other. Password checks are counted, never timed.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from engine import Engine
from engine.auth import Accounts
from engine.auth.throttle import address_key, user_key
from engine.server import ServerSettings
from engine.store.sign_in_failures import PRUNE_BATCH
from engine.store.tables import sign_in_failures

from .conftest import TREES
from .live_server import CHEAP_PASSWORDS, PASSWORD, CountingPasswords, live_server
from .support import TREEFLOW, _environment, run_treeflow, wait_for
from .test_serve_cli import free_port


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with Engine(database_url, trees=TREES) as eng:
        yield eng


def settings(**overrides: object) -> ServerSettings:
    return ServerSettings(**{"workers": 0, **overrides})  # type: ignore[arg-type]


def sign_in(url: str, name: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    form = {"username": name, "password": password}
    return httpx.post(f"{url}/token", data=form, headers=headers, timeout=60)


def stored_keys(engine: Engine) -> list[str]:
    with engine.database.read() as connection:
        return sorted(connection.execute(sa.select(sign_in_failures.c.key)).scalars())


def test_parallel_wrong_sign_ins_check_no_more_passwords_than_the_limit(engine: Engine) -> None:
    passwords = CountingPasswords(hold=True)  # every check waits until the test lets it go
    with live_server(engine, settings(hash_concurrency=16), passwords=passwords) as live:
        live.add_user("ada")
        statuses: list[int] = []

        def guess() -> None:
            statuses.append(sign_in(live.url, "ada", "not the password").status_code)

        guessers = [threading.Thread(target=guess) for _ in range(16)]
        for guesser in guessers:
            guesser.start()
        # Every guess is now either refused or inside a password check, held there.
        wait_for(lambda: len(statuses) + passwords.in_flight == 16)
        checked = passwords.calls
        passwords.let_through(16)
        for guesser in guessers:
            guesser.join()

    assert checked == passwords.calls == 5
    assert sorted(statuses) == [400] * 5 + [429] * 11


def test_a_success_forgets_the_users_failures_but_not_the_addresss(engine: Engine) -> None:
    with live_server(engine, settings(failures_per_address=5)) as live:
        live.add_user("ada")
        for _ in range(4):
            assert sign_in(live.url, "ada", "not the password").status_code == 400

        assert sign_in(live.url, "ada").status_code == 200

        assert live.accounts.failed_sign_ins("ada") == 0
        assert sign_in(live.url, "bob", "a guess").status_code == 400
        refused = sign_in(live.url, "ada")
    assert refused.status_code == 429
    assert refused.json()["error_description"] == (
        "too many failed sign-ins for address 127.0.0.1; retry after 900 seconds"
    )


def test_rotating_x_forwarded_for_does_not_lift_the_address_limit(engine: Engine) -> None:
    with live_server(engine, settings(failures_per_address=3)) as live:
        for n in range(3):
            guess = sign_in(live.url, f"guess-{n}", "a guess", **{"X-Forwarded-For": f"10.0.0.{n}"})
            assert guess.status_code == 400

        refused = sign_in(live.url, "guess-3", "a guess", **{"X-Forwarded-For": "10.0.0.3"})

    assert refused.status_code == 429
    assert refused.json()["error_description"] == (
        "too many failed sign-ins for address 127.0.0.1; retry after 900 seconds"
    )
    assert stored_keys(engine) == sorted(
        [address_key("127.0.0.1"), *(user_key(f"guess-{n}") for n in range(3))]
    )


def test_x_forwarded_for_is_believed_from_an_allowed_proxy(engine: Engine) -> None:
    proxy = settings(failures_per_address=3, forwarded_allow_ips=("127.0.0.1",))
    with live_server(engine, proxy) as live:
        live.add_user("ada")
        for n in range(3):
            guess = sign_in(live.url, f"guess-{n}", "a guess", **{"X-Forwarded-For": "10.0.0.9"})
            assert guess.status_code == 400

        refused = sign_in(live.url, "ada", **{"X-Forwarded-For": "10.0.0.9"})
        other_client = sign_in(live.url, "ada", **{"X-Forwarded-For": "10.0.0.10"})

    assert refused.json()["error_description"] == (
        "too many failed sign-ins for address 10.0.0.9; retry after 900 seconds"
    )
    assert other_client.status_code == 200


def test_an_oversized_user_name_is_refused_before_anything_is_counted_or_hashed(
    engine: Engine,
) -> None:
    passwords = CountingPasswords()
    with live_server(engine, passwords=passwords) as live:
        long_names = [sign_in(live.url, "a" * size) for size in (151, 3_000_000)]

    for response in long_names:
        assert (response.status_code, response.json()) == (
            400,
            {
                "error": "invalid_request",
                "error_description": "Invalid user name: longer than 150 characters",
            },
        )
    assert passwords.calls == 0
    assert stored_keys(engine) == []


def test_an_attempt_that_gets_no_hashing_slot_is_not_a_failure(engine: Engine) -> None:
    passwords = CountingPasswords(hold=True)
    busy = settings(hash_concurrency=1, hash_wait_seconds=0)
    with live_server(engine, busy, passwords=passwords) as live:
        live.add_user("ada")
        holder = threading.Thread(target=sign_in, args=(live.url, "ada", "not the password"))
        holder.start()
        wait_for(lambda: passwords.in_flight == 1)
        refused = sign_in(live.url, "ada")
        passwords.let_through()
        holder.join()

        failures = live.accounts.failed_sign_ins("ada")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {
        "error": "temporarily_unavailable",
        "error_description": "too many sign-ins at once (at most 1 checked at a time); "
        "retry after 1 seconds",
    }
    assert failures == 1  # the wrong password that held the slot, not the refused attempt
    assert passwords.calls == 1


def test_expired_attempts_are_deleted_a_batch_at_a_time(engine: Engine) -> None:
    with live_server(engine, settings(failures_per_address=10_000)) as live:
        for n in range(PRUNE_BATCH + 20):
            live.accounts.users.reserve_attempt(
                {user_key(f"guess-{n}"): 5}, now=live.clock.now, failures_since=0, pending_since=0
            )
        live.clock.advance(901)

        assert sign_in(live.url, "ada", "a guess").status_code == 400

        left = stored_keys(engine)
    assert len(left) == 20 + 2  # the batch beyond the first, and this attempt's two keys
    assert {user_key("ada"), address_key("127.0.0.1")} <= set(left)


# -- lock-outs across processes ------------------------------------------------------------------


def serve(database: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(TREEFLOW), "serve", "--port", str(port), "--workers", "0", "--trees", str(TREES)],
        cwd=cwd,
        env=_environment({"TREEFLOW_DATABASE_URL": database}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_lock_out_made_by_another_process_holds_here_and_unlock_lifts_it_everywhere(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    Accounts(engine, passwords=CHEAP_PASSWORDS).add_user("Ada", PASSWORD, role="admin")
    other, other_url = serve(database_url, tmp_path)
    try:
        wait_for(lambda: up(other_url))
        with live_server(engine) as here:
            for _ in range(5):
                assert sign_in(other_url, "ada", "not the password").status_code == 400

            locked = [sign_in(url, "ada") for url in (other_url, here.url)]
            unlocked = run_treeflow(
                "users", "unlock", "ADA", "--database", database_url, cwd=tmp_path
            )
            after = [sign_in(url, "ada") for url in (other_url, here.url)]
    finally:
        other.terminate()
        other.wait(30)

    assert [response.status_code for response in locked] == [429, 429]
    assert (unlocked.returncode, unlocked.stdout.strip()) == (
        0,
        "Unlocked user 'Ada': forgot 5 failed sign-ins",
    )
    assert [response.status_code for response in after] == [200, 200]
    assert {response.json()["userName"] for response in after} == {"Ada"}


def test_unlock_names_an_unknown_user(url: str, tmp_path: Path) -> None:
    result = run_treeflow("users", "unlock", "nobody", "--database", url, cwd=tmp_path)

    assert (result.returncode, result.stderr.strip()) == (1, "Error: no user is named 'nobody'")
