"""Identifiers made by the engine itself: task and error ids, deferral tokens, worker names."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
import time

_sequence_lock = threading.Lock()
_last_ms = 0
_sequence = itertools.count()
_process_part = secrets.token_hex(7)
_claims = itertools.count()


def _new_process_part() -> None:
    global _process_part, _claims
    _process_part, _claims = secrets.token_hex(7), itertools.count()


os.register_at_fork(after_in_child=_new_process_part)  # a forked child is another process


def row_id() -> str:
    """A 32-hex id that sorts by creation: 48-bit milliseconds, a 24-bit sequence, 56 random bits.

    The sequence makes ids made by one process within one millisecond sort in the order they
    were made (a run's tasks list in execution order); the random part, drawn once per process,
    keeps processes apart. Row ids are not secrets (deferral tokens are), so they need no fresh
    randomness each.
    Time-ordered keys keep PostgreSQL's B-tree inserts at the right edge, and ids made in
    Python let a step insert its task rows in one batch without a round trip for each.
    """
    global _last_ms, _sequence
    now = int(time.time() * 1000)
    with _sequence_lock:
        if now > _last_ms:
            _last_ms, _sequence = now, itertools.count()
        now, number = _last_ms, next(_sequence)
    return f"{now:012x}{number & 0xFFFFFF:06x}{_process_part}"


def deferral_token() -> str:
    """40 hex characters (160 random bits): unguessable, as the seed's tokens look."""
    return secrets.token_hex(20)


def worker_name() -> str:
    """host:pid, recorded on the triggers a process closes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_id() -> str:
    """Names one claim: a lease belongs to a claim, not to a long-lived worker.

    A claim id is a fence, never a secret (only the engine's own writes compare it): it must
    differ from every other claim's, across processes too, which the process part (random, drawn
    again in a forked child) and a counter give without a system call for fresh randomness per
    claim, which a one-run-at-a-time caller paid on every run.
    """
    return f"{_process_part}{next(_claims):x}"
