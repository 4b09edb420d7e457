"""``treeflow validate --format sarif``: what validate found, as a SARIF 2.1.0 log.

Editors and CI (GitHub code scanning, VS Code's SARIF viewer) read SARIF: one run whose tool is
``treeflow``, and one result a finding, with its rule, level, message and where it is (the
tree file and its line). A problem is level ``error``; a warning (what Kinetic accepts, or a
reference that may be missing: ``engine.tree.reference_checks``) ``warning``; a note (a result
only a completion gives) ``note``. A finding without a rule of its own has rule ``tree``; the
file names are kept as validate was given them, relative URIs where they are relative.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from engine.errors import Problem

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
GENERAL_RULE = "tree"  # a problem of the tree's shape, not one of the named reference checks


def _result(problem: Problem, level: str) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": PurePath(problem.file).as_posix()}}
    if problem.line is not None:
        location["region"] = {"startLine": problem.line}
    text = f"node {problem.node!r}: {problem.message}" if problem.node else problem.message
    return {
        "ruleId": problem.rule or GENERAL_RULE,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
    }


def sarif_log(
    problems: Iterable[Problem], warnings: Iterable[Problem], notes: Iterable[Problem]
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: the problems, then the warnings, then the notes."""
    results = [
        *(_result(p, "error") for p in problems),
        *(_result(w, "warning") for w in warnings),
        *(_result(n, "note") for n in notes),
    ]
    rules = sorted({result["ruleId"] for result in results})
    driver = {
        "name": "treeflow",
        "rules": [{"id": rule} for rule in rules],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


__all__ = ["sarif_log"]
