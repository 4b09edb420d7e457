"""What text operations in templates cost, found in time linear in the text.

The sandbox (``engine.tree.expressions``) estimates what an operation on a text would produce,
and the work it would take, before letting it run. The estimates read the text themselves, so
they must not be slower than what they guard: a printf-style template is read by one forward
scan, and ``wordwrap``'s work (quadratic in its longest word inside textwrap) is bounded from
one pass over the text's runs.
"""

from __future__ import annotations

import re
from typing import Any

from engine.forward_scan import ForwardScan

# What follows a printf-style conversion's "%" (and its "(key)"): flags, width, precision, type.
_CONVERSION = re.compile(r"([^a-zA-Z%]*)[a-zA-Z%]")
_RUN = re.compile(r"\s+|\S+")


def printf_specs(scan: ForwardScan[str]) -> list[str]:
    """The flags, width and precision of each conversion in a printf-style template.

    What ``re.findall(r"%(?:\\([^)]*\\))?([^a-zA-Z%]*)[a-zA-Z%]", text)`` finds, without its
    quadratic time on text such as ``"%(" * 100_000``, where each ``%(`` would search the rest
    of the text for a ``)``: the next ``)`` (and what follows it) is searched for once and
    remembered until the scan passes it, so every search starts where an earlier one stopped.
    """
    specs: list[str] = []
    close: int | None = None  # the first ")" after the last "(" it was searched from; -1: none
    after_close: re.Match[str] | None = None  # the conversion that follows that ")"
    percent = scan.find("%", 0)
    while percent >= 0:
        found = None
        if scan.at("(", percent + 1):
            if close is None or 0 <= close < percent + 2:
                close = scan.find(")", percent + 2)
                after_close = None if close < 0 else scan.match(_CONVERSION, close + 1)
            found = after_close
        if found is None:
            found = scan.match(_CONVERSION, percent + 1)
        if found is None:
            percent = scan.find("%", percent + 1)
        else:
            specs.append(found.group(1))
            percent = scan.find("%", found.end())
    return specs


def wrap_work(text: str, width: Any) -> int:
    """Bound the work of ``wordwrap``: textwrap cuts a chunk (a word, or a run of spaces) longer
    than the width a line at a time, copying the rest each time, so a long chunk costs its
    length squared over the width; in all, at most the length times the longest chunk over it.
    """
    longest = max(map(len, _RUN.findall(text)), default=0)
    return len(text) * longest // max(width if isinstance(width, int) else 1, 1)


__all__ = ["printf_specs", "wrap_work"]
