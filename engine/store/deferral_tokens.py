"""Which run a deferral token belongs to, while its task is deferred.

Read before a call that authenticates by the token alone (``treeflow serve
--deferral-token-auth``) is accepted, to check that the run's tree opts in; one indexed read.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.tables import tasks

_RUN_OF_TOKEN = (
    sa.select(tasks.c.run_id)
    .where(tasks.c.token == sa.bindparam("token"), tasks.c.status == "Deferred")
    .limit(1)
)


def run_of_deferred_token(connection: Connection, token: str) -> int | None:
    """The run whose task is deferred under ``token``, or None (unknown, or not deferred)."""
    found = connection.execute(_RUN_OF_TOKEN, {"token": token}).scalar_one_or_none()
    return None if found is None else int(found)


__all__ = ["run_of_deferred_token"]
