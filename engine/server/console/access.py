"""Who sees what in the console: administrators everything, a plain user the runs it created.

"Its own runs" are those whose creator, as the engine records it when a run is started
through the API with a signed-in user (``Engine.run_creator``, the ``run_creators`` table),
is the user: the runs it started with createStart, the v1 run-tree route or the v2 API, and
their Run Again copies made by it. ``GET /api/runs`` and ``/api/runs/{id}`` answer a plain
user about the same runs (``engine.server.inspection``), and instances are owned the same way
(``created_by``, enforced by ``/api/instances``). Another user's run is answered 404, as if it
did not exist, so ids cannot be probed. The actions (cancel, run again, resolving errors) are
the administrators', as in the JSON API; completing a deferral of a visible run is anyone's,
as createDeferred is.
"""

from __future__ import annotations

from engine.auth import User
from engine.engine import Engine
from engine.errors import RunNotFound
from engine.records import Run


def owner_filter(user: User) -> str | None:
    """The ``created_by`` filter of the user's lists: None (all) for an administrator."""
    return None if user.is_admin else user.id


def may_see(engine: Engine, user: User, run_id: int) -> bool:
    return user.is_admin or engine.run_creator(run_id) == user.id


def visible_run(engine: Engine, user: User, run_id: int) -> Run:
    """Run ``run_id`` with its tasks, if ``user`` may see it; RunNotFound (404) otherwise."""
    if not may_see(engine, user, run_id):
        raise RunNotFound(run_id=run_id)
    return engine.get_run(run_id)


__all__ = ["may_see", "owner_filter", "visible_run"]
