"""The Kinetic Task API v2, ``/app/api/v2/...``, as its official document describes it.

One module per resource: :mod:`.runs` (:mod:`.run_control` deletes them and triggers their
Start node), :mod:`.trees` (and routines), :mod:`.triggers`, :mod:`.errors`, :mod:`.handlers`,
:mod:`.sources`, :mod:`.engine_info` (engine, environment, version, the API's root);
:mod:`.shapes` writes treeflow's records in the document's shapes, and :mod:`.document`
answers every other operation of the document 501. The routes answer at the
root and under Kinetic's prefixes (:mod:`engine.server.kinetic_prefixes`), with the same
credentials as every route (a bearer token, or HTTP Basic with a password or an access key);
reading needs any user; changing trees, deleting or triggering runs and resolving errors an
administrator.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from engine.server.kinetic_v2 import (
    engine_info,
    errors,
    handlers,
    run_control,
    runs,
    sources,
    trees,
    triggers,
)
from engine.server.kinetic_v2.document import (
    Operation,
    not_implemented_router,
    operations,
    path_shape,
)

PREFIX = "/app/api/v2"
RESOURCES = (engine_info, runs, run_control, trees, triggers, errors, handlers, sources)


def implemented() -> list[Operation]:
    """The operations of the official document that treeflow provides (the rest answer 501)."""
    shapes: set[tuple[str, str]] = set()
    for module in RESOURCES:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                shapes |= {(method, path_shape(route.path)) for method in route.methods or ()}
    return [operation for operation in operations() if operation.shape in shapes]


def _router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["Kinetic Task API v2"])
    # The API's root (the SDK's server_info): the prefix itself, so not in a resource's router.
    router.add_api_route("", engine_info.server_info, methods=["GET"], summary="API version")
    done = [operation.shape for operation in implemented()]
    router.include_router(not_implemented_router(done, literal=True))
    for module in RESOURCES:
        router.include_router(module.router)
    router.include_router(not_implemented_router(done, literal=False))
    return router


router = _router()

__all__ = ["PREFIX", "RESOURCES", "implemented", "router"]
