"""Which results of which nodes a tree's connector conditions read, and what they compare with.

A deferred node is completed by whoever answers it (a person, another system) with results
XML; which results matter is what the conditions after it read. ``results['Review']['Status']
== 'Approved'`` reads ``Status`` of ``Review`` and compares it with ``'Approved'``: that is
what a hint should suggest (``engine.tree.hints``). Both spellings Jinja allows are found,
``results['Review']['Status']`` and ``results.Review.Status``.

Reading is static, over the parsed expression: a result named by a variable (``results[name]``)
is not a name the tree states, and is left out rather than guessed.

:func:`references` reads every name a template or a condition looks up in ``results``,
``iterations``, ``inputs`` and ``values``, with its line in the source: what the reference checks
(``engine.tree.reference_checks``) judge against the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from engine.tree.model import Tree

_PARSER_ENVIRONMENT = Environment(autoescape=False)  # noqa: S701  (parses; never renders HTML)
_EQUALITY = {"eq": "==", "ne": "!="}


@dataclass(frozen=True)
class ResultRead:
    """``result`` of ``node`` read by a condition of the connector ``source`` -> ``target``."""

    node: str
    result: str
    source: str
    target: str
    compared_with: str | None = None  # the constant it is compared with (== or !=), if any
    operator: str | None = None


def _key(expression: nodes.Node) -> str | None:
    if isinstance(expression, nodes.Getitem) and isinstance(expression.arg, nodes.Const):
        return expression.arg.value if isinstance(expression.arg.value, str) else None
    if isinstance(expression, nodes.Getattr):
        return expression.attr
    return None


def _result_of(expression: nodes.Node) -> tuple[str, str] | None:
    """``(node, result)`` when ``expression`` is ``results[node][result]`` (either spelling)."""
    if not isinstance(expression, nodes.Getitem | nodes.Getattr):
        return None
    inner = expression.node
    if not isinstance(inner, nodes.Getitem | nodes.Getattr):
        return None
    if not (isinstance(inner.node, nodes.Name) and inner.node.name == "results"):
        return None
    node, result = _key(inner), _key(expression)
    return (node, result) if node is not None and result is not None else None


def _parsed(source: str) -> nodes.Expr | None:
    try:
        return Parser(_PARSER_ENVIRONMENT, source, state="variable").parse_expression()
    except TemplateSyntaxError:  # a tree that loaded has conditions that parse; be safe anyway
        return None


def condition_reads(source: str) -> list[tuple[str, str, str | None, str | None]]:
    """``(node, result, operator, constant)`` for each result a condition expression reads."""
    expression = _parsed(source)
    if expression is None:
        return []
    found: list[tuple[str, str, str | None, str | None]] = []
    compared: set[int] = set()
    # find_all walks the children only: the expression itself is often the comparison.
    for compare in (expression, *expression.find_all(nodes.Compare)):
        if (
            not isinstance(compare, nodes.Compare)
            or len(compare.ops) != 1
            or compare.ops[0].op not in _EQUALITY
        ):
            continue
        left, right = compare.expr, compare.ops[0].expr
        for read, other in ((left, right), (right, left)):
            names = _result_of(read)
            if names and isinstance(other, nodes.Const) and isinstance(other.value, str):
                found.append((*names, _EQUALITY[compare.ops[0].op], other.value))
                compared.add(id(read))
    for item in (expression, *expression.find_all((nodes.Getitem, nodes.Getattr))):
        names = _result_of(item)
        if names and id(item) not in compared:
            found.append((*names, None, None))
    return found


SCOPES = ("results", "iterations", "inputs", "values")


@dataclass(frozen=True)
class Reference:
    """``scope[name]`` (and ``[key]`` after it, for ``results``) read at ``line`` of the source."""

    scope: str  # one of SCOPES
    name: str
    key: str | None
    line: int


def references(source: str, *, template: bool) -> list[Reference]:
    """The constant look-ups a template (or a condition) makes in SCOPES, in source order.

    ``results['A']['B']`` is one reference (``A``, ``B``); ``results['A']`` alone (say in
    ``results['A'] is defined``) is one with no key. Source that does not parse reads nothing:
    the loader has reported it already.
    """
    try:
        if template:
            parsed: nodes.Node = _PARSER_ENVIRONMENT.parse(source)
        else:
            parsed = Parser(_PARSER_ENVIRONMENT, source, state="variable").parse_expression()
    except TemplateSyntaxError:
        return []
    found: list[Reference] = []
    inner: set[int] = set()  # the results['A'] inside a results['A']['B'] already read
    # find_all walks outer look-ups before the ones inside them.
    for item in (parsed, *parsed.find_all((nodes.Getitem, nodes.Getattr))):
        if not isinstance(item, nodes.Getitem | nodes.Getattr) or id(item) in inner:
            continue
        key, target = _key(item), item.node
        if key is None:
            continue
        if isinstance(target, nodes.Name) and target.name in SCOPES:
            found.append(Reference(target.name, key, None, item.lineno))
        elif (names := _result_of(item)) is not None:
            inner.add(id(target))
            found.append(Reference("results", names[0], names[1], item.lineno))
    return sorted(found, key=lambda r: r.line)


def results_read(tree: Tree, node: str) -> list[ResultRead]:
    """Every read of ``node``'s results by the tree's connector conditions, in tree order."""
    reads: list[ResultRead] = []
    for source in tree.nodes.values():
        for connector in source.connectors:
            if connector.condition is None:
                continue
            for name, result, operator, value in condition_reads(connector.condition.source):
                if name == node:
                    target = connector.target
                    reads.append(ResultRead(name, result, source.name, target, value, operator))
    return reads


__all__ = ["SCOPES", "Reference", "ResultRead", "condition_reads", "references", "results_read"]
