"""Selection labels: dedicating engine workers to some trees (Kinetic's selection criterion).

A tree may carry a label (``selection: reports`` at the top of its YAML). Every trigger of
every run of that tree version carries the label, copied from the tree version when the
trigger row is inserted (``engine.store.trigger_rows``), and a worker given a selection claims
only triggers whose label is in it, in the claim query itself.

What a label dedicates is the whole processing of those runs: plain nodes run inline in the
worker holding a trigger, so every node of a labelled tree, its handlers included, runs only on
workers whose selection names the label. That is how a handler is kept to some machines (one
that reaches a system only they can reach, or a slow one that should not hold up the others):
label the trees that use it. A worker with no selection claims every trigger, labelled or not;
the selection ``default`` names the trees without a label, so a worker that must leave labelled
trees alone runs with ``--selection default``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from engine.errors import BadSelection

DEFAULT = "default"  # the label of trees that declare none (stored as the empty label)
MAX_LABEL = 64
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def stored_label(label: object) -> str:
    """The label as stored: ``default`` and no label at all are the same (the empty label)."""
    if label is None:
        return ""
    if not isinstance(label, str) or len(label) > MAX_LABEL or not _LABEL.fullmatch(label):
        raise BadSelection(label=label, limit=MAX_LABEL)
    return "" if label == DEFAULT else label


def worker_selection(labels: Iterable[str] | None) -> tuple[str, ...] | None:
    """The stored labels a worker claims; None (no selection) claims every trigger."""
    if labels is None:
        return None
    chosen = tuple(sorted({stored_label(label) for label in labels}))
    return chosen or None


def shown(labels: Sequence[str] | None) -> str:
    """A worker's selection for its log: ``all`` or the labels, ``default`` for the empty one."""
    if labels is None:
        return "all"
    return ", ".join(label or DEFAULT for label in labels)


__all__ = ["DEFAULT", "shown", "stored_label", "worker_selection"]
