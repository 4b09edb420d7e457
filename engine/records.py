"""What the engine hands back to callers: plain, frozen snapshots of rows, and the names of things
(and a start as a value, for the calls that take many).

They are read models, not live objects: reading a run twice gives two snapshots, and nothing a
caller does to one changes the database. Every layer may use them (the store builds them from
rows), so this module imports nothing of the engine but its statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.statuses import RunStatus, TaskStatus, TriggerAction, TriggerStatus

ROOT_LOOP_INDEX = "/"  # the loop index of every task outside loops; /0, /1, /0/2 inside them


@dataclass(frozen=True)
class TreeKey:
    """What names a tree: source name, source group and tree name."""

    source_name: str
    source_group: str
    name: str

    def __str__(self) -> str:
        return f"{self.source_name} :: {self.source_group} :: {self.name}"


@dataclass(frozen=True)
class Task:
    """One node executed in a run (per loop index)."""

    id: str
    name: str
    handler_id: str
    status: TaskStatus
    results: Mapping[str, Any]
    token: str | None
    loop_index: str
    created_at: float
    updated_at: float
    attempt: int = 1  # which call of its handler its status is of (a node's retry policy)
    last_error: str | None = None  # what the last failed call raised, when one failed
    # A join's or loop tail's arrivals: the nodes (or iteration loop indexes) that reached it.
    arrived: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunError:
    """An error recorded on a run: what failed, where, and whether it is still active."""

    id: str
    type: str
    status: str
    node: str
    loop_index: str
    summary: str
    text: str
    task_id: str | None
    trigger_id: int | None
    connector_to: str | None
    created_at: float
    run_id: int | None = None
    # Set once a resolution is accepted; ``status`` becomes Handled when it has been applied.
    resolution_action: str | None = None
    resolution_message: str | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    resolution_trigger_id: int | None = None


@dataclass(frozen=True)
class RunLink:
    """A routine run a task of this run called: which task, which run, how it stands."""

    run_id: int
    task_id: str
    tree_name: str
    status: RunStatus


@dataclass(frozen=True)
class Run:
    id: int
    status: RunStatus
    source_name: str
    source_group: str
    tree_name: str
    tree_version: int
    source_id: str
    inputs: Mapping[str, Any]
    values: Mapping[str, Any]
    created_at: float
    updated_at: float
    tasks: tuple[Task, ...] = ()
    errors: tuple[RunError, ...] = ()
    # A routine's run: the run and task that called it. ``children``: the routine runs its own
    # tasks called, oldest first (read with the run; lists of runs leave them out).
    parent_run_id: int | None = None
    parent_task_id: str | None = None
    children: tuple[RunLink, ...] = ()
    again_of: int | None = None  # Run Again: the run this one is a new run of
    # What the caller sent beside the inputs (v1 run-tree's body, ``Engine.create_start``'s
    # ``source_data``): ``source.data`` in templates.
    source_data: Mapping[str, Any] = field(default_factory=dict)

    def task(self, name: str, loop_index: str = ROOT_LOOP_INDEX) -> Task:
        """The latest task of node ``name`` (raises KeyError naming it if it never ran)."""
        for task in reversed(self.tasks):
            if task.name == name and task.loop_index == loop_index:
                return task
        raise KeyError(f"node {name!r} has no task in run {self.id}")

    @property
    def open_tokens(self) -> dict[str, str]:
        """Node name -> deferral token, for every task still deferred."""
        return {t.name: t.token for t in self.tasks if t.status is TaskStatus.DEFERRED and t.token}


@dataclass(frozen=True)
class Waiting:
    """One open thing of a run and what it waits for (``Engine.explain``; ``waits_for``: a
    sentence).

    ``missing`` lists what has not happened yet (source nodes, iterations, tasks of a region,
    each with how it stands); ``token``, ``due_at`` and ``child_run_id`` are set where they fit.
    """

    kind: str  # deferral, wait, retry, routine call, join, junction, loop tail, error, start
    node: str
    loop_index: str
    waits_for: str
    task_id: str | None = None
    token: str | None = None
    due_at: str | None = None
    child_run_id: int | None = None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """What a run waits for: its open items, and the open routine runs it called."""

    run_id: int
    status: str
    summary: str
    waiting: tuple[Waiting, ...]
    children: tuple[Explanation, ...] = ()


@dataclass(frozen=True)
class Trigger:
    """A durable unit of engine work; ``id`` is what createStart and createDeferred return."""

    id: int
    action: TriggerAction
    status: TriggerStatus
    run_id: int
    task_id: str | None = None
    token: str | None = None
    message: str | None = None
    idempotency_key: str | None = None
    created_at: float = 0.0
    closed_at: float | None = None
    engine: str | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    requested_by: str | None = None  # who asked for a Cancel or a Manual trigger
    node: str | None = None  # where a Manual trigger resumes its run


@dataclass(frozen=True)
class StartCall:
    """One start for ``Engine.create_starts``: the arguments ``Engine.create_start`` takes."""

    source_name: str
    source_group: str
    tree_name: str
    source_id: str = ""
    results: str | bytes | None = None
    message: str | None = None
    idempotency_key: str | None = None
    source_data: Mapping[str, Any] | None = None
    created_by: str | None = None
    fingerprint: str | None = None


def job_id(schedule_id: int, revision: int) -> str:
    """The scheduler's job for one revision of a schedule: a stale job shows in its id alone."""
    return f"schedule-{schedule_id}-r{revision}"


@dataclass(frozen=True)
class Schedule:
    """A schedule as callers see it (``next_fire_time`` is computed when it is read)."""

    id: int
    name: str
    source_name: str
    source_group: str
    tree_name: str
    source_id: str
    results: str | None
    process: str | None
    fields: Mapping[str, Any] | None
    instance: str | None
    creator_id: str | None
    when: Mapping[str, Any]
    timezone: str
    enabled: bool
    grace_seconds: int
    coalesce: bool
    revision: int
    done: bool
    created_by: str | None
    created_at: float
    updated_at: float
    next_fire_time: float | None = None

    @property
    def job_id(self) -> str:
        """The scheduler's job for this revision of the schedule."""
        return job_id(self.id, self.revision)


@dataclass(frozen=True)
class Firing:
    """One entry of a schedule's history: a run started, or slots skipped and why."""

    id: int
    schedule_id: int
    fire_time: float
    first_fire_time: float
    slots: int
    outcome: str
    reason: str
    manual: bool
    trigger_id: int | None
    run_id: int | None
    instance: str | None
    engine: str | None
    recorded_at: float


@dataclass(frozen=True)
class StoredUser:
    """A user as stored, with its password hash: for the rules of ``engine.auth`` only."""

    id: str
    name: str
    role: str
    password_hash: str
    security_stamp: str
    disabled: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class SignInAttempts:
    """The recent sign-in attempts of one throttled key: failed ones, and ones being checked."""

    key: str
    failures: tuple[float, ...]
    pending: tuple[float, ...]


@dataclass(frozen=True)
class StoredToken:
    """A token joined with its user: everything a request's authentication looks at."""

    user: StoredUser
    security_stamp: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class StoredAccessKey:
    """An access key joined with its user; ``secret_hash`` is the SHA-256 of the secret."""

    id: str
    user: StoredUser
    secret_hash: str
    description: str
    created_at: float


@dataclass(frozen=True)
class ClosedTrigger:
    """One trigger a commit closed."""

    id: int
    action: str
    status: TriggerStatus  # Closed, or Failed
    latency: float  # seconds from its creation (createStart, createDeferred, ...) to the commit


__all__ = [
    "ROOT_LOOP_INDEX",
    "ClosedTrigger",
    "Explanation",
    "Firing",
    "Run",
    "RunError",
    "RunLink",
    "Schedule",
    "SignInAttempts",
    "StartCall",
    "StoredAccessKey",
    "StoredToken",
    "StoredUser",
    "Task",
    "TreeKey",
    "Trigger",
    "Waiting",
    "job_id",
]
