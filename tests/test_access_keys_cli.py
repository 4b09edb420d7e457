"""``treeflow users add-key``, ``keys`` and ``remove-key`` as the installed console script, on a
scratch SQLite database: a key is made for a user, shown once, works as Basic credentials
through the same rules the server uses, is listed without its secret and is revoked alone."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import Engine
from engine.auth import Accounts
from engine.auth.access_keys import AccessKeys
from engine.auth.basic import BasicCredentials
from engine.auth.errors import InvalidToken

from .support import run_treeflow

PASSWORD = "correct horse battery"
ID_LINE = re.compile(r"^id: (tfk_[0-9a-f]{16})$", re.MULTILINE)
SECRET_LINE = re.compile(r"^secret: (\S{43})$", re.MULTILINE)

Treeflow = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def treeflow(tmp_path: Path, url: str) -> Treeflow:
    def call(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_treeflow(*args, "--database", url, cwd=tmp_path, stdin=stdin)

    call("users", "add", "portal", stdin=PASSWORD)
    return call


def authenticate(url: str, key_id: str, secret: str) -> str:
    with Engine(url) as engine:
        credentials = BasicCredentials(Accounts(engine), AccessKeys(engine))
        return credentials.authenticate(key_id, secret, address="test").name


def test_add_key_prints_the_id_and_the_secret_once_and_the_key_signs_in(
    treeflow: Treeflow, url: str
) -> None:
    result = treeflow("users", "add-key", "PORTAL", "--description", "callback script")

    assert result.returncode == 0, result.stderr
    key_id = ID_LINE.search(result.stdout)
    secret = SECRET_LINE.search(result.stdout)
    assert key_id is not None and secret is not None, result.stdout
    assert "not shown again" in result.stdout
    assert authenticate(url, key_id.group(1), secret.group(1)) == "portal"

    listed = treeflow("users", "keys", "portal")
    assert listed.returncode == 0, listed.stderr
    assert key_id.group(1) in listed.stdout and "callback script" in listed.stdout
    assert secret.group(1) not in listed.stdout


def test_remove_key_revokes_it_and_only_it(treeflow: Treeflow, url: str) -> None:
    first = ID_LINE.search(treeflow("users", "add-key", "portal").stdout)
    second = treeflow("users", "add-key", "portal").stdout
    assert first is not None
    kept_id, kept_secret = ID_LINE.search(second), SECRET_LINE.search(second)
    assert kept_id is not None and kept_secret is not None

    removed = treeflow("users", "remove-key", first.group(1))
    again = treeflow("users", "remove-key", first.group(1))

    assert removed.returncode == 0, removed.stderr
    assert f"Removed access key {first.group(1)} of user 'portal'" in removed.stdout
    assert again.returncode != 0
    assert f"no access key has the id '{first.group(1)}'" in again.stderr
    assert authenticate(url, kept_id.group(1), kept_secret.group(1)) == "portal"
    with Engine(url) as engine:
        assert [key.id for key in AccessKeys(engine).list()] == [kept_id.group(1)]
        credentials = BasicCredentials(Accounts(engine), AccessKeys(engine))
        with pytest.raises(InvalidToken):
            credentials.authenticate(first.group(1), "anything", address="test")


def test_a_key_for_an_unknown_user_is_refused_naming_it(treeflow: Treeflow, url: str) -> None:
    result = treeflow("users", "add-key", "nobody")
    assert result.returncode != 0
    assert "no user is named 'nobody'" in result.stderr
    with Engine(url) as engine:
        assert AccessKeys(engine).list() == []


def test_removing_a_user_removes_its_keys(treeflow: Treeflow, url: str) -> None:
    treeflow("users", "add-key", "portal")
    assert treeflow("users", "remove", "portal").returncode == 0
    with Engine(url) as engine:
        assert AccessKeys(engine).list() == []
