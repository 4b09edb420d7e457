"""The fast path for templates that only substitute values: ``{{ results['Step 1']['output'] }}-2``.

Most parameters in task trees are text with lookups in it (Kinetic's ``<%= @results['Node']
['Result'] %>``). Rendering those through Jinja costs a Context, a budget and the sandbox's
checks for every node executed; walking dictionaries directly costs a fraction of that. The
fast path is taken only where it gives exactly what Jinja gives: every step of a lookup is a
plain ``dict`` holding the key, and the value found is a ``str``. Anything else (a missing key, a
number, an object, output over the size cap) falls back to the full sandboxed render, which
produces the value or the error the tree author would see anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import nodes

# ``a.items`` finds dict.items before the key "items" in Jinja: such lookups are not plain.
_DICT_ATTRIBUTES = frozenset(dir(dict))
_MISSING = object()

Part = str | tuple[str, ...]


def _lookup(node: nodes.Node) -> tuple[str, ...] | None:
    """``name['a'].b`` as ("name", "a", "b"); None for any other expression."""
    keys: list[str] = []
    while True:
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            keys.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Getattr) and node.attr not in _DICT_ATTRIBUTES:
            keys.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            return (node.name, *reversed(keys))
        else:
            return None


def substitution_parts(tree: nodes.Template) -> tuple[Part, ...] | None:
    """The parts of a template made only of text and lookups; None if it does anything else."""
    parts: list[Part] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append(node.data)
            elif (path := _lookup(node)) is not None:
                parts.append(path)
            else:
                return None
    return tuple(parts)


def substitute(parts: tuple[Part, ...], scope: Mapping[str, Any], max_output: int) -> str | None:
    """Render ``parts`` with plain lookups; None when only the full render can say what to do."""
    out: list[str] = []
    for part in parts:
        if type(part) is str:
            out.append(part)
            continue
        value: Any = scope.get(part[0], _MISSING)
        for key in part[1:]:
            if type(value) is not dict:
                return None
            value = value.get(key, _MISSING)
        if type(value) is not str:
            return None
        out.append(value)
    text = "".join(out)
    return text if len(text) <= max_output else None


__all__ = ["Part", "substitute", "substitution_parts"]
