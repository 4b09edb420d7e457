"""Checking what callers pass to the trigger API before anything is written.

Every text a caller supplies is bounded and refused with the field's name when it is not a
string, is empty where a value is needed, is too long, or holds a NUL character (PostgreSQL
cannot store one in text, so it is refused on every store alike).
"""

from __future__ import annotations

from engine.errors import BadRequest

MAX_TEXT = 4096  # names, ids, tokens and idempotency keys
MAX_MESSAGE = 65_536
MAX_FINGERPRINT = 128  # what a keyed request asks: the column's size (engine.store.request_keys)


def text(field: str, value: object, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise BadRequest(field=field, reason=f"expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise BadRequest(field=field, reason="must not be empty")
    if len(value) > limit:
        raise BadRequest(field=field, reason=f"longer than {limit} characters")
    if "\x00" in value:
        raise BadRequest(field=field, reason="contains a NUL character")
    return value


def optional(field: str, value: object, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else text(field, value, required=False, limit=limit)


__all__ = ["MAX_FINGERPRINT", "MAX_MESSAGE", "MAX_TEXT", "optional", "text"]
