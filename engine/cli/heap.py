"""A long-running command's start-up heap, taken out of the garbage collector's full passes.

A worker keeps a batch's runs alive until the batch commits, so their objects outlive the young
generations, and every few batches the collector makes a full pass over every object the process
holds: the modules, the trees, SQLAlchemy's metadata, the web app, well over a hundred thousand
objects, for a pass that finds almost nothing. Measured on the benchmark's workloads, those passes
took about a quarter of processing defer-resume starts in batches of 64, and a tenth of linear10's.
``gc.freeze()`` moves what start-up built into a permanent generation that no pass scans, so a
full pass costs what the work in hand holds; cycles made after start-up are collected as before.

Only the CLI's own long-running processes (``serve``, ``worker``) do this, once everything they
serve is built: the engine as a library leaves its host's collector alone (the README's
Performance section shows a host how to do the same).
"""

from __future__ import annotations

import gc


def freeze_start_up_heap() -> None:
    """Collect what start-up left behind, then freeze the rest: nothing dead is kept frozen."""
    gc.collect()
    gc.freeze()


__all__ = ["freeze_start_up_heap"]
