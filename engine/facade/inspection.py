"""The Engine's reads: runs, triggers, errors, and what a run waits for.

Each opens one read transaction (``Database.read``) and returns records (``engine.records``),
never rows: hosts (the CLI, the HTTP adapter, ``treeflow test``) see the same shapes whichever
database is behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine import inputs
from engine.errors import ErrorNotFound
from engine.records import Explanation, Run, RunError, Task, Trigger
from engine.run.explain import explain as explain_run
from engine.statuses import RunStatus
from engine.store import inspection as store_inspection
from engine.store import resolutions, trigger_lists
from engine.store import runs as run_store
from engine.store import users as user_store
from engine.store.database import Database
from engine.store.deferral_tokens import run_of_deferred_token
from engine.tree.catalog import TreeCatalog
from engine.tree.model import Tree

MAX_ERROR_ID = 64  # the longest error id, as Engine.resolve_error checks it


class Inspection:
    """Reading runs, triggers and errors (part of :class:`~engine.engine.Engine`)."""

    database: Database
    catalog: TreeCatalog
    clock: Callable[[], float]

    def get_run(self, run_id: int) -> Run:
        with self.database.read() as connection:
            return run_store.read_run(connection, run_id)

    def run_of_deferral(self, token: str) -> int | None:
        """The run whose task is deferred under ``token``, if one is (for the HTTP adapter's
        deferral-token authentication)."""
        with self.database.read() as connection:
            return run_of_deferred_token(connection, token)

    def list_triggers(
        self,
        *,
        statuses: Sequence[str] | None = None,
        run_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[Trigger]]:
        """Triggers newest first, by status and run, with how many match: one read."""
        with self.database.read() as connection:
            total = trigger_lists.count_triggers(connection, statuses=statuses, run_id=run_id)
            found = trigger_lists.list_triggers(
                connection, statuses=statuses, run_id=run_id, limit=limit, offset=offset
            )
        return total, found

    def get_trigger(self, trigger_id: int) -> Trigger:
        with self.database.read() as connection:
            return run_store.read_trigger(connection, trigger_id)

    def list_runs(
        self,
        *,
        status: str | None = None,
        tree_name: str | None = None,
        source_id: str | None = None,
        created_by: str | None = None,
        created_from: float | None = None,
        created_until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Runs newest first, filtered in SQL: by status, tree, source id, the user id that
        created them through the API (``created_by``) and creation time (``created_from``
        inclusive, ``created_until`` exclusive, UNIX seconds)."""
        filters = {
            "status": status,
            "tree_name": tree_name,
            "source_id": source_id,
            "created_by": created_by,
            "created_from": created_from,
            "created_until": created_until,
        }
        with self.database.read() as connection:
            return run_store.list_runs(connection, limit=limit, offset=offset, **filters)

    def count_runs(
        self,
        *,
        status: str | None = None,
        tree_name: str | None = None,
        source_id: str | None = None,
        created_by: str | None = None,
        created_from: float | None = None,
        created_until: float | None = None,
    ) -> int:
        """How many runs :meth:`list_runs` pages through with these filters."""
        with self.database.read() as connection:
            return store_inspection.count_runs(
                connection,
                status=status,
                tree_name=tree_name,
                source_id=source_id,
                created_by=created_by,
                created_from=created_from,
                created_until=created_until,
            )

    def count_runs_by_status(
        self,
        *,
        tree_name: str | None = None,
        source_id: str | None = None,
        created_by: str | None = None,
        created_from: float | None = None,
        created_until: float | None = None,
    ) -> dict[str, int]:
        """Run status to how many runs are in it, with :meth:`list_runs`' other filters (the
        console's live counts); statuses no run is in are left out."""
        with self.database.read() as connection:
            return store_inspection.count_runs_by_status(
                connection,
                tree_name=tree_name,
                source_id=source_id,
                created_by=created_by,
                created_from=created_from,
                created_until=created_until,
            )

    def run_creator(self, run_id: int) -> str | None:
        """The id of the user who created run ``run_id`` through the API, or the top-level run
        whose routine run it is (None: the engine itself, a schedule without a user, or the
        CLI did)."""
        with self.database.read() as connection:
            return user_store.run_creator(connection, run_id)

    def list_deferred_tasks(
        self,
        *,
        tree_name: str | None = None,
        created_by: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[tuple[Run, Task]]:
        """Tasks Deferred now, the latest to start waiting first, each with its run (without
        its own tasks): what waits for a person. ``created_by``: only in runs that user id
        created."""
        with self.database.read() as connection:
            return run_store.list_deferred_tasks(
                connection,
                tree_name=tree_name,
                created_by=created_by,
                limit=limit,
                offset=offset,
            )

    def count_deferred_tasks(
        self, *, tree_name: str | None = None, created_by: str | None = None
    ) -> int:
        """How many tasks :meth:`list_deferred_tasks` pages through with these filters."""
        with self.database.read() as connection:
            return run_store.count_deferred_tasks(
                connection, tree_name=tree_name, created_by=created_by
            )

    def count_open_triggers(self) -> int:
        """The backlog: triggers New or Work In Progress, due or not, in the whole database."""
        with self.database.read() as connection:
            return store_inspection.open_trigger_count(connection)

    def explain(self, run_id: int) -> Explanation:
        """What run ``run_id`` waits for, item by item (``engine.run.explain``), with the same
        for each routine run it called that has not completed."""
        run = self.get_run(run_id)
        children = [
            self.explain(link.run_id)
            for link in run.children
            if link.status is not RunStatus.COMPLETED
        ]
        return explain_run(run, self.tree_of_run(run), now=self.clock(), children=children)

    def tree_of_run(self, run: Run) -> Tree:
        """The definition a run runs on (its own version, not necessarily the current one)."""
        with self.database.read() as connection:
            version_id = run_store.tree_version_of(connection, run.id)
        return self.catalog.for_version(version_id)

    def get_error(self, error_id: str) -> RunError:
        """Error ``error_id``; its id is checked as :meth:`Engine.resolve_error` checks it (a
        NUL would otherwise reach PostgreSQL, which cannot compare such text, and fail there)."""
        error_id = inputs.text("error_id", error_id, limit=MAX_ERROR_ID)
        with self.database.read() as connection:
            row = resolutions.read_error_row(connection, error_id)
        if row is None:
            raise ErrorNotFound(error_id=error_id)
        return run_store.error_record(row)

    def list_errors(
        self,
        *,
        run_id: int | None = None,
        status: str | None = None,
        error_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunError]:
        """Errors newest first, by run, status (Active, Handled) and type."""
        with self.database.read() as connection:
            return resolutions.list_errors(
                connection,
                run_id=run_id,
                status=status,
                error_type=error_type,
                limit=limit,
                offset=offset,
            )

    def count_errors(
        self,
        *,
        run_id: int | None = None,
        status: str | None = None,
        error_type: str | None = None,
    ) -> int:
        """How many errors :meth:`list_errors` pages through with these filters."""
        with self.database.read() as connection:
            return resolutions.count_errors(
                connection, run_id=run_id, status=status, error_type=error_type
            )


__all__ = ["Inspection"]
