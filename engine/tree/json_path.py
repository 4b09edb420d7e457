"""JSONPath as loop heads run it: jsonpath-ng's extended dialect, made safe for paths a caller
writes (a ``loop_path`` may be a template, rendered from the request).

jsonpath-ng evaluates a path as written, so a short path can cost without bound, and it runs
regular expressions with Python's backtracking engine:

- **Regular expressions run on RE2**, which has no backtracking and takes time linear in the
  text (``(a+)+$`` against ``"a" * 40 + "b"`` is one pass, not 2**40 steps). Each ``=~`` filter
  of a compiled path is given its RE2 pattern; a pattern using syntax RE2 does not have
  (backreferences, lookaround) is refused by name when the path compiles.
- **Evaluation has a budget**: every step of the path over the data (each sub-path applied to a
  value, and each value it yields) counts, and a path taking more than :data:`MAX_STEPS` fails
  (``$..*..*..*..*..*`` over a deeply nested document, or ``$[0,0][0,0]...``, would otherwise
  multiply its results at each step). Text a regular expression reads counts one step per
  :data:`CHARS_PER_STEP` characters (RE2 reads text that much faster than a step takes).
- **Computed values are refused**: arithmetic (``$.name * 1000000000`` builds a gigabyte from a
  short path) and ``sub(/regex/, repl)`` (whose replacement can multiply the text). A loop
  iterates over the data; it has no use for values computed from it.

Everything refused raises :class:`JSONPathRefused`, with a message naming the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import re2
from jsonpath_ng import DatumInContext, JSONPath
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parser as jsonpath_ext
from jsonpath_ng.ext.arithmetic import Operation
from jsonpath_ng.ext.filter import Expression
from jsonpath_ng.ext.string import DefintionInvalid, Sub

MAX_STEPS = 1_000_000
CHARS_PER_STEP = 1_000
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is ours to report, not RE2's to print


class JSONPathRefused(ValueError):
    """A JSONPath that does not parse, uses what loop paths do not allow, or costs too much."""


@dataclass(slots=True)
class _Budget:
    """What one evaluation may still spend; in a contextvar, so threads never share one."""

    limit: int
    steps: int = 0

    def __post_init__(self) -> None:
        self.steps = self.limit


_BUDGET: ContextVar[_Budget | None] = ContextVar("treeflow_json_path_budget", default=None)


def _spend(steps: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps -= steps
        if budget.steps < 0:
            raise JSONPathRefused(f"takes more than {budget.limit} steps over the data")


class _RE2Search(Expression):
    """``@... =~ "pattern"`` as jsonpath-ng means it (the values found that are text the
    pattern occurs in), searched by RE2."""

    regex: Any

    def find(self, datum: Any) -> list[DatumInContext]:
        found = []
        for match in self.target.find(DatumInContext.wrap(datum)):
            value = match.value
            if isinstance(value, str):
                _spend(1 + len(value) // CHARS_PER_STEP)
                if self.regex.search(value):
                    found.append(match)
        return found


def compile_json_path(path: str) -> JSONPath:
    """Parse ``path`` and make it safe to run: RE2 for its regular expressions, a metered
    ``find`` on every part. Raises :class:`JSONPathRefused` naming what is wrong."""
    try:
        expression = jsonpath_ext.parse(path)
    except (JSONPathError, DefintionInvalid) as exc:
        raise JSONPathRefused(f"is not a JSONPath: {exc}") from None
    for part in _parts(expression):
        if isinstance(part, (Operation, Sub)):
            what = f"arithmetic ({part.op_symbol!r})" if isinstance(part, Operation) else "sub()"
            raise JSONPathRefused(f"uses {what}: a loop path selects values, it computes none")
        if isinstance(part, Expression) and part.op == "=~":
            part.__class__ = _RE2Search  # the parsed node runs its pattern on RE2 from now on
            cast(_RE2Search, part).regex = _re2(part.value)
        _meter(part)
    return expression


def find_values(expression: JSONPath, document: Any, *, max_steps: int = MAX_STEPS) -> list[Any]:
    """The values ``expression`` (from :func:`compile_json_path`) selects in ``document``;
    :class:`JSONPathRefused` if that takes more than ``max_steps``."""
    token = _BUDGET.set(_Budget(max_steps))
    try:
        return [match.value for match in expression.find(document)]
    finally:
        _BUDGET.reset(token)


def _re2(pattern: Any) -> Any:
    if not isinstance(pattern, str):
        raise JSONPathRefused(f"matches with {pattern!r}: a regular expression is text")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise JSONPathRefused(
            f"has a regular expression {pattern!r} that RE2 cannot run ({reason}): loop paths "
            "use RE2's syntax, without backreferences or lookaround"
        ) from None


def _meter(part: JSONPath) -> None:
    """Count each call of ``part.find`` and each value it yields against the budget."""
    find = part.find

    def metered(datum: Any) -> Any:
        found = find(datum)
        _spend(1 + (len(found) if isinstance(found, list) else 1))
        return found

    part.find = metered  # type: ignore[method-assign, assignment]


def _parts(expression: JSONPath) -> Iterator[JSONPath]:
    """Every node of a parsed path, found through the nodes' attributes (lists, tuples too)."""
    stack: list[Any] = [expression]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, JSONPath) and id(item) not in seen:
            seen.add(id(item))
            yield item
            stack.extend(vars(item).values())


__all__ = ["CHARS_PER_STEP", "MAX_STEPS", "JSONPathRefused", "compile_json_path", "find_values"]
