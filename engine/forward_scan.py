"""Reading text from outside front to back, with the work it takes counted.

A check that searches a caller's document with a backtracking regex, or that searches again
from the same place for each candidate it meets, can take time quadratic (or worse) in the
document: an unclosed ``<!--`` repeated a million times made one such regex run for hours. The
checks that read raw client text before a real parser does (the results XML repair and prolog
check, printf-style format strings in templates) are written as a series of searches over a
:class:`ForwardScan`, each starting where the scan has got to; so they read each character a
bounded number of times whatever the text holds.

``examined`` adds up the ranges the searches covered. It is the measure of a check's work that
does not depend on the machine: a test compares it on inputs of size n and 8n.
"""

from __future__ import annotations

import re
from typing import AnyStr, Generic


class ForwardScan(Generic[AnyStr]):
    """One text (``str`` or ``bytes``) and the characters its searches have examined.

    Each method counts what it may have read: a search up to the end of its match, or its whole
    range when nothing matched. Callers keep the positions they search from moving forward.
    """

    __slots__ = ("data", "examined")

    def __init__(self, data: AnyStr) -> None:
        self.data: AnyStr = data
        self.examined = 0

    def find(self, needle: AnyStr, start: int) -> int:
        """Where ``needle`` next occurs at or after ``start``; -1 if it does not."""
        found = self.data.find(needle, start)
        self.examined += (len(self.data) if found < 0 else found + len(needle)) - start
        return found

    def at(self, prefix: AnyStr, position: int) -> bool:
        """Whether the text has ``prefix`` at ``position``."""
        self.examined += len(prefix)
        return self.data.startswith(prefix, position)

    def search(self, pattern: re.Pattern[AnyStr], start: int) -> re.Match[AnyStr] | None:
        """``pattern``'s next match at or after ``start`` (a pattern of literal alternatives,
        which tries each position a bounded number of times)."""
        found = pattern.search(self.data, start)
        self.examined += (len(self.data) if found is None else found.end()) - start
        return found

    def match(
        self, pattern: re.Pattern[AnyStr], position: int, end: int | None = None
    ) -> re.Match[AnyStr] | None:
        """``pattern`` matched at ``position``, reading nothing at or after ``end``.

        Only for patterns that read each character of their range a bounded number of times
        (no nested quantifiers, none adjacent over the same characters), so that the range
        bounds the work.
        """
        stop = len(self.data) if end is None else end
        found = pattern.match(self.data, position, stop)
        self.examined += (stop if found is None else found.end()) - position
        return found


__all__ = ["ForwardScan"]
