"""What a loop head iterates over: the elements its ``loop_path`` selects in its ``data_source``.

The path says which language it is. A path that starts with ``$`` is JSONPath over a JSON
document (Kinetic's newer engines: ``$[*]``); any other path is XPath 1.0 over an XML document
(Kinetic's classic loops: ``//list/item``). Deciding by the path rather than by sniffing the data
means a malformed document is reported as malformed in the language the author chose, not
silently read as the other one.

JSONPath is jsonpath-ng's extended dialect (``jsonpath_ng.ext``): ``$[*]``, ``$.items[*].name``,
``$..id``, filters such as ``$[?(@.active == true)]``, slices ``$[0:2]``. ``$[*]`` over an object
iterates its values. Its regular expressions run on RE2 and its evaluation has a budget
(:mod:`engine.tree.json_path`), since a loop path may be rendered from a caller's data; the JSON
is read by the engine's strict reader (:mod:`engine.json_input`). XPath is lxml's, without
EXSLT's regular expressions: it must select nodes or strings (``//item``, ``//item/@id``,
``//item/text()``); an expression that yields a number or a boolean (``count(//item)``) is
refused, since there is nothing to iterate.

Every element becomes one text value, because results are text. A selected XML element that
holds only text (no child elements, no attributes) is that text, which is what Kinetic trees
expect of a list such as ``<list><item>ada@example.com</item></list>`` looped over with
``//list/item``; any other element is its serialisation (``<item id="1">a</item>``), for the
nodes inside to read further; an attribute or text node is its string. A JSON string is itself,
any other JSON value its compact JSON text (``{"id":1}``, ``3``, ``true``, ``null``).

XML is parsed by the project's hardened parser (no DTD, no entities, no network, a size cap).
Everything wrong with the source, the path or its result raises :class:`LoopSourceError` with a
message naming the parameter and the problem; the loop head records it as a Node Parameter
Error.
"""

from __future__ import annotations

import functools
import json
from typing import Any, cast

from jsonpath_ng import JSONPath
from lxml import etree

from engine.errors import BadRequest, BadResults
from engine.handlers.builtin import DATA_SOURCE, LOOP_PATH, VAR_NAME
from engine.json_input import parse_json
from engine.results_xml import parse_xml
from engine.tree.json_path import MAX_STEPS, JSONPathRefused, compile_json_path, find_values

MAX_SOURCE_BYTES = 16 * 1_048_576


class LoopSourceError(ValueError):
    """The data source or loop path of a loop head cannot give a list of elements."""


# Names a var_name must not shadow: what every template sees.
RESERVED_NAMES = frozenset(
    {"results", "inputs", "values", "source", "run", "task", "trigger", "iterations", "kinetic"}
)


def var_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name the loop variable; None if it can (or is empty: no variable)."""
    if not name:
        return None
    if not name.isidentifier():
        return f"{VAR_NAME} {name!r} is not a name templates can use (letters, digits, _)"
    if name in RESERVED_NAMES:
        return f"{VAR_NAME} {name!r} would hide the template name {name!r}"
    return None


def is_json_path(path: str) -> bool:
    return path.lstrip().startswith("$")


@functools.lru_cache(maxsize=256)
def _json_path(path: str) -> JSONPath:
    try:
        return compile_json_path(path)
    except JSONPathRefused as exc:
        raise LoopSourceError(f"{LOOP_PATH} {path!r} {exc}") from None


@functools.lru_cache(maxsize=256)
def _xpath(path: str) -> etree.XPath:
    try:
        # No EXSLT regular expressions: they would run Python's backtracking engine.
        return etree.XPath(path, regexp=False)
    except etree.XPathSyntaxError as exc:
        raise LoopSourceError(f"{LOOP_PATH} {path!r} is not an XPath: {exc}") from None


def check_path(path: str) -> None:
    """Compile a loop path (cached): what the loader does with a constant one."""
    if is_json_path(path):
        _json_path(path.strip())
    else:
        _xpath(path.strip())


def loop_values(data_source: str, loop_path: str, *, max_steps: int = MAX_STEPS) -> list[str]:
    """The text of each element ``loop_path`` selects in ``data_source``, in document order;
    a JSONPath may take at most ``max_steps`` (:mod:`engine.tree.json_path`)."""
    path = loop_path.strip()
    if not path:
        raise LoopSourceError(f"{LOOP_PATH} is empty")
    if is_json_path(path):
        return _json_values(data_source, path, max_steps)
    return _xml_values(data_source, path)


def _json_values(data_source: str, path: str, max_steps: int) -> list[str]:
    expression = _json_path(path)
    if len(data_source) > MAX_SOURCE_BYTES:
        raise LoopSourceError(f"{DATA_SOURCE} is over {MAX_SOURCE_BYTES} bytes")
    if not data_source.strip():
        return []  # an empty source is an empty list, as in Kinetic
    try:
        document = parse_json(data_source, field=DATA_SOURCE)
    except BadRequest as exc:
        reason = exc.reason.removeprefix("not valid JSON: ")
        raise LoopSourceError(f"{DATA_SOURCE} is not well-formed JSON: {reason}") from None
    try:
        return [_json_text(v) for v in find_values(expression, document, max_steps=max_steps)]
    except JSONPathRefused as exc:
        raise LoopSourceError(f"{LOOP_PATH} {path!r} {exc}") from None


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _xml_values(data_source: str, path: str) -> list[str]:
    expression = _xpath(path)
    if not data_source.strip():
        return []
    try:
        root = parse_xml(data_source, max_bytes=MAX_SOURCE_BYTES, what=DATA_SOURCE)
    except BadResults as exc:
        where = "" if exc.line is None else f" (line {exc.line}, column {exc.column})"
        message = f"{DATA_SOURCE} is not well-formed XML{where}: {exc.reason}"
        raise LoopSourceError(message) from None
    try:
        found = expression(root)
    except etree.XPathError as exc:
        raise LoopSourceError(f"{LOOP_PATH} {path!r} cannot be evaluated: {exc}") from None
    if not isinstance(found, list):
        raise LoopSourceError(
            f"{LOOP_PATH} {path!r} gives {type(found).__name__} {found!r}, not a list of nodes"
        )
    return [_xml_text(item) for item in found]


def _xml_text(item: Any) -> str:
    if isinstance(item, etree._Element):
        if len(item) or item.attrib:
            return cast(str, etree.tostring(item, encoding="unicode", with_tail=False))
        return item.text or ""
    return str(item)


__all__ = [
    "RESERVED_NAMES",
    "LoopSourceError",
    "check_path",
    "is_json_path",
    "loop_values",
    "var_name_problem",
]
