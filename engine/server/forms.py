"""Form bodies, parsed at the edge into plain ``{name: str}`` with errors that name the field.

The seed's calls and ``POST /token`` are ``application/x-www-form-urlencoded`` (multipart form
data is accepted too). The routes read their forms here rather than through FastAPI's ``Form``
parameters so that a missing, repeated or unknown parameter is a
:class:`~engine.errors.BadRequest` naming it, answered through the one error map in the
caller's format, instead of a generic 422.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from engine.errors import BadRequest

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELDS = 32
_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class FormSpec:
    """The parameters a call takes: required ones must be present (they may still be empty)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


async def read_form(request: Request, spec: FormSpec, *, max_bytes: int) -> dict[str, str]:
    """The request's form fields per ``spec``; absent optional fields are left out.

    ``max_bytes`` is the body cap: one field may use all of it (Starlette's own per-field
    default of 1 MiB would refuse a results document the engine accepts). At most
    ``MAX_FIELDS`` fields are parsed, or as many as ``spec`` names where it names more (the
    console's Run Again form has a field per input of the run).
    """
    max_fields = max(MAX_FIELDS, len(spec.known))
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FORM_TYPES:
        if not media and not await request.body():
            return _checked({}, spec)
        sent = f"{media!r} is not" if media else "missing: expected"
        raise BadRequest(field="Content-Type", reason=f"{sent} {FORM_TYPES[0]}")
    if media == FORM_TYPES[0]:
        pairs = urlencoded_pairs(await request.body(), max_fields)
    else:
        pairs = await _multipart(request, max_bytes, max_fields)
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(field=name, reason="is given more than once")
        if "\x00" in value:  # PostgreSQL text cannot hold NUL; no parameter needs one
            raise BadRequest(field=name, reason="contains a NUL character")
        fields[name] = value
    return _checked(fields, spec)


def urlencoded_pairs(body: bytes, max_fields: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """Form pairs from a body that must be UTF-8 (raw or percent-encoded), never Latin-1.

    The parse is strict where ``urllib.parse.parse_qsl`` is lenient: a ``%`` not followed by
    two hex digits is refused naming the field, instead of being kept as it was sent (no
    client encodes so; a body with one was cut or built by hand, and its meaning is a guess).
    Like ``parse_qsl`` it splits on ``&`` only, skips empty parts, reads ``name`` without
    ``=`` as an empty value, ``+`` as a space, and refuses more than ``max_fields`` fields
    before decoding any.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(field="form", reason=f"not UTF-8 text: {exc.reason}") from None
    if text.count("&") >= max_fields:
        raise BadRequest(field="form", reason="Max number of fields exceeded")
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            name = _unquoted(name, "form")
            pairs.append((name, _unquoted(value, name)))
    return pairs


def _unquoted(text: str, field: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    bad = _BAD_ESCAPE.search(text)
    if bad is not None:
        sent = text[bad.start() : bad.start() + 3]
        raise BadRequest(
            field=field, reason=f"has {sent!r}: a '%' must be followed by two hex digits"
        )
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest(field="form", reason=f"not UTF-8 text: {exc.reason}") from None


async def _multipart(request: Request, max_bytes: int, max_fields: int) -> list[tuple[str, str]]:
    try:
        form = await request.form(max_files=0, max_fields=max_fields, max_part_size=max_bytes)
    except HTTPException as exc:  # Starlette's parser refused the body (too many fields, ...)
        raise BadRequest(field="form", reason=str(exc.detail)) from None
    pairs: list[tuple[str, str]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            raise BadRequest(field=name, reason="must be a form field, not a file")
        pairs.append((name, value))
    return pairs


def _checked(fields: Mapping[str, str], spec: FormSpec) -> dict[str, str]:
    unknown = _names(set(fields) - set(spec.known))
    if unknown:
        raise BadRequest(
            field="form",
            reason=f"unknown parameter {unknown} (expected {', '.join(spec.known)})",
        )
    for name in spec.required:
        if name not in fields:
            raise BadRequest(field=name, reason="the parameter is missing")
    return dict(fields)


def _names(names: Collection[str]) -> str:
    return ", ".join(repr(name) for name in sorted(names))


def optional(fields: Mapping[str, str], name: str) -> str | None:
    """An optional field's value; an empty one counts as absent, as in an HTML form."""
    return fields.get(name) or None


def openapi_form(spec: FormSpec, descriptions: Mapping[str, str]) -> dict[str, object]:
    """The ``requestBody`` that documents a form read with :func:`read_form` in OpenAPI."""
    schema = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": descriptions.get(name, "")}
            for name in spec.known
        },
        "required": list(spec.required),
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


__all__ = [
    "FORM_TYPES",
    "FormSpec",
    "openapi_form",
    "optional",
    "read_form",
    "urlencoded_pairs",
]
