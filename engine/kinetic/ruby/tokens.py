"""Ruby source as tokens, for the parser in ``engine.kinetic.ruby.parser``.

Only what the translated subset needs is recognised; anything else (a regular expression, a
block, a symbol) stops the tokenizer with :class:`Untranslatable` naming what it met. A line
break ends a statement, as in Ruby, unless the line cannot end there (inside brackets, after an
operator or a comma, or when the next line starts with ``.``: a method chain continued). A
``#`` comment runs to the end of its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""[ \t\r]*(?:
      (?P<comment>\#[^\n]*)
    | (?P<newline>\n)
    | (?P<ivar>@[A-Za-z_]\w*)
    | (?P<const>[A-Z]\w*(?:::[A-Z]\w*)*)
    | (?P<number>\d[\d_]*(?:\.\d[\d_]*)?)
    | (?P<sq>'(?:[^'\\]|\\.)*')
    | (?P<dq>"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|=~|=>|&&|\|\||[<>!()\[\].,?:;=+\-*/%{}])
    | (?P<name>[a-z_]\w*(?:[?!](?!=))?)
    )""",
    re.VERBOSE | re.DOTALL,
)
# After these a line break does not end the statement: the expression goes on.
_CONTINUES = frozenset({"(", "[", "{", ",", ".", "&&", "||", "+", "-", "*", "/", "%", "==",
                        "!=", "<", "<=", ">", ">=", "?", ":", "=", "!", "=>"})  # fmt: skip


class Untranslatable(Exception):
    """Ruby outside the subset translated; ``reason`` says what was met."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Token:
    kind: str  # ivar, const, number, sq, dq, op, name; ";" ends a statement (op)
    text: str


def tokens(code: str) -> list[Token]:
    """The tokens of ``code``; a line break that ends a statement is an ``op`` ``;``."""
    found: list[Token] = []
    depth, position, code = 0, 0, code.strip()
    while position < len(code):
        match = _TOKEN.match(code, position)
        if match is None or match.lastgroup is None:
            bad = code[position:].strip()[:20]
            raise Untranslatable(f"{bad!r} is not part of the Ruby translated")
        kind, text = match.lastgroup, match.group(match.lastgroup)
        position = match.end()
        if kind == "comment":
            continue
        if kind == "newline":
            rest = code[position:].lstrip()
            ends = depth == 0 and found and found[-1].text not in _CONTINUES
            if ends and not rest.startswith(".") and found[-1].text != ";":
                found.append(Token("op", ";"))
            continue
        if kind == "op" and text in "([{":
            depth += 1
        elif kind == "op" and text in ")]}":
            depth = max(depth - 1, 0)
        found.append(Token(kind, text))
    return found


__all__ = ["Token", "Untranslatable", "tokens"]
