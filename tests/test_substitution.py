"""The substitution fast path renders exactly what the sandboxed Jinja render gives."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ExpressionError
from engine.tree.expressions import Expressions
from engine.tree.substitution import substitute, substitution_parts

# Keys that are also dict attributes ("items", "keys") are where a naive lookup would differ.
KEYS = ["id", "output", "Step 1", "items", "keys", "a"]
ORACLE = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
EXPRESSIONS = Expressions(max_output=200)

values = st.recursive(
    st.one_of(st.text(max_size=12), st.integers(), st.none()),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)
lookups = st.tuples(
    st.sampled_from(["results", "source", "inputs"]),
    st.lists(st.tuples(st.sampled_from(KEYS), st.booleans()), max_size=3),
)


def _lookup_source(name: str, steps: list[tuple[str, bool]]) -> str:
    text = name
    for key, as_attribute in steps:
        text += f".{key}" if as_attribute and key.isidentifier() else f"[{key!r}]"
    return "{{ " + text + " }}"


@settings(max_examples=300, deadline=None)
@given(
    scope=st.fixed_dictionaries({"results": values, "source": values, "inputs": values}),
    pieces=st.lists(st.one_of(st.text(alphabet="ab -", max_size=5), lookups), max_size=4),
)
def test_fast_path_gives_what_jinja_gives(scope: dict[str, Any], pieces: list[Any]) -> None:
    source = "".join(p if isinstance(p, str) else _lookup_source(*p) for p in pieces)
    parts = substitution_parts(ORACLE.parse(source))
    assume(parts is not None)  # attribute lookups of dict methods ("a.items") are not plain
    fast = substitute(parts, scope, 200)
    if fast is not None:  # where it declines, the full render decides (tested elsewhere)
        assert fast == ORACLE.from_string(source).render(scope)


def test_ordinary_lookups_take_the_fast_path_and_render_like_the_engine() -> None:
    scope = {"results": {"Step 1": {"output": "R1-1"}}, "source": {"id": "R1"}}
    source = "{{ source.id }}: {{ results['Step 1']['output'] }}-2"
    parts = substitution_parts(ORACLE.parse(source))
    assert parts is not None
    assert substitute(parts, scope, 200) == "R1: R1-1-2"
    assert EXPRESSIONS.template(source).render(scope) == "R1: R1-1-2"


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"results": {}}, "missing key 'Step 1'"),
        ({"results": {"Step 1": {"output": "x" * 300}}}, "output over 200 characters"),
    ],
    ids=["missing-key", "over-the-cap"],
)
def test_where_the_fast_path_declines_the_full_render_reports_the_error(
    scope: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        EXPRESSIONS.template("{{ results['Step 1']['output'] }}").render(scope)


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        ("{{ results['Step 1']['output'] }}-2", True),
        ("{{ source.id }}", True),
        ("{{ source.items }}", False),  # dict.items wins over the key in Jinja
        ("{{ inputs['n'] | upper }}", False),
        ("{{ inputs[name] }}", False),
        ("{% if x %}y{% endif %}", False),
    ],
    ids=["items", "attribute", "dict-method", "filter", "variable-key", "statement"],
)
def test_only_text_and_constant_lookups_take_the_fast_path(source: str, plain: bool) -> None:
    assert (substitution_parts(ORACLE.parse(source)) is not None) is plain
