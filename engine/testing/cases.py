"""A tree test file read and checked: every problem at once, each with its file and line.

The file is YAML 1.2 read by the trees' own reader (``engine.tree.yaml_reader``: lines,
duplicate keys), then checked key by key here, so a typo in a test (``expcet:``) is a problem
naming the line, never a case that passes because it checks nothing. Result values are texts,
as handlers return them; a number or boolean written in YAML is kept as the text written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path as FsPath
from typing import Any

from engine.errors import Problem, TreeTestError
from engine.tree.yaml_reader import ParsedYaml, Path, parse_yaml, scalar_text, yaml_kind

FILE_KEYS = frozenset({"tree", "source", "group", "cases"})
CASE_KEYS = frozenset(
    {"name", "source_id", "inputs", "fields", "at", "strict", "given", "steps", "expect"}
)
GIVEN_KEYS = frozenset({"results", "error"})
STEP_KINDS = ("complete", "update", "advance", "resolve")
STEP_KEYS = frozenset({*STEP_KINDS, "results", "loop_index", "action", "message"})
EXPECT_KEYS = frozenset({"status", "ran", "not_ran", "results", "statuses", "errors"})
ERROR_KEYS = frozenset({"node", "type", "summary"})
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+?)s?\s*$")
DEFAULT_START = "2026-01-01T09:00:00+00:00"


@dataclass(frozen=True)
class Given:
    """What one call of a node's handler gives: results, or an error raised."""

    results: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Step:
    """One step after the start: ``kind`` is complete, update, advance or resolve."""

    kind: str
    node: str = ""
    results: Mapping[str, str] = field(default_factory=dict)
    loop_index: str | None = None
    seconds: float = 0.0
    action: str = ""
    message: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Expect:
    """What must hold when the steps are done; None (or empty) is not checked."""

    status: str | None = None
    ran: tuple[str, ...] | None = None
    not_ran: tuple[str, ...] = ()
    results: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[Mapping[str, str], ...] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    line: int | None
    source_id: str = ""
    inputs: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)  # a process's: its instance's fields
    at: str = DEFAULT_START
    strict: bool = False
    given: Mapping[str, tuple[Given, ...]] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class TestFile:
    """A test file: the tree it tests (by name, and source and group if given) and its cases."""

    __test__ = False  # not a pytest class, whatever its name

    path: FsPath
    tree: str
    source: str | None
    group: str | None
    cases: tuple[Case, ...]


class _Reader:
    def __init__(self, parsed: ParsedYaml, file: str) -> None:
        self.parsed, self.file = parsed, file
        self.problems: list[Problem] = list(parsed.problems)

    def problem(self, message: str, *path: str | int) -> None:
        line = None
        for end in range(len(path), -1, -1):  # the nearest line known
            line = self.parsed.line(*path[:end])
            if line is not None:
                break
        self.problems.append(Problem(file=self.file, message=message, line=line))

    def keys(self, data: Mapping[str, Any], known: frozenset[str], what: str, *path: Any) -> None:
        for key in data:
            if key not in known:
                choices = ", ".join(sorted(known))
                self.problem(f"unknown key {key!r} in {what}; known keys: {choices}", *path, key)

    def mapping(self, raw: Any, what: str, *path: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(f"{what} must be a mapping, not {yaml_kind(raw)}", *path)
            return {}
        return raw

    def text(self, raw: Any, what: str, *path: Any) -> str | None:
        text = scalar_text(raw)
        if text is None:
            self.problem(f"{what} must be a text, not {yaml_kind(raw)}", *path)
        return text

    def texts(self, raw: Any, what: str, *path: Any) -> dict[str, str]:
        """A mapping of names to texts (results, inputs)."""
        out: dict[str, str] = {}
        for key, value in self.mapping(raw, what, *path).items():
            text = self.text(value, f"{what} {key!r}", *path, key)
            if text is not None:
                out[key] = text
        return out

    def names(self, raw: Any, what: str, *path: Any) -> tuple[str, ...]:
        if not isinstance(raw, list):
            self.problem(f"{what} must be a list of node names, not {yaml_kind(raw)}", *path)
            return ()
        found = (self.text(item, f"an item of {what}", *path, i) for i, item in enumerate(raw))
        return tuple(name for name in found if name is not None)

    def test_file(self, path: FsPath) -> TestFile:
        data = self.parsed.data
        if not isinstance(data, dict):
            if not self.problems:
                self.problem(f"a tree test file is a mapping, not {yaml_kind(data)}")
            raise TreeTestError(problems=self.problems)
        self.keys(data, FILE_KEYS, "a tree test file")
        tree = self.text(data.get("tree"), "'tree' (the name of the tree tested)", "tree")
        source = None if "source" not in data else self.text(data["source"], "'source'", "source")
        group = None if "group" not in data else self.text(data["group"], "'group'", "group")
        raw_cases = data.get("cases")
        if not isinstance(raw_cases, list) or not raw_cases:
            self.problem("'cases' must be a list of test cases, one at least", "cases")
            raw_cases = []
        cases = [self.case(raw, ("cases", i)) for i, raw in enumerate(raw_cases)]
        names = [case.name for case in cases if case is not None]
        for i, case in enumerate(cases):
            if case is not None and names.count(case.name) > 1:
                self.problem(f"two cases are named {case.name!r}", "cases", i, "name")
        if self.problems:
            raise TreeTestError(problems=self.problems)
        return TestFile(path, tree or "", source, group, tuple(c for c in cases if c is not None))

    def case(self, raw: Any, path: Path) -> Case | None:
        if not isinstance(raw, dict):
            self.problem(f"a test case is a mapping with a 'name', not {yaml_kind(raw)}", *path)
            return None
        self.keys(raw, CASE_KEYS, "a test case", *path)
        name = self.text(raw.get("name"), "a test case's 'name'", *path, "name") or ""
        strict = raw.get("strict", False)
        if not isinstance(strict, bool):
            self.problem("'strict' must be true or false", *path, "strict")
        at = self.text(raw.get("at", DEFAULT_START), "'at'", *path, "at") or DEFAULT_START
        if not _instant(at):
            message = f"'at' is an ISO 8601 instant with its offset (like {DEFAULT_START}), not "
            self.problem(f"{message}{at!r}", *path, "at")
            at = DEFAULT_START
        given = self.mapping(raw.get("given"), "'given'", *path, "given")
        raw_steps = raw.get("steps") or []
        if not isinstance(raw_steps, list):
            self.problem(f"'steps' must be a list, not {yaml_kind(raw_steps)}", *path, "steps")
            raw_steps = []
        steps = [self.step(step, (*path, "steps", i)) for i, step in enumerate(raw_steps)]
        return Case(
            name=name,
            line=self.parsed.line(*path),
            source_id=self.text(raw.get("source_id", ""), "'source_id'", *path, "source_id") or "",
            inputs=self.texts(raw.get("inputs"), "'inputs'", *path, "inputs"),
            fields=self.texts(raw.get("fields"), "'fields'", *path, "fields"),
            at=at,
            strict=strict is True,
            given={n: self.given(g, (*path, "given", n)) for n, g in given.items()},
            steps=tuple(step for step in steps if step is not None),
            expect=self.expect(raw.get("expect"), (*path, "expect")),
        )

    def given(self, raw: Any, path: Path) -> tuple[Given, ...]:
        items = raw if isinstance(raw, list) else [raw]
        out: list[Given] = []
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(raw, list) else path
            if not isinstance(item, dict) or len(set(item) & GIVEN_KEYS) != 1:
                message = "given results are {results: {NAME: TEXT}} or {error: MESSAGE}"
                self.problem(f"{message} (or a list of them, one per call)", *where)
                continue
            self.keys(item, GIVEN_KEYS, "given results", *where)
            if "error" in item:
                out.append(Given(error=self.text(item["error"], "'error'", *where, "error") or ""))
            else:
                results = self.texts(item["results"], "'results'", *where, "results")
                out.append(Given(results=results))
        return tuple(out)

    def step(self, raw: Any, path: Path) -> Step | None:
        kinds = [kind for kind in STEP_KINDS if isinstance(raw, dict) and kind in raw]
        if len(kinds) != 1:
            self.problem(f"a step is a mapping with one of {', '.join(STEP_KINDS)}", *path)
            return None
        kind, line = kinds[0], self.parsed.line(*path)
        self.keys(raw, STEP_KEYS, "a step", *path)
        if kind == "advance":
            seconds = self.duration(raw["advance"], (*path, "advance"))
            return Step(kind, seconds=seconds, line=line)
        node = self.text(raw[kind], f"'{kind}' (a node name)", *path, kind) or ""
        results = self.texts(raw.get("results"), "'results'", *path, "results")
        loop_index = raw.get("loop_index")
        if loop_index is not None:
            loop_index = self.text(loop_index, "'loop_index'", *path, "loop_index")
        action = ""
        if kind == "resolve":
            action = self.text(raw.get("action"), "'action' (such as Retry Task)", *path) or ""
        message = self.text(raw["message"], "'message'", *path) if "message" in raw else None
        return Step(kind, node, results, loop_index, action=action, message=message, line=line)

    def duration(self, raw: Any, path: Path) -> float:
        text = scalar_text(raw) or ""
        match = _DURATION.match(text.lower())
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
            return float(raw)
        if match and match.group(2) in UNITS:
            return float(match.group(1)) * UNITS[match.group(2)]
        units = ", ".join(UNITS)
        self.problem(f"'advance' is seconds or 'N UNIT' ({units}), not {text!r}", *path)
        return 0.0

    def expect(self, raw: Any, path: Path) -> Expect:
        data = self.mapping(raw, "'expect'", *path)
        if not data:
            self.problem("a test case needs 'expect': what must hold at the end", *path)
        self.keys(data, EXPECT_KEYS, "'expect'", *path)
        status = (
            self.text(data["status"], "'status'", *path, "status") if "status" in data else None
        )
        ran = self.names(data["ran"], "'ran'", *path, "ran") if "ran" in data else None
        not_ran = self.names(data.get("not_ran", []), "'not_ran'", *path, "not_ran")
        results = {
            node: self.texts(value, f"the results of {node!r}", *path, "results", node)
            for node, value in self.mapping(data.get("results"), "'results'", *path).items()
        }
        errors = None
        if "errors" in data:
            errors = self.errors(data["errors"], (*path, "errors"))
        statuses = self.texts(data.get("statuses"), "'statuses'", *path, "statuses")
        return Expect(status, ran, not_ran, results, statuses, errors)

    def errors(self, raw: Any, path: Path) -> tuple[Mapping[str, str], ...]:
        if not isinstance(raw, list):
            self.problem(f"'errors' must be a list, not {yaml_kind(raw)}", *path)
            return ()
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or "node" not in item:
                self.problem("an expected error is {node: NODE, type: TYPE, summary: TEXT}", *path)
                continue
            self.keys(item, ERROR_KEYS, "an expected error", *path, i)
            out.append(self.texts(item, "an expected error", *path, i))
        return tuple(out)


def _instant(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def read_test_file(path: FsPath) -> TestFile:
    """The test file at ``path``; raises TreeTestError naming every problem and its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TreeTestError(problems=[Problem(file=str(path), message=str(exc))]) from exc
    return _Reader(parse_yaml(text, file=str(path)), str(path)).test_file(path)


__all__ = ["Case", "Expect", "Given", "Step", "TestFile", "read_test_file"]
