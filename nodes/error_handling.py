"""Kinetic's ``error_handling`` parameter, shared by the nodes that take it (SMTP, HTTP).

Kinetic's handlers for outside systems take ``error_handling``: ``Raise Error`` makes a failure
the task's Handler Error (the run stops there until it is resolved), ``Error Message`` returns
the reason in the result ``Handler Error Message`` instead, with the other results empty, so
that the tree can branch on it. A tree that leaves it out gets ``Raise Error``, as Kinetic's
handlers do; an error is never silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.errors import HandlerFailed
from engine.handlers.handler import HandlerContext, Parameter

ERROR_HANDLING = "error_handling"
RAISE_ERROR = "Raise Error"
ERROR_MESSAGE = "Error Message"
ERROR_RESULT = "Handler Error Message"

ERROR_HANDLING_PARAMETER = Parameter(
    ERROR_HANDLING,
    default=RAISE_ERROR,
    menu=(ERROR_MESSAGE, RAISE_ERROR),
    description="Raise Error: the task fails; Error Message: the reason is a result",
)


def failed(
    context: HandlerContext, handler: str, reason: str, results: Sequence[str]
) -> Mapping[str, str]:
    """Raise :class:`HandlerFailed`, or return the reason as a result, as the node asks."""
    choice = context.parameters.get(ERROR_HANDLING) or RAISE_ERROR
    if choice == ERROR_MESSAGE:
        context.logger.warning("%s failed: %s", handler, reason)
        return {**dict.fromkeys(results, ""), ERROR_RESULT: reason}
    raise HandlerFailed(handler=handler, reason=reason)


__all__ = [
    "ERROR_HANDLING",
    "ERROR_HANDLING_PARAMETER",
    "ERROR_MESSAGE",
    "ERROR_RESULT",
    "RAISE_ERROR",
    "failed",
]
