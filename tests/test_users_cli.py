"""``treeflow users`` as the installed console script, on a scratch SQLite database.

Passwords go in on standard input (not a terminal), as an operator's script would pipe them.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Engine
from engine.auth import Accounts
from engine.auth.errors import InvalidCredentials, InvalidToken
from engine.store.tables import access_tokens

from .support import run_treeflow

PASSWORD = "correct horse battery"
ADDED = re.compile(r"^Added user 'ada' \(role admin, id ([0-9a-f-]{36})\)$")

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def treeflow(tmp_path: Path, url: str) -> Treeflow:
    def call(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_treeflow(*args, "--database", url, cwd=tmp_path, stdin=stdin)

    return call


def accounts_of(url: str) -> tuple[Engine, Accounts]:
    engine = Engine(url)
    return engine, Accounts(engine)


def test_add_reads_the_password_from_stdin_and_prints_the_user(
    treeflow: Treeflow, url: str
) -> None:
    result = treeflow("users", "add", "ada", "--role", "admin", stdin=PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    added = ADDED.match(result.stdout.strip())
    assert added is not None, result.stdout
    engine, accounts = accounts_of(url)
    with engine:
        token = accounts.sign_in("ada", PASSWORD, address="test")
        assert (token.user.id, token.user.role) == (added.group(1), "admin")


def test_list_shows_each_user_with_role_and_status(treeflow: Treeflow) -> None:
    treeflow("users", "add", "ada", "--role", "admin", stdin=PASSWORD)
    treeflow("users", "add", "bob", stdin=PASSWORD)
    treeflow("users", "disable", "bob")

    result = treeflow("users", "list")

    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"^\W+(ada|bob)\b", line)]
    assert [re.findall(r"\w+", row)[:3] for row in rows] == [
        ["ada", "admin", "enabled"],
        ["bob", "user", "disabled"],
    ]


def test_disable_refuses_sign_in_and_enable_allows_it_again(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "bob", stdin=PASSWORD)

    disabled = treeflow("users", "disable", "bob")

    assert disabled.stdout.startswith("Disabled user 'bob' (role user, id ")
    engine, accounts = accounts_of(url)
    with engine:
        with pytest.raises(InvalidCredentials, match="incorrect for 'bob'"):
            accounts.sign_in("bob", PASSWORD, address="test")
        assert treeflow("users", "enable", "bob").returncode == 0
        assert accounts.sign_in("bob", PASSWORD, address="other").user.name == "bob"


def test_rotate_revokes_the_tokens_already_issued(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "bob", stdin=PASSWORD)
    engine, accounts = accounts_of(url)
    with engine:
        token = accounts.sign_in("bob", PASSWORD, address="test").access_token

        rotated = treeflow("users", "rotate", "bob")

        assert rotated.stdout.startswith("Rotated the security stamp of user 'bob'")
        with pytest.raises(InvalidToken) as refused:
            accounts.authenticate(token)
        assert refused.value.detail == "token of user 'bob' was revoked"


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        pytest.param(
            ("add", "ada"),
            "short",
            "Invalid password: must have at least 12 characters",
            id="short",
        ),
        pytest.param(
            ("add", " ada"),
            PASSWORD,
            "Invalid user name: must be non-empty without outer spaces",
            id="spaces",
        ),
        pytest.param(("disable", "nobody"), "", "no user is named 'nobody'", id="unknown-disable"),
        pytest.param(("rotate", "nobody"), "", "no user is named 'nobody'", id="unknown-rotate"),
    ],
)
def test_bad_user_commands_fail_naming_the_problem(
    treeflow: Treeflow, args: tuple[str, ...], stdin: str, error: str
) -> None:
    result = treeflow("users", *args, stdin=stdin)

    assert (result.returncode, result.stderr.strip()) == (1, f"Error: {error}")


def test_adding_a_name_twice_fails_and_keeps_the_first(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "ada", "--role", "admin", stdin=PASSWORD)

    result = treeflow("users", "add", "ada", stdin="another password")

    assert (result.returncode, result.stderr.strip()) == (
        1,
        "Error: a user named 'ada' already exists",
    )
    engine, accounts = accounts_of(url)
    with engine:
        assert [(u.name, u.role) for u in accounts.list_users()] == [("ada", "admin")]


def test_an_unknown_role_is_refused_by_the_command_line(treeflow: Treeflow) -> None:
    result = treeflow("users", "add", "ada", "--role", "root", stdin=PASSWORD)

    assert result.returncode == 2
    assert "'root' is not one of 'admin', 'user'" in result.stderr


def test_passwd_sets_a_new_password_and_revokes_the_tokens(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "bob", stdin=PASSWORD)
    engine, accounts = accounts_of(url)
    with engine:
        token = accounts.sign_in("bob", PASSWORD, address="test").access_token

        changed = treeflow("users", "passwd", "BOB", stdin="a brand new passphrase\n")

        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.startswith("Changed the password of user 'bob' (role user, id ")
        with pytest.raises(InvalidToken, match="invalid or has expired"):
            accounts.authenticate(token)
        with pytest.raises(InvalidCredentials):
            accounts.sign_in("bob", PASSWORD, address="test")
        assert accounts.sign_in("bob", "a brand new passphrase", address="test").user.name == "bob"


def test_remove_deletes_the_user_and_its_tokens(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "ada", "--role", "admin", stdin=PASSWORD)
    treeflow("users", "add", "bob", stdin=PASSWORD)
    engine, accounts = accounts_of(url)
    with engine:
        accounts.sign_in("bob", PASSWORD, address="test")

        removed = treeflow("users", "remove", "Bob")

        assert removed.returncode == 0, removed.stderr
        assert removed.stdout.startswith("Removed user 'bob' (role user, id ")
        assert [user.name for user in accounts.list_users()] == ["ada"]
        with engine.database.read() as connection:
            tokens = sa.select(sa.func.count()).select_from(access_tokens)
            assert connection.execute(tokens).scalar() == 0
        with pytest.raises(InvalidCredentials):
            accounts.sign_in("bob", PASSWORD, address="test")


def test_user_names_are_unique_and_signed_in_ignoring_case(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add", "admin", "--role", "admin", stdin=PASSWORD)

    second = treeflow("users", "add", "Admin", stdin="another passphrase")

    assert (second.returncode, second.stderr.strip()) == (
        1,
        "Error: a user named 'admin' already exists, so 'Admin' cannot be added "
        "(user names ignore case)",
    )
    engine, accounts = accounts_of(url)
    with engine:
        assert [user.name for user in accounts.list_users()] == ["admin"]
        assert accounts.sign_in("ADMIN", PASSWORD, address="test").user.name == "admin"
    assert treeflow("users", "disable", "AdMiN").stdout.startswith("Disabled user 'admin'")


@pytest.mark.parametrize(
    ("command", "password", "reason"),
    [
        pytest.param("add", "QWERTY123456", "it is one of the most common passwords", id="add"),
        pytest.param("passwd", "eleven char", "must have at least 12 characters", id="passwd"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule_and_nothing_changes(
    treeflow: Treeflow, url: str, command: str, password: str, reason: str
) -> None:
    treeflow("users", "add", "ada", stdin=PASSWORD)

    result = treeflow("users", command, "ada" if command == "passwd" else "bob", stdin=password)

    assert (result.returncode, result.stderr.strip()) == (1, f"Error: Invalid password: {reason}")
    engine, accounts = accounts_of(url)
    with engine:
        assert [user.name for user in accounts.list_users()] == ["ada"]
        assert accounts.sign_in("ada", PASSWORD, address="test").user.name == "ada"


@pytest.mark.parametrize("command", ["passwd", "remove", "unlock"])
def test_commands_on_an_unknown_user_name_it(treeflow: Treeflow, command: str) -> None:
    result = treeflow("users", command, "nobody", stdin="a brand new passphrase")

    assert (result.returncode, result.stderr.strip()) == (1, "Error: no user is named 'nobody'")
