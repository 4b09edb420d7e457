"""Ruby's methods and module functions as Jinja: the filters and tests each one becomes.

The receiver and the arguments are already translated (``engine.kinetic.ruby.parser``); the
conversions Jinja lacks are treeflow's filters in ``engine.tree.ruby_values``.
"""

from __future__ import annotations

from engine.kinetic.ruby.tokens import Token, Untranslatable
from engine.kinetic.ruby.values import Value

# Ruby method -> (Jinja filter, the kind it gives); the receiver is any value.
_FILTERS = {"to_s": ("to_s", "str"), "to_i": ("to_i", "int"), "to_f": ("to_f", "float"),
            "strip": ("trim", "str"), "downcase": ("lower", "str"), "upcase": ("upper", "str"),
            "capitalize": ("capitalize", "str"), "length": ("length", "int"),
            "size": ("length", "int"), "count": ("length", "int"),
            "to_json": ("to_json", "str"), "first": ("first", "any"), "last": ("last", "any"),
            "keys": ("list", "any")}  # fmt: skip
# x.is_a?(Class): the Jinja test for each class a tree checks JSON values against.
_CLASSES = {"Hash": "{0} is mapping", "Array": "({0} is sequence and {0} is not string "
            "and {0} is not mapping)", "String": "{0} is string", "Integer": "{0} is integer",
            "Float": "{0} is float", "NilClass": "{0} is nil"}  # fmt: skip
_MEMBERSHIP = frozenset({"include?", "has_key?", "key?", "member?"})
_URL_ENCODE = {"ERB::Util.url_encode": "url_encode", "ERB::Util.u": "url_encode",
               "CGI.escape": "cgi_escape"}  # fmt: skip
_JSON_WRITE = frozenset({"JSON.generate", "JSON.dump"})


def method_call(value: Value, method: str, arguments: list[Value]) -> Value:
    """``value.method(arguments)`` as Jinja; raises Untranslatable for a method not listed."""
    count = len(arguments)
    if method in _FILTERS and count == 0:
        jinja, kind = _FILTERS[method]
        return Value(f"({value.text}|{jinja})", kind)
    if method == "nil?" and count == 0:
        return Value(f"({value.text} is nil)", "bool")
    if method == "empty?" and count == 0:
        return Value(f"(({value.text}|length) == 0)", "bool")
    if method in _MEMBERSHIP and count == 1:
        return Value(f"({arguments[0].text} in {value.text})", "bool")
    if method in ("start_with?", "end_with?") and count == 1:
        python = "startswith" if method == "start_with?" else "endswith"
        return Value(f"({value.text}|to_s).{python}({arguments[0].text})", "bool")
    if method == "split" and count <= 1:
        separator = f"({arguments[0].text})" if arguments else ""
        return Value(f"({value.text}|split{separator})", "any")
    if method == "merge" and count == 1:
        return Value(f"({value.text}|merge({arguments[0].text}))", "any")
    if method in ("delete_prefix", "delete_suffix") and count == 1:
        python = "removeprefix" if method == "delete_prefix" else "removesuffix"
        return Value(f"({value.text}|to_s).{python}({arguments[0].text})", "str")
    if method in ("gsub", "sub") and count == 2:
        return _replaced(value, method, arguments)
    if method == "join" and count <= 1:
        separator = arguments[0].text if arguments else "''"
        return Value(f"({value.text}|map('to_s')|join({separator}))", "str")
    raise Untranslatable(f"the method .{method} is not translated")


def class_test(value: Value, name: Token) -> Value:
    """``x.is_a?(Hash)``: a Jinja test of what the value holds."""
    if name.kind != "const" or name.text not in _CLASSES:
        raise Untranslatable(f"is_a?({name.text}) is not translated")
    return Value("(" + _CLASSES[name.text].format(value.text) + ")", "bool")


def _replaced(value: Value, method: str, arguments: list[Value]) -> Value:
    pattern, replacement = arguments
    if pattern.kind != "str" or replacement.kind != "str" or not pattern.text.startswith("'"):
        raise Untranslatable(f".{method} with a pattern that is not a literal text")
    if "\\" in replacement.text:  # Ruby reads \1, \& and \\ in the replacement text
        raise Untranslatable(f".{method} with backslashes in the replacement")
    count = ", 1" if method == "sub" else ""
    return Value(f"({value.text}|replace({pattern.text}, {replacement.text}{count}))", "str")


def constant_call(called: str, argument: Value) -> Value:
    """``JSON.parse(x)``, ``JSON.generate(x)``, ``ERB::Util.url_encode(x)``, ``CGI.escape(x)``."""
    if called == "JSON.parse":
        return Value(f"({argument.text}|fromjson)", "any", parsed=argument.text)
    if called in _JSON_WRITE:
        return Value(f"({argument.text}|to_json)", "str")
    if called in _URL_ENCODE:
        return Value(f"({argument.text}|{_URL_ENCODE[called]})", "str")
    raise Untranslatable(f"{called} is not translated")


__all__ = ["class_test", "constant_call", "method_call"]
