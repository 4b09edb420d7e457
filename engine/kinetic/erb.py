"""Translate the Ruby a Kinetic export carries (ERB parameters, connector values) to Jinja2.

Kinetic writes node parameters as ERB (``Dear <%= @results['Lookup']['Name'] %>``) and connector
conditions as plain Ruby (``@results['Review']['Status'] == 'Approved'``, sometimes wrapped in
``<%= ... %>``). Only a small, well-understood subset is translated, by a tokenizer and a
recursive-descent parser that emit Jinja2 text, never by evaluating anything:

- look-ups ``@results['Node']['Name']``, ``@inputs['X']``, ``@values['X']`` and
  ``@source['Name' | 'Group' | 'Id' | 'Data']``; string, number, ``true``/``false``/``nil``
  literals; the methods ``to_s``, ``to_i``, ``to_f``, ``strip``, ``downcase``, ``upcase``,
  ``nil?``, ``empty?`` and ``include?(x)``;
- in conditions, comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) joined by
  ``&&``, ``||``, ``!``, ``and``, ``or``, ``not`` and parentheses, with Ruby's precedence
  made explicit by parentheses in the output.

A condition must be a comparison (or a boolean combination of them): Ruby treats ``""`` and
``0`` as true and Jinja does not, so a bare value as a condition would change meaning; it is
kept instead. Everything outside the subset raises :class:`Untranslatable`, and the caller keeps
the original text and reports it. Kept ERB inside a parameter is escaped so that Jinja prints it
as written rather than failing on a stray ``{{``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ivar>@[A-Za-z_]\w*)
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<sq>'(?:[^'\\]|\\.)*')
    | (?P<dq>"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,])
    | (?P<name>[A-Za-z_]\w*\??)
    )""",
    re.VERBOSE | re.DOTALL,
)
_ERB_TAG = re.compile(r"<%(?P<kind>=|#|-|%)?(?P<code>.*?)(?P<end>-?%>)", re.DOTALL)
_WRAPPED = re.compile(r"\A\s*<%=?-?(?P<code>.*?)-?%>\s*\Z", re.DOTALL)
_JINJA_MARKUP = ("{{", "{%", "{#")
_COMPARISONS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_LOOKUP_DEPTH = {"@results": 2, "@inputs": 1, "@values": 1, "@source": 1}
_SOURCE_KEYS = {"Name": "name", "Group": "group", "Id": "id", "Data": "data"}
_FILTERS = {"to_s": "string", "to_i": "int", "to_f": "float", "strip": "trim",
            "downcase": "lower", "upcase": "upper"}  # fmt: skip
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "s": " ", "e": "\x1b"}


class Untranslatable(Exception):
    """Ruby outside the subset this module translates; ``reason`` says what was met."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(code: str) -> list[_Token]:
    tokens, position, code = [], 0, code.strip()
    while position < len(code):
        match = _TOKEN.match(code, position)
        if match is None or match.lastgroup is None:
            bad = code[position:].strip()[:20]
            raise Untranslatable(f"{bad!r} is not part of the simple Ruby translated")
        tokens.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def jinja_string(text: str) -> str:
    """A Jinja string literal that evaluates to ``text`` exactly."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def _ruby_string(token: _Token) -> str:
    body = token.text[1:-1]
    if token.kind == "sq":  # single quotes: only \' and \\ are escapes
        return re.sub(r"\\([\\'])", r"\1", body)
    if "#{" in body:
        raise Untranslatable(f"string interpolation in {token.text}")

    def unescape(match: re.Match[str]) -> str:
        char = match.group(1)
        return _DQ_ESCAPES.get(char, char)

    return re.sub(r"\\(.)", unescape, body, flags=re.DOTALL)


@dataclass
class _Parser:
    """One expression; each method returns (Jinja text, whether the value is a boolean)."""

    tokens: list[_Token]
    index: int = 0
    seen: list[str] = field(default_factory=list)

    def peek(self, *texts: str) -> bool:
        token = self.tokens[self.index] if self.index < len(self.tokens) else None
        return token is not None and token.kind in ("op", "name") and token.text in texts

    def take(self) -> _Token:
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

    def keywords(self) -> tuple[str, bool]:
        """``and`` / ``or``: one precedence level in Ruby, lowest of all, left to right."""
        text, boolean = self.keyword_not()
        while self.peek("and", "or"):
            operator = self.take().text
            right, right_bool = self.keyword_not()
            _need_bool(boolean and right_bool, operator)
            text = f"({text} {operator} {right})"
        return text, boolean

    def keyword_not(self) -> tuple[str, bool]:
        if self.peek("not"):
            self.take()
            text, boolean = self.keyword_not()
            _need_bool(boolean, "not")
            return f"(not {text})", True
        return self.disjunction()

    def disjunction(self) -> tuple[str, bool]:
        text, boolean = self.conjunction()
        while self.peek("||"):
            self.take()
            right, right_bool = self.conjunction()
            _need_bool(boolean and right_bool, "||")
            text = f"({text} or {right})"
        return text, boolean

    def conjunction(self) -> tuple[str, bool]:
        text, boolean = self.comparison()
        while self.peek("&&"):
            self.take()
            right, right_bool = self.comparison()
            _need_bool(boolean and right_bool, "&&")
            text = f"({text} and {right})"
        return text, boolean

    def comparison(self) -> tuple[str, bool]:
        left, boolean = self.unary()
        if not self.peek(*_COMPARISONS):
            return left, boolean
        operator = self.take().text
        right, _ = self.unary()
        if self.peek(*_COMPARISONS):
            raise Untranslatable("chained comparisons")
        return f"{left} {_COMPARISONS[operator]} {right}", True

    def unary(self) -> tuple[str, bool]:
        """``!`` binds tighter than a comparison and looser than a method call, as in Ruby."""
        if self.peek("!"):
            self.take()
            text, boolean = self.unary()
            _need_bool(boolean, "!")
            return f"(not {text})", True
        return self.operand()

    def operand(self) -> tuple[str, bool]:
        token = self.take()
        if token.text == "(" and token.kind == "op":
            text, boolean = self.keywords()
            self.expect(")")
            return self.methods(f"({text})", boolean)
        if token.kind == "ivar":
            return self.methods(self.lookup(token.text), False)
        if token.kind in ("sq", "dq"):
            return self.methods(jinja_string(_ruby_string(token)), False)
        if token.kind == "number":
            return self.methods(token.text, False)
        if token.kind == "name" and token.text in ("true", "false"):
            return token.text, True
        if token.kind == "name" and token.text == "nil":
            return "none", False
        raise Untranslatable(f"{token.text!r} is not a simple look-up or literal")

    def lookup(self, variable: str) -> str:
        depth = _LOOKUP_DEPTH.get(variable)
        if depth is None:
            raise Untranslatable(f"{variable} is not one of {', '.join(_LOOKUP_DEPTH)}")
        keys = []
        for _ in range(depth):
            self.expect("[")
            key = self.take()
            if key.kind not in ("sq", "dq"):
                raise Untranslatable(f"{variable} is indexed by {key.text!r}, not a string")
            keys.append(_ruby_string(key))
            self.expect("]")
        if variable == "@source":
            if keys[0] not in _SOURCE_KEYS:
                known = ", ".join(_SOURCE_KEYS)
                raise Untranslatable(f"@source[{keys[0]!r}] is not one of {known}")
            return f"source.{_SOURCE_KEYS[keys[0]]}"
        return variable[1:] + "".join(f"[{jinja_string(key)}]" for key in keys)

    def methods(self, text: str, boolean: bool) -> tuple[str, bool]:
        while self.peek("."):
            self.take()
            method = self.take().text
            if method in _FILTERS:
                text, boolean = f"{text}|{_FILTERS[method]}", False
            elif method == "nil?":
                text, boolean = f"({text} is none)", True
            elif method == "empty?":
                text, boolean = f"({text}|length == 0)", True
            elif method == "include?":
                self.expect("(")
                argument, _ = self.operand()
                self.expect(")")
                text, boolean = f"({argument} in {text})", True
            else:
                raise Untranslatable(f"the method .{method} is not translated")
        return text, boolean


def _need_bool(ok: bool, operator: str) -> None:
    if not ok:  # Ruby's truthiness of "" and 0 differs from Jinja's
        raise Untranslatable(f"{operator} on a value that is not a comparison")


def _parse(code: str) -> _Parser:
    tokens = _tokens(code)
    if not tokens:
        raise Untranslatable("empty Ruby code")
    return _Parser(tokens)


def translate_condition(value: str) -> str | None:
    """A connector value as a Jinja condition; None when it is empty (the connector always fires).

    Raises :class:`Untranslatable` for anything but comparisons of simple look-ups and literals.
    """
    wrapped = _WRAPPED.match(value)
    code = wrapped.group("code") if wrapped else value
    if not code.strip():
        return None
    parser = _parse(code)
    text, boolean = parser.keywords()
    parser.done()
    if not boolean:
        raise Untranslatable("a bare value as a condition (Ruby counts '' and 0 as true)")
    return _outer_parentheses_dropped(text)


def _outer_parentheses_dropped(text: str) -> str:
    """``(a and b)`` as ``a and b``, when the first parenthesis closes at the very end.

    Only the output of this module is scanned: its strings are single-quoted with backslash
    escapes, so a parenthesis inside one is skipped.
    """
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth, quoted, escaped = 0, False, False
    for index, char in enumerate(text):
        if quoted:
            escaped, quoted = (not escaped and char == "\\"), quoted and (escaped or char != "'")
        elif char == "'":
            quoted = True
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0 and index < len(text) - 1:
                return text  # the first parenthesis closes early: (a) and (b)
    return text[1:-1]


def translate_value(code: str) -> str:
    """The Ruby inside ``<%= ... %>`` as a Jinja expression (a value, not a condition)."""
    parser = _parse(code)
    text, _ = parser.operand()
    parser.done()
    return text


@dataclass(frozen=True)
class Kept:
    """A piece of ERB that was kept as written, and why it was not translated."""

    code: str
    reason: str


def _literal(text: str) -> str:
    """Text that Jinja prints as written: escaped only if it holds Jinja markup."""
    if any(mark in text for mark in _JINJA_MARKUP):
        return "{{ " + jinja_string(text) + " }}"
    return text


def _pieces(template: str) -> Iterator[tuple[str, re.Match[str] | None]]:
    position = 0
    for match in _ERB_TAG.finditer(template):
        yield template[position : match.start()], None
        yield match.group(0), match
        position = match.end()
    yield template[position:], None


def translate_template(template: str) -> tuple[str, list[Kept]]:
    """An ERB parameter as a Jinja template, and the tags that were kept as written.

    ``<%= look-up %>`` becomes ``{{ ... }}``; ``<%# comment %>`` and ``<%% `` (a literal
    ``<%``) keep their ERB meaning; any other tag, and an unclosed ``<%``, is kept as text.
    """
    out: list[str] = []
    kept: list[Kept] = []
    for text, match in _pieces(template):
        if match is None:
            if "<%" in text:  # an opening tag with no end
                kept.append(Kept(text[text.index("<%") :], "an ERB tag that is never closed"))
            out.append(_literal(text))
        elif match.group("kind") == "%":
            out.append(_literal("<%" + match.group("code") + match.group("end")))
        elif match.group("kind") == "#":
            continue  # an ERB comment prints nothing
        elif match.group("kind") != "=":
            kept.append(Kept(text, "Ruby code that is not a <%= ... %> look-up"))
            out.append(_literal(text))
        else:
            try:
                out.append("{{ " + translate_value(match.group("code")) + " }}")
            except Untranslatable as exc:
                kept.append(Kept(text, exc.reason))
                out.append(_literal(text))
    return "".join(out), kept


__all__ = [
    "Kept",
    "Untranslatable",
    "jinja_string",
    "translate_condition",
    "translate_template",
    "translate_value",
]
