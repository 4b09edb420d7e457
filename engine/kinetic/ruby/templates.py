"""ERB templates and Ruby conditions as Jinja, statement by statement.

An ERB tag holds statements separated by ``;`` or line breaks. ``<%= a = x; b %>`` sets ``a``
and prints ``b``; ``<% if c %> ... <% elsif d %> ... <% else %> ... <% end %>`` (and
``unless``) becomes Jinja's ``{% if %}`` blocks; ``<% a = x %>`` becomes ``{% set %}``. ERB's
trim markers keep their meaning: ``-%>`` drops the line break right after the tag, ``<%-`` the
indentation before it. In a condition (one Jinja expression) a local variable is replaced by
the expression it was given.

What fails is kept as written and reported as a :class:`Kept`: an output tag alone (the rest of
the template still translates), but a control tag or an assignment the whole template, since
translating the rest without it would change what it prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.kinetic.ruby.bindings import KINETIC_SCOPE, jinja_string
from engine.kinetic.ruby.parser import Parser
from engine.kinetic.ruby.tokens import Token, Untranslatable, tokens
from engine.kinetic.ruby.values import Value

_ERB_TAG = re.compile(r"<%(?P<kind>=|#|-|%)?(?P<code>.*?)(?P<end>-?%>)", re.DOTALL)
_WRAPPED = re.compile(r"\A\s*<%=?-?(?P<code>.*?)-?%>\s*\Z", re.DOTALL)
_JINJA_MARKUP = ("{{", "{%", "{#")
# Names a Ruby local must not take in Jinja: the scope's names and Jinja's own words.
_TAKEN = frozenset({
    "results", "inputs", "values", "source", "run", "task", "trigger", "iterations",
    KINETIC_SCOPE, "loop", "range", "dict", "true", "false", "none", "True", "False", "None",
    "and", "or", "not", "in", "is", "if", "else", "self", "varargs", "kwargs",
})  # fmt: skip


@dataclass(frozen=True)
class Kept:
    """A piece of ERB that was kept as written, and why it was not translated."""

    code: str
    reason: str


class _KeptWhole(Exception):
    """A control tag or an assignment failed: the template is kept as a whole."""

    def __init__(self, kept: Kept) -> None:
        super().__init__(kept.reason)
        self.kept = kept


def _statements(code: str) -> list[list[Token]]:
    found: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens(code):
        if token.kind == "op" and token.text == ";":
            if current:
                found.append(current)
            current = []
        else:
            current.append(token)
    if current:
        found.append(current)
    return found


def _expression(statement: list[Token], local: dict[str, Value]) -> Value:
    """One statement's value; ``x if c`` / ``x unless c`` is ``x`` or nil."""
    parser = Parser(statement, local)
    value = parser.expression()
    if parser.peek("if", "unless"):
        negated = parser.take().text == "unless"
        test = parser.expression().boolean()
        test = f"not {test}" if negated else test
        value = Value(f"({value.text} if {test} else none)", "any")
    parser.done()
    return value


def _assignment(statement: list[Token]) -> str | None:
    """The local variable a statement assigns to (``name = ...``), if it is an assignment."""
    if len(statement) > 2 and statement[0].kind == "name" and statement[1].text == "=":
        return statement[0].text
    return None


def _jinja_name(name: str) -> str:
    return name + "_" if name in _TAKEN else name


def translate_condition(value: str) -> str | None:
    """A connector value as a Jinja condition; None when it is empty (the connector always fires).

    Locals assigned before the last statement are replaced by their expressions. Raises
    :class:`Untranslatable` for Ruby outside the subset.
    """
    wrapped = _WRAPPED.match(value)
    code = wrapped.group("code") if wrapped else value
    statements = _statements(code)
    if not statements:
        return None
    local: dict[str, Value] = {}
    for statement in statements[:-1]:
        name = _assignment(statement)
        if name is None:
            raise Untranslatable("a statement before the last that is not an assignment")
        given = _expression(statement[2:], local)
        local[name] = Value(f"({given.text})", given.kind, given.truth, given.parsed)
    return _outer_parentheses_dropped(_expression(statements[-1], local).boolean())


def _outer_parentheses_dropped(text: str) -> str:
    """``(a and b)`` as ``a and b``, when the first parenthesis closes at the very end.

    Only the output of this package is scanned: its strings are single-quoted with backslash
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
    """The Ruby inside ``<%= ... %>`` as a Jinja expression printing what Ruby prints."""
    return _expression(tokens(code), {}).printed()


def _literal(text: str) -> str:
    """Text that Jinja prints as written: escaped only if it holds Jinja markup."""
    if any(mark in text for mark in _JINJA_MARKUP):
        return "{{ " + jinja_string(text) + " }}"
    return text


def _pieces(template: str) -> Iterator[tuple[str, re.Match[str] | None]]:
    """Text and tags in turn, with ERB's trim markers applied to the text around the tags."""
    position, trim_next = 0, False
    for match in _ERB_TAG.finditer(template):
        text = template[position : match.start()]
        if trim_next and text.startswith(("\n", "\r\n")):
            text = text[text.index("\n") + 1 :]
        if match.group("kind") == "-":  # <%- drops the indentation before it on its line
            stripped = text.rstrip(" \t")
            if not stripped or stripped.endswith("\n"):
                text = stripped
        yield text, None
        yield match.group(0), match
        position, trim_next = match.end(), match.group("end") == "-%>"
    text = template[position:]
    if trim_next and text.startswith(("\n", "\r\n")):
        text = text[text.index("\n") + 1 :]
    yield text, None


class _Template:
    """One template's translation: the Jinja pieces, the locals set so far, open blocks."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.kept: list[Kept] = []
        self.local: dict[str, Value] = {}
        self.blocks = 0

    def output_tag(self, tag: str, code: str) -> None:
        """Statements, then the value printed; an ``if`` opened in the tag must end in it."""
        blocks, local = self.blocks, dict(self.local)
        try:
            statements = _statements(code)
            if not statements:
                return
            pieces = [self.statement(s) for s in statements[:-1]]
            last = statements[-1]
            if (name := _assignment(last)) is not None:
                pieces.append(self.assign(last))
                last = [Token("name", name)]
            if self.blocks != blocks:
                raise Untranslatable("an if in a <%= %> tag that does not end before the value")
            pieces.append("{{ " + _expression(last, self.local).printed() + " }}")
            self.out.extend(pieces)
        except Untranslatable as exc:
            self.blocks, self.local = blocks, local
            self.kept.append(Kept(tag, exc.reason))
            self.out.append(_literal(tag))

    def code_tag(self, tag: str, code: str) -> None:
        try:
            for statement in _statements(code):
                self.out.append(self.statement(statement))
        except Untranslatable as exc:
            raise _KeptWhole(Kept(tag, exc.reason)) from None

    def assign(self, statement: list[Token]) -> str:
        """``{% set %}`` for an assignment; nothing for an expression, whose value ERB drops
        (what is translated has no side effects, so dropping it changes nothing)."""
        name = _assignment(statement)
        if name is None:
            _expression(statement, self.local)  # translatable, or the tag is kept
            return ""
        value = _expression(statement[2:], self.local)
        jinja = _jinja_name(name)
        self.local[name] = Value(jinja, value.kind)
        return "{% set " + jinja + " = " + value.text + " %}"

    def statement(self, statement: list[Token]) -> str:
        first = statement[0].text if statement[0].kind == "name" else ""
        if statement[-1].kind == "name" and statement[-1].text == "then":
            statement = statement[:-1]
        if first in ("if", "elsif", "unless"):
            test = _expression(statement[1:], self.local).boolean()
            if first == "unless":
                test = f"not {test}"
            if first == "elsif":
                if not self.blocks:
                    raise Untranslatable("elsif outside an if")
                return "{% elif " + test + " %}"
            self.blocks += 1
            return "{% if " + test + " %}"
        if first in ("else", "end") and len(statement) == 1:
            if not self.blocks:
                raise Untranslatable(f"{first} outside an if")
            if first == "else":
                return "{% else %}"
            self.blocks -= 1
            return "{% endif %}"
        return self.assign(statement)


def translate_template(template: str) -> tuple[str, list[Kept]]:
    """An ERB parameter as a Jinja template, and the tags that were kept as written.

    ``<%# comment %>`` prints nothing and ``<%%`` is a literal ``<%``, as in ERB; an unclosed
    ``<%`` is kept as text.
    """
    work = _Template()
    try:
        for text, match in _pieces(template):
            if match is None:
                if "<%" in text:  # an opening tag with no end
                    work.kept.append(Kept(text[text.index("<%") :], "an ERB tag never closed"))
                work.out.append(_literal(text))
            elif match.group("kind") == "%":
                work.out.append(_literal("<%" + match.group("code") + match.group("end")))
            elif match.group("kind") == "#":
                continue  # an ERB comment prints nothing
            elif match.group("kind") == "=":
                work.output_tag(match.group(0), match.group("code"))
            else:
                work.code_tag(match.group(0), match.group("code"))
        if work.blocks:
            raise _KeptWhole(Kept(template, "an <% if %> without its <% end %>"))
    except _KeptWhole as whole:
        reason = f"{whole.kept.reason} (so the whole template is kept)"
        return _literal(template), [Kept(whole.kept.code, reason)]
    return "".join(work.out), work.kept


__all__ = [
    "Kept",
    "Untranslatable",
    "translate_condition",
    "translate_template",
    "translate_value",
]
