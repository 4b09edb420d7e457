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
    rule: str | None = None  # the check that found it, if named (engine.tree.reference_checks)

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        node = f" node {self.node!r}:" if self.node is not None else ""
        return f"{where}:{node} {self.message}"


def problems_message(problems: Sequence[Problem], where: str) -> str:
    """``N problem(s) in WHERE:`` and one indented line a problem."""
    head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {where}"
    return head + ":\n" + "\n".join(f"  {p}" for p in problems)


class TreeError(TreeflowError, ValueError):
    """A tree definition is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, *, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(problems_message(self.problems, "tree definition"))


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


class TreeVersionNotFound(TreeflowError, LookupError):
    """No stored tree version has that id."""

    def __init__(self, *, version_id: object) -> None:
        self.version_id = version_id
        super().__init__(f"Unable to locate a tree version with the id {version_id!r}")


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


class RunCancelled(TokenNotFound):
    """A deferral token of a run that was cancelled: it no longer resumes anything.

    A subclass of :class:`TokenNotFound` (the seed API's answer to a token that resumes
    nothing), with a message that says why, so a caller that matches either is served.
    """

    def __init__(self, *, token: str, run_id: int) -> None:
        self.run_id = run_id
        TreeflowError.__init__(
            self,
            f"Unable to locate a task instance with the specified deferral token ({token}): "
            f"run {run_id} was cancelled",
        )
        self.token = token


class RunNotOpen(TreeflowError, ValueError):
    """A run that a control action cannot act on in its status (a Completed run's cancel)."""

    def __init__(self, *, run_id: int, status: str, action: str, allowed: Sequence[str]) -> None:
        self.run_id = run_id
        self.status = status
        self.action = action
        super().__init__(
            f"Run {run_id} is {status}: {action} needs a run that is {' or '.join(allowed)}"
        )


class RunNotDeletable(TreeflowError, ValueError):
    """A run that cannot be deleted (``Engine.delete_run``): a routine's run, which goes only
    with its call tree, or one whose call tree is unfinished or has an open trigger."""

    def __init__(self, *, run_id: int, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"Run {run_id} cannot be deleted: {reason}")


class HandlerTimeout(TreeflowError, TimeoutError):
    """A handler did not return within its node's retry ``timeout``: the attempt failed.

    Python cannot stop a thread: the handler's call goes on in its worker thread until it
    returns, and what it returns then is dropped (``engine.run.retries``).
    """

    def __init__(self, *, handler_id: str, seconds: float) -> None:
        self.handler_id = handler_id
        self.seconds = seconds
        super().__init__(f"handler {handler_id!r} did not return within {seconds:g} s")


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

    Raised by a node's ``execute``; the runner records it as the task's Handler Error. ``code``,
    when given, is one of the handler's declared ``error_codes``
    (``engine.handlers.handler.Handler``): a node's retry policy names the codes it retries
    (``retry: {on: [rate_limited]}``), so a handler tells a failure worth retrying (a rate
    limit) from one that is not (a refusal).
    """

    def __init__(self, *, handler: str, reason: str, code: str | None = None) -> None:
        self.handler = handler
        self.reason = reason
        self.code = code
        super().__init__(f"{handler}: [{code}] {reason}" if code else f"{handler}: {reason}")


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


class SchemaMismatch(TreeflowError, RuntimeError):
    """The database's schema is not the one this treeflow was built for.

    ``current`` describes the revision the database is at (and whether it was stamped or read
    from a legacy database's tables), ``expected`` is the one the code needs, ``command`` what
    makes them agree.
    """

    def __init__(self, *, current: str, expected: str, detail: str, command: str) -> None:
        self.current = current
        self.expected = expected
        self.command = command
        super().__init__(
            f"the database schema is at revision {current}, this treeflow needs revision "
            f"{expected}: {detail}; {command}"
        )


class SchemaUpgradeFailed(TreeflowError, RuntimeError):
    """A schema revision cannot be applied to the data the database holds; nothing changed."""

    def __init__(self, *, revision: str, reason: str) -> None:
        self.revision = revision
        self.reason = reason
        super().__init__(f"cannot upgrade the database to revision {revision}: {reason}")


class TreeTestError(TreeflowError, ValueError):
    """A tree test file (``treeflow test``) is invalid; ``problems`` lists every problem."""

    def __init__(self, *, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(problems_message(self.problems, "tree test file"))


class RunNotFinished(TreeflowError, ValueError):
    """A test case is written from a finished run (Completed or Failed), not one still going."""

    def __init__(self, *, run_id: int, status: str) -> None:
        self.run_id, self.status = run_id, status
        super().__init__(
            f"run {run_id} is {status}: a test case is written from a finished run "
            "(Completed or Failed)"
        )


class GivenHandlerError(TreeflowError, RuntimeError):
    """What a node raises in a tree test whose given results say ``error: MESSAGE``."""


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
    "GivenHandlerError",
    "GraphvizNotFound",
    "HandlerContractError",
    "HandlerFailed",
    "HandlerTimeout",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InstanceNotFound",
    "ItemNotFound",
    "KineticImportError",
    "NotImplementedOperation",
    "Problem",
    "ProcessNotFound",
    "RunCancelled",
    "RunNotDeletable",
    "RunNotFinished",
    "RunNotFound",
    "RunNotOpen",
    "ScheduleNotFound",
    "SchemaMismatch",
    "SchemaUpgradeFailed",
    "TokenNotFound",
    "TreeError",
    "TreeExists",
    "TreeNotFound",
    "TreeTestError",
    "TreeVersionNotFound",
    "TreeflowError",
    "TriggerNotFound",
    "UnknownField",
    "VersionConflict",
    "VersionRequired",
    "problems_message",
]
