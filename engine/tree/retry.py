"""A node's retry policy: how often, how late and on which failures its handler runs again.

A tree may set ``retry`` at its top (the default of every node whose handler runs) and a node its
own, which replaces the default whole (``retry: {attempts: 1}`` turns it off for that node)::

    retry:
      attempts: 4              # calls of the handler in all, the first included (1 to 100)
      backoff: {initial: 2s, factor: 2, max: 5m}   # 2 s, 4 s, 8 s ... never more than 5 min
      jitter: 0.2              # each delay shortened by up to 20 %, at random (0 to 1; true: 1)
      on: [ConnectionError, rate_limited]          # which failures; all of them when left out
      timeout: 30s             # an attempt that takes longer fails with HandlerTimeout

Durations are seconds (``90``, ``1.5``) or a number with ``ms``, ``s``, ``m`` or ``h``. An entry
of ``on`` starting with a capital letter is an exception class name, matched against the class
of what the handler raised and the classes it derives from (``TimeoutError`` matches a
``HandlerTimeout``, ``OSError`` a ``ConnectionError``); any other entry is a code the node's
handler declares (``Handler.error_codes``) and raises as ``HandlerFailed(..., code=...)``. The
delay before attempt n+1 is ``min(initial * factor ** (n - 1), max)``; jitter is drawn from a
generator seeded by the task and the attempt, so a step processed again after a crash schedules
the same time. Only a Handler Error is retried: a parameter that does not render, a missing
handler or a budget refusal would fail the same way again.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import HandlerFailed
from engine.handlers.handler import Behaviour, Handler
from engine.tree.yaml_reader import yaml_kind

RETRY_KEYS = frozenset({"attempts", "backoff", "jitter", "on", "timeout"})
BACKOFF_KEYS = frozenset({"initial", "factor", "max"})
MAX_ATTEMPTS = 100
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9_]*")
_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]*")

Report = Callable[..., None]  # (message, *path) as engine.tree.loader's problem()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial: float = 1.0
    factor: float = 2.0
    max: float = 300.0
    jitter: float = 0.0
    on: tuple[str, ...] = ()  # empty: every failure of the handler
    timeout: float | None = None

    def retries(self, error: BaseException) -> bool:
        """Whether a failure like ``error`` is retried (attempts left aside)."""
        if not self.on:
            return True
        names = {cls.__name__ for cls in type(error).__mro__}
        if isinstance(error, HandlerFailed) and error.code is not None:
            names.add(error.code)
        return not names.isdisjoint(self.on)

    def delay(self, failed: int, seed: str) -> float:
        """Seconds before the attempt after ``failed`` failed ones, jittered by ``seed``."""
        base = min(self.initial * self.factor ** (failed - 1), self.max)
        if self.jitter:
            base *= 1.0 - self.jitter * random.Random(f"{seed}:{failed}").random()
        return base


def duration(value: Any) -> float | None:
    """Seconds of ``90``, ``1.5``, ``"500ms"``, ``"2m"``; None if it is not one (or negative)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Reader:
    """Reads one ``retry`` mapping, reporting every problem at its path."""

    def __init__(self, report: Report, path: Sequence[str | int], node: str | None) -> None:
        self.report = report
        self.path = tuple(path)
        self.node = node

    def problem(self, message: str, *path: str | int) -> None:
        self.report(message, *self.path, *path, node=self.node)

    def read(self, raw: Any, handler: Handler | None) -> RetryPolicy | None:
        if not isinstance(raw, dict):
            self.problem(
                f"'retry' is a mapping of {', '.join(sorted(RETRY_KEYS))}, not " + yaml_kind(raw)
            )
            return None
        self._unknown(raw, RETRY_KEYS)
        attempts = raw.get("attempts", RetryPolicy.attempts)
        if (
            isinstance(attempts, bool)
            or not isinstance(attempts, int)
            or not 1 <= attempts <= MAX_ATTEMPTS
        ):
            self.problem(
                f"'attempts' must be a whole number from 1 to {MAX_ATTEMPTS}, not {attempts!r}",
                "attempts",
            )
            attempts = 1
        backoff = raw.get("backoff", {})
        if not isinstance(backoff, dict):
            self.problem(
                f"'backoff' is a mapping of initial, factor, max, not {yaml_kind(backoff)}",
                "backoff",
            )
            backoff = {}
        self._unknown(backoff, BACKOFF_KEYS, "backoff")
        initial = self._seconds(backoff, "initial", RetryPolicy.initial)
        most = self._seconds(backoff, "max", max(RetryPolicy.max, initial))
        factor = backoff.get("factor", RetryPolicy.factor)
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not 1 <= factor <= 100
        ):
            self.problem(
                f"'factor' must be a number from 1 to 100, not {factor!r}", "backoff", "factor"
            )
            factor = 1
        if most < initial:
            self.problem(
                f"'max' ({most:g} s) is shorter than 'initial' ({initial:g} s)", "backoff", "max"
            )
        jitter = raw.get("jitter", 0.0)
        jitter = 1.0 if jitter is True else 0.0 if jitter is False else jitter
        if not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
            self.problem(
                f"'jitter' must be a fraction from 0 to 1 (or true, false), not {jitter!r}",
                "jitter",
            )
            jitter = 0.0
        timeout = None
        if raw.get("timeout") is not None:
            timeout = duration(raw["timeout"])
            if timeout is None or timeout <= 0:
                self.problem(
                    f"'timeout' must be a duration above 0 (30, 1.5s, 2m), not {raw['timeout']!r}",
                    "timeout",
                )
                timeout = None
        return RetryPolicy(
            attempts=attempts,
            initial=initial,
            factor=float(factor),
            max=most,
            jitter=float(jitter),
            on=self._on(raw.get("on", []), handler),
            timeout=timeout,
        )

    def _seconds(self, raw: Mapping[str, Any], key: str, default: float) -> float:
        if key not in raw:
            return default
        seconds = duration(raw[key])
        if seconds is None:
            self.problem(
                f"{key!r} must be a duration (30, 1.5s, 500ms, 2m, 1h), not {raw[key]!r}",
                "backoff",
                key,
            )
            return default
        return seconds

    def _on(self, raw: Any, handler: Handler | None) -> tuple[str, ...]:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            self.problem(
                f"'on' is a list of exception class names and error codes, not {yaml_kind(raw)}",
                "on",
            )
            return ()
        found = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, str) or not (
                _CLASS_NAME.fullmatch(entry) or _CODE.fullmatch(entry)
            ):
                self.problem(
                    f"{entry!r} is neither an exception class name (ConnectionError) nor an"
                    " error code (rate_limited)",
                    "on",
                    index,
                )
            elif (
                handler is not None
                and not _CLASS_NAME.fullmatch(entry)
                and entry not in handler.error_codes
            ):
                declared = ", ".join(handler.error_codes) or "none"
                self.problem(
                    f"error code {entry!r} is not declared by {handler.definition_id!r}"
                    f" (declared: {declared})",
                    "on",
                    index,
                )
            else:
                found.append(entry)
        return tuple(found)

    def _unknown(self, raw: Mapping[str, Any], known: frozenset[str], *path: str) -> None:
        for key in raw:
            if key not in known:
                self.problem(
                    f"unknown key {key!r}; known keys: {', '.join(sorted(known))}", *path, key
                )


def tree_retry(data: Mapping[str, Any], report: Report) -> RetryPolicy | None:
    """The tree's default policy (its top-level ``retry``), if it sets one."""
    if data.get("retry") is None:
        return None
    return _Reader(report, ("retry",), None).read(data["retry"], None)


def node_retry(
    name: str,
    raw: Mapping[str, Any],
    handler: Handler | None,
    default: RetryPolicy | None,
    report: Report,
) -> RetryPolicy | None:
    """A node's policy: its own ``retry``, else the tree's default if its handler runs.

    Joins, junctions, loops, waits, routine calls and returns are the engine's own steps: a
    ``retry`` on one is refused, and the tree's default leaves them out. A default whose codes
    the node's handler does not declare still retries that handler's matching exceptions.
    """
    plain = handler is None or handler.behaviour in (Behaviour.PLAIN, Behaviour.START)
    if "retry" not in raw:
        return default if plain else None
    if not plain and handler is not None:
        report(
            f"'retry' is for nodes whose handler runs; {handler.definition_id!r} is a "
            f"{handler.behaviour.value}, which the engine steps itself",
            "nodes",
            name,
            "retry",
            node=name,
        )
        return None
    return _Reader(report, ("nodes", name, "retry"), name).read(raw["retry"], handler)


__all__ = ["MAX_ATTEMPTS", "RetryPolicy", "duration", "node_retry", "tree_retry"]
