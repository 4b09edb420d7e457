"""JSON from outside, read in one place: what JSON the engine accepts is decided here.

Python's ``json`` reads more than the engine can store or answer: ``NaN`` and ``Infinity`` (not
JSON at all), numbers too large for a double (read as infinity), integers of any size (the
store's JSON columns hold 64 bits), lone surrogates such as ``"\\ud800"`` (not Unicode text:
neither UTF-8 nor PostgreSQL can carry them), NUL characters (PostgreSQL text cannot hold one),
a key given twice (the last would silently win) and nesting deep enough to exhaust the stack of
whatever walks the value next. :func:`parse_json` reads a caller's JSON text and refuses each of
those with a :class:`~engine.errors.BadRequest` that names the problem and where it is, as a
JSONPath (``$.FieldsMappings[2].value``); :func:`check_json` applies the same rules to a value an
embedding program passes in (a run's ``source_data``). What is accepted is I-JSON (RFC 7493)
within the engine's bounds: :data:`MAX_DEPTH` levels of nesting, integers in
[:data:`MIN_INTEGER`, :data:`MAX_INTEGER`].

Reading is linear in the text: Python's C decoder (with hooks for what is rare: numbers with a
fraction or an exponent, objects), then one walk over the value it built.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from engine.errors import BadRequest

MAX_DEPTH = 64  # arrays and objects inside one another
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1  # what a 64-bit JSON column holds exactly
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_CONTAINERS = (dict, list, tuple)
_SHOWN = 40  # characters of an offending number, key or place shown in a message
_TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels"
_OUT_OF_RANGE = f"is outside the 64-bit range ({MIN_INTEGER} to {MAX_INTEGER})"


class _Refused:
    """A value the decoder read but the engine refuses: ``what`` it is and the ``problem``,
    for the walk to report with where it is."""

    __slots__ = ("problem", "what")

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _number(text: str) -> float | _Refused:
    value = float(text)
    if math.isfinite(value):
        return value
    return _Refused(f"the number {_shown(text)}", "is too large for a double")


def _constant(name: str) -> _Refused:
    return _Refused(name, "is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Refused:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Refused("the object", f"gives the key {_shown(key)!r} twice")
        seen.add(key)
    return value  # pragma: no cover - a shorter dict always has a key given twice


def parse_json(text: str | bytes, *, field: str = "body") -> Any:
    """The value of the JSON ``text`` (UTF-8 when bytes); :class:`BadRequest` naming ``field``
    and the problem otherwise: not UTF-8, not JSON, or outside what :func:`check_json` accepts.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(field=field, reason=f"not UTF-8 text: {exc.reason}") from None
    try:
        value = json.loads(
            text,
            parse_float=_number,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except RecursionError:
        raise BadRequest(field=field, reason=f"the value {_TOO_DEEP}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(field=field, reason=f"not valid JSON: {exc}") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise BadRequest(field=field, reason=f"an integer {_OUT_OF_RANGE}") from None
    check_json(value, field=field)
    return value


def check_json(value: Any, *, field: str) -> None:
    """Refuse (:class:`BadRequest` naming ``field``) a value that is not JSON the engine can
    store and give back: only objects with text keys, arrays (lists or tuples), text without
    NUL or lone surrogates, booleans, null, integers in the 64-bit range and finite numbers,
    nested at most :data:`MAX_DEPTH` deep.
    """
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        item, where, depth = stack.pop()
        if not isinstance(item, _CONTAINERS):
            _check_scalar(item, where, field)
            continue
        if depth == MAX_DEPTH:  # no place: the decoder cannot say one for deeper nesting
            _refuse(field, "the value", "", _TOO_DEEP)
        keyed = isinstance(item, dict)
        children: Iterable[tuple[Any, Any]] = (
            item.items() if isinstance(item, dict) else enumerate(item)
        )
        for key, child in children:
            # The common cases inline (this loop sees every value); the rest, and anything
            # wrong, go to the full check with their place.
            kind = type(child)
            if (
                (kind is str and child.isascii() and "\x00" not in child)
                or (kind is int and MIN_INTEGER <= child <= MAX_INTEGER)
                or (kind is float and math.isfinite(child))
                or kind is bool
                or child is None
            ):
                pass
            elif isinstance(child, _CONTAINERS):
                stack.append((child, _place(where, key, field), depth + 1))
            else:
                _check_scalar(child, _place(where, key, field), field)
            if keyed and not (type(key) is str and key.isascii() and "\x00" not in key):
                _check_key(key, where, field)


def _place(where: str, key: Any, field: str) -> str:
    """The JSONPath of ``key`` (an index, or an object's key) in the value at ``where``."""
    if type(key) is int:
        return f"{where}[{key}]"
    _check_key(key, where, field)
    return f"{where}.{key}" if key.isidentifier() else f"{where}[{json.dumps(key)}]"


def _check_key(key: Any, where: str, field: str) -> None:
    if not isinstance(key, str):
        _refuse(field, f"the key {_shown(repr(key))}", where, "is not text")
    _check_text(key, where, field, "a key")


def scalar_problem(value: Any) -> str | None:
    """Why :func:`check_json` refuses the scalar ``value`` ("the integer 18446744073709551616
    is outside the 64-bit range (...)"); None when it is accepted. For readers of other formats
    whose values are stored as JSON (tree files)."""
    try:
        _check_scalar(value, "", "value")
    except BadRequest as refused:
        return refused.reason
    return None


def _check_scalar(item: Any, where: str, field: str) -> None:
    if isinstance(item, str):
        _check_text(item, where, field, "the text")
    elif isinstance(item, bool) or item is None:
        return
    elif isinstance(item, int):
        if not MIN_INTEGER <= item <= MAX_INTEGER:
            _refuse(field, f"the integer {_shown(str(item))}", where, _OUT_OF_RANGE)
    elif isinstance(item, float):
        if not math.isfinite(item):
            _refuse(field, f"the number {item!r}", where, "is not finite")
    elif isinstance(item, _Refused):
        _refuse(field, item.what, where, item.problem)
    else:
        _refuse(field, f"a {type(item).__name__}", where, "is not a JSON value")


def _check_text(text: str, where: str, field: str, what: str) -> None:
    if text.isascii() and "\x00" not in text:
        return
    found = _NOT_TEXT.search(text)
    if found is not None:
        bad = found.group()
        _refuse(
            field,
            what,
            where,
            "holds " + ("a NUL character" if bad == "\x00" else f"a lone surrogate {bad!r}"),
        )


def _refuse(field: str, what: str, where: str, problem: str) -> None:
    """Raise the refusal of ``what`` at the JSONPath ``where`` ("" for a value on its own)."""
    place = f" at {_shown(where)}" if where else ""
    raise BadRequest(field=field, reason=f"{what}{place} {problem}")


__all__ = [
    "MAX_DEPTH",
    "MAX_INTEGER",
    "MIN_INTEGER",
    "check_json",
    "parse_json",
    "scalar_problem",
]
