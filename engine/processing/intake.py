"""Writing the triggers the engine accepts: a run's Root trigger, Complete or Update, resolution.

The facade (``engine.engine``) checks what the caller gave and this writes it, so that the trigger
API reads as what it accepts while how acceptance is made durable stays in one place: each trigger
is written in one transaction (a Root trigger with its run: :func:`insert_start`, which the
instance API's creations go through too), a repeated idempotency key returns the trigger the first
call was given (looked up in the writing transaction; a concurrent call with the same key loses
the unique index, rolls back, looks again and returns the winner's), and the workers are woken
once the trigger is committed. A keyed call may carry a ``fingerprint`` of what it asks
(``engine.store.request_keys``): stored with its trigger, and a later call with the key but
another fingerprint is refused (``IdempotencyKeyReused``) instead of being answered with the
first call's trigger.

A start this process is ready to process itself is written already claimed and handed over in
memory (``engine.processing.hand_off``), which saves its consumer a claim and a read.

Starts can be accepted many at a time (``TriggerIntake.start_all``, behind
``Engine.create_starts``): one transaction, one commit, each request still answered with its
own outcome. The server's start routes gather concurrent requests into such batches
(``engine.server.start_batch``). Host threads calling ``create_start`` each get a transaction of
their own: measured with a combining scheme for them, it accepted fewer starts per second
(SQLite's write lock already serializes writers and a start's Python costs more than its
commit; PostgreSQL's pooled connections commit in parallel and the server flushes concurrent
commits together), so batching is the caller's choice, made where the starts arrive together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import rows
from engine.errors import (
    ErrorAlreadyResolved,
    RunCancelled,
    RunNotOpen,
    TokenNotFound,
    TreeflowError,
)
from engine.processing.hand_off import HandOff
from engine.processing.runner import Claim
from engine.records import TreeKey, Trigger
from engine.statuses import RunStatus, TriggerAction
from engine.store import cancels, queue, request_keys, resolutions
from engine.store import runs as run_store
from engine.store import users as user_store
from engine.store.database import Database
from engine.store.queue import ClaimedTrigger
from engine.store.trees import StoredVersion


def insert_start(
    connection: Connection,
    run: dict[str, Any],
    *,
    created_by: str | None,
    results: str | None,
    message: str | None,
    idempotency_key: str | None,
    fingerprint: str | None = None,
    lease: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """Insert ``run`` (``engine.rows.run_row``), who created it, and its Root trigger.

    Both ``Engine.create_start`` and the instance API accept runs through here, so a run started
    either way is the same rows: a Staged run, the user who created it (when one did), a New
    Root trigger due at the run's ``created_at`` and, for a keyed call with a ``fingerprint``,
    what the call was. Returns the trigger's row, with its ``id``; durable when the caller's
    transaction commits. With a ``lease`` (claim id, until) both are written claimed by it
    (``queue.lease_on_insert``, which sets the lease in ``run`` too), for this process's own
    consumer (``engine.processing.hand_off``).
    """
    trigger = _root_trigger_row(
        run, results=results, message=message, idempotency_key=idempotency_key, lease=lease
    )
    run_id = run_store.insert_run(connection, run)
    if created_by is not None:
        user_store.insert_run_creator(connection, run_id=run_id, user_id=created_by)
    trigger["run_id"] = run_id
    trigger["id"] = run_store.insert_trigger(connection, trigger)
    _record_fingerprint(connection, trigger, fingerprint)
    return trigger


def _root_trigger_row(
    run: dict[str, Any],
    *,
    results: str | None,
    message: str | None,
    idempotency_key: str | None,
    lease: tuple[str, float] | None,
) -> dict[str, Any]:
    """The Root trigger row of a start's ``run``, not yet inserted; leased with the run if
    ``lease`` is given."""
    trigger = rows.trigger_row(
        TriggerAction.ROOT,
        run_id=0,  # set once the run has its id
        now=run["created_at"],
        results=results,
        message=message,
        idempotency_key=idempotency_key,
    )
    if lease is not None:
        queue.lease_on_insert(run, trigger, claim_id=lease[0], until=lease[1])
    return trigger


def _fingerprint_row(trigger: Mapping[str, Any], fingerprint: str | None) -> dict[str, Any] | None:
    """The request_keys row for an inserted keyed ``trigger``; None if there is none to keep."""
    key = trigger["idempotency_key"]
    if key is None or fingerprint is None:
        return None
    return {
        "idempotency_key": key,
        "fingerprint": fingerprint,
        "trigger_id": trigger["id"],
        "created_at": trigger["created_at"],
    }


def _record_fingerprint(
    connection: Connection, trigger: Mapping[str, Any], fingerprint: str | None
) -> None:
    row = _fingerprint_row(trigger, fingerprint)
    if row is not None:
        request_keys.record_all(connection, [row])


def keyed_trigger_id(
    connection: Connection, idempotency_key: str | None, fingerprint: str | None
) -> tuple[int, int] | None:
    """(trigger id, run id) of what an earlier call with the key wrote, if one did; refused
    (``IdempotencyKeyReused``) when that call's fingerprint was another."""
    if idempotency_key is None:
        return None
    existing = queue.find_by_idempotency_key(connection, idempotency_key)
    if existing is not None and fingerprint is not None:
        request_keys.check(connection, key=idempotency_key, fingerprint=fingerprint)
    return existing


def _claimed(trigger: Mapping[str, Any]) -> ClaimedTrigger:
    """A trigger an accept wrote claimed, as a claim of it would return it."""
    return ClaimedTrigger(
        id=trigger["id"],
        action=trigger["action"],
        run_id=trigger["run_id"],
        task_id=None,
        token=None,
        results=trigger["results"],
        message=trigger["message"],
        attempts=trigger["attempts"],
        created_at=trigger["created_at"],
    )


def _keyed_trigger(
    idempotency_key: str | None, fingerprint: str | None
) -> Callable[[Connection], Trigger | None]:
    """What an earlier call with ``idempotency_key`` was given: its trigger, if there is one."""

    def find(connection: Connection) -> Trigger | None:
        existing = keyed_trigger_id(connection, idempotency_key, fingerprint)
        return None if existing is None else run_store.read_trigger(connection, existing[0])

    return find


@dataclass(slots=True)
class StartRequest:
    """A createStart the facade has checked: what :meth:`TriggerIntake.start` writes.

    Not frozen: built once per start on the hot path, where a frozen dataclass's ``__init__``
    costs several times a plain one's; nothing changes it after the facade built it."""

    key: TreeKey
    source_id: str
    inputs: Mapping[str, Any]
    raw_results: str | None
    message: str | None
    idempotency_key: str | None
    source_data: Mapping[str, Any] | None
    created_by: str | None
    fingerprint: str | None = None


def _run_row(request: StartRequest, version_id: int, now: float) -> dict[str, Any]:
    """The new run a start request writes, on ``version_id``."""
    return rows.run_row(
        tree_version_id=version_id,
        key=request.key,
        source_id=request.source_id,
        inputs=request.inputs,
        source_data=request.source_data,
        now=now,
    )


@dataclass(frozen=True)
class _PendingStart:
    """A start of a batch read and not yet written: where its outcome goes, its version, and
    the lease it is written under, if it is handed off."""

    outcome: int
    request: StartRequest
    version_id: int
    lease: tuple[str, float] | None


@dataclass(frozen=True)
class TriggerIntake:
    """The durable half of ``create_start``, ``create_deferred`` and ``resolve_error``."""

    database: Database
    clock: Callable[[], float]
    wake: Callable[[], None]  # the workers', once a trigger is committed
    # The version a new run of a tree starts on, read in the start's own transaction.
    current_version: Callable[[Connection, TreeKey], StoredVersion]
    # Starts claimed by the accept for this process's own consumers (engine.processing.hand_off),
    # under the runner's lease, when its selection serves the version (by id).
    hand_off: HandOff | None = None
    lease_seconds: float = 30.0
    serves: Callable[[int], bool] = lambda _version_id: True

    def start(self, request: StartRequest) -> Trigger:
        """Write a run of the tree's current version and its Root trigger (or find the keyed one).

        The version is the one current when the run is written, read in the same transaction
        (TreeNotFound if the tree is unknown or inactive by then), so that a version another
        process deployed, or an Inactive one it stored, is what this start sees. If a consumer
        in this process is ready (``HandOff.reserve``) and its selection serves the version, the
        rows are written claimed for it and the claim is handed over once committed; a repeat
        of a keyed call, or a start that raises, hands nothing over.
        """
        # One start on its own path, not as a batch of one: a start is mostly Python around
        # two statements, and beside a busy worker every microsecond of it is felt (measured,
        # pipelined linear10: ~1,080 starts/s on this path, ~870 as a batch of one with a
        # frozen request object).
        now = self.clock()
        reservation = self.hand_off.reserve() if self.hand_off is not None else None
        lease = None if reservation is None else (reservation.claim_id, now + self.lease_seconds)
        claims: list[Claim] = []  # the one written under the reservation, if it was

        def write(connection: Connection) -> Trigger:
            claims.clear()  # a second attempt (write_once) writes anew
            version_id = self.current_version(connection, request.key).id
            claimed = lease if lease is not None and self.serves(version_id) else None
            run, trigger = self._insert_start(connection, request, version_id, claimed, now)
            if claimed is not None:
                claims.append(
                    Claim(claimed[0], [_claimed(trigger)], runs={run["id"]: run}, until=claimed[1])
                )
            return run_store.trigger_record(trigger)

        find = _keyed_trigger(request.idempotency_key, request.fingerprint)
        try:
            trigger, written = self.database.write_once(
                request.idempotency_key, find=find, write=write
            )
        except BaseException:
            if reservation is not None and self.hand_off is not None:
                self.hand_off.deliver(reservation, None)
            raise
        if reservation is not None and self.hand_off is not None:
            self.hand_off.deliver(reservation, claims[0] if written and claims else None)
        if written:
            self.wake()
        return trigger

    def start_all(self, requests: Sequence[StartRequest]) -> list[Trigger | Exception]:
        """Accept every start of ``requests`` in one transaction: group commit.

        Each request's outcome, in order: its trigger (the one written, or the one an earlier
        call with its idempotency key was given; two requests of the batch with one key are
        one start, as two calls would be) or the ``TreeflowError`` that refused it
        (TreeNotFound, IdempotencyKeyReused). A refusal is found while the request is read,
        before it writes anything, so the others still commit. Every start is durable when this
        returns; a database error raises and nothing of the batch is kept. A unique-key
        conflict (a keyed start racing another process's with the same key) rolls the batch
        back, and each request is written again in a transaction of its own, where the repeat
        finds the winner's trigger; a conflict then is that request's outcome.
        """
        try:
            return self._write_starts(requests)
        except sa.exc.IntegrityError:
            if all(request.idempotency_key is None for request in requests):
                raise
        outcomes: list[Trigger | Exception] = []
        for request in requests:
            try:
                outcomes.extend(self._write_starts([request]))
            except sa.exc.IntegrityError as exc:
                outcomes.append(exc)
        return outcomes

    def _write_starts(self, requests: Sequence[StartRequest]) -> list[Trigger | Exception]:
        now = self.clock()
        # One consumer, if one is ready, takes the batch's starts (up to a claim's size), as
        # one claim would: one step, one commit, for what was accepted together.
        reservation = self.hand_off.reserve(len(requests)) if self.hand_off is not None else None
        lease = None if reservation is None else (reservation.claim_id, now + self.lease_seconds)
        room = 0 if reservation is None else reservation.room  # starts the lease may take
        claimed: list[ClaimedTrigger] = []
        claimed_runs: dict[int, Mapping[str, Any]] = {}
        outcomes: list[Trigger | Exception | None] = []
        versions: dict[TreeKey, int] = {}  # read once a batch: one transaction, one answer
        # Read every request first, then write them together (on PostgreSQL one round trip a
        # table, not one a row); a key repeated in the batch writes what came before it first,
        # so that its read finds that trigger as a call after it would.
        pending: list[_PendingStart] = []
        pending_keys: set[str] = set()
        written = False

        def flush(connection: Connection) -> None:
            for start, (run, trigger) in zip(
                pending, self._insert_starts(connection, pending, now), strict=True
            ):
                outcomes[start.outcome] = run_store.trigger_record(trigger)
                if start.lease is not None:
                    claimed.append(_claimed(trigger))
                    claimed_runs[run["id"]] = run
            pending.clear()
            pending_keys.clear()

        try:
            with self.database.write() as connection:
                for request in requests:
                    if request.idempotency_key in pending_keys:
                        flush(connection)
                    read = self._read_start(connection, request, versions)
                    if not isinstance(read, int):  # found by its key, or refused
                        outcomes.append(read)
                        continue
                    claim_it = len(claimed) + len(pending) < room and self.serves(read)
                    pending.append(
                        _PendingStart(len(outcomes), request, read, lease if claim_it else None)
                    )
                    outcomes.append(None)  # written by flush
                    written = True
                    if request.idempotency_key is not None:
                        pending_keys.add(request.idempotency_key)
                flush(connection)
        except BaseException:
            if reservation is not None and self.hand_off is not None:
                self.hand_off.deliver(reservation, None)
            raise
        if reservation is not None and self.hand_off is not None:
            claim = None
            if lease is not None and claimed:
                claim = Claim(lease[0], claimed, runs=claimed_runs, until=lease[1])
            self.hand_off.deliver(reservation, claim)
        if written:
            self.wake()
        return cast("list[Trigger | Exception]", outcomes)  # the last flush filled every None

    def _insert_starts(
        self, connection: Connection, starts: Sequence[_PendingStart], now: float
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Write many starts' runs and Root triggers as :func:`insert_start` writes one, a
        table at a time: the runs, who created them, the triggers, the keys' fingerprints."""
        written: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for start in starts:
            request = start.request
            run = _run_row(request, start.version_id, now)
            trigger = _root_trigger_row(
                run,
                results=request.raw_results,
                message=request.message,
                idempotency_key=request.idempotency_key,
                lease=start.lease,
            )
            written.append((run, trigger))
        if not written:
            return written
        run_ids = run_store.insert_run_rows(connection, [run for run, _ in written])
        creators = []
        for (run, trigger), run_id, start in zip(written, run_ids, starts, strict=True):
            run["id"] = trigger["run_id"] = run_id
            if start.request.created_by is not None:
                creators.append({"run_id": run_id, "user_id": start.request.created_by})
        if creators:
            user_store.insert_run_creators(connection, creators)
        trigger_ids = run_store.insert_trigger_rows(connection, [t for _, t in written])
        fingerprints = []
        for (_run, trigger), trigger_id, start in zip(written, trigger_ids, starts, strict=True):
            trigger["id"] = trigger_id
            row = _fingerprint_row(trigger, start.request.fingerprint)
            if row is not None:
                fingerprints.append(row)
        request_keys.record_all(connection, fingerprints)
        return written

    def _read_start(
        self, connection: Connection, request: StartRequest, versions: dict[TreeKey, int]
    ) -> Trigger | int | Exception:
        """What an earlier call with the request's key was given, or the version its run starts
        on (from ``versions``, the ones this batch has read), or the refusal: reads only, so a
        refused request has written nothing."""
        try:
            found = _keyed_trigger(request.idempotency_key, request.fingerprint)(connection)
            if found is not None:
                return found
            version_id = versions.get(request.key)
            if version_id is None:
                version_id = versions[request.key] = self.current_version(
                    connection, request.key
                ).id
            return version_id
        except TreeflowError as exc:
            return exc

    def _insert_start(
        self,
        connection: Connection,
        request: StartRequest,
        version_id: int,
        lease: tuple[str, float] | None,
        now: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the request's run and Root trigger, claimed under ``lease`` if given; the rows."""
        run = _run_row(request, version_id, now)
        trigger = insert_start(
            connection,
            run,
            created_by=request.created_by,
            results=request.raw_results,
            message=request.message,
            idempotency_key=request.idempotency_key,
            fingerprint=request.fingerprint,
            lease=lease,
        )
        run["id"] = trigger["run_id"]
        return run, trigger

    def deferred(
        self,
        *,
        token: str,
        action: str,
        raw_results: str | None,
        message: str | None,
        idempotency_key: str | None,
        fingerprint: str | None = None,
    ) -> Trigger:
        """Write a Complete or Update trigger for the task ``token`` names, reserving it."""
        now = self.clock()

        def write(connection: Connection) -> Trigger:
            complete = action == TriggerAction.COMPLETE
            reserved = queue.reserve_token(connection, token=token, complete=complete)
            if reserved is None:
                cancelled = cancels.cancelled_run_of_token(connection, token)
                if cancelled is not None:
                    raise RunCancelled(token=token, run_id=cancelled)
                raise TokenNotFound(token=token)
            task_id, run_id = reserved
            trigger = rows.trigger_row(
                TriggerAction(action),
                run_id=run_id,
                now=now,
                task_id=task_id,
                token=token,
                results=raw_results,
                message=message,
                idempotency_key=idempotency_key,
            )
            trigger["id"] = run_store.insert_trigger(connection, trigger)
            _record_fingerprint(connection, trigger, fingerprint)
            return run_store.trigger_record(trigger)

        trigger, written = self.database.write_once(
            idempotency_key, find=_keyed_trigger(idempotency_key, fingerprint), write=write
        )
        if written:
            self.wake()
        return trigger

    def resolution(
        self, *, error_id: str, action: str, message: str | None, resolved_by: str | None
    ) -> Trigger:
        """Write the trigger that applies ``action`` to the error; one per error is accepted."""
        try:
            with self.database.write() as connection:
                trigger = resolutions.accept(
                    connection,
                    error_id=error_id,
                    action=action,
                    message=message,
                    resolved_by=resolved_by,
                    now=self.clock(),
                )
                if cancels.cancelling(connection, trigger["run_id"]):  # nothing of it runs
                    raise RunNotOpen(
                        run_id=trigger["run_id"],
                        status=RunStatus.CANCELLED.value,
                        action="Resolving an error",
                        allowed=[RunStatus.STARTED.value, RunStatus.FAILED.value],
                    )
        except sa.exc.IntegrityError as exc:  # the key resolve:<id>: another was accepted first
            raise ErrorAlreadyResolved(error_id=error_id, action=None) from exc
        self.wake()
        return run_store.trigger_record(trigger)


__all__ = ["StartRequest", "TriggerIntake", "insert_start", "keyed_trigger_id"]
