"""Kinetic Data's official Task API v2 document, shipped with treeflow, and the operations of it
treeflow does not provide, each answered 501 naming itself.

The document (``kinetic-task-api-v2.openapi.json``, Kinetic Data's, as published for Kinetic
Task's REST API v2) is read once, when the app is made. An operation treeflow does not offer
answers ``501 Not Implemented`` with its operation id, method and path, rather than 404: a
client sees at once that the call is known but not provided, not that its URL is wrong. These
routes ask for no credentials, since they do nothing and tell nothing about the installation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import NotImplementedOperation

DOCUMENT_NAME = "kinetic-task-api-v2.openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")
_PARAMETER = re.compile(r"\{[^}]*\}")


class Operation(NamedTuple):
    method: str  # upper case
    path: str  # as the document writes it, below /app/api/v2
    operation_id: str

    @property
    def shape(self) -> tuple[str, str]:
        return self.method, path_shape(self.path)


def path_shape(path: str) -> str:
    """A path with its parameters' names left out: ``/runs/{id}`` and ``/runs/{run_id}`` match."""
    return _PARAMETER.sub("{}", path)


@cache
def document() -> dict[str, Any]:
    text = files(__package__).joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def operations() -> list[Operation]:
    """Every operation of the document, in its order."""
    found = []
    for path, item in document()["paths"].items():
        for method in METHODS:
            if method in item:
                found.append(Operation(method.upper(), path, item[method]["operationId"]))
    return found


def _not_implemented(operation: Operation) -> Any:
    async def endpoint(_request: Request) -> Response:
        raise NotImplementedOperation(
            operation_id=operation.operation_id, method=operation.method, path=operation.path
        )

    return endpoint


def not_implemented_router(implemented: Iterable[tuple[str, str]], *, literal: bool) -> APIRouter:
    """A 501 route for each operation of the document whose shape is not ``implemented``: those
    whose paths have no parameters (``literal``), which go before the implemented routes so that
    ``/triggers/scheduled`` is not taken for ``/triggers/{id}``, or the others, which go after."""
    done = set(implemented)
    router = APIRouter(include_in_schema=False)
    # Literal segments before parameters, so that /triggers/backlog is not taken as an {id}.
    ordered = sorted(
        operations(), key=lambda op: [(s.startswith("{"), s) for s in op.path.split("/")]
    )
    for operation in ordered:
        if operation.shape not in done and ("{" not in operation.path) == literal:
            router.add_api_route(
                operation.path,
                _not_implemented(operation),
                methods=[operation.method],
                name=f"{operation.operation_id} (501)",
            )
    return router


__all__ = [
    "DOCUMENT_NAME",
    "Operation",
    "document",
    "not_implemented_router",
    "operations",
    "path_shape",
]
