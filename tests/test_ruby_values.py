"""Ruby's conversions as treeflow's filters give what Ruby 3.1 gives (values from a Ruby run)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.tree import ruby_values
from engine.tree.ruby_values import RubyValueError

CASES = {
    "'12abc'.to_i": (ruby_values.to_i, "12abc", 12),
    "' -3_000x'.to_i": (ruby_values.to_i, " -3_000x", -3000),
    "'abc'.to_i": (ruby_values.to_i, "abc", 0),
    "nil.to_i": (ruby_values.to_i, None, 0),
    "12.9.to_i": (ruby_values.to_i, 12.9, 12),
    "'1e3'.to_f": (ruby_values.to_f, "1e3", 1000.0),
    "'.5'.to_f": (ruby_values.to_f, ".5", 0.5),
    "'1e'.to_f": (ruby_values.to_f, "1e", 1.0),
    "'2.5kg'.to_f": (ruby_values.to_f, "2.5kg", 2.5),
    "nil.to_f": (ruby_values.to_f, None, 0.0),
    "1e20.to_s": (ruby_values.to_s, 1e20, "1.0e+20"),
    "1.5e-7.to_s": (ruby_values.to_s, 1.5e-7, "1.5e-07"),
    "100.0.to_s": (ruby_values.to_s, 100.0, "100.0"),
    "nil.to_s": (ruby_values.to_s, None, ""),
    "true.to_s": (ruby_values.to_s, True, "true"),
    "a hash's to_s": (ruby_values.to_s, {"a": [1, None, "é"]}, '{"a"=>[1, nil, "é"]}'),
    "ERB::Util.url_encode": (ruby_values.url_encode, "a b&c/é~_.-", "a%20b%26c%2F%C3%A9~_.-"),
    "CGI.escape": (ruby_values.escape, "a b&c/é~", "a+b%26c%2F%C3%A9~"),
    "to_json": (
        ruby_values.to_json,
        {"a": "<é>/", "b": None, "c": [1, 2.5]},
        '{"a":"<é>/","b":null,"c":[1,2.5]}',
    ),
    "a text's to_json": (ruby_values.to_json, "x\ny\x01", '"x\\ny\\u0001"'),
    "'a,b,,'.split(',')": (lambda text: ruby_values.split(text, ","), "a,b,,", ["a", "b"]),
    "' a  b '.split": (ruby_values.split, " a  b ", ["a", "b"]),
}


@pytest.mark.parametrize(("convert", "value", "ruby"), CASES.values(), ids=CASES.keys())
def test_conversion_gives_what_ruby_gives(convert: Any, value: Any, ruby: Any) -> None:
    assert convert(value) == ruby


@pytest.mark.parametrize(
    ("convert", "value", "message"),
    [
        (ruby_values.to_i, True, "undefined method 'to_i' for true"),
        (ruby_values.from_json, None, "JSON.parse of nil"),
        (ruby_values.from_json, "{oops", "JSON.parse: Invalid JSON.parse"),
    ],
    ids=["true.to_i", "JSON.parse(nil)", "JSON.parse of bad JSON"],
)
def test_what_ruby_refuses_is_refused(convert: Any, value: Any, message: str) -> None:
    with pytest.raises(RubyValueError, match=message):
        convert(value)


def test_json_parse_rescued_gives_the_default() -> None:
    assert ruby_values.from_json("{oops", {}) == {}
    assert ruby_values.from_json('{"a": 1}', {}) == {"a": 1}
