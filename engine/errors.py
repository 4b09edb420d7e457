"""The one hierarchy of errors treeflow raises to its callers.

Every class derives from :class:`TreeflowError` and, where one fits, from the matching builtin
(``TreeNotFound`` is also a ``LookupError``), so callers can catch either. Fields are
keyword-only and kept as attributes; the message is composed from them with ``!r`` on the
offending input, so an error always names what was wrong and where. The errors of signing in and
of HTTP requests belong to the packages that raise them (``engine.auth.errors``,
``engine.server.limits``) and derive from the same root. The HTTP adapter maps every class to a
status code in one table; nothing else in the engine knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TreeflowError(Exception):
    """Root of every error treeflow raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found while loading a tree: where it is and what is wrong."""

    file: str
    message: str
    node: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        node = f" node {self.node!r}:" if self.node is not None else ""
        return f"{where}:{node} {self.message}"


class TreeError(TreeflowError, ValueError):
    """A tree definition is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, *, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in tree definition"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class TreeNotFound(TreeflowError, LookupError):
    """No active tree has that source name, source group and tree name."""

    def __init__(
        self, *, source_name: str, source_group: str, tree_name: str, reason: str = ""
    ) -> None:
        self.source_name = source_name
        self.source_group = source_group
        self.tree_name = tree_name
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"Unable to locate the tree {tree_name!r} for source {source_name!r}, "
            f"group {source_group!r}{detail}"
        )


class RunNotFound(TreeflowError, LookupError):
    """No run has that id."""

    def __init__(self, *, run_id: object) -> None:
        self.run_id = run_id
        super().__init__(f"Unable to locate a run with the id {run_id!r}")


class TriggerNotFound(TreeflowError, LookupError):
    """No trigger has that id."""

    def __init__(self, *, trigger_id: object) -> None:
        self.trigger_id = trigger_id
        super().__init__(f"Unable to locate a trigger with the id {trigger_id!r}")


class ScheduleNotFound(TreeflowError, LookupError):
    """No schedule (scheduled task) has that id."""

    def __init__(self, *, schedule_id: object) -> None:
        self.schedule_id = schedule_id
        super().__init__(f"Unable to locate a schedule with the id {schedule_id!r}")


class TokenNotFound(TreeflowError, LookupError):
    """The deferral token names no task that is still deferred (unknown, or already completed).

    The message is the seed API's text, word for word, because clients match on it.
    """

    def __init__(self, *, token: str) -> None:
        self.token = token
        super().__init__(
            f"Unable to locate a task instance with the specified deferral token ({token})"
        )


class BadAction(TreeflowError, ValueError):
    """A createDeferred action other than Complete or Update."""

    def __init__(self, *, action: object, allowed: Sequence[str]) -> None:
        self.action = action
        self.allowed = tuple(allowed)
        super().__init__(f"Invalid action {action!r}: expected one of {', '.join(self.allowed)}")


class ErrorNotFound(TreeflowError, LookupError):
    """No error recorded on a run has that id."""

    def __init__(self, *, error_id: object) -> None:
        self.error_id = error_id
        super().__init__(f"Unable to locate an error with the id {error_id!r}")


class ErrorAlreadyResolved(TreeflowError, ValueError):
    """An error was resolved already, or a resolution of it was accepted and is queued."""

    def __init__(self, *, error_id: str, action: str | None) -> None:
        self.error_id = error_id
        self.action = action
        how = f" with {action!r}" if action else ""
        super().__init__(f"The error {error_id!r} has already been resolved{how}")


class BadResolution(TreeflowError, ValueError):
    """An action that cannot resolve an error of this type (Kinetic Task's table)."""

    def __init__(self, *, action: object, error_type: str, allowed: Sequence[str]) -> None:
        self.action = action
        self.error_type = error_type
        self.allowed = tuple(allowed)
        super().__init__(
            f"The action {action!r} cannot resolve a {error_type}: "
            f"expected one of {', '.join(self.allowed)}"
        )


class BadResults(TreeflowError, ValueError):
    """A results XML document was refused: malformed, hostile, too large or of the wrong shape."""

    def __init__(self, *, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = "" if line is None else f" at line {line}"
        where += "" if line is None or column is None else f", column {column}"
        super().__init__(f"Invalid results XML{where}: {reason}")


class BadRequest(TreeflowError, ValueError):
    """A call's argument is missing or malformed (named by ``field``)."""

    def __init__(self, *, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"Invalid {field}: {reason}")


class ProcessNotFound(TreeflowError, LookupError):
    """No tree has that process name (the instance API's name of a tree)."""

    def __init__(self, *, process: str) -> None:
        self.process = process
        super().__init__(f"Unable to locate a process named {process!r}")


class InstanceNotFound(TreeflowError, LookupError):
    """No instance has that name, or none the caller may see (another user's is not found)."""

    def __init__(self, *, name: str) -> None:
        self.name = name
        super().__init__(f"Unable to locate an instance named {name!r}")


class UnknownField(BadRequest):
    """A call named fields its process does not declare; all of them are named."""

    def __init__(
        self,
        *,
        process: str,
        names: Sequence[str],
        known: Sequence[str],
        unsettable: Sequence[str] = (),
    ) -> None:
        self.process = process
        self.names = tuple(names)
        self.known = tuple(known)
        self.unsettable = tuple(unsettable)  # named too, so that one answer lists every field
        listed = ", ".join(repr(n) for n in self.names)
        declared = ", ".join(repr(n) for n in self.known) or "none"
        reason = f"the process {process!r} has no field {listed} (its fields: {declared})"
        if self.unsettable:
            reason += f"; callers may not set {', '.join(repr(n) for n in self.unsettable)}"
        super().__init__(field="fields", reason=reason)


class FieldNotSettable(BadRequest):
    """A call set fields its process declares ``settable: false``; all of them are named."""

    def __init__(self, *, process: str, names: Sequence[str]) -> None:
        self.process = process
        self.names = tuple(names)
        listed = ", ".join(repr(n) for n in self.names)
        super().__init__(
            field="fields", reason=f"callers may not set {listed} of the process {process!r}"
        )


class VersionRequired(BadRequest):
    """A replacing write came without the version it was based on."""

    def __init__(self, *, subject: str) -> None:
        self.subject = subject
        super().__init__(
            field="version",
            reason=f"replacing {subject} needs the version it was based on "
            "('version' in the body, or an If-Match header)",
        )


class VersionConflict(TreeflowError):
    """A write was based on a version that is no longer current."""

    def __init__(self, *, subject: str, expected: int, actual: int) -> None:
        self.subject = subject
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{subject} is at version {actual}, but the change was based on version {expected}"
        )


class IdempotencyKeyReused(TreeflowError, ValueError):
    """An idempotency key sent again with a different request: the first one's is kept, and
    this one is refused with nothing written. ``name`` is what the caller calls the key."""

    def __init__(self, *, key: str, name: str = "idempotency key") -> None:
        self.key = key
        self.name = name
        super().__init__(
            f"the {name} {key!r} was already used for a different request (another method, "
            "path or body); a new request needs a new key"
        )


class IllegalTransition(TreeflowError):
    """A status change that the state machine does not allow (a bug, never user input)."""

    def __init__(self, *, kind: str, current: str, new: str) -> None:
        self.kind = kind
        self.current = current
        self.new = new
        super().__init__(f"A {kind} cannot go from {current!r} to {new!r}")


class HandlerContractError(TreeflowError, TypeError):
    """A plugin registered a handler that does not satisfy the handler contract."""

    def __init__(self, *, handler: str, reason: str) -> None:
        self.handler = handler
        self.reason = reason
        super().__init__(f"Handler {handler!r} cannot be registered: {reason}")


class HandlerFailed(TreeflowError, RuntimeError):
    """A handler could not do its work (bad parameters, a server that refused): what and why.

    Raised by a node's ``execute``; the runner records it as the task's Handler Error.
    """

    def __init__(self, *, handler: str, reason: str) -> None:
        self.handler = handler
        self.reason = reason
        super().__init__(f"{handler}: {reason}")


class ExpressionError(TreeflowError, ValueError):
    """A template or condition failed to compile or to evaluate."""

    def __init__(self, *, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        super().__init__(f"{reason} in {source!r}")


class KineticImportError(TreeflowError, ValueError):
    """A Kinetic Task export cannot be converted: malformed or hostile XML, or not a tree.

    ``problems`` lists every problem found, each with the export's file and line (a problem in
    the XML itself also names the column in its message).
    """

    def __init__(self, *, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        head = f"cannot import the Kinetic export {file!r}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class GraphvizNotFound(TreeflowError, FileNotFoundError):
    """Drawing to SVG or PNG needs Graphviz's ``dot`` executable, which is not on PATH."""

    def __init__(self, *, executable: str = "dot", output_format: str) -> None:
        self.executable = executable
        self.output_format = output_format
        super().__init__(
            f"Graphviz's {executable!r} executable was not found on PATH; it is needed to draw "
            f"{output_format!r} (install Graphviz, e.g. apt-get install graphviz; '.dot' "
            "output needs no Graphviz)"
        )


class BadSelection(TreeflowError, ValueError):
    """A selection label that is not a lowercase word (see ``engine.tree.selection``)."""

    def __init__(self, *, label: object, limit: int) -> None:
        self.label = label
        super().__init__(
            f"selection label {label!r} must be 1 to {limit} lowercase letters, digits,"
            " '_', '.' or '-', starting with a letter or digit"
        )


class ItemNotFound(TreeflowError, LookupError):
    """The Kinetic Task API v2 names an item treeflow does not have (a tree by its title, a
    run's task, a handler, a source): ``kind`` says which, ``name`` what it was called."""

    def __init__(self, *, kind: str, name: object) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"Unable to locate the {kind} {name!r}")


class TreeExists(TreeflowError, ValueError):
    """An import names a tree that exists, and replacing it was not asked for."""

    def __init__(self, *, title: str) -> None:
        self.title = title
        super().__init__(f"the tree {title!r} exists: import it with force=true to replace it")


class NotImplementedOperation(TreeflowError, NotImplementedError):
    """An operation of the Kinetic Task API v2 document that treeflow does not provide."""

    def __init__(self, *, operation_id: str, method: str, path: str) -> None:
        self.operation_id = operation_id
        super().__init__(
            f"The Kinetic Task API v2 operation {operation_id} ({method} {path}) "
            "is not implemented by treeflow"
        )


__all__ = [
    "BadAction",
    "BadRequest",
    "BadResolution",
    "BadResults",
    "BadSelection",
    "ErrorAlreadyResolved",
    "ErrorNotFound",
    "ExpressionError",
    "FieldNotSettable",
    "GraphvizNotFound",
    "HandlerContractError",
    "HandlerFailed",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InstanceNotFound",
    "ItemNotFound",
    "KineticImportError",
    "NotImplementedOperation",
    "Problem",
    "ProcessNotFound",
    "RunNotFound",
    "ScheduleNotFound",
    "TokenNotFound",
    "TreeError",
    "TreeExists",
    "TreeNotFound",
    "TreeflowError",
    "TriggerNotFound",
    "UnknownField",
    "VersionConflict",
    "VersionRequired",
]
