"""Child processes that die with their parent, whatever ends it.

``treeflow serve --processes N`` starts ``treeflow worker`` processes, and the benchmark harness
starts servers, workers and measuring children; neither may leave workers polling the database
behind it when it is stopped, interrupted (Ctrl-C, a test's timeout) or killed. Two things see
to that:

- each child runs in a session of its own, and :func:`stop` ends the whole process group:
  SIGTERM (a graceful stop), then SIGKILL once the grace time is up, so a child that does not
  stop cannot keep its parent waiting or outlive it;
- each child is started through this module's launcher, which asks the kernel to SIGKILL it when
  the parent process dies (Linux's ``PR_SET_PDEATHSIG``, kept across the ``exec`` that follows)
  and then ``exec``s the real command. That covers the deaths no ``finally`` survives.

``python -m engine.cli.children PARENT_PID COMMAND...`` is the launcher; nothing calls it by
hand.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SECONDS = 60.0


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Start ``command`` in its own process group, to be killed if this process dies.

    Call it from a thread that lives as long as the child (the harness's main thread, the
    supervisor's thread): Linux sends the parent-death signal when the *thread* that started
    the child ends.
    """
    launcher = [sys.executable, "-m", "engine.cli.children", str(os.getpid()), *command]
    return subprocess.Popen(launcher, start_new_session=True, **popen)


def stop(children: Iterable[subprocess.Popen[Any]], *, grace: float = STOP_SECONDS) -> None:
    """SIGTERM every child's process group, wait up to ``grace`` seconds, then SIGKILL them;
    their pipes are closed (what they wrote is read before, by whoever wanted it)."""
    children = list(children)
    running = [child for child in children if child.poll() is None]
    for child in running:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
    for child in running:
        _signal_group(child, signal.SIGKILL)  # also whatever the child started itself
        child.wait()
    for child in children:
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _signal_group(child: subprocess.Popen[Any], number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(child.pid, number)  # start_new_session: the group's id is the child's pid


def _launch(argv: Sequence[str]) -> None:
    """Ask for SIGKILL when the parent dies, make sure it has not died yet, become COMMAND."""
    parent, command = int(argv[0]), list(argv[1:])
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
    os.execvp(command[0], command)  # noqa: S606  (our own command, an argument list)


__all__ = ["spawn", "stop"]

if __name__ == "__main__":
    _launch(sys.argv[1:])
