"""What a tree declares for the instance API: its process name and its fields.

A tree that declares ``process`` or ``fields`` is a *process* to the Kianda-style API (other
trees are not: :func:`tree_process`), and each run started through that API is an *instance*
with named fields. The process name is the tree's ``process`` key when it has one,
else its name in lower case with every run of other characters made one hyphen (``New Training
Process`` -> ``new-training-process``); instances are named ``<process>-<n>``, so a process name
is kept to lower-case letters, digits and single hyphens, safe in a URL path as is.

``fields`` maps each field's name to its declaration (``null`` for all defaults)::

    fields:
      Attendee:
        label: Attendee name     # what people call it (default: the field's name)
      Status:
        default: Pending         # a text, number, boolean or null (default: null)
        settable: false          # callers may not set it: it keeps its default

A field's value is visible to templates as ``values['Attendee']``. Validation reports every
problem (unknown keys, a default that is not a scalar, ``settable`` that is not a boolean) at
its line, like the rest of the tree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.tree.yaml_reader import yaml_kind

FIELD_KEYS = frozenset({"label", "default", "settable", "description"})
PROCESS_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_PROCESS_NAME = 150
MAX_FIELD_NAME = 200
FieldValueType = str | int | float | bool | None
_SEPARATORS = re.compile(r"[^a-z0-9]+")

ProblemSink = Callable[..., None]  # (message, *path) -> None, as the tree builder's problem()


@dataclass(frozen=True)
class FieldSpec:
    """One declared field: its name, what people call it, its default, who may set it."""

    name: str
    label: str
    default: FieldValueType = None
    settable: bool = True
    description: str = ""


def derived_process_name(tree_name: str) -> str:
    """``New Training Process`` -> ``new-training-process`` (empty when nothing is left).

    Accents are dropped first (``Résumé`` -> ``resume``), so a name keeps its letters.
    """
    plain = unicodedata.normalize("NFKD", tree_name).encode("ascii", "ignore").decode()
    return _SEPARATORS.sub("-", plain.lower()).strip("-")


def tree_process(
    data: dict[str, Any], tree_name: str, routine: bool, problem: ProblemSink
) -> tuple[str, tuple[FieldSpec, ...]]:
    """A tree's process name and fields: ``("", ())`` for a tree that is not a process.

    Only a tree that declares ``process`` or ``fields`` is a process. Kinetic Request CE names
    trees after events (``Submitted``, ``Created``), dozens of each in one folder, and a process
    name derived from every tree's name would make such a folder impossible to load. A routine
    is never one (it is called, not started through the instance API; its callers give its
    ``inputs``): ``process`` or ``fields`` in a routine is a problem.
    """
    if routine:
        for key in ("process", "fields"):
            if key in data:
                problem(
                    f"a routine is not a process: '{key}' is for trees (a routine's callers "
                    "give its 'inputs')",
                    key,
                )
        return "", ()
    if "process" not in data and "fields" not in data:
        return "", ()
    return process_name(data, tree_name, problem), field_specs(data.get("fields"), problem)


def process_name(data: dict[str, Any], tree_name: str, problem: ProblemSink) -> str:
    """The tree's process name, checked; a problem (and "") when it is missing or malformed."""
    if "process" not in data:
        derived = derived_process_name(tree_name)
        if tree_name and not derived:
            problem(
                f"cannot derive a process name from the tree name {tree_name!r}: "
                "give the tree a 'process' key",
                "name",
            )
        return derived[:MAX_PROCESS_NAME].strip("-")
    value = data["process"]
    if not isinstance(value, str) or not PROCESS_NAME.fullmatch(value):
        problem(
            f"'process' must be lower-case letters and digits in words joined by single "
            f"hyphens (e.g. new-training-process), not {value!r}",
            "process",
        )
        return ""
    if len(value) > MAX_PROCESS_NAME:
        problem(f"'process' is longer than {MAX_PROCESS_NAME} characters", "process")
        return ""
    return value


def field_specs(raw: Any, problem: ProblemSink) -> tuple[FieldSpec, ...]:
    """The ``fields`` section as specs; every problem reported through ``problem``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problem(f"'fields' must map field names to fields, not {yaml_kind(raw)}", "fields")
        return ()
    specs = []
    for name, declared in raw.items():
        spec = _field(name, {} if declared is None else declared, problem)
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def _field(name: str, declared: Any, problem: ProblemSink) -> FieldSpec | None:
    path = ("fields", name)
    valid = True
    if not name.strip() or len(name) > MAX_FIELD_NAME or "," in name:
        problem(
            f"field name {name!r} must be a non-empty text of at most {MAX_FIELD_NAME} "
            "characters without commas",
            *path,
        )
        valid = False
    if not isinstance(declared, dict):
        problem(f"a field is a mapping (or null), not {yaml_kind(declared)}", *path)
        return None
    for key in declared:
        if key not in FIELD_KEYS:
            known = ", ".join(sorted(FIELD_KEYS))
            problem(f"unknown key {key!r} in field {name!r}; known keys: {known}", *path, key)
            valid = False
    label, description = declared.get("label", name), declared.get("description", "")
    for key, value in (("label", label), ("description", description)):
        if not isinstance(value, str):
            problem(f"field {name!r}: {key!r} must be a text, not {yaml_kind(value)}", *path, key)
            valid = False
    default = declared.get("default")
    if isinstance(default, dict | list):
        message = f"field {name!r}: 'default' must be a text, number, boolean or null"
        problem(f"{message}, not {yaml_kind(default)}", *path, "default")
        valid = False
    settable = declared.get("settable", True)
    if not isinstance(settable, bool):
        message = f"field {name!r}: 'settable' must be true or false, not {settable!r}"
        problem(message, *path, "settable")
        valid = False
    if not valid:
        return None
    return FieldSpec(
        name=name, label=label, default=default, settable=settable, description=description
    )


__all__ = [
    "FIELD_KEYS",
    "PROCESS_NAME",
    "FieldSpec",
    "FieldValueType",
    "derived_process_name",
    "field_specs",
    "process_name",
    "tree_process",
]
