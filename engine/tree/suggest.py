""" "Did you mean ...?" for a name that is not known: a tree, a handler id, an action.

``difflib.get_close_matches`` picks the known names closest to the one given (case ignored,
so ``retry task`` finds ``Retry Task``); the message part is empty when none is close, so a
caller can always append it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """The known names closest to ``name``, best first (at most ``limit``)."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(name.casefold(), by_folded, n=limit, cutoff=0.6)
    return [by_folded[match] for match in found]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest known name, else ``""``.

    One name only: a typo has one intended spelling, and a list of three reads as noise.
    """
    matches = close_matches(name, known, limit=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


__all__ = ["close_matches", "did_you_mean"]
