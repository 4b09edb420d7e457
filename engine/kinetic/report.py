"""The migration report of ``treeflow import-kinetic --report``: per export, what came across.

For each converted export: how many node parameters and connector conditions carried Ruby and
how many of those became templates and conditions, every piece kept as written with its reason
(the importer's own list, :attr:`~engine.kinetic.importer.KineticTree.kept`), the handlers and
routines it calls that treeflow does not have, and whether it validates (with the problems). An
export that cannot be converted at all gets an entry with the reason.

What counts as translated is read off the converted tree, so it holds whatever the translator
does: a parameter or condition still holding ERB (``<%``) or a Ruby variable (``@name``) keeps
Ruby; a parameter holding Jinja markup, and any other condition, was translated; the other
parameters are plain text. A call is a missing
*routine* when its id starts with ``routine_`` (Kinetic's convention; the export does not say),
else a missing *handler*.

The report is Markdown (``.md``) or JSON (``.json``), chosen by the file's suffix. Writing into
an existing report replaces that export's entry and keeps the others, so a report can be built
one ``import-kinetic`` at a time; the Markdown file carries its entries as JSON in a trailing
comment for that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import KineticImportError, Problem
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree
from engine.kinetic.stand_ins import ROUTINE_PREFIX, missing_ids

FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json"}
_RUBY = re.compile(r"<%|@[A-Za-z_]")
_JINJA = ("{{", "{%")
_DATA_START, _DATA_END = "<!-- treeflow-report-data\n", "\n-->"


@dataclass
class Counts:
    """Pieces that carried Ruby in the export: translated, or kept as written."""

    translated: int = 0
    kept: int = 0


@dataclass
class ExportReport:
    """One export's entry in the report."""

    file: str
    name: str = ""
    kind: str = "tree"
    nodes: int = 0
    parameters: Counts = field(default_factory=Counts)
    conditions: Counts = field(default_factory=Counts)
    kept: list[str] = field(default_factory=list)
    missing_handlers: list[str] = field(default_factory=list)
    missing_routines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    converted: bool = True

    @property
    def validates(self) -> bool:
        return self.converted and not self.problems


def _count(counts: Counts, text: str, *, expression: bool) -> None:
    """A condition is an expression: translated unless Ruby is left; a parameter is a text."""
    if _RUBY.search(text):
        counts.kept += 1
    elif expression or any(mark in text for mark in _JINJA):
        counts.translated += 1


def _where(problem: Problem) -> str:
    line = f"line {problem.line}" if problem.line is not None else "the export"
    node = f", node {problem.node!r}" if problem.node is not None else ""
    return f"{line}{node}: {problem.message}"


def export_report(
    converted: KineticTree,
    *,
    registry: HandlerRegistry,
    routines: Iterable[str],
    problems: Sequence[Problem] = (),
) -> ExportReport:
    """The entry of one converted export; ``problems`` are what validating it found."""
    definition = converted.definition
    nodes: Mapping[str, Any] = definition.get("nodes", {})
    report = ExportReport(
        file=converted.file,
        name=converted.name,
        kind="routine" if converted.routine else "tree",
        nodes=len(nodes),
    )
    for node in nodes.values():
        for text in dict(node.get("parameters") or {}).values():
            _count(report.parameters, str(text), expression=False)
        for connector in node.get("connectors") or ():
            if connector.get("condition"):
                _count(report.conditions, str(connector["condition"]), expression=True)
    report.kept = [_where(problem) for problem in converted.kept]
    for missing in missing_ids(definition, registry, routines):
        is_routine = missing.startswith(ROUTINE_PREFIX)
        (report.missing_routines if is_routine else report.missing_handlers).append(missing)
    report.problems = [str(problem) for problem in problems]  # in the YAML: file and line
    return report


def failed_report(file: str, error: KineticImportError) -> ExportReport:
    """The entry of an export that could not be converted."""
    return ExportReport(file=file, converted=False, problems=[_where(p) for p in error.problems])


def _from_data(data: Mapping[str, Any]) -> ExportReport:
    fields = dict(data)
    fields.pop("validates", None)
    fields["parameters"] = Counts(**fields.get("parameters", {}))
    fields["conditions"] = Counts(**fields.get("conditions", {}))
    return ExportReport(**fields)


def _data(report: ExportReport) -> dict[str, Any]:
    return {**asdict(report), "validates": report.validates}


def _totals(reports: Sequence[ExportReport]) -> dict[str, int]:
    return {
        "exports": len(reports),
        "converted": sum(r.converted for r in reports),
        "validate": sum(r.validates for r in reports),
        "parameters_translated": sum(r.parameters.translated for r in reports),
        "parameters_kept": sum(r.parameters.kept for r in reports),
        "conditions_translated": sum(r.conditions.translated for r in reports),
        "conditions_kept": sum(r.conditions.kept for r in reports),
    }


def render_json(reports: Sequence[ExportReport]) -> str:
    document = {"totals": _totals(reports), "exports": [_data(r) for r in reports]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _list(title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    return [f"- {title}:", *(f"  - {_md(item)}" for item in items)]


def _md(text: str) -> str:
    """Text for a Markdown list item: on one line, with code-like runs shown as code."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("<", "&lt;")


def render_markdown(reports: Sequence[ExportReport]) -> str:
    totals = _totals(reports)
    lines = [
        "# Kinetic migration report",
        "",
        f"{totals['exports']} export(s): {totals['converted']} converted, "
        f"{totals['validate']} validate. Ruby parameters: {totals['parameters_translated']} "
        f"translated, {totals['parameters_kept']} kept; conditions: "
        f"{totals['conditions_translated']} translated, {totals['conditions_kept']} kept.",
    ]
    needed: dict[str, int] = {}
    for report in reports:
        for missing in report.missing_handlers + report.missing_routines:
            needed[missing] = needed.get(missing, 0) + 1
    if needed:
        lines += ["", "Missing handlers and routines (exports calling them):", ""]
        ranked = sorted(needed.items(), key=lambda item: (-item[1], item[0]))
        lines += [f"- `{name}`: {count}" for name, count in ranked]
    for report in reports:
        verdict = "validates" if report.validates else "does not validate"
        if not report.converted:
            verdict = "not converted"
        lines += ["", f"## {report.file}", ""]
        if report.converted:
            lines.append(f"{report.kind} `{report.name}`, {report.nodes} nodes: {verdict}.")
            lines.append(
                f"- Ruby parameters: {report.parameters.translated} translated, "
                f"{report.parameters.kept} kept; conditions: {report.conditions.translated} "
                f"translated, {report.conditions.kept} kept"
            )
        else:
            lines.append(f"{verdict}.")
        lines += _list("missing handlers", [f"`{m}`" for m in report.missing_handlers])
        lines += _list("missing routines", [f"`{m}`" for m in report.missing_routines])
        lines += _list("kept as written", report.kept)
        lines += _list("problems", report.problems)
    data = json.dumps([_data(r) for r in reports], ensure_ascii=False).replace("--", "-\\u002d")
    return "\n".join(lines) + "\n\n" + _DATA_START + data + _DATA_END + "\n"


def _read_entries(path: Path, kind: str) -> list[ExportReport]:
    text = path.read_text(encoding="utf-8")
    if kind == "json":
        entries = json.loads(text)["exports"]
    else:
        start = text.rfind(_DATA_START)
        if start < 0:
            raise ValueError("it has no treeflow report data (was it written by treeflow?)")
        entries = json.loads(text[start + len(_DATA_START) : text.rindex(_DATA_END)])
    return [_from_data(entry) for entry in entries]


def write_report(path: Path, reports: Sequence[ExportReport]) -> None:
    """Write ``reports`` to ``path`` (format by suffix), replacing their files' old entries."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        choices = ", ".join(FORMATS)
        raise ValueError(f"a report file ends in one of {choices}, not {path.name!r}")
    entries: list[ExportReport] = []
    if path.exists():
        try:
            entries = _read_entries(path, kind)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot add to the report {str(path)!r}: {exc}") from exc
    files = {report.file for report in reports}
    entries = [entry for entry in entries if entry.file not in files] + list(reports)
    text = render_json(entries) if kind == "json" else render_markdown(entries)
    path.write_text(text, encoding="utf-8")


__all__ = [
    "FORMATS",
    "Counts",
    "ExportReport",
    "export_report",
    "failed_report",
    "render_json",
    "render_markdown",
    "write_report",
]
