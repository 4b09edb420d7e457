"""Ruby expressions as Jinja expressions: a recursive-descent parser that emits text.

Nothing is evaluated. Each method returns a :class:`Value`: its Jinja text and what Ruby type
it has (``str``, ``int``, ``float``, ``bool``, ``nil``, or ``any`` when only the data knows),
because Ruby and Jinja part ways on types: only ``nil`` and ``false`` are false in Ruby (``""``
and ``0`` are true), ``7 / 2`` is 3, ``nil.to_s`` is ``""``. A value is tested with the
``truthy`` test unless it is known to be a boolean, integers are divided with ``//``, and the
conversions are the filters of ``engine.tree.ruby_values``. Compound output is parenthesised,
so Jinja's precedence never regroups it.

Precedence, highest first, as in Ruby: method calls and indexing; ``!``; ``* / %``; ``+ -``;
``< <= > >=``; ``== !=``; ``&&``; ``||``; ``? :``; the ``rescue`` modifier; ``not``;
``and`` / ``or``. Assignments and control flow are statements (``engine.kinetic.ruby.erb``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from engine.kinetic.ruby import bindings
from engine.kinetic.ruby.bindings import jinja_string
from engine.kinetic.ruby.tokens import Token, Untranslatable, tokens

_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "s": " ", "e": "\x1b"}
_ORDER = ("<", "<=", ">", ">=")
_NUMBERS = frozenset({"int", "float"})
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
_T = TypeVar("_T")


@dataclass(frozen=True)
class Value:
    """A translated expression: Jinja ``text``, Ruby ``kind``, and ``truth``, its Ruby truth as
    a Jinja boolean when that is simpler than testing ``text`` (``a || b`` of comparisons)."""

    text: str
    kind: str
    truth: str | None = None
    parsed: str | None = None  # for JSON.parse(x): x, so that "rescue" can give a default

    def boolean(self) -> str:
        """Jinja text that is true exactly when Ruby counts this value as true."""
        if self.truth is not None:
            return self.truth
        if self.kind == "bool":
            return self.text
        if self.kind == "nil":
            return "false"
        return f"({self.text} is truthy)"

    def printed(self) -> str:
        """Jinja text that prints what ``<%= value %>`` prints in Ruby."""
        return self.text if self.kind == "str" else f"{self.text}|to_s"


def ruby_string(token: Token) -> str:
    """A single- or double-quoted string's value; interpolation is refused (parse it first)."""
    body = token.text[1:-1]
    if token.kind == "sq":  # single quotes: only \' and \\ are escapes
        return re.sub(r"\\([\\'])", r"\1", body)

    def unescape(match: re.Match[str]) -> str:
        return _DQ_ESCAPES.get(match.group(1), match.group(1))

    return re.sub(r"\\(.)", unescape, body, flags=re.DOTALL)


def _merged(*kinds: str) -> str:
    return kinds[0] if len(set(kinds)) == 1 else "any"


@dataclass
class Parser:
    """One statement's expression. ``local`` maps a Ruby local variable to its value so far."""

    tokens: list[Token]
    local: Mapping[str, Value] = field(default_factory=dict)
    index: int = 0

    # -- the token stream ----------------------------------------------------------------------

    def peek(self, *texts: str) -> bool:
        token = self.tokens[self.index] if self.index < len(self.tokens) else None
        return token is not None and token.kind in ("op", "name") and token.text in texts

    def at_end(self) -> bool:
        return self.index >= len(self.tokens)

    def take(self) -> Token:
        if self.index >= len(self.tokens):
            raise Untranslatable("the expression ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise Untranslatable(f"expected {text!r}, found {token.text!r}")

    def done(self) -> None:
        if self.index < len(self.tokens):
            raise Untranslatable(f"{self.tokens[self.index].text!r} is not translated")

    # -- precedence levels, lowest first ---------------------------------------------------------

    def expression(self) -> Value:
        """``and`` / ``or``: one level in Ruby, the lowest, left to right."""
        value = self.keyword_not()
        while self.peek("and", "or"):
            operator = self.take().text
            value = self._logical(value, self.keyword_not(), operator == "and")
        return value

    def keyword_not(self) -> Value:
        if self.peek("not"):
            self.take()
            inner = self.keyword_not()
            return Value(f"(not {inner.boolean()})", "bool")
        return self.rescued()

    def rescued(self) -> Value:
        """``JSON.parse(x) rescue default``: the one rescue translated, as fromjson's default."""
        value = self.ternary()
        if self.peek("rescue"):
            self.take()
            default = self.ternary()
            if value.parsed is None:
                raise Untranslatable("rescue of anything but JSON.parse(...)")
            text = f"({value.parsed}|fromjson({default.text}))"
            return Value(text, _merged("any", default.kind))
        return value

    def ternary(self) -> Value:
        condition = self.disjunction()
        if not self.peek("?"):
            return condition
        self.take()
        then = self.ternary()
        self.expect(":")
        otherwise = self.ternary()
        text = f"({then.text} if {condition.boolean()} else {otherwise.text})"
        return Value(text, _merged(then.kind, otherwise.kind))

    def disjunction(self) -> Value:
        value = self.conjunction()
        while self.peek("||"):
            self.take()
            value = self._logical(value, self.conjunction(), False)
        return value

    def conjunction(self) -> Value:
        value = self.equality()
        while self.peek("&&"):
            self.take()
            value = self._logical(value, self.equality(), True)
        return value

    def _logical(self, left: Value, right: Value, both: bool) -> Value:
        """``a && b`` / ``a || b``: Ruby gives one of the operands, not a boolean."""
        operator = "and" if both else "or"
        truth = f"({left.boolean()} {operator} {right.boolean()})"
        if left.kind == "bool" and right.kind == "bool":
            return Value(truth, "bool")
        test = left.boolean()
        if both:
            text = f"({right.text} if {test} else {left.text})"
        else:
            text = f"({left.text} if {test} else {right.text})"
        return Value(text, _merged(left.kind, right.kind), truth)

    def equality(self) -> Value:
        left = self.order()
        if not self.peek("==", "!=", "=~"):
            return left
        operator = self.take().text
        if operator == "=~":
            raise Untranslatable("regular expressions (=~) are not translated")
        right = self.order()
        if self.peek("==", "!=", "=~"):
            raise Untranslatable("chained comparisons")
        if "nil" in (left.kind, right.kind):
            other = right if left.kind == "nil" else left
            test = "is nil" if operator == "==" else "is not nil"
            return Value(f"({other.text} {test})", "bool")
        return Value(f"{left.text} {operator} {right.text}", "bool")

    def order(self) -> Value:
        left = self.additive()
        if not self.peek(*_ORDER):
            return left
        operator = self.take().text
        right = self.additive()
        if self.peek(*_ORDER):
            raise Untranslatable("chained comparisons")
        return Value(f"{left.text} {operator} {right.text}", "bool")

    def additive(self) -> Value:
        value = self.multiplicative()
        while self.peek("+", "-"):
            operator = self.take().text
            right = self.multiplicative()
            if operator == "+" and "str" in (value.kind, right.kind):
                if not {value.kind, right.kind} <= {"str"}:
                    raise Untranslatable("+ of a text and a value that may not be one")
                value = Value(f"({value.text} ~ {right.text})", "str")
            elif value.kind in _NUMBERS and right.kind in _NUMBERS:
                kind = "int" if value.kind == right.kind == "int" else "float"
                value = Value(f"({value.text} {operator} {right.text})", kind)
            else:
                raise Untranslatable(f"{operator} on values whose type is not known")
        return value

    def multiplicative(self) -> Value:
        value = self.unary()
        while self.peek("*", "/", "%"):
            operator = self.take().text
            right = self.unary()
            if value.kind not in _NUMBERS or right.kind not in _NUMBERS:
                raise Untranslatable(f"{operator} on values that are not both numbers")
            ints = value.kind == right.kind == "int"
            jinja = "//" if operator == "/" and ints else operator
            value = Value(f"({value.text} {jinja} {right.text})", "int" if ints else "float")
        return value

    def unary(self) -> Value:
        """``!`` binds tighter than a comparison and looser than a method call, as in Ruby."""
        if self.peek("!"):
            self.take()
            return Value(f"(not {self.unary().boolean()})", "bool")
        if self.peek("-"):
            self.take()
            value = self.unary()
            if value.kind not in _NUMBERS:
                raise Untranslatable("unary - on a value that is not a number")
            return Value(f"(-{value.text})", value.kind)
        return self.postfix(self.primary())

    # -- operands --------------------------------------------------------------------------------

    def primary(self) -> Value:
        token = self.take()
        if token.kind == "op" and token.text == "(":
            inner = self.expression()
            self.expect(")")
            return Value(f"({inner.text})", inner.kind, inner.truth, inner.parsed)
        if token.kind == "ivar":
            return self.binding(token.text)
        if token.kind in ("sq", "dq"):
            return self.string(token)
        if token.kind == "number":
            number = token.text.replace("_", "")
            return Value(number, "float" if "." in number else "int")
        if token.kind == "const":
            return self.constant_call(token.text)
        if token.kind == "op" and token.text == "[":
            items = self.listed("]", self.expression)
            return Value("[" + ", ".join(item.text for item in items) + "]", "any")
        if token.kind == "op" and token.text == "{":
            pairs = self.listed("}", self.pair)
            return Value("{" + ", ".join(pairs) + "}", "any")
        if token.kind == "name":
            return self.name(token.text)
        raise Untranslatable(f"{token.text!r} is not a value translated")

    def listed(self, closing: str, item: Callable[[], _T]) -> list[_T]:
        """Items separated by commas up to ``closing`` (a trailing comma allowed, as in Ruby)."""
        found: list[_T] = []
        while not self.peek(closing):
            found.append(item())
            if not self.peek(","):
                break
            self.take()
        self.expect(closing)
        return found

    def pair(self) -> str:
        """One ``key => value`` of a hash literal, or ``key: value`` (a symbol key, which
        to_json writes as its name)."""
        token = self.tokens[self.index] if not self.at_end() else None
        following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
        if token and token.kind == "name" and following and following.text == ":":
            self.index += 2
            key = jinja_string(token.text)
        else:
            key = self.ternary().text
            self.expect("=>")
        return f"{key}: {self.ternary().text}"

    def name(self, name: str) -> Value:
        if name in ("true", "false"):
            return Value(name, "bool")
        if name == "nil":
            return Value("none", "nil")
        if name in self.local:
            return self.local[name]
        raise Untranslatable(f"{name!r} is not a variable of this template")

    def binding(self, variable: str) -> Value:
        if not bindings.known(variable):
            bindings.whole(variable)  # raises, naming the binding
        if not self.peek("["):
            return Value(bindings.whole(variable), "any")
        self.take()
        key = self.take()
        if key.kind not in ("sq", "dq") or "#{" in key.text:
            raise Untranslatable(f"{variable} is indexed by {key.text!r}, not a string")
        self.expect("]")
        text = bindings.keyed(variable, ruby_string(key))
        if variable in ("@results", "@variables") and not self.peek("["):
            return Value(text, "any")  # a node's results, a mapping
        if variable in ("@results", "@variables"):
            self.take()
            name = self.take()
            if name.kind not in ("sq", "dq") or "#{" in name.text:
                raise Untranslatable(f"{variable} is indexed by {name.text!r}, not a string")
            self.expect("]")
            text = f"{text}[{jinja_string(ruby_string(name))}]"
        texts = variable not in ("@run", "@task", "@trigger", "@error")  # those hold other values
        return Value(text, "str" if texts else "any")

    def string(self, token: Token) -> Value:
        if token.kind == "sq" or "#{" not in token.text:
            return Value(jinja_string(ruby_string(token)), "str")
        return self.interpolated(token.text[1:-1])

    def interpolated(self, body: str) -> Value:
        """``"a #{x} b"`` as ``('a ' ~ (x|to_s) ~ ' b')``; what a piece holds is parsed alone."""
        parts, position = [], 0
        for start in (m.start() for m in re.finditer(r"#\{", body)):
            if start < position:
                continue
            end = _closing_brace(body, start + 2)
            literal = ruby_string(Token("dq", '"' + body[position:start] + '"'))
            if literal:
                parts.append(jinja_string(literal))
            inner = Parser(tokens(body[start + 2 : end]), self.local)
            value = inner.expression()
            inner.done()
            parts.append(value.text if value.kind == "str" else f"({value.printed()})")
            position = end + 1
        rest = ruby_string(Token("dq", '"' + body[position:] + '"'))
        if rest:
            parts.append(jinja_string(rest))
        return Value("(" + " ~ ".join(parts or ["''"]) + ")", "str")

    def constant_call(self, constant: str) -> Value:
        """``JSON.parse(x)``, ``JSON.generate(x)``, ``ERB::Util.url_encode(x)``."""
        self.expect(".")
        called = f"{constant}.{self.take().text}"
        if self.peek("("):
            self.take()
            argument = self.expression()
            self.expect(")")
        else:  # JSON.parse @x: a call without parentheses takes the rest as its argument
            argument = self.ternary()
        if called == "JSON.parse":
            return Value(f"({argument.text}|fromjson)", "any", parsed=argument.text)
        if called in _JSON_WRITE:
            return Value(f"({argument.text}|to_json)", "str")
        if called in _URL_ENCODE:
            return Value(f"({argument.text}|{_URL_ENCODE[called]})", "str")
        raise Untranslatable(f"{called} is not translated")

    def postfix(self, value: Value) -> Value:
        """Indexing and method calls, left to right."""
        while self.peek(".", "["):
            if self.take().text == "[":
                key = self.expression()
                self.expect("]")
                value = Value(f"{value.text}[{key.text}]", "any")
            else:
                value = self.method(value, self.take().text)
        return value

    def arguments(self) -> list[Value]:
        if not self.peek("("):
            return []
        self.take()
        found = [] if self.peek(")") else [self.expression()]
        while self.peek(","):
            self.take()
            found.append(self.expression())
        self.expect(")")
        return found

    def method(self, value: Value, method: str) -> Value:
        if method in ("is_a?", "kind_of?"):
            return self.class_test(value)
        arguments = self.arguments()
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
            return self.replaced(value, method, arguments)
        if method == "join" and count <= 1:
            separator = arguments[0].text if arguments else "''"
            return Value(f"({value.text}|map('to_s')|join({separator}))", "str")
        raise Untranslatable(f"the method .{method} is not translated")

    def class_test(self, value: Value) -> Value:
        """``x.is_a?(Hash)``: a Jinja test of what the value holds."""
        self.expect("(")
        name = self.take()
        self.expect(")")
        if name.kind != "const" or name.text not in _CLASSES:
            raise Untranslatable(f"is_a?({name.text}) is not translated")
        return Value("(" + _CLASSES[name.text].format(value.text) + ")", "bool")

    def replaced(self, value: Value, method: str, arguments: list[Value]) -> Value:
        pattern, replacement = arguments
        if pattern.kind != "str" or replacement.kind != "str" or not pattern.text.startswith("'"):
            raise Untranslatable(f".{method} with a pattern that is not a literal text")
        if "\\" in replacement.text:  # Ruby reads \1, \& and \\ in the replacement text
            raise Untranslatable(f".{method} with backslashes in the replacement")
        count = ", 1" if method == "sub" else ""
        return Value(f"({value.text}|replace({pattern.text}, {replacement.text}{count}))", "str")


def _closing_brace(body: str, start: int) -> int:
    """The ``}`` that closes an interpolation opened just before ``start``."""
    depth, index, quote = 1, start, ""
    while index < len(body):
        char = body[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise Untranslatable("an interpolation #{ that is never closed")


__all__ = ["Parser", "Value", "ruby_string"]
