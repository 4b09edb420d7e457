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
from engine.kinetic.ruby.methods import class_test, constant_call, method_call
from engine.kinetic.ruby.tokens import Token, Untranslatable, tokens
from engine.kinetic.ruby.values import Value, merged

_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "s": " ", "e": "\x1b"}
_ORDER = ("<", "<=", ">", ">=")
_NUMBERS = frozenset({"int", "float"})
_T = TypeVar("_T")


def ruby_string(token: Token) -> str:
    """A single- or double-quoted string's value; interpolation is refused (parse it first)."""
    body = token.text[1:-1]
    if token.kind == "sq":  # single quotes: only \' and \\ are escapes
        return re.sub(r"\\([\\'])", r"\1", body)

    def unescape(match: re.Match[str]) -> str:
        return _DQ_ESCAPES.get(match.group(1), match.group(1))

    return re.sub(r"\\(.)", unescape, body, flags=re.DOTALL)


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
            return Value(text, merged("any", default.kind))
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
        return Value(text, merged(then.kind, otherwise.kind))

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
        return Value(text, merged(left.kind, right.kind), truth)

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
        """``JSON.parse(x)`` and the like; without parentheses the rest is the argument."""
        self.expect(".")
        called = f"{constant}.{self.take().text}"
        if self.peek("("):
            self.take()
            argument = self.expression()
            self.expect(")")
        else:
            argument = self.ternary()
        return constant_call(called, argument)

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
            self.expect("(")
            name = self.take()
            self.expect(")")
            return class_test(value, name)
        return method_call(value, method, self.arguments())


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
