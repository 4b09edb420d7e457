"""Measure how much of a folder of real Kinetic Task exports treeflow imports, validates and runs.

    python tools/kinetic_corpus.py CORPUS [--json OUT.json] [--report OUT.md]

CORPUS holds one folder per source repository, each with that repository's tree and routine
exports (``*.xml``). For every export it records five stages, each needing the one before:

1. **converts**: ``convert_kinetic`` accepts it;
2. **validates alone**: the converted file loads on its own, against treeflow's handlers only;
3. **validates with routines**: it loads beside the other converted files of its repository
   (so calls to routines exported there resolve, and names may collide, as in a real trees
   folder);
4. **validates with stand-ins**: the same, with stand-ins for every handler and routine still
   unknown (the package and the stand-in routines ``import-kinetic --stand-ins`` writes, the
   routines loaded beside the trees; on a checkout without it an equivalent package built
   here, so that the script also measures older code). A routine exported beside them that
   does not load even with stand-ins is stood in for too (its file left out), as a team would
   while fixing it;
5. **runs**: a tree (not a routine) started in an engine on SQLite with every input its
   templates read (``inputs['Name']``) given as empty text, as a source posting a record whose
   fields are blank, its deferred tasks completed with empty results as a callback client would
   (up to 20 rounds), ends Completed.

The engine used is whichever ``engine`` the running Python imports, so the same command measures
two checkouts: ``/path/to/venv/bin/python tools/kinetic_corpus.py CORPUS``. ``smtp_email_send_v1``
(a real handler where the checkout has it) sends to a local aiosmtpd sink when aiosmtpd is
installed. Nothing in CORPUS is changed; the converted files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from engine import Engine
from engine.errors import KineticImportError, TreeError
from engine.handlers.handler import DEFINITION_ID, Handler, Parameter
from engine.handlers.hookspecs import hookimpl
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree, convert_kinetic
from engine.statuses import RunStatus, TaskStatus
from engine.tree.expressions import Expressions
from engine.tree.files import read_tree_files

STAGES = ("converts", "validates alone", "validates with routines", "validates with stand-ins")
ROUNDS = 20
_INPUT = re.compile(r"""inputs\s*\[\s*(['"])(?P<name>(?:(?!\1).)+)\1\s*\]""")


def _blank_inputs(file: str) -> str:
    """Start results naming every input the tree's templates read, each empty."""
    names = dict.fromkeys(m["name"] for m in _INPUT.finditer(Path(file).read_text("utf-8")))
    items = "".join(f"<result name={quoteattr(name)}></result>" for name in names)
    return f"<results>{items}</results>"


class _StandIns:
    """A plugin object with one stand-in per id: used where engine.kinetic.stand_ins is absent."""

    def __init__(self, trees: Sequence[Mapping[str, Any]], registry: HandlerRegistry) -> None:
        routines = {str(t.get("definition_id")) for t in trees if t.get("type") == "routine"}
        found: dict[str, tuple[set[str], bool]] = {}
        for tree in trees:
            for node in dict(tree.get("nodes", {})).values():
                handler = str(node.get("handler", ""))
                if handler in registry or handler in routines or not DEFINITION_ID.match(handler):
                    continue
                parameters, defers = found.get(handler, (set(), False))
                parameters |= set(dict(node.get("parameters") or {}))
                found[handler] = (parameters, defers or bool(node.get("defers")))
        self.handlers = [
            Handler(i, lambda _: {}, tuple(Parameter(p) for p in sorted(ps)), deferrable=d)
            for i, (ps, d) in sorted(found.items())
        ]

    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return self.handlers


def _stand_ins(converted: Sequence[KineticTree], folder: Path) -> tuple[object, list[Path]]:
    """The stand-ins plugin, and the stand-in routine files to load beside the trees (none
    where the checkout stands in for routines with handlers)."""
    registry = HandlerRegistry(load_entry_points=False)
    try:
        from engine.kinetic import stand_ins  # absent before the stand-ins existed
    except ImportError:
        return _StandIns([tree.definition for tree in converted], registry), []
    pairs = [(tree.file, tree.definition) for tree in converted]
    stand_ins.write_stand_ins(folder, stand_ins.find_stand_ins(pairs, registry))
    routines = sorted((folder / "routines").glob("*.yaml"))  # stand-in routines, where written
    return stand_ins.load_stand_ins(folder), routines


@contextmanager
def _smtp_sink() -> Iterator[None]:
    """A local SMTP server that accepts and drops every message, when aiosmtpd is there."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Sink
    except ImportError:
        yield
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    os.environ.update(TREEFLOW_SMTP_SERVER="127.0.0.1", TREEFLOW_SMTP_PORT=str(port))
    try:
        yield
    finally:
        controller.stop()


def _valid_files(files: Sequence[Path], plugins: Sequence[object] = ()) -> set[str]:
    registry = HandlerRegistry(plugins, load_entry_points=False)
    found = read_tree_files(files, registry=registry, expressions=Expressions())
    return {str(Path(tree.file)) for tree in found.trees}


def _runs(folder: Path, files: Sequence[Path], valid: set[str], plugin: object) -> dict[str, str]:
    """Per valid file, how its dry run ended (``Completed`` or what stopped it)."""
    ended: dict[str, str] = {}
    database = f"sqlite:///{folder / 'dry-run.db'}"
    with Engine(database, trees=list(files), plugins=[plugin], load_entry_points=False) as engine:
        for tree in engine.trees:
            if tree.routine is not None or str(Path(tree.file)) not in valid:
                continue
            try:
                trigger = engine.create_start(
                    source_name=tree.key.source_name,
                    source_group=tree.key.source_group,
                    tree_name=tree.key.name,
                    results=_blank_inputs(tree.file),
                )
                engine.run_until_idle(max_triggers=500)
                run = engine.get_run(trigger.run_id)
                for _ in range(ROUNDS):
                    tokens = [
                        t.token for t in run.tasks if t.status is TaskStatus.DEFERRED and t.token
                    ]
                    if run.status is not RunStatus.STARTED or not tokens:
                        break
                    for token in tokens:
                        engine.create_deferred(token=token, action="Complete")
                    engine.run_until_idle(max_triggers=500)
                    run = engine.get_run(trigger.run_id)
            except Exception as exc:  # a run the engine refuses to start is a result too
                ended[str(Path(tree.file))] = f"refused: {type(exc).__name__}"
                continue
            why = run.status.value
            if run.errors:
                why += f" ({run.errors[0].type})"
            ended[str(Path(tree.file))] = why
    return ended


def _is_routine(path: Path) -> bool:
    with suppress(OSError):
        return "type: routine" in path.read_text(encoding="utf-8")
    return False


def measure_repository(exports: Sequence[Path], folder: Path) -> list[dict[str, Any]]:
    """The stages each export of one repository reaches."""
    rows: list[dict[str, Any]] = []
    converted: list[KineticTree] = []
    written: dict[Path, Path] = {}
    for number, export in enumerate(exports):
        row: dict[str, Any] = {"file": str(export), **dict.fromkeys(STAGES, False), "runs": None}
        rows.append(row)
        try:
            tree = convert_kinetic(export.read_bytes(), file=str(export))
        except (KineticImportError, OSError) as exc:
            row["why"] = str(exc).splitlines()[0]
            continue
        row["converts"] = True
        converted.append(tree)
        target = folder / f"{number:04d}.yaml"
        target.write_text(tree.yaml(), encoding="utf-8")
        written[export] = target
    files = list(written.values())
    for export, target in written.items():
        row = next(r for r in rows if r["file"] == str(export))
        with suppress(TreeError):
            row["validates alone"] = str(target) in _valid_files([target])
    beside = _valid_files(files)
    plugin, stand_in_routines = _stand_ins(converted, folder / "stand-ins")
    with_stand_ins = _valid_files(files + stand_in_routines, [plugin])
    # A routine exported here that does not load even so is as absent to its callers' runs as
    # one never exported (a Missing Routine Error): stand in for it too, as a team would while
    # it fixes that routine, and measure again.
    # (Its file is left out then: two files may not provide one routine.)
    loads = [
        (tree, target)
        for tree, target in zip(converted, files, strict=True)
        if not _is_routine(target) or str(target) in with_stand_ins
    ]
    if len(loads) < len(converted):
        trees = [tree for tree, _ in loads]
        plugin, stand_in_routines = _stand_ins(trees, folder / "stand-ins-for-broken")
        files = [target for _, target in loads]
        with_stand_ins = _valid_files(files + stand_in_routines, [plugin])
    ended = _runs(
        folder, files + stand_in_routines, with_stand_ins, plugin
    )  # all of them: a refused routine fails its callers
    for export, target in written.items():
        row = next(r for r in rows if r["file"] == str(export))
        row["validates with routines"] = row["validates alone"] or str(target) in beside
        row["validates with stand-ins"] = str(target) in with_stand_ins
        row["routine"] = _is_routine(target)
        if not row["routine"]:
            row["runs"] = ended.get(str(target), "not run")
    return rows


def summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    trees = [r for r in rows if r.get("routine") is False]
    totals: dict[str, Any] = {"exports": len(rows)}
    totals.update({stage: sum(bool(r[stage]) for r in rows) for stage in STAGES})
    totals["trees"] = len(trees)
    totals["trees that run"] = sum(r["runs"] == "Completed" for r in trees)
    totals["run endings"] = dict(Counter(str(r["runs"]) for r in trees).most_common())
    return totals


def _percent(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else "0"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--json", type=Path, help="write every export's stages here")
    options = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # refusals and handler errors are results here, not news
    rows: list[dict[str, Any]] = []
    repositories = sorted(p for p in options.corpus.iterdir() if p.is_dir())
    with _smtp_sink(), tempfile.TemporaryDirectory() as scratch:
        for number, repository in enumerate(repositories):
            folder = Path(scratch) / str(number)
            folder.mkdir()
            rows += measure_repository(sorted(repository.rglob("*.xml")), folder)
    totals = summary(rows)
    print(f"engine: {Path(sys.modules['engine'].__file__ or '').parent}")
    for stage in STAGES:
        print(f"{stage:>26}: {_percent(totals[stage], totals['exports'])} of {totals['exports']}")
    print(f"{'trees that run':>26}: {_percent(totals['trees that run'], totals['trees'])} "
          f"of {totals['trees']} trees")  # fmt: skip
    print(f"{'run endings':>26}: {totals['run endings']}")
    if options.json:
        document = {"totals": totals, "exports": rows}
        options.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
