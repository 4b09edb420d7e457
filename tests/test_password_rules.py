"""What a new password must be (``engine.auth.password_rules``), refused naming the rule."""

from __future__ import annotations

import pytest

from engine import BadRequest
from engine.auth import check_new_password
from engine.auth.password_rules import common_passwords


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        pytest.param("eleven char", "must have at least 12 characters", id="short"),
        pytest.param(" " * 20, "must have at least 12 characters", id="whitespace"),
        pytest.param("x" * 1025, "longer than 1024 characters", id="long"),
        pytest.param("qwerty123456", "it is one of the most common passwords", id="common"),
        pytest.param("QWERTY123456", "it is one of the most common passwords", id="any-case"),
        pytest.param(
            "Password2024!", "it is a common password with digits or symbols added", id="padded"
        ),
        pytest.param(
            "!!iloveyou!!", "it is a common password with digits or symbols added", id="wrapped"
        ),
        pytest.param("monkeymonkey", "it is a common password repeated", id="repeated"),
        pytest.param("abcabcabcabc", "it is a common password repeated", id="thrice"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(password: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=f"^Invalid password: {reason}$"):
        check_new_password(password)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "dragon in the attic",
        ("tree flow " * 103)[:1024],
        "Ünïcödé pässwörd",
    ],
)
def test_long_uncommon_passwords_are_accepted(password: str) -> None:
    check_new_password(password)


def test_the_shipped_list_has_the_most_common_passwords_lowercased() -> None:
    common = common_passwords()

    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "iloveyou", "1q2w3e4r5t6y"} <= common
    assert all(entry == entry.lower() for entry in common)
