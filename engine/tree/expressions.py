"""Parameter templates and connector conditions, compiled once when a tree loads.

Tree authors write Jinja2 (``{{ results['Review']['Status'] }}``) and we run it in Jinja's
immutable sandbox, so a tree can read its data and nothing else. Two ideas a reader needs:

- The sandbox also *meters work*. Every operation that can turn a small source into a big value
  (``*``, ``%``, ``**``, ``+``, ``~``, padding, ``format``, ``join``, ranges, loops) estimates the
  size it would produce and refuses before producing it; results and iterations are charged to a
  per-evaluation budget. No template can use unbounded memory or time.
- A missing key is an error naming the key, never an empty string; unless the tree says
  ``missing: nil`` (what the Kinetic importer writes), where it reads as Ruby's ``nil``: false
  in a test, unequal to any text, printed as ``""``. A look-up *on* that nil is still an error
  (``results['A']['B']`` when there is no node ``A``), as in Ruby.

Ruby's conversions that translated Kinetic trees need (``engine.tree.ruby_values``) are filters
and tests here, metered like Jinja's own.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any, TypeVar, cast

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from engine.errors import ExpressionError
from engine.forward_scan import ForwardScan
from engine.tree.ruby_values import FILTERS as RUBY_FILTERS
from engine.tree.ruby_values import TESTS as RUBY_TESTS
from engine.tree.substitution import Part, substitute, substitution_parts
from engine.tree.text_costs import printf_specs, wrap_work

MAX_SOURCE = 64 * 1024
_MAX_INT_BITS = 4096  # 10**1000 is data; 2**10**6 is only work
_WORK_FACTOR = 8  # one evaluation may produce 8 x max_output characters along the way
_FORBIDDEN = {nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import",
              nodes.FromImport: "from", nodes.Macro: "macro", nodes.CallBlock: "call",
              nodes.Block: "block"}  # fmt: skip
_TEXT_FILTERS = frozenset({"center", "indent", "wordwrap", "replace", "format"})
_PASS = {"context": lambda c: (c,), "eval_context": lambda c: (c.eval_ctx,),
         "environment": lambda c: (c.environment,)}  # fmt: skip


class _Limit(Exception):
    """Work or size beyond a bound. Not a TypeError/LookupError, so Jinja never swallows it."""


@dataclass(slots=True)
class _Budget:
    """What one evaluation may still spend; in a contextvar, so threads and tasks never share."""

    iterations: int
    chars: int


_T = TypeVar("_T")
_BUDGET: ContextVar[_Budget | None] = ContextVar("treeflow_expression_budget", default=None)


def _size(value: Any, limit: int) -> int:
    """Bound ``len(str(value))`` without building it, stopping once past ``limit``.

    Containers are walked because ``[big] * 1000`` is small but prints ``big`` 1000 times.
    """
    if isinstance(value, (str, bytes)):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 4
        elif isinstance(item, (Mapping, list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item.items() if isinstance(item, Mapping) else item)
        else:
            total += item.bit_length() // 3 + 2 if isinstance(item, int) else 24
    return total


def _digits(spec: str, limit: int) -> int:
    """Bound the width plus precision a format spec asks for: the sum of its numbers."""
    if "*" in spec or "{" in spec:
        raise _Limit(f"computed widths are not allowed in format spec {spec!r}")
    return sum(int(d) if len(d) < 10 else limit + 1 for d in re.findall(r"\d+", spec))


def _decoded(value: Any) -> Any:
    """Bytes as text of the same length, so one estimate serves ``str`` and ``bytes``."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], i: int, key: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(key, default)


class _Named(Undefined):
    """An undefined whose message names the missing key or name, briefly."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name, obj = self._undefined_name, self._undefined_obj
        if self._undefined_hint:
            return self._undefined_hint
        if obj is missing:
            return f"undefined name {name!r}"
        if isinstance(obj, Mapping):
            return f"missing key {name!r}"
        return f"missing index {name!r}" if isinstance(name, int) else f"no attribute {name!r}"


class _Missing(_Named, StrictUndefined):
    """A missing key or name: an error as soon as it is used (the default, ``missing: error``)."""

    __slots__ = ()


class _Nil(_Named):
    """A missing key read as Ruby's nil (``missing: nil``): prints ``""``, equals nothing but
    itself, is false; indexing it is an error naming the key, as ``nil['x']`` is in Ruby."""

    __slots__ = ()


MISSING_MODES: dict[str, type[Undefined]] = {"error": _Missing, "nil": _Nil}


class _CodeGen(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join (Jinja's own ``str_join`` cannot be hooked)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.produce(environment.concat(map(str, map(environment.finalize, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus size checks and the per-evaluation budget."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGen

    def __init__(
        self, max_output: int, max_range: int, max_iterations: int, undefined: type[Undefined]
    ) -> None:
        # No loader and no extensions: a template can reach no other template and no new tag.
        super().__init__(
            autoescape=False,
            undefined=undefined,
            keep_trailing_newline=True,
            finalize=self._finalize,
        )
        self.max_output, self.max_range, self.max_iterations = max_output, max_range, max_iterations
        for name in ("lipsum", "cycler", "joiner", "namespace"):  # escape gadgets, unbounded
            del self.globals[name]
        self.globals["range"] = self._range
        self.filters.update(RUBY_FILTERS)
        self.tests.update(RUBY_TESTS)
        self.filters = {name: self._guard(name, f) for name, f in self.filters.items()}
        self.filters["_counted"] = pass_context(lambda _context, items: self._counted(items))
        self.concat = self._concat  # type: ignore[method-assign]

    def _fits(self, size: int) -> None:
        if size > self.max_output:
            raise _Limit(f"result of {size} characters would exceed {self.max_output}")

    def _spend(self, iterations: int) -> None:
        budget = _BUDGET.get()
        if budget is not None:
            budget.iterations -= iterations
            if budget.iterations < 0:
                raise _Limit(f"more than {self.max_iterations} iterations")

    def produce(self, value: _T) -> _T:
        """Cap a freshly made value at max_output and charge it to the budget."""
        if isinstance(value, (str, bytes, list, tuple)):
            self._fits(len(value))
            self._charge(len(value))
        return value

    def _charge(self, work: int) -> None:
        """Charge ``work`` characters of work to the evaluation's budget, refusing it beyond."""
        limit = self.max_output * _WORK_FACTOR
        budget = _BUDGET.get()
        if work > (limit if budget is None else budget.chars):
            raise _Limit(f"more than {limit} characters of work")
        if budget is not None:
            budget.chars -= work

    def _finalize(self, value: Any) -> Any:
        if type(value) is not str:
            self._fits(_size(value, self.max_output))
        return value

    def _concat(self, parts: Iterable[str]) -> str:
        """Join output pieces, stopping as soon as the total passes max_output."""
        out, size = [], 0
        for part in parts:
            size += len(part)
            if size > self.max_output:
                raise _Limit(f"output over {self.max_output} characters")
            out.append(part)
        return "".join(out)

    def _range(self, *args: int) -> range:
        items = range(*args)
        if len(items[: self.max_range + 1]) > self.max_range:  # len() itself fails past maxsize
            raise _Limit(f"range over {self.max_range} items")
        self._spend(len(items))
        return items

    def _counted(self, items: Any) -> Any:
        """Charge a ``{% for %}`` loop's iterations; every loop's iterable is wrapped in this."""
        items = items if hasattr(items, "__len__") else list(items)
        self._spend(len(items))
        return items

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints and right > 0 and left.bit_length() * right > _MAX_INT_BITS:
            raise _Limit(f"{left} ** {right} is too large")
        if operator == "*" and ints and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise _Limit("integer product is too large")
        if operator == "*" and not ints:
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                self._fits(_size(seq, self.max_output) * times)
        if operator == "%" and isinstance(left, (str, bytes)):
            self._fits(self._printf_size(left, right))
        return self.produce(self.binop_table[operator](left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, (str, bytes)) and name == "join" and args:
            args = (list(args[0]), *args[1:])  # may be a generator: measure it once, pass it on
            self._fits(_size(args[0], self.max_output) + len(owner) * len(args[0]))
        elif isinstance(owner, (str, bytes)):
            self._fits(self._text_size(name, owner, args, kwargs))
        elif isinstance(owner, int) and name == "to_bytes":
            self._fits(_arg(args, kwargs, 0, "length", 1))
        return self.produce(super().call(context, obj, *args, **kwargs))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """On an undefined value keep its own error: "undefined name 'cycler'" says more."""
        return obj if isinstance(obj, Undefined) else super().unsafe_undefined(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's safe ``str.format``, with widths and field sizes checked before formatting."""
        safe = super().wrap_str_format(value)
        if safe is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            fields = args[0] if is_map and args else kwargs
            self._fits(self._format_size(template, () if is_map else args, fields))
            return self.produce(safe(*args, **kwargs))

        return update_wrapper(bounded, value)

    def _guard(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a filter with size checks; ``pass_context`` also stops compile-time folding."""
        lead = _PASS.get(getattr(getattr(func, "jinja_pass_arg", None), "name", ""))

        @pass_context
        def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
            value = self._check_filter(name, value, args, kwargs)
            return self.produce(func(*(lead(context) if lead else ()), value, *args, **kwargs))

        guarded.__name__ = guarded.__qualname__ = f"guarded_{name}"
        return guarded

    def _check_filter(
        self, name: str, value: Any, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> Any:
        if name in ("join", "sum") and not hasattr(value, "__len__"):
            value = list(value)  # a generator from map or select: measure once, pass it on
        self._fits(size := _size(value, self.max_output))
        if name in _TEXT_FILTERS:
            text = value if type(value) is str else str(value)
            self._fits(self._text_size(name, text, args, kw))
            if name == "wordwrap":
                self._charge(wrap_work(text, _arg(args, kw, 0, "width", 79)))
        elif name == "join":
            self._fits(size + len(value) * len(str(_arg(args, kw, 0, "d", ""))))
        elif name == "batch":
            self._fits(_arg(args, kw, 0, "linecount", 0))
        elif name == "slice" and _arg(args, kw, 0, "slices", 0) > self.max_range:
            raise _Limit(f"slice into over {self.max_range} parts")
        elif name == "sum" and not isinstance(_arg(args, kw, 1, "start", 0), (int, float)):
            raise _Limit("sum accepts only a numeric start")
        return value

    def _text_size(
        self, name: str, subject: Any, args: tuple[Any, ...], kw: Mapping[str, Any]
    ) -> int:
        """Bound the length of ``text.<name>(*args)`` or ``text|<name>(...)``; 0: cannot grow."""

        def arg(i: int, key: str, default: Any) -> int:  # a width given as a number or a string
            value = _arg(args, kw, i, key, default)
            return value if isinstance(value, int) else len(value) if isinstance(value, str) else 0

        text: str = _decoded(subject)
        if name in ("center", "ljust", "rjust", "zfill"):
            return max(len(text), arg(0, "width", 80))
        if name == "expandtabs":
            return len(text) + text.count("\t") * arg(0, "tabsize", 8)
        if name == "indent":
            return len(text) + (text.count("\n") + 1) * arg(0, "width", 4)
        if name == "wordwrap":
            breaks = min(len(text), len(text) // max(arg(0, "width", 79), 1) + len(text.split()))
            return len(text) + (breaks + 1) * max(arg(2, "wrapstring", 1), 1)
        if name == "replace":
            old, new = (
                _decoded(_arg(args, kw, 0, "old", "")),
                _decoded(_arg(args, kw, 1, "new", "")),
            )
            if isinstance(old, str) and isinstance(new, str):
                return len(text) + text.count(old) * max(len(new) - len(old), 0)
        if name == "format":
            return self._printf_size(text, args or kw)
        return 0

    def _printf_size(self, template: str | bytes, values: Any) -> int:
        text = _decoded(template)
        specs = printf_specs(ForwardScan(text))
        widths = sum(_digits(spec, self.max_output) for spec in specs)
        sizes = _size(values, self.max_output) * (1 if isinstance(values, tuple) else len(specs))
        return len(text) + widths + sizes

    def _format_size(self, template: str, args: tuple[Any, ...], fields: Any) -> int:
        """Bound ``template.format(...)``: any field may print any argument, ``{0}{0}`` too."""
        specs = [
            s or "" for _, field, s, _ in string.Formatter().parse(template) if field is not None
        ]
        widths = sum(_digits(spec, self.max_output) for spec in specs)
        return len(template) + widths + len(specs) * _size((args, fields), self.max_output)


def _failure(source: str, exc: Exception, compiled: JinjaTemplate) -> ExpressionError:
    """The ExpressionError for an evaluation failure, with the template line from the traceback."""
    if isinstance(exc, SecurityError):
        reason = f"unsafe: {exc}"
    elif isinstance(exc, _Limit):
        reason = f"too much work: {exc}"
    else:
        reason = str(exc) if isinstance(exc, UndefinedError) else f"{type(exc).__name__}: {exc}"
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = compiled.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return ExpressionError(source=source, reason=reason, line=line)


class _Compiled:
    """A compiled template or condition; ``names`` are the top-level names it reads."""

    __slots__ = ("_blocks", "_compiled", "_env", "_globals", "names", "source")

    def __init__(self, source: str, names: frozenset[str], compiled: JinjaTemplate | None,
                 env: _Sandbox) -> None:  # fmt: skip
        self.source, self.names, self._compiled, self._env = source, names, compiled, env
        self._globals = dict(compiled.globals) if compiled else {}
        self._blocks = compiled.blocks if compiled else {}

    def _run(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate under a fresh budget; Jinja's Context is built directly, the hot path."""
        env, compiled = self._env, self._compiled
        if compiled is None:  # a template without "{": a constant
            return self.source
        token = _BUDGET.set(_Budget(env.max_iterations, env.max_output * _WORK_FACTOR))
        try:
            context = Context(env, {**self._globals, **scope}, None, self._blocks)
            return self._result(env.concat(compiled.root_render_func(context)), context)
        except Exception as exc:
            raise _failure(self.source, exc, compiled) from exc
        finally:
            _BUDGET.reset(token)

    def _result(self, output: str, context: Context) -> Any:
        return output


class Template(_Compiled):
    """A compiled parameter template; plain substitutions skip Jinja
    (``engine.tree.substitution``)."""

    __slots__ = ("_parts",)

    def __init__(self, source: str, names: frozenset[str], compiled: JinjaTemplate | None,
                 env: _Sandbox, parts: tuple[Part, ...] | None = None) -> None:  # fmt: skip
        super().__init__(source, names, compiled, env)
        self._parts = parts

    def render(self, scope: Mapping[str, Any]) -> str:
        """Render with ``scope``; raises ExpressionError naming a missing key or the limit hit."""
        if self._parts is not None:
            text = substitute(self._parts, scope, self._env.max_output)
            if text is not None:
                return text
        return cast(str, self._run(scope))


class Condition(_Compiled):
    """A compiled connector condition: one Jinja expression, true or false."""

    __slots__ = ()

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        """Evaluate with ``scope``; a missing key raises ExpressionError rather than being false."""
        return cast(bool, self._run(scope))

    def _result(self, output: str, context: Context) -> bool:
        return bool(context.vars["result"])


class Expressions:
    """Owns one sandboxed environment; one per engine (and one more for ``missing: nil``)."""

    def __init__(self, *, max_output: int = 1_000_000, max_range: int = 10_000,
                 max_iterations: int = 100_000, missing: str = "error") -> None:  # fmt: skip
        self._limits = {"max_output": max_output, "max_range": max_range,
                        "max_iterations": max_iterations}  # fmt: skip
        self._env = _Sandbox(max_output, max_range, max_iterations, MISSING_MODES[missing])
        self._modes: dict[str, Expressions] = {missing: self}

    def reading_missing_as(self, missing: str) -> Expressions:
        """These limits with a missing key read as ``missing`` (a key of MISSING_MODES):
        the Expressions a tree that says ``missing: nil`` compiles with. Made once, kept."""
        if missing not in self._modes:
            other = Expressions(**self._limits, missing=missing)
            other._modes = self._modes
            self._modes[missing] = other
        return self._modes[missing]

    def template(self, source: str) -> Template:
        """Compile a parameter template; text without ``{`` is a constant that skips Jinja."""
        if "{" not in _checked(source, "template"):
            return Template(source, frozenset(), None, self._env)
        with _syntax(source):
            tree = self._env.parse(source)
            names = self._names(tree)
            for node in tree.find_all((*_FORBIDDEN, nodes.For)):
                recursive = getattr(node, "recursive", False)  # loop(...) recursion is unbounded
                if tag := "for ... recursive" if recursive else _FORBIDDEN.get(type(node)):
                    reason = f"the {{% {tag} %}} tag is not allowed"
                    raise ExpressionError(source=source, reason=reason, line=node.lineno)
                if isinstance(node, nodes.For):  # charge every loop's iterations to the budget
                    counted = nodes.Filter(
                        node.iter, "_counted", [], [], None, None, lineno=node.lineno
                    )
                    node.iter = counted.set_environment(self._env)
            parts = substitution_parts(tree)
            return Template(source, names, self._env.from_string(tree), self._env, parts)

    def condition(self, source: str) -> Condition:
        """Compile a connector condition, e.g. ``results['Review']['Status'] == 'Approved'``.

        Builds what ``compile_expression(source, undefined_to_none=False)`` builds (the value is
        assigned to ``result``, an undefined stays strict), but keeps the parsed expression for
        ``names`` and evaluates through the same budgeted path as templates.
        """
        if not _checked(source, "condition").strip():
            raise ExpressionError(source=source, reason="empty condition")
        with _syntax(source):
            parser = Parser(self._env, source, state="variable")
            expression = parser.parse_expression()
            if not parser.stream.eos:
                parser.fail("unexpected text after the expression", parser.stream.current.lineno)
            names = self._names(nodes.Template([nodes.Output([expression])]))
            body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
            tree = nodes.Template(body, lineno=1)
            tree.set_environment(self._env)
            return Condition(source, names, self._env.from_string(tree), self._env)

    def _names(self, tree: nodes.Template) -> frozenset[str]:
        """Names the scope must supply: the undeclared ones less the sandbox's own globals."""
        tree.set_environment(self._env)
        return frozenset(find_undeclared_variables(tree) - self._env.globals.keys())


def _checked(source: str, what: str) -> str:
    if len(source) > MAX_SOURCE:
        raise ExpressionError(source=source[:60] + "...", reason=f"{what} over {MAX_SOURCE} chars")
    return source


@contextmanager
def _syntax(source: str) -> Iterator[None]:
    """Turn Jinja's TemplateSyntaxError into an ExpressionError that keeps the line."""
    try:
        yield
    except TemplateSyntaxError as exc:
        reason = f"syntax error: {exc.message}"
        raise ExpressionError(source=source, reason=reason, line=exc.lineno) from exc


__all__ = ["MISSING_MODES", "Condition", "Expressions", "Template"]
