"""The seed's trigger API: ``POST /kineticTask/rest/v1/Trigger/createStart`` and ``createDeferred``.

Each call is a form-encoded translation of :meth:`Engine.create_start` /
:meth:`Engine.create_deferred`; whatever the engine refuses comes back through the app's error
map as a 400 in the caller's format, and nothing is written. Either role may call them; the
caller's user id is recorded as the creator of the runs it starts.

Both take ``Idempotency-Key`` (``engine.server.idempotency``): a call sent again with it is
answered with the first call's trigger and writes nothing more.

The seed's simulation headers are honoured after authentication (a simulated call is still a
call, and a missing token is still answered 401): ``X-Simulate-Success: ID`` answers a success
naming ``ID``; ``X-Simulate-Error: API | AUTHORIZATION | SERVER`` answers 400, 401 or 500. The
form is then not read and the engine not called. When both headers are sent, the error wins.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.engine import Engine
from engine.errors import BadRequest
from engine.records import StartCall
from engine.server import formats
from engine.server.auth import caller
from engine.server.deferral_auth import deferral_caller, form_token
from engine.server.errors import REALM
from engine.server.forms import FormSpec, openapi_form, optional, read_form
from engine.server.idempotency import (
    OPENAPI_HEADER,
    fingerprint,
    keyed_answer,
    keyed_call,
    request_key,
    stored_key,
)
from engine.server.settings import ServerSettings
from engine.server.start_batch import start_batcher
from engine.server.trigger_lane import LaneRoute

PREFIX = "/kineticTask/rest/v1/Trigger"
TASK3_PREFIX = "/kinetic/rest/v1/Trigger"  # Kinetic Task 3's path for the same calls
START_FORM = FormSpec(
    required=("source_name", "source_group", "tree_name"),
    optional=("source_id", "results", "message"),
)
DEFERRED_FORM = FormSpec(required=("token", "action"), optional=("results", "message"))
SIMULATED_ERRORS = {
    "API": (400, "Simulated API error (X-Simulate-Error: API)"),
    "AUTHORIZATION": (401, "Simulated authorization error (X-Simulate-Error: AUTHORIZATION)"),
    "SERVER": (500, "Simulated server error (X-Simulate-Error: SERVER)"),
}
_DESCRIPTIONS = {
    "source_name": "the source the tree belongs to, e.g. Kinetic Request",
    "source_group": "the source group, e.g. KEG Catalog > Conference Registration",
    "source_id": "the id of the record the run is for",
    "tree_name": "the tree to start",
    "results": "optional results XML: <results><result name=...>...</result></results>",
    "message": "optional trigger message",
    "token": "the deferral token of the deferred task",
    "action": "Complete or Update",
}
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Trigger created: ID=<id>, or JSON / XML as Accept (or Accepts) asks",
        "content": {"text/plain": {}, "application/json": {}, "application/xml": {}},
    },
    400: {"description": "Bad request; X-Error-Message says what was wrong"},
    401: {"description": "Security token not provided or not valid"},
    408: {"description": "The request body did not arrive in time; nothing was done"},
    413: {"description": "Request body over the size limit"},
    422: {"description": "The Idempotency-Key was used for a different request"},
    500: {"description": "Server error"},
    503: {"description": "The database is unreachable: send again after Retry-After"},
}

# createStart: either role; createDeferred: credentials, or its token alone where
# deferral-token auth allows it. Named, so that engine.server.trigger_lane calls the same ones.
start_caller = caller()
deferred_caller = deferral_caller(form_token)
StartCaller = Annotated[User, Depends(start_caller)]
FormTokenCaller = Annotated[User, Depends(deferred_caller)]
# The routes without a prefix, so that engine.server.kinetic_prefixes can serve them under
# Task 3's path too; ``router`` is them under the seed's.
routes = APIRouter(tags=["trigger API (seed)"])


def simulation(request: Request) -> Response | None:
    """The response the simulation headers ask for, or None when there are none."""
    fmt = formats.choose_format(request.headers)
    error = request.headers.get("x-simulate-error")
    if error is not None:
        kind = error.strip().upper()
        if kind not in SIMULATED_ERRORS:
            raise BadRequest(
                field="X-Simulate-Error",
                reason=f"{error!r} is not one of {', '.join(SIMULATED_ERRORS)}",
            )
        status, message = SIMULATED_ERRORS[kind]
        headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'} if status == 401 else None
        return formats.failure(fmt, status, message, headers)
    success = request.headers.get("x-simulate-success")
    if success is not None:
        if not success.strip():
            raise BadRequest(field="X-Simulate-Success", reason="must give the trigger id")
        return formats.success(fmt, success.strip())
    return None


def _context(request: Request) -> tuple[Engine, ServerSettings]:
    return request.app.state.engine, request.app.state.settings


def _openapi(spec: FormSpec) -> dict[str, object]:
    return {**openapi_form(spec, _DESCRIPTIONS), "parameters": [OPENAPI_HEADER]}


@routes.post(
    "/createStart",
    summary="Start a tree (the seed's createStart)",
    openapi_extra=_openapi(START_FORM),
    responses=_RESPONSES,
    response_class=Response,
)
async def create_start(request: Request, user: StartCaller) -> Response:
    simulated = simulation(request)
    if simulated is not None:
        return simulated
    settings: ServerSettings = request.app.state.settings
    fields = await read_form(request, START_FORM, max_bytes=settings.max_body_bytes)
    key = request_key(request, user, fields)
    trigger = await keyed_answer(
        key,
        start_batcher(request).create_start(
            StartCall(
                source_name=fields["source_name"],
                source_group=fields["source_group"],
                tree_name=fields["tree_name"],
                source_id=fields.get("source_id", ""),
                results=optional(fields, "results"),
                message=optional(fields, "message"),
                created_by=user.id,
                idempotency_key=stored_key(key),
                fingerprint=fingerprint(key),
            )
        ),
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    return formats.success(formats.choose_format(request.headers), str(trigger.id))


@routes.post(
    "/createDeferred",
    summary="Complete or update a deferred task (the seed's createDeferred)",
    openapi_extra=_openapi(DEFERRED_FORM),
    responses=_RESPONSES,
    response_class=Response,
)
async def create_deferred(request: Request, user: FormTokenCaller) -> Response:
    simulated = simulation(request)
    if simulated is not None:
        return simulated
    engine, settings = _context(request)
    fields = await read_form(request, DEFERRED_FORM, max_bytes=settings.max_body_bytes)
    key = request_key(request, user, fields)
    trigger = await keyed_call(
        key,
        partial(
            engine.create_deferred,
            token=fields["token"],
            action=fields["action"],
            results=optional(fields, "results"),
            message=optional(fields, "message"),
            idempotency_key=stored_key(key),
            fingerprint=fingerprint(key),
        ),
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    return formats.success(formats.choose_format(request.headers), str(trigger.id))


router = APIRouter()
router.include_router(routes, prefix=PREFIX)
# The same calls for engine.server.trigger_lane, under both prefixes they are served at.
LANE_ROUTES = {
    f"{prefix}/{name}": LaneRoute(call, endpoint)
    for prefix in (PREFIX, TASK3_PREFIX)
    for name, call, endpoint in (
        ("createStart", start_caller, create_start),
        ("createDeferred", deferred_caller, create_deferred),
    )
}

__all__ = [
    "DEFERRED_FORM",
    "LANE_ROUTES",
    "PREFIX",
    "SIMULATED_ERRORS",
    "START_FORM",
    "TASK3_PREFIX",
    "router",
    "routes",
    "simulation",
]
