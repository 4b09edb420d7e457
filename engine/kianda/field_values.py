"""Field values as the instance API takes and keeps them, checked before anything is written.

Every field has a ``value`` (a text, number, boolean or null) and a ``text``, how the value is
shown (Kianda's FieldsMappings carry both; ``text`` defaults to the value written as text).
The checks here are those of a value alone (a name given once, a text within bounds, a finite
number JSON holds exactly, a scalar); whether the process declares the field, and lets callers
set it, is the instance book's (``engine.kianda.instances``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine import inputs
from engine.errors import BadRequest
from engine.tree.fields import FieldSpec, FieldValueType
from engine.tree.yaml_reader import scalar_text

MAX_VALUE = inputs.MAX_MESSAGE  # characters of a field's value or text
MAX_INTEGER = 2**53 - 1  # the integers every JSON reader holds exactly


@dataclass(frozen=True)
class FieldValue:
    """A field of an instance; given to a write, ``text`` may be None (the value as text)."""

    name: str
    value: FieldValueType
    text: str | None = None


FieldsGiven = Mapping[str, FieldValueType] | Iterable[FieldValue]


def shown(value: FieldValueType) -> str:
    """A value written as text: "" for null, ``true``/``false``, numbers as written."""
    return scalar_text(value) or ""


def checked_fields(given: FieldsGiven) -> list[FieldValue]:
    items = (
        [FieldValue(name, value) for name, value in given.items()]
        if isinstance(given, Mapping)
        else list(given)
    )
    seen: set[str] = set()
    for item in items:
        name = inputs.text("field name", item.name)
        if name in seen:
            raise BadRequest(field="fields", reason=f"the field {name!r} is given twice")
        seen.add(name)
        value = item.value
        if isinstance(value, str):
            inputs.text(f"field {name!r}", value, required=False, limit=MAX_VALUE)
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(field=f"field {name!r}", reason="a number must be finite")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
            reason = f"an integer must be within ±{MAX_INTEGER} (JSON's exact range)"
            raise BadRequest(field=f"field {name!r}", reason=reason)
        elif value is not None and not isinstance(value, int | float | bool):
            what = type(value).__name__
            raise BadRequest(field=f"field {name!r}", reason=f"a value is a scalar, not {what}")
        inputs.optional(f"text of field {name!r}", item.text, limit=MAX_VALUE)
    return items


def stored_field(field: FieldValue) -> dict[str, Any]:
    text = shown(field.value) if field.text is None else field.text
    return {"text": text, "value": field.value}


def default_field(spec: FieldSpec) -> dict[str, Any]:
    return {"text": shown(spec.default), "value": spec.default}


__all__ = [
    "MAX_INTEGER",
    "MAX_VALUE",
    "FieldValue",
    "FieldsGiven",
    "checked_fields",
    "default_field",
    "shown",
    "stored_field",
]
