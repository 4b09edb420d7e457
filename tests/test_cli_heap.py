"""The CLI's long-running commands freeze their start-up heap; later garbage is still collected.

Run in a child interpreter: freezing is process-wide, and the test process must keep its own
collector as it was.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
from engine.cli.heap import freeze_start_up_heap

class Node:
    pass

left_from_start_up = Node()
left_from_start_up.self = left_from_start_up  # a cycle that is already garbage
dead = weakref.ref(left_from_start_up)
del left_from_start_up
freeze_start_up_heap()
print(gc.get_freeze_count() > 0, dead() is None)

later = Node()
later.self = later  # a cycle made after start-up
gone = weakref.ref(later)
del later
gc.collect()
print(gone() is None)
"""


def test_start_up_is_frozen_after_its_garbage_is_collected_and_later_cycles_still_go() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["True", "True", "True"]
