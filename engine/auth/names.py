"""User names: what one may be, and the key that makes them case-insensitive.

A name is kept as it was added ("Ada") and found by its key, its NFKC-normalized case fold
("ada"): "Admin" cannot be added beside "admin", and signing in as "ADA" is signing in as
"Ada" (the token names the user as it was added). NFKC also folds look-alike compatibility
forms, such as full-width letters, into the letters they stand for.
"""

from __future__ import annotations

import unicodedata

from engine.errors import BadRequest

MAX_NAME = 150  # the users.name column's length


def check_name(name: str) -> str:
    """``name`` if it may name a user; :class:`~engine.errors.BadRequest` saying why not."""
    if not name or not name.strip() or name != name.strip():
        raise BadRequest(field="user name", reason="must be non-empty without outer spaces")
    if len(name) > MAX_NAME or not name.isprintable():
        raise BadRequest(
            field="user name", reason=f"must be printable, at most {MAX_NAME} characters"
        )
    return name


def name_key(name: str) -> str:
    """The case-insensitive key of a user name."""
    return unicodedata.normalize("NFKC", name).casefold()


__all__ = ["MAX_NAME", "check_name", "name_key"]
