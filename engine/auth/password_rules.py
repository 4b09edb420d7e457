"""What a new password must be: long, and not one of the passwords everybody tries first.

Checked when a password is set (``treeflow users add`` and ``passwd``), never at sign-in: a
password set under older rules still signs in. The rules follow NIST SP 800-63B: a minimum
length and a list of commonly used passwords, no composition rules. The comparison ignores
case, and also catches a listed password padded with digits or symbols at either end
("Password2024!") or repeated ("monkeymonkey"), the first variations a guesser tries.

``common_passwords.txt`` is the 10,000 most common entries, in order, of the list Django 5.2
ships for its ``CommonPasswordValidator`` (``django/contrib/auth/common-passwords.txt.gz``,
BSD-3-Clause): 20,000 common passwords, lowercased, compiled by Royce Williams from public
breach corpora.
"""

from __future__ import annotations

import string
from functools import cache
from importlib.resources import files

from engine.errors import BadRequest

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # hashing cost grows with length; nobody types more than this
_PADDING = string.digits + string.punctuation + " "


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lowercased (it is read once, on first use)."""
    text = files("engine.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line)


def _repeats_common(folded: str, common: frozenset[str]) -> bool:
    size = len(folded)
    return any(
        size % length == 0 and folded == folded[:length] * (size // length)
        for length in range(1, size // 2 + 1)
        if folded[:length] in common
    )


def check_new_password(password: str) -> None:
    """Refuse a password that is too short, too long, only whitespace, or common (naming the
    rule it breaks) with :class:`~engine.errors.BadRequest`."""
    if len(password) < MIN_PASSWORD or not password.strip():
        raise BadRequest(field="password", reason=f"must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadRequest(field="password", reason=f"longer than {MAX_PASSWORD} characters")
    common = common_passwords()
    folded = password.lower()
    if folded in common:
        raise BadRequest(field="password", reason="it is one of the most common passwords")
    core = folded.strip(_PADDING)
    if core in common:
        raise BadRequest(
            field="password", reason="it is a common password with digits or symbols added"
        )
    if _repeats_common(folded, common):
        raise BadRequest(field="password", reason="it is a common password repeated")


__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "check_new_password", "common_passwords"]
