"""The Kianda-style instance API: create an instance of a process, read it and its fields,
replace or patch its fields with optimistic concurrency.

- ``POST /api/instances/create`` ``{"processName", "instanceID"?, "TriggerField"?,
  "FieldsMappings": [{"fieldname", "text"?, "value"}]}`` -> ``{"success": true, "instanceID":
  "<process>-<n>"}``: the instance's run is accepted (a Root trigger, counted in ``/metrics``
  as accepted), and processed by the engine's workers. It takes ``Idempotency-Key``
  (``engine.server.idempotency``): sent again with it, the creation answers the instance the
  first call created.
- ``GET /api/instances/{name}`` -> ``instanceID``, ``processName``, ``status``, ``version``,
  ``fields`` (each ``name``, ``text``, ``value``), with an ``ETag`` of the version.
- ``GET /api/instances/{name}/fields?names=a,b`` -> those fields, in that order (all of them
  without ``names``); an unknown name is refused (400) naming it.
- ``PUT /api/instances/{name}`` ``{"version"?, "fields": [{"name", "text"?, "value"}]}``
  replaces every settable field (those left out go back to their defaults). It must carry the
  version it was based on, as ``version`` or as ``If-Match: "<version>"`` (both: they must
  agree); without one 428, and when the instance has moved on 409, with nothing written.
- ``PATCH`` the same path changes only the fields given; a version is checked when sent.

Either role may call these. An administrator reaches every instance; a plain user only the
instances it created: another user's instance answers 404 exactly as a missing one does, so a
user cannot learn which names exist. A field the process does not declare, or declares
``settable: false``, is refused (400) naming every such field.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import User
from engine.errors import BadRequest, VersionRequired
from engine.server.auth import AnyUser
from engine.server.idempotency import (
    OPENAPI_HEADER,
    fingerprint,
    keyed_call,
    request_key,
    stored_key,
)
from engine.server.json_bodies import StrictJSONRoute
from engine.server.kianda_models import (
    MAX_VERSION,
    CreatedOut,
    CreateInstanceIn,
    FieldOut,
    InstanceOut,
    PatchIn,
    ReplaceIn,
)
from engine.server.paging import app_engine
from engine.server.read_models import ErrorBody

_ETAG = re.compile(r'\s*(?:W/)?"?(\d{1,10})"?\s*')
_ETAG_HEADER = {"ETag": {"description": 'the version, quoted: "3"', "schema": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_COMMON: dict[int | str, dict[str, Any]] = {
    400: _error("A bad name, field or value: the message names it"),
    401: _error("No bearer token, or not a valid one"),
}
_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("No such instance, or not one the caller created")
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_FOUND,
    409: _error("The instance is no longer at the version given: nothing was written"),
    413: _error("Request body over the size limit"),
}

router = APIRouter(
    prefix="/api/instances", tags=["instances"], responses=_COMMON, route_class=StrictJSONRoute
)
Name = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="the instance's name, <process>-<n>",
        examples=["new-training-process-1"],
    ),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=64, description='the version written as an ETag: "3"'),
]


def _owner(user: User) -> str | None:
    """Whose instances the caller may reach: all (None) for administrators, else its own."""
    return None if user.is_admin else user.id


def _with_etag(body: InstanceOut) -> Response:
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{body.version}"'},
    )


def _version(body_version: int | None, if_match: str | None) -> int | None:
    """The version a write is based on, from the body or ``If-Match`` (which must agree)."""
    header_version = None
    if if_match is not None:
        found = _ETAG.fullmatch(if_match)
        if found is None or not 1 <= int(found.group(1)) <= MAX_VERSION:
            raise BadRequest(
                field="If-Match",
                reason=f'must be one version as an entity tag, e.g. "3"; not {if_match!r}',
            )
        header_version = int(found.group(1))
    if body_version is not None and header_version is not None and body_version != header_version:
        raise BadRequest(
            field="version",
            reason=f"the body says {body_version} and If-Match says {header_version}",
        )
    return body_version if body_version is not None else header_version


@router.post(
    "/create",
    summary="Create an instance of a process (its run starts)",
    response_model=CreatedOut,
    responses={
        404: _error("No process has that name"),
        408: _error("The body did not arrive in time; nothing was done"),
        413: _error("Request body over the size limit"),
        503: _error("The database is unreachable: send it again later"),
    },
    openapi_extra={"parameters": [OPENAPI_HEADER]},
)
async def create_instance(request: Request, user: AnyUser, body: CreateInstanceIn) -> CreatedOut:
    key = request_key(request, user, body.model_dump(mode="json"))
    instance = await keyed_call(
        key,
        partial(
            app_engine(request).create_instance,
            body.processName,
            body.fields(),
            trigger_field=body.TriggerField,
            instance_id=body.instanceID,
            created_by=user.id,
            idempotency_key=stored_key(key),
            fingerprint=fingerprint(key),
        ),
    )
    request.app.state.metrics.accepted.labels("Root").inc()
    return CreatedOut(success=True, instanceID=instance.name)


@router.get(
    "/{name}",
    summary="An instance: its process, status, version and fields",
    response_model=InstanceOut,
    responses={200: {"headers": _ETAG_HEADER}, **_FOUND},
)
async def get_instance(request: Request, user: AnyUser, name: Name) -> Response:
    instance = await run_in_threadpool(
        partial(app_engine(request).get_instance, name, created_by=_owner(user))
    )
    return _with_etag(InstanceOut.of(instance))


@router.get(
    "/{name}/fields",
    summary="Fields of an instance by name (all without names)",
    response_model=list[FieldOut],
    responses=_FOUND,
)
async def get_fields(
    request: Request,
    user: AnyUser,
    name: Name,
    names: Annotated[
        str | None,
        Query(max_length=65_536, description="field names, separated by commas: Reason,Days"),
    ] = None,
) -> list[FieldOut]:
    wanted = None if names is None else [n.strip() for n in names.split(",") if n.strip()]
    found = await run_in_threadpool(
        partial(app_engine(request).instance_fields, name, wanted, created_by=_owner(user))
    )
    return [FieldOut.of(field) for field in found]


@router.put(
    "/{name}",
    summary="Replace every settable field; needs the version it is based on",
    response_model=InstanceOut,
    responses={
        200: {"headers": _ETAG_HEADER},
        **_WRITE,
        428: _error("No version given, in the body or If-Match"),
    },
)
async def replace_fields(
    request: Request, user: AnyUser, name: Name, body: ReplaceIn, if_match: IfMatch = None
) -> Response:
    version = _version(body.version, if_match)
    if version is None:
        raise VersionRequired(subject=f"the instance {name!r}")
    instance = await run_in_threadpool(
        partial(
            app_engine(request).replace_instance_fields,
            name,
            body.values(),
            version=version,
            created_by=_owner(user),
        )
    )
    return _with_etag(InstanceOut.of(instance))


@router.patch(
    "/{name}",
    summary="Change only the fields given; a version is checked when given",
    response_model=InstanceOut,
    responses={200: {"headers": _ETAG_HEADER}, **_WRITE},
)
async def patch_fields(
    request: Request, user: AnyUser, name: Name, body: PatchIn, if_match: IfMatch = None
) -> Response:
    instance = await run_in_threadpool(
        partial(
            app_engine(request).patch_instance_fields,
            name,
            body.values(),
            version=_version(body.version, if_match),
            created_by=_owner(user),
        )
    )
    return _with_etag(InstanceOut.of(instance))


__all__ = ["router"]
