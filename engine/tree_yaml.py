"""YAML to plain data, keeping the line of every key and refusing duplicate keys.

PyYAML's loaders silently keep the last of two equal keys, which would merge two nodes of the
same name into one. Here the document is composed into YAML nodes and walked by hand, so every
duplicate is reported (all of them, with their lines) and every mapping entry and list item
remembers the line it came from, for error messages that point into the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Problem

Path = tuple[str | int, ...]


@dataclass
class ParsedYaml:
    """The plain data of a YAML document, the line of each path in it, and what was wrong."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, *path: str | int) -> int | None:
        return self.lines.get(path)


class _Walker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.loader = yaml.SafeLoader("")
        self.result = ParsedYaml(data=None)

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self.result.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool):
                self._problem(f"a key must be a plain scalar, not {type(key).__name__}", line)
                continue
            key = str(key)
            if key in out:
                first = self.result.lines.get((*path, key))
                self._problem(
                    f"duplicate key {key!r} (first defined at line {first})", line, path=path
                )
                continue
            out[key] = self.walk(value_node, (*path, key))
            self.result.lines[(*path, key)] = line
        return out

    def _problem(self, message: str, line: int, path: Path = ()) -> None:
        node = str(path[1]) if len(path) >= 2 and path[0] == "nodes" else None
        self.result.problems.append(Problem(file=self.file, message=message, node=node, line=line))


def parse_yaml(text: str, *, file: str) -> ParsedYaml:
    """Parse one YAML document into plain data with lines; syntax errors become problems."""
    walker = _Walker(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        walker.result.problems.append(
            Problem(file=file, message=f"invalid YAML: {reason}", line=line)
        )
        return walker.result
    if root is None:
        walker.result.problems.append(Problem(file=file, message="the document is empty"))
        return walker.result
    try:
        walker.result.data = walker.walk(root, ())
    except yaml.YAMLError as exc:  # a bad scalar (e.g. an invalid timestamp) or tag
        mark = getattr(exc, "problem_mark", None)
        walker.result.problems.append(
            Problem(
                file=file,
                message=f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                line=mark.line + 1 if mark is not None else None,
            )
        )
    return walker.result


__all__ = ["ParsedYaml", "Path", "parse_yaml"]
