"""The v2 engine and environment: ``GET /engine``, ``/environment``, ``/version`` and the API's
root (``GET /app/api/v2``, which Kinetic's SDK reads as ``server_info`` to learn the version).

The engine is ``Running`` when this server runs worker threads (``treeflow serve --workers``),
and ``Stopped`` otherwise, with a message saying that separate ``treeflow worker`` processes
(if any) process the triggers; starting and stopping it over HTTP (``POST /engine``) is not
offered: a worker's life is its process's. The version is treeflow's, with Kinetic Task's API
level beside it (``"api": "v2"``); the SDK compares it as text to choose its export format, and
treeflow's answers to the newest one.
"""

from __future__ import annotations

import platform
import socket
import sys
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from engine.server.auth import AnyUser
from engine.server.kinetic_v2.shapes import answer, single
from engine.server.paging import app_engine
from engine.server.settings import ServerSettings

router = APIRouter()
# Kinetic's SDK exports with the tree's own "export" field when the version sorts after this.
KINETIC_VERSION_FLOOR = "04.03.0z"


def treeflow_version() -> str:
    try:
        return version("treeflow")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
        return "0"


def kinetic_version() -> str:
    """treeflow's version as Kinetic Task's SDK compares it (as text, after 04.03.0z)."""
    return f"05.{treeflow_version()}"


async def server_info(_user: AnyUser) -> Response:
    return answer({"version": kinetic_version(), "api": "v2", "product": "treeflow"})


@router.get("/version", summary="version")
async def get_version(_user: AnyUser) -> Response:
    metadata = {"version": kinetic_version(), "api": "v2"}
    return answer({"metadata": metadata, **metadata})


@router.get("/engine", summary="retrieveEngine")
async def retrieve_engine(request: Request, _user: AnyUser) -> Response:
    settings: ServerSettings = request.app.state.settings
    if settings.workers:
        status, note = "Running", f"{settings.workers} worker threads in this server"
    else:
        status = "Stopped"
        note = "this server runs no workers; treeflow worker processes the triggers"
    engine = {
        "status": status,
        "statusMessage": note,
        "version": kinetic_version(),
        "buildDate": "1970-01-01T00:00:00.000Z",
    }
    return single("engine", engine)


@router.get("/environment", summary="getEnvironment")
async def get_environment(request: Request, _user: AnyUser) -> Response:
    engine = app_engine(request)
    body = {
        "System Information": {
            "Host": socket.gethostname(),
            "Host OS": f"{platform.system()} {platform.release()}",
            "Python Version": sys.version.split()[0],
        },
        "Engine Information": {
            "Version": kinetic_version(),
            "Host Info": platform.node(),
            "Trees Loaded": str(len(engine.trees)),
        },
        "Database Connection Pool": {"JDBC URL": engine.database_url.split("://", 1)[0]},
    }
    return answer(body)


__all__ = ["kinetic_version", "router", "server_info", "treeflow_version"]
