"""The one strict reader of JSON from outside: what it accepts, and each refusal by name and
place; the same rules for values an embedding program passes and for tree files' values."""

from __future__ import annotations

import math
from functools import reduce
from typing import Any

import pytest

from engine import Engine
from engine.errors import BadRequest
from engine.json_input import MAX_DEPTH, MAX_INTEGER, MIN_INTEGER, check_json, parse_json
from engine.tree.yaml_reader import parse_yaml

from .support import REGISTRATION, counts

RANGE = "is outside the 64-bit range (-9223372036854775808 to 9223372036854775807)"
DEEP = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": [1, -2.5, true, null, "é"]}', {"a": [1, -2.5, True, None, "é"]}),
        (f"[{MAX_INTEGER}, {MIN_INTEGER}, 1e308]", [MAX_INTEGER, MIN_INTEGER, 1e308]),
        ('"\\ud83d\\ude00"', "😀"),  # a surrogate pair is one character
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, reduce(lambda inner, _: [inner], range(63), [])),
    ],
    ids=["plain", "limits", "surrogate-pair", "deepest-allowed"],
)
def test_json_within_the_rules_is_read_as_python_reads_it(text: str, value: Any) -> None:
    assert parse_json(text) == value
    assert parse_json(text.encode()) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": "\\ud800"}', "the text at $.a holds a lone surrogate '\\ud800'"),
        ('{"b": ["x", "\\udc00y"]}', "the text at $.b[1] holds a lone surrogate '\\udc00'"),
        ('{"\\ud800": 1}', "a key at $ holds a lone surrogate '\\ud800'"),
        ('{"a": "x\\u0000"}', "the text at $.a holds a NUL character"),
        ('{"a": NaN}', "NaN at $.a is not JSON"),
        ('{"a": [Infinity]}', "Infinity at $.a[0] is not JSON"),
        ("-Infinity", "-Infinity at $ is not JSON"),
        ('{"a": 18446744073709551616}', f"the integer 18446744073709551616 at $.a {RANGE}"),
        ('{"a": 9223372036854775808}', f"the integer 9223372036854775808 at $.a {RANGE}"),
        ('{"a": -9223372036854775809}', f"the integer -9223372036854775809 at $.a {RANGE}"),
        ("9" * 5000, f"an integer {RANGE}"),
        ('{"n": 1e400}', "the number 1e400 at $.n is too large for a double"),
        ('{"x y": {"a": 1, "a": 2}}', 'the object at $["x y"] gives the key \'a\' twice'),
        (DEEP, "the value is nested deeper than 64 levels"),
        ("[" * 300 + "]" * 300, "the value is nested deeper than 64 levels"),
        ("[" * 5000 + "]" * 5000, "the value is nested deeper than 64 levels"),
        ("{oops", "not valid JSON: Expecting property name enclosed in double quotes: line 1 "
         "column 2 (char 1)"),
    ],
    ids=[
        "lone-surrogate", "lone-low-surrogate", "surrogate-key", "nul", "nan", "infinity",
        "minus-infinity", "2**64", "2**63", "below-min", "5000-digits", "1e400",
        "duplicate-key", "65-levels", "300-levels", "5000-levels", "not-json",
    ],
)  # fmt: skip
def test_json_outside_the_rules_is_refused_naming_the_problem_and_its_place(
    text: str, reason: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_json(text, field="body")

    assert refused.value.field == "body"
    assert refused.value.reason == reason
    assert str(refused.value) == f"Invalid body: {reason}"


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(BadRequest, match=r"^Invalid body: not UTF-8 text: invalid start byte$"):
        parse_json(b'{"a": "\xff"}')


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"a": math.nan}, "the number nan at $.a is not finite"),
        ({"a": [math.inf]}, "the number inf at $.a[0] is not finite"),
        ({"a": 2**64}, f"the integer 18446744073709551616 at $.a {RANGE}"),
        ({"a": {1, 2}}, "a set at $.a is not a JSON value"),
        ({1: "x"}, "the key 1 at $ is not text"),
        ({"a": "\x00"}, "the text at $.a holds a NUL character"),
    ],
    ids=["nan", "infinity", "2**64", "set", "int-key", "nul"],
)
def test_values_from_a_program_are_held_to_the_same_rules(value: object, reason: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_json(value, field="source_data")

    assert str(refused.value) == f"Invalid source_data: {reason}"


def test_create_start_refuses_source_data_the_store_cannot_keep_and_writes_nothing(
    engine: Engine,
) -> None:
    before = counts(engine)

    with pytest.raises(BadRequest, match=r"^Invalid source_data: the number nan at \$\.a"):
        engine.create_start(**REGISTRATION, source_data={"a": math.nan})

    assert counts(engine) == before


TREE = """source: Tests
group: JSON
name: Values
description: {description}
nodes:
  Start:
    handler: system_start_v1
"""


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ('"a\\ud800"', "the text holds a lone surrogate '\\ud800'"),
        ('"a\\0"', "the text holds a NUL character"),
        ("18446744073709551616", f"the integer 18446744073709551616 {RANGE}"),
        (".inf", "the number inf is not finite"),
        ("[" * 70 + "]" * 70, "the value is nested deeper than 64 levels"),
    ],
    ids=["lone-surrogate", "nul", "2**64", "infinity", "70-levels"],
)
def test_a_tree_file_value_the_store_cannot_keep_is_a_problem_at_its_line(
    description: str, message: str
) -> None:
    parsed = parse_yaml(TREE.format(description=description), file="values.yaml")

    assert [(p.message, p.line) for p in parsed.problems] == [(message, 4)]
