"""Ruby's conversions of values, as filters and tests for the templates of imported trees.

A Kinetic Task tree computes with Ruby, and the importer (``engine.kinetic.erb``) translates it
to Jinja. Where Jinja has no operation with Ruby's result, the translation uses one of these, so
that a translated template gives the value Ruby gives:

- ``to_s``: ``nil.to_s`` is ``""`` (Jinja's ``string`` gives ``"None"``), ``true.to_s`` is
  ``"true"``, ``1.0.to_s`` is ``"1.0"``;
- ``to_i`` / ``to_f``: Ruby reads the leading number of a text and ignores the rest
  (``"12abc".to_i`` is 12, ``"abc".to_i`` is 0, ``nil.to_i`` is 0);
- ``fromjson`` (``JSON.parse``), ``to_json`` (Ruby's compact JSON, no HTML escapes, unlike
  Jinja's ``tojson``), ``url_encode`` (``ERB::Util.url_encode``: everything but
  ``A-Za-z0-9_.-~`` percent-encoded, a space as ``%20``) and ``cgi_escape`` (a space as ``+``);
- ``split`` (Ruby drops trailing empty fields) and ``merge`` (``Hash#merge``);
- the tests ``nil`` (Ruby's ``nil?``; a missing key read as nil is nil) and ``truthy`` (Ruby's
  truth: everything but ``nil`` and ``false`` is true, ``""`` and ``0`` included).

They run inside the sandbox like Jinja's own filters, so their input and output are metered.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined
from jinja2.runtime import Undefined

from engine.json_input import parse_json

_LEADING_INTEGER = re.compile(r"[ \t\n\v\f\r]*([+-]?\d+(?:_\d+)*)")
_LEADING_FLOAT = re.compile(
    r"[ \t\n\v\f\r]*([+-]?(?:\d+(?:_\d+)*)?(?:\.\d+(?:_\d+)*)?(?:[eE][+-]?\d+)?)"
)


class RubyValueError(ValueError):
    """A conversion Ruby refuses too (``JSON.parse(nil)``, ``JSON.parse('not json')``)."""


def is_nil(value: Any) -> bool:
    """Ruby's ``nil?``: None, or a key that is missing read as nil.

    Under the strict default (``missing: error``) a missing key stays an error here too.
    """
    if isinstance(value, StrictUndefined):
        value._fail_with_undefined_error()
    return value is None or isinstance(value, Undefined)


def is_truthy(value: Any) -> bool:
    """Ruby's truth: only ``nil`` and ``false`` are false."""
    return not (is_nil(value) or value is False)


def to_s(value: Any) -> str:
    """Ruby's ``to_s`` (and what ``<%= value %>`` prints)."""
    if is_nil(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (Mapping, list, tuple)):
        return inspect(value)
    return str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:  # 1e+20 -> 1.0e+20, as Ruby writes it
        mantissa, exponent = text.split("e")
        mantissa = mantissa if "." in mantissa else mantissa + ".0"
        sign = exponent[0] if exponent[0] in "+-" else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def inspect(value: Any) -> str:
    """Ruby's ``inspect`` of what JSON holds: ``{"a"=>1}`` (before Ruby 3.4), ``["x", nil]``."""
    if is_nil(value):
        return "nil"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{inspect(k)}=>{inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(inspect(item) for item in value) + "]"
    return to_s(value)


def _number_or_text(value: Any, method: str) -> int | float | str:
    """What ``to_i`` / ``to_f`` read: nil as 0, a number as is, anything else as its text."""
    if is_nil(value):
        return 0
    if isinstance(value, bool):  # true.to_i is a NoMethodError in Ruby
        raise RubyValueError(f"undefined method '{method}' for {to_s(value)}")
    return value if isinstance(value, (int, float)) else str(value)


def to_i(value: Any) -> int:
    """Ruby's ``to_i``: the leading integer of a text, 0 if none; floats are truncated."""
    number = _number_or_text(value, "to_i")
    if not isinstance(number, str):
        return int(number) if math.isfinite(number) else 0
    found = _LEADING_INTEGER.match(number)
    return int(found.group(1).replace("_", "")) if found else 0


def to_f(value: Any) -> float:
    """Ruby's ``to_f``: the leading number of a text, 0.0 if none."""
    number = _number_or_text(value, "to_f")
    if not isinstance(number, str):
        return float(number)
    found = _LEADING_FLOAT.match(number)
    number = found.group(1).replace("_", "") if found else ""
    try:
        return float(number) if any(c.isdigit() for c in number) else 0.0
    except ValueError:  # "1e" and the like: Ruby reads the digits before the "e"
        return to_f(number.rstrip("eE+-"))


_RAISE = object()


def from_json(value: Any, rescued: Any = _RAISE) -> Any:
    """Ruby's ``JSON.parse``: a text of JSON as the value it holds, by treeflow's JSON rules.

    ``rescued`` is what ``JSON.parse(x) rescue rescued`` gives when ``x`` cannot be parsed.
    """
    if rescued is not _RAISE:
        try:
            return from_json(value)
        except RubyValueError:
            return rescued
    if is_nil(value):
        raise RubyValueError("JSON.parse of nil (no implicit conversion of nil into String)")
    if not isinstance(value, str):
        raise RubyValueError(f"JSON.parse of {type(value).__name__}, not a text")
    try:
        return parse_json(value, field="JSON.parse")
    except ValueError as exc:
        raise RubyValueError(f"JSON.parse: {exc}") from None


def to_json(value: Any) -> str:
    """Ruby's ``to_json``: compact, non-ASCII text as is, ``nil`` as ``null``."""
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if is_nil(value):
        return None
    if isinstance(value, Mapping):
        return {to_s(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def url_encode(value: Any) -> str:
    """``ERB::Util.url_encode``: UTF-8 bytes, all but ``A-Za-z0-9_.-~`` as ``%XX``."""
    return quote(to_s(value).encode("utf-8"), safe="")


def split(value: Any, separator: Any = None) -> list[str]:
    """Ruby's ``String#split``: on runs of whitespace by default; trailing empty fields dropped."""
    text = to_s(value)
    if separator is None or separator == " ":
        return text.split()
    parts = text.split(to_s(separator)) if to_s(separator) else list(text)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def merge(value: Any, other: Any) -> dict[Any, Any]:
    """Ruby's ``Hash#merge``: a new mapping, ``other``'s keys winning."""
    if not isinstance(value, Mapping) or not isinstance(other, Mapping):
        raise RubyValueError("merge of a value that is not a hash")
    return {**value, **other}


def escape(value: Any) -> str:
    """``CGI.escape``: as ``url_encode``, but a space is ``+``."""
    return quote(to_s(value).encode("utf-8"), safe=" ").replace(" ", "+")


FILTERS: dict[str, Callable[..., Any]] = {
    "to_s": to_s,
    "to_i": to_i,
    "to_f": to_f,
    "fromjson": from_json,
    "to_json": to_json,
    "url_encode": url_encode,
    "cgi_escape": escape,
    "split": split,
    "merge": merge,
}
TESTS: dict[str, Callable[[Any], bool]] = {"nil": is_nil, "truthy": is_truthy}

__all__ = ["FILTERS", "TESTS", "RubyValueError", "inspect", "is_nil", "is_truthy", "to_s"]
