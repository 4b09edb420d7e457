"""Starts that arrive together are accepted together: group commit for the start routes
(the seed's createStart, Kinetic Task's run-tree and createRun).

A busy server's starts come many at once (a client with 32 connections, many clients). Handed
to the thread pool one by one, each pays a hop to a thread and back (a queue, a wake-up, the
event loop woken again) and a transaction of its own: behind SQLite's one write lock, or
waiting for its own commit's flush on PostgreSQL. :class:`StartBatcher` instead collects the
starts the event loop has read by the time it comes round, gives them to its accepting thread
as one :meth:`Engine.create_starts` (one transaction, one commit) and answers each request once
that transaction has committed. While a batch is being written the starts that arrive wait for
the next one, so batches grow with the load and shrink with it: a start that arrives alone goes
alone, at once, with no timer and no added wait.

Nothing a caller sees changes: each request is answered with its own outcome, its trigger or
the error that refused it (an unknown tree, a reused idempotency key), exactly as it would be
alone, and only once its start is durable; a database error fails the batch's requests (503, as
for one request) and nothing of the batch is kept. A client that goes away does not take its
start back, as before: it was accepted if the batch committed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starlette.requests import Request

from engine.engine import Engine
from engine.records import StartCall, Trigger

MAX_BATCH = 64  # starts a transaction at most; the rest wait for the next (bounds its length)


@dataclass
class _Waiting:
    call: StartCall
    answer: asyncio.Future[Trigger]


@dataclass
class StartBatcher:
    """The starts one server process accepts, written a batch at a time by one thread."""

    engine: Engine
    max_batch: int = MAX_BATCH
    _waiting: list[_Waiting] = field(default_factory=list)
    _writing: bool = False  # a batch is in the accepting thread
    _accepting: ThreadPoolExecutor | None = None  # its thread, started with the first start

    async def create_start(self, call: StartCall) -> Trigger:
        """``Engine.create_start`` of ``call``, written with the starts arriving beside it."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(call, loop.create_future())
        self._waiting.append(waiting)
        if not self._writing and len(self._waiting) == 1:
            loop.call_soon(self._write, loop)  # after the requests read in this turn
        return await waiting.answer

    def close(self) -> None:
        """Let the batch being written finish, then stop the accepting thread (a start after
        this starts another: an app may be served again)."""
        accepting, self._accepting = self._accepting, None
        if accepting is not None:
            accepting.shutdown(wait=True)

    def _write(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._writing or not self._waiting:
            return
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        self._writing = True
        if self._accepting is None:
            self._accepting = ThreadPoolExecutor(1, thread_name_prefix="treeflow-accept")
        written = self._accepting.submit(
            self.engine.create_starts, [waiting.call for waiting in batch]
        )
        written.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._answer, loop, batch, done)
        )

    def _answer(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Waiting],
        done: ThreadFuture[list[Trigger | Exception]],
    ) -> None:
        self._writing = False
        failure = done.exception()
        outcomes = [failure] * len(batch) if failure is not None else done.result()
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.answer.cancelled():  # its client went away; the start stands
                continue
            if isinstance(outcome, BaseException):
                waiting.answer.set_exception(outcome)
            else:
                waiting.answer.set_result(outcome)
        self._write(loop)  # what arrived meanwhile


def start_batcher(request: Request) -> StartBatcher:
    """The app's batcher (``create_app`` makes one per app)."""
    batcher: StartBatcher = request.app.state.start_batcher
    return batcher


__all__ = ["MAX_BATCH", "StartBatcher", "start_batcher"]
