"""What the parser gives for a Ruby expression: its Jinja text and its Ruby type."""

from __future__ import annotations

from dataclasses import dataclass


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


def merged(*kinds: str) -> str:
    """The kind of a value that is one of several: theirs if they agree, else ``any``."""
    return kinds[0] if len(set(kinds)) == 1 else "any"


__all__ = ["Value", "merged"]
