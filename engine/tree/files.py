"""Load the trees of YAML files and directories together, with the checks across files.

A tree alone is built by ``engine.tree.loader``; what needs all the files at once lives here:
expanding directories into their YAML files, the routines every file may call (gathered from
all of them first, so a caller may come before its routine), and the names no two files may
share (a tree key, a routine id, a process name; the first file in path order keeps a name).

:func:`read_tree_files` never raises for a bad file: it returns the trees that built and the
problems of those that did not, so that one bad file in a folder of trees costs that file
only (the engine serves the others and reports it). :func:`load_tree_files` is the strict form:
one :class:`~engine.errors.TreeError` lists the problems of every file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath

from engine.errors import Problem, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.records import TreeKey
from engine.tree.expressions import Expressions
from engine.tree.loader import build_tree
from engine.tree.model import Tree
from engine.tree.routines import RoutineSignature, signature_of
from engine.tree.yaml_reader import ParsedYaml, parse_yaml

TEST_SUFFIX = ".tree-test.yaml"  # test cases beside the trees (engine.testing), not trees


def tree_files(paths: Iterable[str | os.PathLike[str]]) -> list[FsPath]:
    """Expand files and directories into the YAML files they hold, sorted, each once.

    A directory's ``*.tree-test.yaml`` files are test cases (``treeflow test``), not trees.
    """
    files: list[FsPath] = []
    for path in map(FsPath, paths):
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            files.extend(sorted(p for p in found if not p.name.endswith(TEST_SUFFIX)))
        else:
            files.append(path)
    unique: dict[FsPath, FsPath] = {}  # a file named twice (or inside a directory named) once
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values())


def routines_in(paths: Iterable[str | os.PathLike[str]]) -> dict[str, RoutineSignature]:
    """The routines the YAML files under ``paths`` declare, read without validating the files.

    For checking a tree against routines that live elsewhere (``treeflow import-kinetic``);
    a file that cannot be read or parsed declares none.
    """
    found: dict[str, RoutineSignature] = {}
    for file in tree_files(paths):
        try:
            signature = signature_of(
                parse_yaml(file.read_text(encoding="utf-8"), file=str(file)).data
            )
        except (OSError, UnicodeDecodeError):
            continue
        if signature is not None:
            found.setdefault(signature.definition_id, signature)
    return found


@dataclass(frozen=True)
class TreeFiles:
    """What a folder of tree files gave: the trees that built, and every problem of the rest."""

    trees: tuple[Tree, ...]
    problems: tuple[Problem, ...]

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """What the loaded trees carry that Kinetic accepts (``engine.tree.leniency``)."""
        return tuple(warning for tree in self.trees for warning in tree.warnings)

    @property
    def notes(self) -> tuple[Problem, ...]:
        """Results the loaded trees read that only a completion gives (``reference_checks``)."""
        return tuple(note for tree in self.trees for note in tree.notes)

    @property
    def refused(self) -> tuple[str, ...]:
        """The files that gave no tree, each once, in path order."""
        return tuple(dict.fromkeys(problem.file for problem in self.problems))


def read_tree_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None = None,
    strict: bool = False,
) -> TreeFiles:
    """Build every tree under ``paths``; a file with a problem is left out and reported.

    The routines of all the files are known to every file (a caller may come before its
    routine), besides ``routines`` known already; two files may not provide one routine id.
    ``strict`` makes the warnings of what Kinetic accepts problems (``engine.tree.leniency``).
    """
    trees: list[Tree] = []
    problems: list[Problem] = []
    seen: dict[TreeKey, str] = {}
    parsed_files: list[tuple[FsPath, ParsedYaml]] = []
    known = dict(routines or {})
    provided: dict[str, str] = {}
    processes: dict[str, tuple[TreeKey, str]] = {}
    for file in tree_files(paths):
        try:
            parsed = parse_yaml(file.read_text(encoding="utf-8"), file=str(file))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(file=str(file), message=f"cannot read the file: {exc}"))
            continue
        signature = signature_of(parsed.data)
        if signature is not None and signature.definition_id in provided:
            other = provided[signature.definition_id]
            message = f"routine {signature.definition_id!r} is also provided by {other}"
            problems.append(Problem(file=str(file), message=message))
            continue
        if signature is not None:
            provided[signature.definition_id] = str(file)
            known[signature.definition_id] = signature
        parsed_files.append((file, parsed))
    for file, parsed in parsed_files:
        try:
            tree = build_tree(
                parsed,
                file=str(file),
                registry=registry,
                expressions=expressions,
                routines=known,
                strict=strict,
            )
        except TreeError as exc:
            problems.extend(exc.problems)
            continue
        if tree.key in seen:
            message = f"tree {str(tree.key)!r} is also defined in {seen[tree.key]}"
            problems.append(Problem(file=str(file), message=message))
            continue
        claimed = processes.get(tree.process) if tree.process else None
        if claimed is not None:
            message = (
                f"process name {tree.process!r} is also the process of tree "
                f"{str(claimed[0])!r} in {claimed[1]}"
            )
            problems.append(Problem(file=str(file), message=message))
            continue
        seen[tree.key] = str(file)
        if tree.process:
            processes[tree.process] = (tree.key, str(file))
        trees.append(tree)
    return TreeFiles(tuple(trees), tuple(problems))


def load_tree_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    registry: HandlerRegistry,
    expressions: Expressions,
    routines: Mapping[str, RoutineSignature] | None = None,
    strict: bool = False,
) -> list[Tree]:
    """Load every tree under ``paths``, or raise one TreeError listing every file's problems."""
    found = read_tree_files(
        paths, registry=registry, expressions=expressions, routines=routines, strict=strict
    )
    if found.problems:
        raise TreeError(problems=found.problems)
    return list(found.trees)


__all__ = [
    "TEST_SUFFIX",
    "TreeFiles",
    "load_tree_files",
    "read_tree_files",
    "routines_in",
    "tree_files",
]
