"""Run one test case in a real engine and compare what happened with what it expects.

Each case gets an engine of its own on a private in-memory SQLite database (the same engine,
store and walk as production, with its handlers wrapped by ``engine.testing.given`` and its
clock virtual), so cases cannot see each other's runs and a case's result does not depend on
the order they run in. The start and every step are processed until nothing is due
(``run_until_idle``); a wait's timer is due only once an ``advance`` step has moved the clock
past it. A step that cannot apply (no open deferral of that node, no active error to resolve)
fails the case there, naming the step's line. A failed expectation shows expected and actual as a
diff of their YAML.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.engine import Engine
from engine.errors import TreeflowError
from engine.records import ROOT_LOOP_INDEX, Run, Task
from engine.results_xml import write_results
from engine.statuses import TaskStatus
from engine.testing.cases import Case, Expect, Step, TestFile
from engine.testing.given import GivenHandlers, VirtualClock
from engine.tree.model import Tree

Same = Callable[[], bool]
QUIET = logging.getLogger("treeflow.test")  # a case's failing nodes are its business, not a log's
QUIET.propagate = False
QUIET.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class CaseResult:
    """A case's verdict: ``failures`` (each a message, maybe with a diff) is empty if it passed."""

    file: TestFile
    case: Case
    failures: tuple[str, ...]
    tree: Tree | None = None
    runs: tuple[Run, ...] = field(default=())  # the case's run, then the routine runs it called
    trees: tuple[Tree, ...] = field(default=())  # the tree each of ``runs`` ran on

    @property
    def passed(self) -> bool:
        return not self.failures


class _CaseFailed(Exception):
    """A case cannot go on (its tree is missing, a step cannot apply): why."""


def run_case(test_file: TestFile, case: Case, trees: Sequence[Path]) -> CaseResult:
    """Run ``case`` of ``test_file`` against the trees under ``trees``."""
    clock = VirtualClock(case.at)
    given = GivenHandlers(case.given, strict=case.strict)
    try:
        engine = Engine(None, trees=list(trees), clock=clock, wrap_handlers=given, logger=QUIET)
    except TreeflowError as exc:
        return CaseResult(test_file, case, (f"the trees do not load: {exc}",))
    with engine:
        tree: Tree | None = None
        try:
            tree = _tree(engine, test_file)
            _check_names(tree, case)
            run_id = _start(engine, tree, case)
            engine.run_until_idle()
            for step in case.steps:
                _apply(engine, run_id, step, clock)
                engine.run_until_idle()
            runs = _runs(engine, run_id)
            run_trees = tuple(engine.tree_of_run(run) for run in runs)
        except (_CaseFailed, TreeflowError) as exc:
            return CaseResult(test_file, case, (str(exc),), tree)
    failures = tuple(compare(case.expect, runs[0]))
    return CaseResult(test_file, case, failures, tree, tuple(runs), run_trees)


def _start(engine: Engine, tree: Tree, case: Case) -> int:
    """A tree that declares fields starts as an instance of its process, with the case's fields
    set (the others take their defaults); any other tree by createStart."""
    if tree.fields:
        return engine.create_instance(tree.process, dict(case.fields)).run_id
    if case.fields:
        raise _CaseFailed(f"'fields' are a process's, and {tree.key.name!r} declares none")
    trigger = engine.create_start(
        source_name=tree.key.source_name,
        source_group=tree.key.source_group,
        tree_name=tree.key.name,
        source_id=case.source_id,
        results=write_results(case.inputs) if case.inputs else None,
    )
    return trigger.run_id


def _tree(engine: Engine, test_file: TestFile) -> Tree:
    found = [
        tree
        for tree in engine.trees
        if tree.key.name == test_file.tree
        and test_file.source in (None, tree.key.source_name)
        and test_file.group in (None, tree.key.source_group)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise _CaseFailed(f"{len(found)} trees are named {test_file.tree!r}: give source, group")
    known = ", ".join(sorted(repr(t.key.name) for t in engine.trees)) or "none"
    refused = "".join(f"\n  refused: {p}" for p in engine.tree_problems)
    raise _CaseFailed(f"no tree named {test_file.tree!r} is loaded (known: {known}){refused}")


def _check_names(tree: Tree, case: Case) -> None:
    """Every node the case names must be in the tree: a typo would make a check vacuous."""
    named = [*case.given, *(s.node for s in case.steps if s.node), *case.expect.not_ran]
    named += [*case.expect.results, *case.expect.statuses, *(case.expect.ran or ())]
    unknown = sorted({name for name in named if name not in tree.nodes})
    if unknown:
        nodes = ", ".join(tree.nodes)
        raise _CaseFailed(f"the case names nodes {tree.key.name!r} has not: {unknown} ({nodes})")


def _runs(engine: Engine, run_id: int) -> list[Run]:
    """The run, then every routine run under it (depth first): a deferral may be in either."""
    run = engine.get_run(run_id)
    return [run, *(r for child in run.children for r in _runs(engine, child.run_id))]


def _apply(engine: Engine, run_id: int, step: Step, clock: VirtualClock) -> None:
    where = f"step at line {step.line}" if step.line else "a step"
    if step.kind == "advance":
        clock.advance(step.seconds)
        return
    tasks = [task for run in _runs(engine, run_id) for task in run.tasks if task.name == step.node]
    if step.kind == "resolve":
        run = engine.get_run(run_id)
        active = [e for e in run.errors if e.node == step.node and e.status == "Active"]
        if not active:
            raise _CaseFailed(f"{where}: node {step.node!r} has no active error to resolve")
        for error in active:
            engine.resolve_error(error.id, step.action, message=step.message, resolved_by="test")
        return
    tokens = [
        task.token
        for task in tasks
        if task.status is TaskStatus.DEFERRED
        and task.token
        and step.loop_index in (None, task.loop_index)
    ]
    if not tokens:
        statuses = ", ".join(f"{t.loop_index} {t.status.value}" for t in tasks) or "never ran"
        raise _CaseFailed(f"{where}: node {step.node!r} has no open deferral ({statuses})")
    results = write_results(step.results) if step.results else None
    for token in tokens:
        action = step.kind.capitalize()
        engine.create_deferred(token=token, action=action, results=results, message=step.message)


def _latest(run: Run, node: str) -> Task | None:
    """The node's latest task outside loops, or else its latest task anywhere."""
    tasks = [task for task in run.tasks if task.name == node]
    root = [task for task in tasks if task.loop_index == ROOT_LOOP_INDEX]
    chosen = root or tasks
    return chosen[-1] if chosen else None


def compare(expect: Expect, run: Run) -> list[str]:
    """Every expectation of ``expect`` that ``run`` does not meet, each with a diff."""
    failures: list[str] = []

    def check(
        what: str, expected: Any, actual: Any, same: Callable[[], bool] | None = None
    ) -> None:
        if not (same() if same else expected == actual):
            failures.append(f"{what} differ:\n{diff(expected, actual)}")

    if expect.status is not None:
        check("the run's status", expect.status, run.status.value)
    ran = [task.name for task in run.tasks]
    if expect.ran is not None:
        check("the nodes that ran (in order)", list(expect.ran), ran)
    ran_anyway = [name for name in expect.not_ran if name in ran]
    check("the nodes that must not run", [], ran_anyway)
    for node, results in expect.results.items():
        task = _latest(run, node)
        actual = {key: (task.results.get(key) if task else None) for key in results}
        check(f"the results of {node!r}", dict(results), actual)
    for node, status in expect.statuses.items():
        task = _latest(run, node)
        check(f"the status of {node!r}", status, task.status.value if task else "did not run")
    if expect.errors is not None:
        found = [{"node": e.node, "type": e.type, "summary": e.summary} for e in run.errors]

        def same() -> bool:
            return len(found) == len(expect.errors or ()) and all(
                _error_matches(wanted, error)
                for wanted, error in zip(expect.errors or (), found, strict=True)
            )

        check("the errors", [dict(e) for e in expect.errors], found, same)
    return failures


def _error_matches(wanted: Any, error: dict[str, str]) -> bool:
    """``node`` and ``type`` equal, ``summary`` contained in the error's summary."""
    return all(
        value in error["summary"] if key == "summary" else error.get(key) == value
        for key, value in wanted.items()
    )


def diff(expected: Any, actual: Any) -> str:
    """Expected and actual as a unified diff of their YAML (``-`` expected, ``+`` actual)."""

    def lines(value: Any) -> list[str]:
        text = str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100))
        return text.removesuffix("...\n").splitlines()

    return "\n".join(
        difflib.unified_diff(lines(expected), lines(actual), "expected", "actual", lineterm="")
    )


__all__ = ["CaseResult", "compare", "diff", "run_case"]
