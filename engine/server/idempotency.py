"""``Idempotency-Key``: a request that writes, sent again, is answered once.

The routes that accept a trigger (the seed's createStart and createDeferred, Kinetic v1's
run-tree, complete- and update-deferred-task, and ``POST /api/instances/create``) take an
optional ``Idempotency-Key`` header. The engine's own idempotency key is the mechanism: the
key stored on the trigger is ``http:<user id>:<key>``, so keys are per user (another user's
same key is another request), and beside it, in the same transaction, a fingerprint of the
request: a SHA-256 of its method, path, query, body in canonical form (the parsed form fields
or JSON, keys sorted, so spacing and order do not matter) and caller. A repeat with the same
fingerprint is answered from what the first call wrote (the same status and body; the seed
API's in the format the repeat asks for); the same key with another fingerprint is refused
with 422 naming the key, and nothing is written. A call refused by a check writes nothing and
stores no key, so sending it again does it again; one that committed is found by its key
however often it is sent, which is what makes sending again after a timeout or a 503 safe.

A key is 1 to 255 printable ASCII characters (a UUID is the usual choice). Keys are kept as
long as the triggers they made, which treeflow never deletes: a key is never reused for a
different request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine.auth import User
from engine.errors import BadRequest, IdempotencyKeyReused

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
PREFIX = "http"  # the engine's own keys (schedule:, wait:, ...) never start so
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
_T = TypeVar("_T")

OPENAPI_HEADER: dict[str, object] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: a request sent again with the same key is answered as "
    "the first was, and writes nothing more; the key with another request is refused (422). "
    f"1 to {MAX_KEY_CHARS} printable ASCII characters, one per user; e.g. a UUID.",
    "schema": {"type": "string", "maxLength": MAX_KEY_CHARS},
}


@dataclass(frozen=True)
class RequestKey:
    """An ``Idempotency-Key`` as the engine is given it."""

    sent: str  # the header's value, as the caller knows it
    stored: str  # the trigger's idempotency key: http:<user id>:<sent>
    fingerprint: str  # what the request asked, hashed


def request_key(request: Request, user: User, body: object) -> RequestKey | None:
    """The request's key, if it sent one; ``body`` is its parsed body (form fields or JSON).

    Refused (400, naming the header) when it is empty, too long or not printable ASCII.
    """
    sent = request.headers.get(HEADER)
    if sent is None:
        return None
    sent = sent.strip()
    if not 1 <= len(sent) <= MAX_KEY_CHARS:
        raise BadRequest(
            field=HEADER, reason=f"must be 1 to {MAX_KEY_CHARS} characters, not {len(sent)}"
        )
    if not _PRINTABLE.fullmatch(sent):
        raise BadRequest(field=HEADER, reason=f"must be printable ASCII, not {sent!r}")
    request_text = json.dumps(
        {
            "method": request.method,
            "path": request.url.path,
            "query": sorted(request.query_params.multi_items()),
            "body": body,
            "caller": user.id,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # a lone surrogate is hashed as its escape, never an encoding error
    )
    return RequestKey(
        sent=sent,
        stored=f"{PREFIX}:{user.id}:{sent}",
        fingerprint=hashlib.sha256(request_text.encode("ascii")).hexdigest(),
    )


async def keyed_call(key: RequestKey | None, call: Callable[[], _T]) -> _T:
    """Run an engine call in the thread pool; a reused key is refused naming the header's key."""
    return await keyed_answer(key, run_in_threadpool(call))


async def keyed_answer(key: RequestKey | None, answer: Awaitable[_T]) -> _T:
    """Await an engine call's answer; a reused key is refused naming the header's key."""
    try:
        return await answer
    except IdempotencyKeyReused:
        if key is None:  # pragma: no cover - only keyed calls can reuse a key
            raise
        raise IdempotencyKeyReused(key=key.sent, name=HEADER) from None


def stored_key(key: RequestKey | None) -> str | None:
    return None if key is None else key.stored


def fingerprint(key: RequestKey | None) -> str | None:
    return None if key is None else key.fingerprint


__all__ = [
    "HEADER",
    "MAX_KEY_CHARS",
    "OPENAPI_HEADER",
    "RequestKey",
    "fingerprint",
    "keyed_answer",
    "keyed_call",
    "request_key",
    "stored_key",
]
