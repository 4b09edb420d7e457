"""A node's retry policy at work: a failed call of its handler runs again later, from a trigger.

When a handler raises and its node's policy (``engine.tree.retry``) retries that failure with
attempts left, no error is recorded: the task becomes Retrying, keeps what the call raised in
``last_error``, and the step adds a Retry trigger due after the policy's backoff, like a wait's
timer (written with the step, keyed ``retry:<task id>:<attempt>`` so each attempt is made once).
Processing that trigger calls the handler again on the same task: the task id a handler uses as
its idempotency key stays the same across attempts, and ``attempt`` counts them. The Handler Error
appears only when the last attempt fails, naming how many were made; resolving it with Retry Task
starts a new task with the policy's attempts anew.

A ``timeout`` runs the handler in a thread of its own and waits for it that long: past it the
attempt fails with :class:`~engine.errors.HandlerTimeout`. Python cannot stop a thread, so the
call goes on in the background until it returns, and what it returns then is dropped; a handler
that may hang should give its own calls a timeout too (an HTTP client's), and use the task id as
the idempotency key of what it does, since an attempt that timed out may still have done it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine import rows
from engine.errors import HandlerTimeout
from engine.handlers.handler import HandlerContext
from engine.statuses import TaskStatus, TriggerAction
from engine.tree.model import Node

if TYPE_CHECKING:
    from engine.run.execution import Execution
    from engine.run.state import TaskState

Returned = Mapping[str, object] | None


class _Call:
    """One call of a handler in its own thread: what it returned or raised, once it is done."""

    def __init__(self, node: Node, context: HandlerContext) -> None:
        self.node = node
        self.context = context
        self.returned: Returned = None
        self.raised: BaseException | None = None
        self.done = threading.Event()

    def __call__(self) -> None:
        try:
            self.returned = self.node.handler.execute(self.context)
        except BaseException as exc:  # handed to the waiting worker, raised there
            self.raised = exc
        finally:
            self.done.set()


def call_handler(node: Node, context: HandlerContext) -> Returned:
    """Call the node's handler; with a policy ``timeout``, in a thread, for at most that long.

    The thread is a daemon: a handler that never returns does not keep the process from
    exiting. Raises what the handler raised, or HandlerTimeout.
    """
    timeout = node.retry.timeout if node.retry is not None else None
    if timeout is None:
        return node.handler.execute(context)
    call = _Call(node, context)
    thread = threading.Thread(target=call, name=f"treeflow-handler-{context.task_id}", daemon=True)
    thread.start()
    if not call.done.wait(timeout):
        raise HandlerTimeout(handler_id=node.handler_id, seconds=timeout)
    if call.raised is not None:
        raise call.raised
    return call.returned


class Retries:
    """The retry steps of one trigger's execution."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    def later(self, node: Node, task: TaskState, error: BaseException, summary: str) -> bool:
        """Schedule the task's next attempt if its policy retries ``error``; True if it did."""
        policy = node.retry
        if policy is None or task.attempt >= policy.attempts or not policy.retries(error):
            return False
        execution = self.execution
        due_at = execution.now + policy.delay(task.attempt, task.id)
        task.last_error = summary
        task.move(TaskStatus.RETRYING, execution.now)
        execution.state.new_triggers.append(
            rows.trigger_row(
                TriggerAction.RETRY,
                run_id=execution.state.id,
                now=execution.now,
                task_id=task.id,
                idempotency_key=rows.retry_key(task.id, task.attempt + 1),
                due_at=due_at,
            )
        )
        execution.budget.rows += 1
        execution.logger.info(
            "run %s: %s (attempt %s of %s); next attempt in %.3g s",
            execution.state.id,
            summary,
            task.attempt,
            policy.attempts,
            due_at - execution.now,
        )
        return True

    def attempt(self, task: TaskState | None) -> None:
        """A Retry trigger: call the task's handler again, if the task still waits for it."""
        execution = self.execution
        if task is None or task.status is not TaskStatus.RETRYING:
            execution.logger.info(
                "run %s: a Retry trigger found nothing to retry", execution.state.id
            )
            return
        node = execution.state.tree.nodes[task.node]
        task.attempt += 1
        task.mark_changed()
        execution.touch(node, task.loop_index)
        execution.run_task(node, task)
        execution.drain()


def out_of_attempts(node: Node, task: TaskState, summary: str) -> str:
    """A Handler Error's summary after retries: how many attempts were made."""
    if node.retry is None or task.attempt == 1:
        return summary
    return f"{summary} (attempt {task.attempt} of {node.retry.attempts})"


__all__ = ["Retries", "Returned", "call_handler", "out_of_attempts"]
