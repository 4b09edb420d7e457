"""Progress on standard error, so that standard output carries only the Markdown result.

One bar per measurement (a workload's mode on one database); each measurement reports how many
of its items are done through a plain ``Callable[[int], None]``, so the measuring code knows
nothing of rich. Log records go through the same console and do not break the bars.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks.measure import Progress as Callback


class Board:
    """The progress display; a context manager that also routes logging to standard error.

    On a terminal: live bars. Elsewhere (a pipe, a CI log) live bars would only appear at the
    end, so each measurement prints one line when it starts and one when it is done instead.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
        )
        self._current: tuple[TaskID, str, int, float] | None = None

    def __enter__(self) -> Board:
        handler = RichHandler(console=self.console, show_path=False)
        logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self._finish_current()
        self._progress.stop()

    def track(self, description: str, total: int) -> Callback:
        """A new bar; the callback sets how many of ``total`` items are done."""
        self._finish_current()
        task = self._progress.add_task(description, total=total)
        self._current = (task, description, total, time.perf_counter())
        if not self.live:
            self.console.print(f"{description} ...", highlight=False, soft_wrap=True)

        def update(done: int) -> None:
            self._progress.update(task, completed=done)

        return update

    def _finish_current(self) -> None:
        if self._current is None:
            return
        task, description, total, began = self._current
        self._current = None
        self._progress.update(task, completed=total)
        if not self.live:
            seconds = time.perf_counter() - began
            self.console.print(f"{description}: done in {seconds:.1f} s", highlight=False)


__all__ = ["Board"]
