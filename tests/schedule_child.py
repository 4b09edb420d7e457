"""An engine process for tests/test_schedules_multiprocess.py: workers and the scheduler.

Run as ``python schedule_child.py URL``; prints ``leader`` once this process runs the scheduler,
then waits to be killed.
"""

from __future__ import annotations

import sys
import time

from engine import Engine

POLL = 0.2


def main(url: str) -> None:
    engine = Engine(url, schedule_poll_seconds=POLL, poll_interval=0.05)
    engine.start(workers=1)
    print("started", flush=True)
    while not engine.schedules.scheduler.leading:
        time.sleep(0.05)
    print("leader", flush=True)
    time.sleep(600)  # until killed


if __name__ == "__main__":
    main(sys.argv[1])
