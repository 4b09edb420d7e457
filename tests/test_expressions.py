"""Templates and conditions: names, strict lookups, the sandbox and its bounds on work."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from engine.errors import ExpressionError
from engine.tree.expressions import MAX_SOURCE, Expressions

SCOPE: dict[str, Any] = {
    "results": {"Review": {"Status": "Approved", "deferral_token": "tok-1"}},
    "inputs": {"name": "Ada", "template": "{{ 7*7 }}", "big": "x" * 1000},
    "source": {"name": "Kinetic Request", "group": "G", "id": "42", "data": {}},
    "values": {},
    "run": {"id": 7},
    "task": {"deferral_token": "tok-2"},
    "trigger": {},
}


@pytest.fixture(scope="module")
def expr() -> Expressions:
    return Expressions()


def render(expr: Expressions, source: str, scope: dict[str, Any] = SCOPE) -> str:
    return expr.template(source).render(scope)


# -- rendering and names


def test_template_renders_results_and_source_by_name(expr: Expressions) -> None:
    source = "Please review {{ source.id }}, token {{ results['Review']['deferral_token'] }}"
    assert render(expr, source) == "Please review 42, token tok-1"


def test_template_names_are_the_top_level_names_it_reads(expr: Expressions) -> None:
    source = "{{ source.id }}{% for i in range(2) %}{{ i }}{{ loop.index }}{% endfor %}{{ run.id }}"
    assert expr.template(source).names == frozenset({"source", "run"})


def test_text_without_braces_is_a_constant_returned_as_is(expr: Expressions) -> None:
    source = "plain text, no substitution\n"
    template = expr.template(source)
    assert template.render({}) is source
    assert template.names == frozenset()


def test_trailing_newline_is_kept_like_a_constant(expr: Expressions) -> None:
    assert render(expr, "{{ source.id }}\n") == "42\n"


def test_data_values_are_never_evaluated(expr: Expressions) -> None:
    assert render(expr, "{{ inputs['template'] }}") == "{{ 7*7 }}"


def test_template_renders_from_any_mapping(expr: Expressions) -> None:
    assert expr.template("{{ run.id }}").render(MappingProxyType(SCOPE)) == "7"


def test_loop_budget_is_per_render_not_cumulative(expr: Expressions) -> None:
    template = expr.template("{% for i in range(9000) %}{% endfor %}ok")
    assert [template.render(SCOPE) for _ in range(20)] == ["ok"] * 20


def test_loop_cycle_and_index_still_work(expr: Expressions) -> None:
    source = "{% for x in 'ab' %}{{ loop.index }}{{ loop.cycle('x', 'y') }}{% endfor %}"
    assert render(expr, source) == "1x2y"


def test_is_defined_tests_a_missing_key_without_error(expr: Expressions) -> None:
    assert render(expr, "{{ 'yes' if results.Nope is defined else 'no' }}") == "no"


# -- strict lookups


def test_missing_key_names_the_key(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match=r"missing key 'Nope'") as caught:
        render(expr, "{{ results['Nope']['x'] }}")
    assert caught.value.source == "{{ results['Nope']['x'] }}"


def test_undefined_name_is_named(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match=r"undefined name 'foo'"):
        render(expr, "{{ foo }}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ results.Nope }}", "missing key 'Nope'"),
        ("{{ results['Review']['Nope'] }}", "missing key 'Nope'"),
        ("{{ source['nope']|upper }}", "missing key 'nope'"),
        ("{{ 'a' ~ inputs.nope }}", "missing key 'nope'"),
        ("{% for x in inputs.nope %}{% endfor %}", "missing key 'nope'"),
        ("{% if inputs.nope %}y{% endif %}", "missing key 'nope'"),
        ("{{ [1, 2][5] }}", "missing index 5"),
    ],
    ids=["attribute", "nested", "filtered", "concatenated", "looped", "tested", "index"],
)
def test_missing_data_is_an_error_never_an_empty_string(
    expr: Expressions, source: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        render(expr, source)


def test_evaluation_error_reports_the_template_line(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match=r"missing key 'Nope'") as caught:
        render(expr, "line one\nline two\n{{ results['Nope'] }}")
    assert caught.value.line == 3


def test_python_errors_become_expression_errors(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match=r"ZeroDivisionError"):
        render(expr, "{{ 1 / 0 }}")


# -- compile-time refusals


def test_syntax_error_reports_line_and_reason(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match=r"syntax error: unexpected '}'") as caught:
        expr.template("first\n{{ x }\n")
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% include 'other' %}", r"the \{% include %\} tag is not allowed"),
        ("{% import 'other' as o %}", r"the \{% import %\} tag is not allowed"),
        ("{% from 'other' import x %}", r"the \{% from %\} tag is not allowed"),
        ("{% extends 'base' %}", r"the \{% extends %\} tag is not allowed"),
        ("{% macro f() %}{% endmacro %}", r"the \{% macro %\} tag is not allowed"),
        ("{% call range(1) %}{% endcall %}", r"the \{% call %\} tag is not allowed"),
        ("{% block b %}{% endblock %}", r"the \{% block %\} tag is not allowed"),
        (
            "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
            r"the \{% for ... recursive %\} tag is not allowed",
        ),
        ("{% raw %}x{% endraw %}\n\n{% include 'x' %}", r"include"),
    ],
    ids=["include", "import", "from", "extends", "macro", "call", "block", "recursive", "late"],
)
def test_tags_that_reach_outside_or_recurse_are_refused_at_compile(
    expr: Expressions, source: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        expr.template(source)


def test_refused_tag_reports_its_line(expr: Expressions) -> None:
    with pytest.raises(ExpressionError, match="include") as caught:
        expr.template("ok\n{% include 'x' %}")
    assert caught.value.line == 2


@pytest.mark.parametrize("kind", ["template", "condition"])
def test_source_over_the_size_limit_is_refused(expr: Expressions, kind: str) -> None:
    with pytest.raises(ExpressionError, match=f"{kind} over {MAX_SOURCE} chars"):
        getattr(expr, kind)("1" * (MAX_SOURCE + 1))


# -- published sandbox escapes, each next to a safe neighbour that must still work

ESCAPES = [
    ("{{ ''.__class__.__mro__ }}", "unsafe: access to attribute '__class__'",
     "{{ 'ab'.upper() }}", "AB"),
    ("{{ ().__class__.__bases__[0].__subclasses__() }}", "unsafe: access to attribute '__class__'",
     "{{ (1, 2)|length }}", "2"),
    ("{{ '{0.__class__}'.format(inputs) }}", "unsafe: access to attribute '__class__'",
     "{{ '{0}!'.format(inputs.name) }}", "Ada!"),
    ("{{ '{x.__class__}'.format_map({'x': inputs}) }}", "unsafe: access to attribute '__class__'",
     "{{ '{name}'.format_map(inputs) }}", "Ada"),
    ("{{ inputs|attr('__class__') }}", "unsafe: access to attribute '__class__'",
     "{{ ('ab'|attr('upper'))() }}", "AB"),
    ("{{ ('{0.__class__}'|attr('format'))(inputs) }}", "unsafe: access to attribute '__class__'",
     "{{ ('{0}'|attr('format'))(inputs.name) }}", "Ada"),
    ("{{ cycler.__init__.__globals__ }}", "undefined name 'cycler'",
     "{% for x in 'ab' %}{{ loop.cycle(1, 2) }}{% endfor %}", "12"),
    ("{{ lipsum.__globals__ }}", "undefined name 'lipsum'", "{{ 'a b'|wordcount }}", "2"),
    ("{{ self.__init__.__globals__ }}", "unsafe: access to attribute '__init__'",
     "{{ dict(a=1)['a'] }}", "1"),
    ("{{ range(10**10)|length }}", "range over 10000 items",
     "{{ range(10000)|length }}", "10000"),
    ("{{ 'a' * 10**9 }}", "would exceed 1000000", "{{ 'ab' * 3 }}", "ababab"),
    ("{{ '%999999999s' % 'a' }}", "would exceed 1000000", "{{ '%3s' % 'a' }}", "  a"),
    ("{{ '{:>999999999}'.format('a') }}", "would exceed 1000000",
     "{{ '{:>3}'.format('a') }}", "  a"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "more than 100000 iterations",
     "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}done", "done"),
]  # fmt: skip
ESCAPE_IDS = [
    "mro", "subclasses", "str-format", "format-map", "attr-filter", "attr-format", "cycler",
    "lipsum", "self", "range", "str-repeat", "printf-width", "format-width", "nested-loops",
]  # fmt: skip


@pytest.mark.parametrize(("escape", "message", "safe", "expected"), ESCAPES, ids=ESCAPE_IDS)
def test_published_escape_is_refused(
    expr: Expressions, escape: str, message: str, safe: str, expected: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        render(expr, escape)


@pytest.mark.parametrize(("escape", "message", "safe", "expected"), ESCAPES, ids=ESCAPE_IDS)
def test_safe_neighbour_of_an_escape_still_renders(
    expr: Expressions, escape: str, message: str, safe: str, expected: str
) -> None:
    assert render(expr, safe) == expected


# -- bounded work beyond the published escapes

BIG = [
    ("{{ 2 ** 100000 }}", "too large"),
    ("{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}", "too large"),
    ("{{ [0] * 10**8 }}", "would exceed"),
    ("{{ 'a'.ljust(10**9) }}", "would exceed"),
    ("{{ 'a'.rjust(10**9) }}", "would exceed"),
    ("{{ 'a'.center(10**9) }}", "would exceed"),
    ("{{ 'a'.zfill(10**9) }}", "would exceed"),
    ("{{ ('\t' * 1000).expandtabs(10**6) }}", "would exceed"),
    ("{{ 'a'.encode().center(10**9) }}", "would exceed"),
    ("{{ (1).to_bytes(10**9, 'big') }}", "would exceed"),
    ("{{ '{:.999999999f}'.format(1.0) }}", "would exceed"),
    ("{{ '{:{}}'.format('a', 10**9) }}", "computed widths are not allowed"),
    ("{{ '%*s' % (10**9, 'a') }}", "computed widths are not allowed"),
    ("{{ 'a'|center(10**9) }}", "would exceed"),
    ("{{ 'a\na'|indent(10**9) }}", "would exceed"),
    ("{{ ('a ' * 100000)|wordwrap(1, wrapstring='x' * 100) }}", "would exceed"),
    ("{{ '%999999999s'|format('a') }}", "would exceed"),
    ("{{ ('a' * 1000)|replace('a', 'b' * 10000) }}", "would exceed"),
    ("{{ ('a' * 1000).replace('a', 'b' * 10000) }}", "would exceed"),
    ("{{ ('a' * 1000).encode().replace('a'.encode(), ('b' * 10000).encode()) }}", "would exceed"),
    ("{{ (['x' * 1000] * 1000)|join('-') }}", "would exceed"),
    ("{{ '-'.join(['x' * 1000] * 1000) }}", "would exceed"),
    ("{{ [1]|batch(10**9, 0)|list }}", "would exceed"),
    ("{{ [1]|slice(10**9)|list }}", "slice into over 10000 parts"),
    ("{{ ([[1]] * 3)|sum(start=[]) }}", "numeric start"),
    ("{% set b = 'x' * 900000 %}{{ [b, b] }}", "would exceed"),
    ("{% set b = 'x' * 900000 %}{{ b ~ b }}", "exceed|output over"),
    ("{% set b = 'x' * 900000 %}{{ b + b }}", "would exceed"),
    ("{% set b = 'x' * 900000 %}{{ '%s%s' % (b, b) }}", "would exceed"),
    ("{% set b = 'x' * 900000 %}{{ '{0}{0}'.format(b) }}", "would exceed"),
    ("{% for i in range(3000) %}{{ inputs.big }}{% endfor %}", "output over 1000000 characters"),
    ("{% for i in range(100) %}{% set t = 'x' * 999999 %}{% endfor %}", "characters of work"),
    ("{{ range(5)|map('center', 999999)|list }}", "characters of work|would exceed"),
    ("{% for a in [1] * 1000 %}{% for b in [1] * 1000 %}{% endfor %}{% endfor %}", "iterations"),
]
BIG_IDS = [
    "power", "int-product", "list-repeat", "ljust", "rjust", "center", "zfill", "expandtabs",
    "bytes-center", "to-bytes", "format-precision", "format-nested-width", "printf-star",
    "center-filter", "indent-filter", "wordwrap-filter", "format-filter", "replace-filter",
    "replace-method", "replace-bytes", "join-filter", "join-method", "batch", "slice", "sum-lists",
    "print-shared-list", "concat", "plus", "printf-args", "format-repeated-field", "output",
    "work-budget", "map-center", "data-loops",
]  # fmt: skip


@pytest.mark.parametrize(("source", "message"), BIG, ids=BIG_IDS)
def test_work_and_output_are_bounded(expr: Expressions, source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=f"too much work: .*({message})"):
        render(expr, source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'a'.ljust(3) }}|{{ 'a'|center(3) }}|{{ '7'.zfill(3) }}", "a  | a |007"),
        ("{{ 'a\nb'|indent(2, first=true) }}", "  a\n  b"),
        ("{{ 'a b c'|wordwrap(1) }}", "a\nb\nc"),
        ("{{ 'abc'|truncate(10**9) }}", "abc"),
        ("{{ '%s-%d'|format('a', 1) }}", "a-1"),
        ("{{ ['a', 'b']|join('-') }}{{ '+'.join(['c', 'd']) }}", "a-bc+d"),
        ("{{ [1, 2]|sum }}{{ [1, 2, 3]|batch(2)|list }}", "3[[1, 2], [3]]"),
        ("{{ 10 ** 100 > 0 }} {{ 'a' ~ 1 ~ none }} {{ [1] + [2] }}", "True a1None [1, 2]"),
        ("{{ results|tojson }}", '{"Review": {"Status": "Approved", "deferral_token": "tok-1"}}'),
    ],
    ids=["padding", "indent", "wordwrap", "truncate", "format", "join", "sum-batch", "ops", "json"],
)
def test_ordinary_use_of_bounded_operations_still_works(
    expr: Expressions, source: str, expected: str
) -> None:
    assert render(expr, source) == expected


def test_limits_are_configurable() -> None:
    small = Expressions(max_output=100, max_range=10, max_iterations=20)
    assert small.template("{{ 'a' * 100 }}").render({}) == "a" * 100
    with pytest.raises(ExpressionError, match="would exceed 100"):
        small.template("{{ 'a' * 101 }}").render({})
    with pytest.raises(ExpressionError, match="range over 10 items"):
        small.template("{{ range(11)|list }}").render({})
    with pytest.raises(ExpressionError, match="more than 20 iterations"):
        small.template("{% for x in [1, 2, 3] * 7 %}{% endfor %}").render({})


# -- conditions


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("results['Review']['Status'] == 'Approved'", True),
        ("results['Review']['Status'] == 'Denied'", False),
        ("results.Review.Status in ['Approved', 'Done'] and run.id > 3", True),
        ("results.Nope is defined", False),
        ("inputs.name", True),
        ("values", False),
    ],
    ids=["equal", "not-equal", "compound", "is-defined", "truthy", "falsy"],
)
def test_condition_evaluates_to_a_bool(expr: Expressions, source: str, expected: bool) -> None:
    assert expr.condition(source).evaluate(SCOPE) is expected


def test_condition_names_are_the_top_level_names_it_reads(expr: Expressions) -> None:
    condition = expr.condition("results.Review.Status == 'x' or range(3)|length > trigger.n")
    assert condition.names == frozenset({"results", "trigger"})


def test_condition_with_a_missing_key_raises_instead_of_being_false(expr: Expressions) -> None:
    condition = expr.condition("results['Nope']['Status'] == 'Approved'")
    with pytest.raises(ExpressionError, match=r"missing key 'Nope'"):
        condition.evaluate(SCOPE)


@pytest.mark.parametrize("source", ["", "   ", "\n"], ids=["empty", "spaces", "newline"])
def test_blank_condition_is_refused_at_compile(expr: Expressions, source: str) -> None:
    with pytest.raises(ExpressionError, match="empty condition"):
        expr.condition(source)


@pytest.mark.parametrize(
    "source", ["results ==", "a b", "{{ a }}", "(a"], ids=["dangling", "two", "braces", "paren"]
)
def test_malformed_condition_is_a_syntax_error(expr: Expressions, source: str) -> None:
    with pytest.raises(ExpressionError, match="syntax error"):
        expr.condition(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("''.__class__.__mro__", "unsafe"),
        ("'a' * 10**9 == 'a'", "would exceed"),
        ("range(10**10)|length > 0", "range over"),
    ],
    ids=["mro", "repeat", "range"],
)
def test_condition_runs_in_the_same_sandbox(expr: Expressions, source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        expr.condition(source).evaluate(SCOPE)
