"""``GET /docs``: Swagger UI over ``/openapi.json``, served from the package, never a CDN.

FastAPI's own page loads Swagger UI's script and stylesheet from a CDN, so a browser opening
it runs whatever that host serves, and an installation without internet access has no docs.
This page loads the files of ``swagger-ui-dist`` vendored in ``engine/server/swagger_ui/``
(version and license in its ``VERSION``, ``LICENSE`` and ``NOTICE``) from
``/docs/assets/...``, and turns off Swagger UI's online validator, its one other outside
request. The page and its assets need a bearer token unless the server runs with
``public_metrics``, like ``/metrics``; ``/openapi.json`` itself is public, because clients and
code generators read it before they have a token, and it describes the routes, not any data.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

ASSETS_PATH = "/docs/assets"
# The vendored files the page loads, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@cache
def _asset(name: str) -> bytes:
    return files("engine.server").joinpath("swagger_ui", name).read_bytes()


def _asset_route(name: str) -> Any:
    async def asset() -> Response:
        headers = {"Cache-Control": "private, max-age=3600"}
        return Response(_asset(name), media_type=ASSETS[name], headers=headers)

    return asset


def docs_router(*, title: str, openapi_url: str, dependencies: Sequence[Any]) -> APIRouter:
    """The page and its assets, behind ``dependencies`` (the bearer token, or nothing)."""
    router = APIRouter(dependencies=list(dependencies), include_in_schema=False)

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    router.add_api_route("/docs", docs, methods=["GET"])
    for name in ASSETS:
        router.add_api_route(f"{ASSETS_PATH}/{name}", _asset_route(name), methods=["GET"])
    return router


__all__ = ["ASSETS", "ASSETS_PATH", "docs_router"]
