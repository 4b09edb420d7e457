"""The FastAPI application: :func:`create_app` wires the routes, the error map and the limits.

The app is a thin translation layer over one :class:`~engine.Engine` it is given (and does not
own: whoever made the engine closes it). With ``settings.workers`` above 0 the app's lifespan
starts that many engine worker threads and stops them on shutdown, so the triggers in hand
finish or go back to the queue before the process exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine.auth import Accounts, HashSlots, Passwords
from engine.auth.access_keys import AccessKeys
from engine.auth.basic import BasicCredentials
from engine.engine import Engine
from engine.errors import TreeflowError
from engine.server import auth, formats, inspection, kinetic_v1, run_control, tasks, trigger_api
from engine.server import explain as explain_api
from engine.server import instances as instance_api
from engine.server import processes as process_api
from engine.server.console import mount_console
from engine.server.docs import docs_router
from engine.server.errors import DATABASE_ERRORS, TRIGGER_PREFIXES, ErrorMap
from engine.server.kinetic_prefixes import include_kinetic_routes
from engine.server.limits import BodyLimit
from engine.server.metrics import OPENAPI_RESPONSES, Metrics, metrics
from engine.server.security import SecurityEvents
from engine.server.settings import ServerSettings
from engine.server.start_batch import StartBatcher
from engine.server.trigger_lane import TriggerLane


def _version() -> str:
    try:
        return version("treeflow")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
        return "0"


def health_body(engine: Engine) -> bytes:
    """``/healthz``'s answer, made once: ``ok``, or ``degraded`` with the tree files refused.

    A refused file does not stop the server (its other trees are served), so liveness stays
    200; the body names the files so that a bad deploy shows where it is looked for. The
    problems themselves are in the server's log and in ``treeflow validate``.
    """
    refused = sorted({problem.file for problem in engine.tree_problems})
    body: dict[str, object] = {"status": "degraded" if refused else "ok"}
    if refused:
        body["trees"] = {"loaded": len(engine.trees), "refused": refused}
    return formats.json_body(body).encode()


def create_app(
    engine: Engine,
    settings: ServerSettings | None = None,
    *,
    clock: Callable[[], float] | None = None,
    passwords: Passwords | None = None,
) -> FastAPI:
    """The HTTP adapter for ``engine``.

    ``clock`` (UNIX seconds) drives token expiry and sign-in throttling; it defaults to the
    engine's clock. ``passwords`` sets the Argon2id cost (argon2-cffi's defaults otherwise);
    it must verify the hashes ``treeflow users add`` wrote, which any Argon2 parameters do.
    """
    settings = settings or ServerSettings()
    accounts = Accounts(
        engine,
        clock=clock,
        policy=settings.sign_in_policy,
        passwords=passwords,
        hash_slots=HashSlots(settings.hash_concurrency, wait=settings.hash_wait_seconds),
        token_cache_seconds=settings.token_cache_seconds,
    )
    error_map = ErrorMap()
    app_metrics = Metrics(engine)
    start_batcher = StartBatcher(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.add_close_observer(app_metrics.observe)
        if settings.workers:
            engine.start(settings.workers)
        try:
            yield
        finally:
            await run_in_threadpool(start_batcher.close)
            if settings.workers:
                await run_in_threadpool(engine.stop, settings.shutdown_seconds)
            engine.remove_close_observer(app_metrics.observe)

    app = FastAPI(
        title="treeflow",
        version=_version(),
        summary="Task trees with durable triggers: the Kinetic Task trigger API and more.",
        lifespan=lifespan,
        docs_url=None,  # engine.server.docs serves it, without a CDN
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.start_batcher = start_batcher
    app.state.accounts = accounts
    app.state.basic = BasicCredentials(accounts, AccessKeys(engine, clock=clock))
    app.state.error_map = error_map
    app.state.metrics = app_metrics
    app.state.security = SecurityEvents(app_metrics.auth_failures)
    app.state.sign_in_gate = auth.SignInGate(
        settings.hash_concurrency, wait=settings.hash_wait_seconds
    )
    # /metrics and /docs: any signed-in user, or anyone with public_metrics.
    observer_only = [] if settings.public_metrics else [Depends(auth.caller())]

    async def engine_error(request: Request, exc: Exception) -> Response:
        return error_map.response(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Unknown paths and wrong methods: the seed's format on its paths, JSON elsewhere."""
        if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
            raise exc
        if request.url.path.startswith(TRIGGER_PREFIXES):
            fmt = formats.choose_format(request.headers)
            return formats.failure(fmt, exc.status_code, str(exc.detail), exc.headers)
        body = {"status": exc.status_code, "message": str(exc.detail)}
        return Response(
            formats.json_body(body),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/json",
        )

    app.add_exception_handler(TreeflowError, engine_error)
    for database_error in DATABASE_ERRORS:  # 503 when unreachable, without a traceback
        app.add_exception_handler(database_error, engine_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, engine_error)
    # Added before BodyLimit, so inside it: the size and time limits apply to the lane too.
    app.add_middleware(TriggerLane, routes=trigger_api.LANE_ROUTES, render=error_map.response)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        body_seconds=settings.request_body_seconds,
        render=error_map.response,
    )
    health = health_body(engine)

    async def healthz() -> Response:
        """Liveness: answers without authentication and without touching the database."""
        return Response(health, media_type="application/json")

    app.add_api_route("/healthz", healthz, methods=["GET"], summary="Liveness", tags=["health"])
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        summary="Prometheus metrics" + (" (no token)" if settings.public_metrics else ""),
        tags=["health"],
        response_class=Response,
        responses=OPENAPI_RESPONSES,
        dependencies=observer_only,
    )
    app.include_router(
        docs_router(title=app.title, openapi_url=app.openapi_url or "", dependencies=observer_only)
    )
    app.include_router(auth.router, tags=["auth"])
    app.include_router(trigger_api.router)
    app.include_router(inspection.router)
    app.include_router(run_control.router)
    app.include_router(explain_api.router)
    app.include_router(kinetic_v1.router)
    app.include_router(instance_api.router)
    app.include_router(process_api.router)
    app.include_router(tasks.router)
    include_kinetic_routes(app)
    mount_console(app, settings.console_path)
    return app


__all__ = ["create_app", "health_body"]
