"""The SQL tables, as SQLModel classes.

Node executions are rows of ``tasks``: a step writes the rows it changed and never rewrites a
whole run. Timestamps are UNIX seconds as floats: the claim query compares them on every poll,
and floats compare the same way on SQLite and PostgreSQL without parsing. JSON columns are
JSONB on PostgreSQL. The partial index ``ix_triggers_open`` covers exactly the predicate the
claim query uses, so closed triggers (the vast majority after a while) stay out of it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from engine.records import ROOT_LOOP_INDEX

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OPEN_TRIGGER_STATUSES = ("New", "Work In Progress")
_OPEN = sa.text("status IN ('New', 'Work In Progress')")
_LEASED = sa.text("lease_owner IS NOT NULL")
_TOKEN = sa.text("token IS NOT NULL")
_KEYED = sa.text("idempotency_key IS NOT NULL")
_CALLED = sa.text("root_run_id IS NOT NULL")
_CHILD = sa.text("parent_run_id IS NOT NULL")
_AGAIN = sa.text("again_of IS NOT NULL")


def _json(**kwargs: Any) -> Any:
    return Field(sa_column=sa.Column(JSONType, nullable=False, **kwargs))


class TreeVersionRow(SQLModel, table=True):
    __tablename__ = "tree_versions"
    __table_args__ = (sa.UniqueConstraint("source_name", "source_group", "name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    source_name: str
    source_group: str
    name: str
    version: int
    digest: str = Field(max_length=64)
    status: str = "Active"
    # Copied into every trigger of its runs (engine.tree.selection); '' is no label.
    selection: str = Field(default="", sa_column_kwargs={"server_default": ""})
    definition: dict[str, Any] = _json()
    # A routine's definition id: callers find the version providing it (engine.tree.routines).
    routine_id: str | None = Field(default=None, index=True)
    created_at: float


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_tree", "source_name", "source_group", "tree_name"),
        # Only leased runs are indexed: renewing and releasing leases never scans finished runs.
        sa.Index("ix_runs_leased", "lease_owner", sqlite_where=_LEASED, postgresql_where=_LEASED),
        # A call tree's routine runs, found from its top-level run (retention purges whole trees);
        # top-level runs, most of them, have none and stay out of it.
        sa.Index(
            "ix_runs_root_run_id", "root_run_id", sqlite_where=_CALLED, postgresql_where=_CALLED
        ),
        # The runs a run called, by their caller: top-level runs (most) stay out of it too.
        sa.Index(
            "ix_runs_parent_run_id", "parent_run_id", sqlite_where=_CHILD, postgresql_where=_CHILD
        ),
        # Runs run again from a run: its foreign key check when a run is purged looks here.
        sa.Index("ix_runs_again_of", "again_of", sqlite_where=_AGAIN, postgresql_where=_AGAIN),
    )

    id: int | None = Field(default=None, primary_key=True)
    tree_version_id: int = Field(foreign_key="tree_versions.id")
    source_name: str
    source_group: str
    tree_name: str
    source_id: str
    status: str = Field(index=True)
    inputs: dict[str, Any] = _json()
    values: dict[str, Any] = _json()
    source_data: dict[str, Any] = _json()
    # A routine's run: the run and task that called it, and how deep calls nest (0: not called).
    parent_run_id: int | None = Field(default=None, foreign_key="runs.id")
    parent_task_id: str | None = Field(default=None, max_length=32)
    call_depth: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The top-level run of a routine run's call tree (None: this run is one), see CallTreeRow.
    root_run_id: int | None = Field(default=None, foreign_key="runs.id")
    # Run Again: the run this one is a new run of (engine.processing.run_again).
    again_of: int | None = Field(default=None, foreign_key="runs.id")
    # Bumped by every write that changes what a worker loads for the run
    # (engine.processing.run_cache).
    revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    lease_owner: str | None = None
    lease_until: float | None = None
    created_at: float
    updated_at: float


class CallTreeRow(SQLModel, table=True):
    """How many routine runs have been started under a top-level run, its children's included.

    The budget of child runs per call tree (``engine.run.budgets``) is checked against it in the
    transaction that starts them (``engine.store.steps``). It is a table of its own, not a column
    of the top-level run, because the steps of runs all over the tree add to it: on the run's own
    row it would be locked both by them and by the worker committing that run, in either order.
    A tree that never calls a routine has no row.
    """

    __tablename__ = "call_trees"

    root_run_id: int = Field(primary_key=True, foreign_key="runs.id")
    runs: int


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        # Most tasks never defer: only real tokens are indexed (and unique).
        sa.Index(
            "ux_tasks_token", "token", unique=True, sqlite_where=_TOKEN, postgresql_where=_TOKEN
        ),
        # SQLite: the time-ordered text id is the table's own key, not a second index beside a
        # rowid; a step's task rows then cost one B-tree insert each instead of two.
        {"sqlite_with_rowid": False},
    )

    id: str = Field(primary_key=True, max_length=32)
    run_id: int = Field(foreign_key="runs.id", index=True)
    node: str
    handler_id: str
    loop_index: str = ROOT_LOOP_INDEX
    status: str
    results: dict[str, Any] = _json()
    token: str | None = Field(default=None, max_length=40)
    arrived: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))
    completing: bool = False  # a Complete for its token was accepted: refuse further resumes
    # Which call of its handler it is on (its retry policy's attempts, engine.run.retries), and
    # what the last failed one raised, while it is Retrying and after.
    attempt: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    last_error: str | None = None
    created_at: float
    updated_at: float


class TriggerRow(SQLModel, table=True):
    __tablename__ = "triggers"
    __table_args__ = (
        sa.Index("ix_triggers_open", "id", postgresql_where=_OPEN, sqlite_where=_OPEN),
        # What a worker with a selection claims from: its labels' open triggers, oldest first.
        sa.Index(
            "ix_triggers_open_selection",
            "selection",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        sa.Index(
            "ux_triggers_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=_KEYED,
            postgresql_where=_KEYED,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    action: str
    status: str
    run_id: int = Field(foreign_key="runs.id", index=True)
    task_id: str | None = Field(default=None, max_length=32)
    token: str | None = None
    results: str | None = None
    message: str | None = None
    idempotency_key: str | None = None
    due_at: float
    lease_owner: str | None = None
    lease_until: float | None = None
    attempts: int = 0
    # Its run's tree version's label, set by the insert itself (engine.store.trigger_rows).
    selection: str = Field(default="", sa_column_kwargs={"server_default": ""})
    engine: str | None = None  # which engine process closed it
    # Who asked for a Cancel or Manual trigger (its message says why), and a Manual trigger's node.
    requested_by: str | None = None
    node: str | None = None
    error: str | None = None
    created_at: float
    closed_at: float | None = None


class ErrorRow(SQLModel, table=True):
    """An error recorded on a run, and its resolution once one is accepted.

    ``resolution_action`` (with who, the message and the trigger that applies it) is set when a
    resolution is accepted, which is what makes a second one refused; ``status`` becomes Handled
    and ``resolved_at`` is set when that trigger is processed. Errors are found by run (the
    run_id index), so the resolution columns need no index of their own.
    """

    __tablename__ = "errors"

    id: str = Field(primary_key=True, max_length=32)
    run_id: int = Field(foreign_key="runs.id", index=True)
    task_id: str | None = Field(default=None, max_length=32)
    trigger_id: int | None = None
    node: str
    loop_index: str = ROOT_LOOP_INDEX
    type: str
    status: str
    summary: str
    text: str
    connector_to: str | None = None
    created_at: float
    resolution_action: str | None = None
    resolution_message: str | None = None
    resolved_by: str | None = None
    resolution_trigger_id: int | None = None
    resolved_at: float | None = None


# Set by a resolution, never by recording the error (its insert leaves them out).
RESOLUTION_COLUMNS = frozenset(
    {
        "resolution_action",
        "resolution_message",
        "resolved_by",
        "resolution_trigger_id",
        "resolved_at",
    }
)


class UserRow(SQLModel, table=True):
    """Someone who may call the HTTP API. ``security_stamp`` changes to revoke every token.

    ``name`` is as the user was added; ``name_key`` is its case-folded form (``engine.auth``
    computes it), unique, so that "Admin" cannot be added beside "admin" and every lookup by
    name ignores case.
    """

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)  # a GUID, as Kianda's userId
    name: str = Field(unique=True, max_length=150)
    name_key: str = Field(unique=True)  # no length: case folding may lengthen a name
    role: str = Field(max_length=16)
    password_hash: str
    security_stamp: str = Field(max_length=36)
    disabled: bool = False
    created_at: float
    updated_at: float


class AccessTokenRow(SQLModel, table=True):
    """An issued bearer token, by the SHA-256 of its value: the value itself is never stored.

    A token is valid while it has not expired, its user is enabled and the stamp it was issued
    under is still the user's security stamp.
    """

    __tablename__ = "access_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    security_stamp: str = Field(max_length=36)
    issued_at: float
    expires_at: float = Field(index=True)


class SignInFailureRow(SQLModel, table=True):
    """Recent sign-in attempts of one throttled key (a user name, a client address).

    ``failures`` are the times of failed attempts, newest last (at most the limit's number);
    ``pending`` the times of attempts whose password is being checked, which count against the
    limit too, so that parallel guesses cannot all pass the check before any has failed. Rows
    live in the database so that every server process and ``treeflow users unlock`` see the
    same counts; ``last_at`` finds the expired ones to delete.
    """

    __tablename__ = "sign_in_failures"

    key: str = Field(primary_key=True)
    failures: list[float] = _json()
    pending: list[float] = _json()
    last_at: float = Field(index=True)


class RunCreatorRow(SQLModel, table=True):
    """Who created a run through the API (runs started by the engine itself have no row)."""

    __tablename__ = "run_creators"

    run_id: int = Field(primary_key=True, foreign_key="runs.id")
    user_id: str = Field(index=True, max_length=36)


class AccessKeyRow(SQLModel, table=True):
    """A Kinetic-style access key of a user: an id and a secret, used as HTTP Basic credentials.

    Only the SHA-256 of the secret is stored (like a token's, and for the same reason: it is 256
    random bits, so a slow hash would gain nothing). The key acts as its user, with its role,
    while the user is enabled; deleting the row revokes it.
    """

    __tablename__ = "access_keys"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=36)
    secret_hash: str = Field(max_length=64)
    description: str = Field(default="", max_length=255)
    created_at: float


runs = SQLModel.metadata.tables["runs"]
call_trees = SQLModel.metadata.tables["call_trees"]
tasks = SQLModel.metadata.tables["tasks"]
triggers = SQLModel.metadata.tables["triggers"]
errors = SQLModel.metadata.tables["errors"]
tree_versions = SQLModel.metadata.tables["tree_versions"]
users = SQLModel.metadata.tables["users"]
access_tokens = SQLModel.metadata.tables["access_tokens"]
access_keys = SQLModel.metadata.tables["access_keys"]
sign_in_failures = SQLModel.metadata.tables["sign_in_failures"]
run_creators = SQLModel.metadata.tables["run_creators"]

__all__ = [
    "OPEN_TRIGGER_STATUSES",
    "RESOLUTION_COLUMNS",
    "AccessKeyRow",
    "AccessTokenRow",
    "CallTreeRow",
    "ErrorRow",
    "RunCreatorRow",
    "RunRow",
    "SignInFailureRow",
    "TaskRow",
    "TreeVersionRow",
    "TriggerRow",
    "UserRow",
    "access_keys",
    "access_tokens",
    "call_trees",
    "errors",
    "run_creators",
    "runs",
    "sign_in_failures",
    "tasks",
    "tree_versions",
    "triggers",
    "users",
]
