"""Kinetic Request CE's bindings (``@values``, ``@submission``, ...) from a run's source data.

In Kinetic Task, a tree started by Kinetic Request CE reads the submission that started it
through bindings its source adapter makes from what Request CE posts (a webhook's JSON body):
``@submission['Core State']``, ``@values['Color']``, ``@form['Slug']``, ``@kapp['Name']``,
``@space_attributes['Web Server Url']``. treeflow stores that body as the run's source data
(the run-tree body, ``create_start(source_data=...)``) and a template reads the bindings as
``kinetic['submission']['Core State']``; the importer translates ``@x`` to ``kinetic['x']``.

How the source data maps, the way the adapter presents it:

- ``submission``, ``form``, ``kapp``, ``space``, ``team``, ``user``, ``datastore`` are the
  objects of those names at the top of the data, or nested the way Request CE nests them
  (``submission.form``, ``form.kapp``, ``kapp.space``). Each binding holds the object's plain
  fields under Kinetic's names: ``coreState`` is ``'Core State'``, ``id`` is ``'Id'``,
  ``createdBy`` is ``'Created By'`` (a key already written so stays as it is).
- ``values`` are ``submission.values`` (or ``values`` at the top); a field holding a list (a
  checkbox, attachments) reads as its JSON text, as Request CE gives it to trees, so
  ``JSON.parse(@values['Teams'])`` works.
- ``<object>_attributes`` are that object's ``attributes`` (``[{"name", "values"}]`` or an
  ``attributesMap``): one value reads as that text, several as their JSON array text.
  ``user_profile_attributes`` come from the user's ``profileAttributes``.
- ``answers`` and ``dataset`` (Kinetic Request RE) are the objects of those names; when there
  is no ``answers``, it is ``values``.
- ``error`` (Kinetic Task's Run Error trees: ``@error['Text']``, ``@error['run']['Id']``) is the
  ``error`` object as given, nested objects and all; treeflow does not start such trees itself.
- Data with none of these objects (a form post of name/value fields) is its own ``values``.

Every binding is present, empty when the data has nothing for it, so a missing field reads as
a missing key (nil under ``missing: nil``) rather than failing on the binding itself. A JSON
``null`` is left out for the same reason. The bindings are built on first use, once a run
(``RunState.source_bindings``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

SCOPE_NAME = "kinetic"  # the name templates read the bindings under
OBJECTS = ("submission", "form", "kapp", "space", "team", "user", "datastore")
NAMES = (
    *OBJECTS,
    "values",
    "answers",
    "dataset",
    *(f"{name}_attributes" for name in OBJECTS),
    "user_profile_attributes",
    "error",
)
_NESTED = {"form": "submission", "kapp": "form", "space": "kapp"}  # where Request CE nests one
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def kinetic_key(key: str) -> str:
    """A Request CE field name as Kinetic's bindings name it: ``coreState`` -> ``Core State``."""
    spaced = _WORD.sub(" ", key)
    return spaced[:1].upper() + spaced[1:]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fields(item: Mapping[str, Any]) -> dict[str, str]:
    """The plain fields of an object (no nested objects or lists), under Kinetic's names."""
    return {
        kinetic_key(str(key)): _text(value)
        for key, value in item.items()
        if value is not None and not isinstance(value, (Mapping, list))
    }


def _attributes(item: Mapping[str, Any], key: str = "attributes") -> dict[str, str]:
    found: dict[str, Any] = {}
    listed = item.get(key)
    if isinstance(listed, list):
        for attribute in listed:
            if isinstance(attribute, Mapping) and isinstance(attribute.get("name"), str):
                found[attribute["name"]] = attribute.get("values")
    mapped = item.get(f"{key}Map")
    if isinstance(mapped, Mapping):
        found.update(mapped)
    texts = {}
    for name, values in found.items():
        values = values if isinstance(values, list) else [] if values is None else [values]
        if values:
            texts[name] = _text(values[0]) if len(values) == 1 else _text(values)
    return texts


def _values(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): _text(v) for k, v in values.items() if v is not None}


def source_bindings(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every binding of :data:`NAMES`, built from a run's source data."""
    objects = {name: _object(data.get(name)) for name in OBJECTS}
    for name, parent in _NESTED.items():  # in order: submission.form, form.kapp, kapp.space
        if not objects[name]:
            objects[name] = _object(objects[parent].get(name))
    bindings: dict[str, dict[str, Any]] = {name: _fields(item) for name, item in objects.items()}
    for name, item in objects.items():
        bindings[f"{name}_attributes"] = _attributes(item)
    bindings["user_profile_attributes"] = _attributes(objects["user"], "profileAttributes")
    values = _object(data.get("values")) or _object(objects["submission"].get("values"))
    if not values and not any(objects.values()):
        values = {k: v for k, v in data.items() if not isinstance(v, (Mapping, list))}
    bindings["values"] = _values(values)
    answers = _object(data.get("answers"))
    bindings["answers"] = _values(answers) if answers else dict(bindings["values"])
    bindings["dataset"] = _values(_object(data.get("dataset")))
    bindings["error"] = dict(_object(data.get("error")))  # nested as given: ['run']['Id']
    return bindings


class SourceBindings(Mapping[str, Mapping[str, Any]]):
    """The bindings of one run's source data, built when a template first reads one."""

    __slots__ = ("_built", "_data")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._built: dict[str, dict[str, Any]] | None = None

    def _bindings(self) -> dict[str, dict[str, Any]]:
        if self._built is None:
            self._built = source_bindings(self._data)
        return self._built

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        return self._bindings()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


__all__ = ["NAMES", "SCOPE_NAME", "SourceBindings", "kinetic_key", "source_bindings"]
