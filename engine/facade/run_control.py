"""The Engine's run control: cancel a run, run it again, resume it at a node; and retention,
which deletes finished runs (on demand, or as the scheduler leader's duty).

Each call checks its arguments, writes durably (a trigger, or the deletion of whole call
trees) and wakes the workers where a trigger was written; what the trigger does is
``engine.processing.cancel`` and ``engine.processing.run_control``, what is deleted
``engine.store.retention``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping

from engine import inputs
from engine.errors import BadRequest
from engine.processing import run_control
from engine.processing.cancel import accept_cancel
from engine.processing.intake import insert_start
from engine.processing.workers import WorkerPool
from engine.records import Trigger
from engine.results_xml import parse_results
from engine.schedule.retention import RetentionDuty, RetentionPolicy
from engine.store import retention
from engine.store.database import Database
from engine.tree.catalog import TreeCatalog

RUN_AGAIN_VERSIONS = run_control.VERSIONS  # Engine.run_again's ``version``s
_text = inputs.text  # run_again's parameter ``inputs`` hides the module inside it


class RunControl:
    """Cancel, run again, resume at a node, purge, delete: part of :class:`~engine.Engine`."""

    database: Database
    catalog: TreeCatalog
    workers: WorkerPool
    clock: Callable[[], float]
    logger: logging.Logger
    max_results_bytes: int

    def cancel_run(self, run_id: int, reason: str | None = None, by: str | None = None) -> Trigger:
        """Cancel a run and the routine runs under it; durable when this returns.

        Its tokens stop resolving at once (createDeferred raises RunCancelled); a worker then
        makes it Cancelled and closes its open triggers as Cancelled. Cancelling it again
        returns the same trigger; a Completed run raises RunNotOpen.
        """
        reason = inputs.optional("reason", reason, inputs.MAX_MESSAGE)
        by = inputs.optional("by", by)
        trigger, written = accept_cancel(
            self.database, run_id=run_id, reason=reason, requested_by=by, now=self.clock()
        )
        if written:
            self.workers.wake()
        return trigger

    def run_again(
        self,
        run_id: int,
        *,
        inputs: Mapping[str, str] | None = None,
        version: str = "same",
        created_by: str | None = None,
    ) -> Trigger:
        """A new run of a run's tree for the same source, linked to it (``Run.again_of``).

        ``inputs`` replace the first run's inputs of those names; ``version`` is ``same`` (the
        first run's tree version) or ``current``. Returns the new run's Root trigger.
        """
        edits = {
            _text("inputs", name): _text(f"inputs[{name!r}]", value, required=False)
            for name, value in (inputs or {}).items()
        }
        trigger = run_control.accept_run_again(
            self.database,
            run_id=run_id,
            edits=edits,
            version=version,
            created_by=created_by,
            now=self.clock(),
            current_version=self.catalog.current,
            insert_start=insert_start,
        )
        self.workers.wake()
        return trigger

    def manual_trigger(
        self,
        run_id: int,
        node: str,
        *,
        results: str | bytes | None = None,
        reason: str,
        by: str,
    ) -> Trigger:
        """Resume a Started or Failed run at ``node`` with ``results`` (results XML).

        For admins (the HTTP route and the CLI check it): ``by`` and ``reason`` are required and
        recorded on the trigger. ``engine.processing.run_control`` says what it does.
        """
        node = _text("node", node)
        reason = _text("reason", reason, limit=inputs.MAX_MESSAGE)
        by = _text("by", by)
        parse_results(results, max_bytes=self.max_results_bytes)
        raw = results.decode() if isinstance(results, bytes) else results
        trigger = run_control.accept_manual(
            self.database,
            run_id=run_id,
            node=node,
            results=raw,
            reason=reason,
            requested_by=by,
            now=self.clock(),
            tree_of_version=self.catalog.for_version,
        )
        self.workers.wake()
        return trigger

    def _retention_duty(self, policy: RetentionPolicy) -> RetentionDuty:
        return RetentionDuty(self.database, policy, clock=self.clock, logger=self.logger)

    def _purge_criteria(
        self, older_than: float, statuses: Iterable[str] | None, tree_name: str | None
    ) -> retention.PurgeCriteria:
        if not isinstance(older_than, int | float) or not older_than >= 0:
            raise BadRequest(field="older_than", reason="must be a number of seconds, 0 or more")
        return retention.PurgeCriteria.checked(
            before=self.clock() - older_than, statuses=statuses, tree_name=tree_name
        )

    def count_purgeable(
        self,
        *,
        older_than: float,
        statuses: Iterable[str] | None = None,
        tree_name: str | None = None,
    ) -> int:
        """How many call trees :meth:`purge_runs` with these arguments would take now."""
        criteria = self._purge_criteria(older_than, statuses, tree_name)
        return retention.count_finished(self.database, criteria)

    def purge_runs(
        self,
        *,
        older_than: float,
        statuses: Iterable[str] | None = None,
        tree_name: str | None = None,
        dry_run: bool = False,
        archive: str | os.PathLike[str] | None = None,
        batch_size: int = retention.DEFAULT_BATCH,
        progress: Callable[[retention.PurgeCounts], None] | None = None,
    ) -> retention.PurgeCounts:
        """Delete runs finished more than ``older_than`` seconds ago, with everything about them.

        Whole call trees go, never one with an unfinished run or an open trigger; ``statuses``
        are the top-level run's (default Completed and Cancelled), ``tree_name`` limits it to
        one tree. ``batch_size`` call trees per short transaction; ``archive`` appends each run
        as a JSON line to that file before it is deleted; ``dry_run`` only counts
        (``engine.store.retention``). Bad arguments raise BadRequest and delete nothing.
        """
        criteria = self._purge_criteria(older_than, statuses, tree_name)
        return retention.purge(
            self.database,
            criteria,
            batch_size=batch_size,
            dry_run=dry_run,
            archive=archive,
            progress=progress,
        )

    def delete_run(self, run_id: int) -> retention.PurgeCounts:
        """Delete a finished top-level run now, with its whole call tree and every row about
        them, as a purge would; the counts. A routine's run, or a call tree with a Staged or
        Started run or an open trigger, raises RunNotDeletable naming why (cancel it first);
        nothing is deleted then (``engine.store.retention.delete_call_trees``)."""
        return retention.delete_call_trees(self.database, [run_id])


__all__ = ["RUN_AGAIN_VERSIONS", "RunControl"]
