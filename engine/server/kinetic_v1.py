"""Kinetic Task 4's REST API v1, the three trigger calls: run a tree, complete or update a task.

- ``POST /app/api/v1/run-tree/{source}/{group}/{tree}``: the body, a JSON object or
  ``application/x-www-form-urlencoded`` fields (empty is allowed), becomes the run's
  ``source.data``; the optional query parameter ``sourceId`` its ``source.id``. Answers 200
  ``{"message": "Initiated run #<id> ...", "run": {...}}`` as Kinetic Task 4 does.
- ``POST /app/api/v1/complete-deferred-task/{source}`` and ``update-deferred-task/{source}``:
  a JSON object ``{"token", "message"?, "results"?}``; ``results`` is an object of
  name -> value (a string as is, null as empty, anything else as its JSON text) or a results
  XML string. Answers 200 ``{"message": ...}``. The token alone names the task; ``{source}``
  is part of Kinetic's URL and is not checked against the run's source.

All three take ``Idempotency-Key`` (``engine.server.idempotency``): sent again with it, a call
is answered as the first was and writes nothing more. A bearer token is required (any
signed-in user); errors come through the app's one error map
as ``{"status", "message"}`` JSON, 400 for bad input, an unknown tree or an unknown token, as
Kinetic Task 4 answers a bad call with a 400-series status and the exception's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.engine import Engine
from engine.errors import BadRequest
from engine.json_input import parse_json
from engine.records import StartCall
from engine.results_xml import write_results
from engine.server import formats
from engine.server.auth import AnyUser
from engine.server.deferral_auth import deferral_caller, json_token
from engine.server.forms import urlencoded_pairs
from engine.server.idempotency import (
    OPENAPI_HEADER,
    fingerprint,
    keyed_answer,
    keyed_call,
    request_key,
    stored_key,
)
from engine.server.read_models import ErrorBody
from engine.server.start_batch import start_batcher

PREFIX = "/app/api/v1"
FORM_TYPE = "application/x-www-form-urlencoded"
DEFERRED_FIELDS = ("token", "message", "results")


class RunOut(BaseModel):
    """The run a run-tree call created."""

    id: int
    sourceName: str
    sourceGroup: str
    tree: str
    sourceId: str
    status: str
    triggerId: int


class RunTreeAnswer(BaseModel):
    message: str = Field(description="what was done, e.g. Initiated run #3 for the tree ...")
    run: RunOut


class MessageAnswer(BaseModel):
    message: str = Field(description="what was done with the deferred task")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad body, unknown tree or unknown token"},
    401: {"model": ErrorBody, "description": "No bearer token, or not a valid one"},
    404: {"model": ErrorBody, "description": "No such route (e.g. a path parameter holding /)"},
    408: {"model": ErrorBody, "description": "The body did not arrive in time; nothing was done"},
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
    422: {"model": ErrorBody, "description": "The Idempotency-Key was used for another request"},
    503: {"model": ErrorBody, "description": "The database is unreachable: send it again later"},
}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_RUN_TREE_BODY = {
    "parameters": [OPENAPI_HEADER],
    "requestBody": {
        "required": False,
        "description": "source data: name/value pairs as JSON or form fields",
        "content": {
            "application/json": {"schema": _ANY_OBJECT},
            FORM_TYPE: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    },
}
_DEFERRED_BODY = {
    "parameters": [OPENAPI_HEADER],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "string", "description": "the deferral token"},
                        "message": {"type": "string"},
                        "results": {
                            "oneOf": [
                                {"type": "object", "additionalProperties": True},
                                {"type": "string", "description": "results XML"},
                            ]
                        },
                    },
                    "required": ["token"],
                    "additionalProperties": False,
                }
            }
        },
    },
}

# complete- and update-deferred-task: credentials, or the token where deferral-token auth allows.
TokenCaller = Annotated[User, Depends(deferral_caller(json_token))]
router = APIRouter(prefix=PREFIX, tags=["Kinetic Task 4 API v1"], responses=_ERRORS)


def _answer(body: BaseModel) -> Response:
    return Response(formats.json_body(body.model_dump()), media_type="application/json")


def _json_object(body: bytes) -> dict[str, Any]:
    value = parse_json(body, field="body")
    if not isinstance(value, dict):
        raise BadRequest(field="body", reason="must be a JSON object")
    return value


def _form(body: bytes) -> dict[str, str]:
    pairs = urlencoded_pairs(body)
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(field=name, reason="is given more than once")
        if "\x00" in name or "\x00" in value:  # PostgreSQL text and JSON cannot hold NUL
            raise BadRequest(field="form", reason=f"{name!r} contains a NUL character")
        fields[name] = value
    return fields


async def _source_data(request: Request) -> dict[str, Any]:
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == FORM_TYPE:
        return _form(body)
    if not body.strip():
        return {}
    return _json_object(body)


def _result_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return formats.json_body(value)


def results_document(results: object) -> str | None:
    """A v1 ``results`` value as our results XML: an object of name -> value, or XML as is."""
    if results is None:
        return None
    if isinstance(results, str):
        return results or None
    if isinstance(results, dict):
        return write_results({str(name): _result_text(value) for name, value in results.items()})
    raise BadRequest(field="results", reason="must be an object of name -> value or results XML")


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise BadRequest(field=name, reason="must be a string")


async def _deferred(request: Request, user: User, action: str) -> str:
    body = _json_object(await request.body())
    unknown = sorted(set(body) - set(DEFERRED_FIELDS))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise BadRequest(field="body", reason=f"unknown property {names}")
    token = body.get("token")
    if token is None:
        raise BadRequest(field="token", reason="the property is missing")
    if not isinstance(token, str):
        raise BadRequest(field="token", reason="must be a string")
    engine: Engine = request.app.state.engine
    key = request_key(request, user, body)
    trigger = await keyed_call(
        key,
        partial(
            engine.create_deferred,
            token=token,
            action=action,
            results=results_document(body.get("results")),
            message=_optional_text(body, "message"),
            idempotency_key=stored_key(key),
            fingerprint=fingerprint(key),
        ),
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    return token


@router.post(
    "/run-tree/{source}/{group}/{tree}",
    summary="Run a tree; the body becomes source.data (Kinetic Task 4 run-tree)",
    openapi_extra=_RUN_TREE_BODY,
    response_model=RunTreeAnswer,
    response_class=Response,
)
async def run_tree(
    request: Request,
    user: AnyUser,
    source: str,
    group: str,
    tree: str,
    source_id: Annotated[str, Query(alias="sourceId")] = "",
) -> Response:
    data = await _source_data(request)
    key = request_key(request, user, data)
    trigger = await keyed_answer(
        key,
        start_batcher(request).create_start(
            StartCall(
                source_name=source,
                source_group=group,
                tree_name=tree,
                source_id=source_id,
                source_data=data,
                created_by=user.id,
                idempotency_key=stored_key(key),
                fingerprint=fingerprint(key),
            )
        ),
    )
    request.app.state.metrics.accepted.labels(trigger.action.value).inc()
    run = RunOut(
        id=trigger.run_id,
        sourceName=source,
        sourceGroup=group,
        tree=tree,
        sourceId=source_id,
        status="Staged",
        triggerId=trigger.id,
    )
    message = f"Initiated run #{run.id} for the tree '{source} :: {group} :: {tree}'."
    return _answer(RunTreeAnswer(message=message, run=run))


@router.post(
    "/complete-deferred-task/{source}",
    summary="Complete a deferred task by its token (Kinetic Task 4)",
    openapi_extra=_DEFERRED_BODY,
    response_model=MessageAnswer,
    response_class=Response,
)
async def complete_deferred_task(request: Request, user: TokenCaller, source: str) -> Response:
    token = await _deferred(request, user, "Complete")
    return _answer(MessageAnswer(message=f"Completed the deferred task with token {token}."))


@router.post(
    "/update-deferred-task/{source}",
    summary="Update a deferred task by its token (Kinetic Task 4)",
    openapi_extra=_DEFERRED_BODY,
    response_model=MessageAnswer,
    response_class=Response,
)
async def update_deferred_task(request: Request, user: TokenCaller, source: str) -> Response:
    token = await _deferred(request, user, "Update")
    return _answer(MessageAnswer(message=f"Updated the deferred task with token {token}."))


__all__ = ["PREFIX", "results_document", "router"]
