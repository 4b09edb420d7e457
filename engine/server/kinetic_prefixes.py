"""Kinetic's URL prefixes: the Kinetic Task APIs where Kinetic's own clients address them.

Kinetic Data's SDK and portals do not call the server's root. They address
``{server}/kinetic-task/app/api/v1|v2/...`` (Kinetic Task on its own), the Platform's
``{space}/app/components/task/app/api/v1|v2/...``, or ``{server}/kinetic/...`` (Task 3's
context, whose trigger API is ``/kinetic/rest/v1/Trigger/...``). The same routes therefore
answer under each prefix as at the root, directly: the SDK does not follow redirects, so a 307
would break it. The aliases are left out of ``/openapi.json`` (each operation is described once,
at the root; the v2 routes are described by Kinetic's own document, not there).
"""

from __future__ import annotations

from fastapi import FastAPI

from engine.server import kinetic_v1, trigger_api
from engine.server.kinetic_v2 import router as kinetic_v2_router

KINETIC_PREFIXES = ("/kinetic-task", "/app/components/task", "/kinetic")


def include_kinetic_routes(app: FastAPI) -> None:
    """The v2 routes at the root, and the v1 and v2 routes and Task 3's trigger API under
    Kinetic's prefixes (the root's v1 and trigger routes are included by the app)."""
    app.include_router(kinetic_v2_router, include_in_schema=False)  # Kinetic's document has it
    for prefix in KINETIC_PREFIXES:
        app.include_router(kinetic_v1.router, prefix=prefix, include_in_schema=False)
        app.include_router(kinetic_v2_router, prefix=prefix, include_in_schema=False)
    app.include_router(trigger_api.routes, prefix=trigger_api.TASK3_PREFIX, include_in_schema=False)


__all__ = ["KINETIC_PREFIXES", "include_kinetic_routes"]
