"""YAML to plain data, keeping the line of every key and refusing duplicate keys.

PyYAML's loaders silently keep the last of two equal keys, which would merge two nodes of the
same name into one. Here the document is composed into YAML nodes and walked by hand, so every
duplicate is reported (all of them, with both lines) and every mapping entry and list item
remembers the line it came from, for error messages that point into the file.

Scalars are read as YAML 1.2 (its core schema), as tree authors read them, not as PyYAML's YAML
1.1: ``Yes``, ``No``, ``On``, ``Off``, ``y`` and ``n`` are text, so a node called ``No`` is that
name; only ``true`` and ``false`` (in any of their three cases) are booleans; ``012`` is twelve,
``0o12`` ten, and ``1_000``, ``1:30`` and dates are text. A mapping key is the text as written
(a key ``true:`` names ``true``, a key ``1.50:`` names ``1.50``), since keys name things.

The result is JSON-like data only (mappings, lists, strings, numbers, booleans, null): a scalar
YAML would turn into anything else (a date, bytes) is kept as the text written; one the store
could not keep as JSON (a NUL character or a lone surrogate, an integer outside 64 bits, an
infinite number) and nesting deeper than ``engine.json_input.MAX_DEPTH`` are problems, as
they are in JSON a caller sends. Aliases are
followed, but a recursive alias, a document that aliases expand beyond ``MAX_VALUES`` values
and one nested deeper than Python's recursion limit are refused rather than walked forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from engine.errors import Problem
from engine.json_input import MAX_DEPTH, scalar_problem

Path = tuple[str | int, ...]
MAX_VALUES = 100_000  # far above any real tree; an alias bomb reaches it at once
_PLAIN = (str, int, float, bool, type(None))
_MERGE = "tag:yaml.org,2002:merge"
_Pair = tuple[yaml.Node, yaml.Node]


@dataclass
class ParsedYaml:
    """The plain data of a YAML document, the line of each path in it, and what was wrong.

    ``lines`` maps a path to the line of its key (or of its item, in a list);
    ``literal_lines`` maps the path of a literal block scalar (``key: |``) to the line its text
    starts on, so that line N of a multi-line template is line ``start + N - 1`` of the file.
    """

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    literal_lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, *path: str | int) -> int | None:
        return self.lines.get(path)


_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class Yaml12Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit scalars instead of 1.1's.

    The resolvers decide a plain scalar's type when the document is composed; the constructors
    of 1.1 still build bools, floats and merges (the forms that reach them are 1.2's), and ints
    are built here because 1.1 reads ``012`` as octal.
    """

    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)


for _tag, _pattern, _first in (
    ("bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    ("int", _INT, "-+0123456789"),
    ("float", _FLOAT, "-+.0123456789"),
    ("null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("merge", re.compile(r"^(?:<<)$"), "<"),
):
    Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _pattern, list(_first))
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", Yaml12Loader.construct_yaml_int)


class _TooBig(Exception):
    """The document expands (through aliases) to more than MAX_VALUES values."""


class _Walker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.loader = Yaml12Loader("")
        self.result = ParsedYaml(data=None)
        self.walking: set[int] = set()  # ids of the collections being walked: alias recursion
        self.count = 0

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self._spend(1)
        self.result.lines.setdefault(path, node.start_mark.line + 1)  # a key set its own line
        if isinstance(node, yaml.ScalarNode):
            if node.style == "|":
                self.result.literal_lines[path] = node.start_mark.line + 2
            return self._stored(self._scalar(node), path)
        if len(path) == MAX_DEPTH:
            self._problem(f"the value is nested deeper than {MAX_DEPTH} levels", path)
            return None
        if not self._enter(node, path):
            return None
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.walk(item, (*path, index)) for index, item in enumerate(node.value)]
        finally:
            self.walking.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        """The scalar's value if JSON has its type; else (a date, bytes, 2024-13-45) its text."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except ValueError:  # a scalar that looks like a date or a number but is not one
            self.loader.recursive_objects.pop(node, None)
            return node.value
        return value if isinstance(value, _PLAIN) else node.value

    def _stored(self, value: Any, path: Path) -> Any:
        """The value, if the store can keep it as JSON; else a problem, and None."""
        problem = scalar_problem(value)
        if problem is None:
            return value
        self._problem(problem, path)
        return None

    def _spend(self, values: int) -> None:
        self.count += values
        if self.count > MAX_VALUES:
            raise _TooBig

    def _enter(self, node: yaml.Node, path: Path) -> bool:
        if id(node) in self.walking:
            self._problem("an alias refers to a collection that contains it", path)
            return False
        self.walking.add(id(node))
        return True

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        merged, own = self._merge(node, path)
        # A merged key gives way to the mapping's own keys and to a later merge, as in PyYAML;
        # only the mapping's own keys may not repeat.
        keys = [(self._key(key, path), key, value) for key, value in own]
        overridden = {key for key, _, _ in keys}
        winners = {self._key(k, path): (k, v) for k, v in merged}
        keys[:0] = [(key, *pair) for key, pair in winners.items() if key not in overridden]
        out: dict[str, Any] = {}
        for key, key_node, value_node in keys:
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in out:
                first = self.result.lines[(*path, key)]
                message = f"duplicate key {key!r} (first defined at line {first})"
                self._problem(message, (*path, key), line)
                continue
            self.result.lines[(*path, key)] = line
            out[key] = self.walk(value_node, (*path, key))
        return out

    def _merge(self, node: yaml.MappingNode, path: Path) -> tuple[list[_Pair], list[_Pair]]:
        """The pairs merge keys (``<<``) bring in, in override order, and the mapping's own.

        PyYAML's ``flatten_mapping`` would do this, but it rewrites the nodes in place, and a
        mapping reached again through an alias would then show its merged keys as its own.
        """
        merged: list[_Pair] = []
        own: list[_Pair] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in reversed(sources):  # the first source wins, so it comes last
                if not isinstance(source, yaml.MappingNode):
                    line = source.start_mark.line + 1
                    self._problem("a merge key (<<) takes a mapping or a list of them", path, line)
                elif self._enter(source, path):
                    try:
                        self._spend(len(source.value))
                        merged.extend(pair for pairs in self._merge(source, path) for pair in pairs)
                    finally:
                        self.walking.discard(id(source))
        return merged, own

    def _key(self, node: yaml.Node, path: Path) -> str | None:
        key = self._scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if key is not None:  # the text as written: a key names something, whatever it looks like
            text = str(node.value)
            return text if self._stored(text, path) is not None else None
        kind = "null" if isinstance(node, yaml.ScalarNode) else node.id  # "mapping", "sequence"
        self._problem(f"a key must be a text, not a {kind}", path, node.start_mark.line + 1)
        return None

    def _problem(self, message: str, path: Path, line: int | None = None) -> None:
        line = line if line is not None else self.result.lines.get(path)
        node = str(path[1]) if len(path) >= 2 and path[0] == "nodes" else None
        self.result.problems.append(Problem(file=self.file, message=message, node=node, line=line))


def yaml_kind(value: Any) -> str:
    """A value's type as a tree author knows it, for messages: "a mapping", "null", ..."""
    kinds = {dict: "a mapping", list: "a list", bool: "a boolean", str: "a text"}
    return "null" if value is None else kinds.get(type(value), "a number")


def scalar_text(value: Any) -> str | None:
    """A scalar as text, as written (``true``, ``2``); None for null, a list or a mapping."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str | int | float) else None


def _yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    """A syntax error as a problem at the problem's line; the context keeps its own line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        context = f"{context} (from line {context_mark.line + 1})"
    reason = " ".join(part for part in (context, getattr(exc, "problem", None)) if part)
    line = mark.line + 1 if mark is not None else None
    return Problem(file=file, message=f"invalid YAML: {reason or exc}", line=line)


def parse_yaml(text: str, *, file: str) -> ParsedYaml:
    """Parse one YAML document into plain data with lines; syntax errors become problems."""
    walker = _Walker(file)
    result = walker.result
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
        if root is None:
            result.problems.append(Problem(file=file, message="the document is empty"))
        else:
            result.data = walker.walk(root, ())
    except yaml.YAMLError as exc:  # bad syntax, or a tag with no constructor
        result.data = None
        result.problems.append(_yaml_problem(file, exc))
    except _TooBig:
        result.data = None
        message = f"the document expands to more than {MAX_VALUES} values (through aliases?)"
        result.problems.append(Problem(file=file, message=message))
    except RecursionError:  # PyYAML composes recursively, and so does the walk
        result.data = None
        result.problems.append(Problem(file=file, message="the document is nested too deeply"))
    return result


__all__ = [
    "MAX_VALUES",
    "ParsedYaml",
    "Path",
    "Yaml12Loader",
    "parse_yaml",
    "scalar_text",
    "yaml_kind",
]
