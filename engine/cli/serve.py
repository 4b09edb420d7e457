"""``treeflow serve``: the HTTP adapter under uvicorn, with engine workers in the same process,
or with ``--processes N`` beside it as ``treeflow worker`` processes it supervises
(``engine.cli.worker_processes``).

Settings come from flags or ``TREEFLOW_*`` variables (flags win), as the README's Settings lists
them. With no user defined yet it says how to create the first administrator; it never makes one up.
SIGINT or SIGTERM stop it gracefully (exit status 0): uvicorn finishes the requests in flight, then
the app's lifespan stops the engine workers, which finish the trigger in hand and hand the rest
back.

Connections are bounded (``engine.server.connections``): idle ones are closed after
``--keep-alive-seconds``, a request head must arrive within ``--request-head-seconds`` and a body
within ``--request-body-seconds`` (``engine.server.limits``), and at ``--max-connections`` the
oldest idle connection makes room for a new one.

uvicorn's access log is off unless ``--access-log`` asks for it: formatting and writing a line
per request costs the event loop about as much as answering ``/healthz`` does, and a proxy in
front usually logs the requests already. Errors and start-up messages are logged either way.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import click

from engine.cli.heap import freeze_start_up_heap
from engine.cli.purge import retention_option
from engine.cli.support import DEFAULT_DATABASE, engine_options, err_console, open_engine
from engine.cli.worker import limit_options, processing_options, processing_settings, worker
from engine.cli.worker_processes import WorkerProcesses, worker_command
from engine.engine import Engine

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_TOKEN_CACHE_SECONDS = 2.0  # as ServerSettings, which needs the server extra to import
FIRST_ADMIN_HINT = """\
No user exists yet, so every API call will be refused. Create the first administrator with:

  treeflow users add NAME --role admin{database}

It reads the password from standard input when that is not a terminal
(printf '%s' "$PASSWORD" | treeflow users add NAME --role admin), and asks for it otherwise."""


@click.command()
@engine_options
@click.option(
    "--host", envvar="TREEFLOW_HOST", show_envvar=True, default=DEFAULT_HOST, show_default=True
)
@click.option(
    "--port",
    envvar="TREEFLOW_PORT",
    show_envvar=True,
    default=DEFAULT_PORT,
    show_default=True,
    type=int,
)
@click.option(
    "--workers",
    envvar="TREEFLOW_WORKERS",
    show_envvar=True,
    default=4,
    show_default=True,
    type=click.IntRange(0),
    help="Engine worker threads in this process (0: accept triggers only, run no scheduler); "
    "with --processes, the threads of each worker process.",
)
@click.option(
    "--processes",
    envvar="TREEFLOW_PROCESSES",
    show_envvar=True,
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Run the workers as this many treeflow worker processes beside the server, which "
    "starts them, starts another when one dies and stops them when it stops; the server then "
    "only accepts and runs the scheduler. 0: the workers are threads of this process.",
)
@processing_options
@limit_options
@retention_option
@click.option(
    "--subscription-id",
    envvar="TREEFLOW_SUBSCRIPTION_ID",
    show_envvar=True,
    help="This installation's subscription id: the scope POST /token expects.",
)
@click.option(
    "--token-seconds",
    envvar="TREEFLOW_TOKEN_SECONDS",
    show_envvar=True,
    default=299,
    show_default=True,
    type=click.IntRange(1),
    help="How long a bearer token lives.",
)
@click.option(
    "--token-cache-seconds",
    envvar="TREEFLOW_TOKEN_CACHE_SECONDS",
    show_envvar=True,
    default=DEFAULT_TOKEN_CACHE_SECONDS,
    show_default=True,
    type=click.FloatRange(0),
    help="How long a verified token is remembered (0: check the database on every request); "
    "a user rotated or disabled by another process keeps access at most this long.",
)
@click.option(
    "--max-body-bytes",
    envvar="TREEFLOW_MAX_BODY_BYTES",
    show_envvar=True,
    type=click.IntRange(1),
    help="Largest request body accepted (default 4 MiB).",
)
@click.option(
    "--keep-alive-seconds",
    envvar="TREEFLOW_KEEP_ALIVE_SECONDS",
    show_envvar=True,
    type=click.IntRange(1),
    help="How long an idle connection is kept open after a response (default 5).",
)
@click.option(
    "--request-head-seconds",
    envvar="TREEFLOW_REQUEST_HEAD_SECONDS",
    show_envvar=True,
    type=click.FloatRange(0, min_open=True),
    help="How long a request's head (request line and headers) may take to arrive; the "
    "connection is closed after that (default 10).",
)
@click.option(
    "--request-body-seconds",
    envvar="TREEFLOW_REQUEST_BODY_SECONDS",
    show_envvar=True,
    type=click.FloatRange(0, min_open=True),
    help="How long a request's whole body may take to arrive: 408 after that, and nothing "
    "done (default 60).",
)
@click.option(
    "--max-connections",
    envvar="TREEFLOW_MAX_CONNECTIONS",
    show_envvar=True,
    type=click.IntRange(1),
    help="Most connections open at once; at the limit the oldest idle one is closed for a new "
    "one (default: three quarters of the open-file limit).",
)
@click.option(
    "--access-log/--no-access-log",
    envvar="TREEFLOW_ACCESS_LOG",
    show_envvar=True,
    default=False,
    show_default=True,
    help="Log every request (uvicorn's access log).",
)
@click.option(
    "--public-url",
    envvar="TREEFLOW_PUBLIC_URL",
    show_envvar=True,
    help="The URL clients reach the server at (hostURL in token responses).",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="TREEFLOW_FORWARDED_ALLOW_IPS",
    show_envvar=True,
    default="",
    help="Comma-separated proxy addresses or networks (or *) whose X-Forwarded-For and "
    "X-Forwarded-Proto are believed; default none: the client is the connection's address.",
)
@click.option(
    "--public-metrics/--no-public-metrics",
    envvar="TREEFLOW_PUBLIC_METRICS",
    show_envvar=True,
    default=False,
    show_default=True,
    help="Serve /metrics and /docs without a bearer token.",
)
@click.option(
    "--hash-concurrency",
    envvar="TREEFLOW_HASH_CONCURRENCY",
    show_envvar=True,
    type=click.IntRange(1),
    help="Passwords checked at once (default 4; each Argon2id check holds 64 MiB); "
    "a sign-in waits up to 2 s for its turn, then gets 503.",
)
@click.option(
    "--max-header-bytes",
    envvar="TREEFLOW_MAX_HEADER_BYTES",
    show_envvar=True,
    type=click.IntRange(1),
    help="Largest request line and headers accepted (default 64 KiB); beyond it, 431.",
)
@click.option(
    "--max-headers",
    envvar="TREEFLOW_MAX_HEADERS",
    show_envvar=True,
    type=click.IntRange(1),
    help="Most header fields a request may have (default 100); beyond it, 431.",
)
@click.option(
    "--deferral-token-auth",
    envvar="TREEFLOW_DEFERRAL_TOKEN_AUTH",
    is_flag=True,
    help="Let callbacks complete or update a deferred task by its token alone, for trees "
    "that say deferral_token_auth: true (rate-limited and logged; off by default).",
)
@click.option(
    "--console-path",
    envvar="TREEFLOW_CONSOLE_PATH",
    show_envvar=True,
    default="/console",
    show_default=True,
    help="Where the web console is served; 'off' serves none.",
)
@click.option(
    "--session-seconds",
    envvar="TREEFLOW_SESSION_SECONDS",
    show_envvar=True,
    type=click.IntRange(1),
    help="How long a console sign-in lasts (default 28800: eight hours).",
)
def serve(
    database: str,
    trees: str,
    host: str,
    port: int,
    workers: int,
    processes: int,
    subscription_id: str | None,
    token_seconds: int,
    token_cache_seconds: float,
    max_body_bytes: int | None,
    keep_alive_seconds: int | None,
    request_head_seconds: float | None,
    request_body_seconds: float | None,
    max_connections: int | None,
    public_url: str | None,
    access_log: bool,
    forwarded_allow_ips: str,
    public_metrics: bool,
    hash_concurrency: int | None,
    max_header_bytes: int | None,
    max_headers: int | None,
    deferral_token_auth: bool,
    console_path: str,
    session_seconds: int | None,
    **processing: Any,
) -> None:
    """Serve the HTTP API with engine workers and the scheduler.

    Routes: the seed's trigger API, Kinetic Task 4's v1 routes and the Kinetic Task API v2
    (also under /kinetic-task, /app/components/task and /kinetic), POST /token, the Kianda-style
    /api/instances, /api/processes and /api/tasks, inspection under /api/runs, /api/triggers
    and /api/errors, /healthz, /metrics and /openapi.json.
    """
    try:
        import uvicorn

        from engine.auth import Accounts
        from engine.server import ServerSettings, create_app
        from engine.server.connections import ConnectionGuard, default_max_connections
        from engine.server.protocols import uvicorn_options
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"{exc}: treeflow serve needs the server extra: pip install 'treeflow[server]'"
        ) from exc
    given: dict[str, Any] = {  # those not given keep ServerSettings' defaults
        "max_body_bytes": max_body_bytes,
        "keep_alive_seconds": keep_alive_seconds,
        "request_head_seconds": request_head_seconds,
        "request_body_seconds": request_body_seconds,
        "max_connections": max_connections,
        "hash_concurrency": hash_concurrency,
        "max_header_bytes": max_header_bytes,
        "max_headers": max_headers,
        "session_seconds": session_seconds,
    }
    options = {name: value for name, value in given.items() if value is not None}
    if processes and not workers:
        raise click.UsageError("--processes needs --workers of at least 1 (threads per process)")
    proxies = tuple(ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip())
    try:
        settings = ServerSettings(
            host=host,
            port=port,
            workers=0 if processes else workers,
            subscription_id=subscription_id,
            public_url=public_url,
            token_seconds=token_seconds,
            token_cache_seconds=token_cache_seconds,
            forwarded_allow_ips=proxies,
            public_metrics=public_metrics,
            deferral_token_auth=deferral_token_auth,
            console_path=None if console_path == "off" else console_path,
            **options,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    with open_engine(database, trees, **processing_settings(**processing)) as engine:
        if Accounts(engine).count_users() == 0:
            shown = "" if database == DEFAULT_DATABASE else f" --database '{database}'"
            err_console.print(FIRST_ADMIN_HINT.format(database=shown), markup=False, soft_wrap=True)
        err_console.print(
            startup_summary(engine, settings, processes=processes, threads=workers),
            markup=False,
            soft_wrap=True,
        )
        app = create_app(engine, settings)
        guard = ConnectionGuard(
            head_seconds=settings.request_head_seconds,
            max_connections=settings.max_connections or default_max_connections(),
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ws="none",  # no WebSocket routes: an Upgrade is answered as a plain request
            timeout_keep_alive=settings.keep_alive_seconds,
            timeout_graceful_shutdown=int(settings.shutdown_seconds),
            log_level="info",
            access_log=access_log,
            **uvicorn_options(settings, guard=guard),
        )
        server = uvicorn.Server(config)
        supervisor = None
        if processes:
            supervisor = _worker_processes(
                engine, database, trees, processes, workers, settings.shutdown_seconds, processing
            )
        freeze_start_up_heap()
        try:
            _run_until_signalled(server)
        finally:
            if supervisor is not None:
                supervisor.stop()


def _worker_processes(
    engine: Engine,
    database: str,
    trees: str,
    count: int,
    threads: int,
    shutdown_seconds: float,
    processing: dict[str, Any],
) -> WorkerProcesses:
    """``--processes``: the scheduler here (one per SQLite file), the workers started."""
    logging.getLogger("treeflow.serve").setLevel(logging.INFO)
    command = worker_command(
        worker,
        database=database,
        trees=trees,
        threads=threads,
        values={**processing, "shutdown_seconds": shutdown_seconds},
    )
    engine.schedules.scheduler.start()
    supervisor = WorkerProcesses(command, count, shutdown_seconds=shutdown_seconds)
    supervisor.start()
    return supervisor


def startup_summary(engine: Engine, settings: Any, *, processes: int = 0, threads: int = 0) -> str:
    """The one line ``serve`` prints before it listens: what it serves, from where, with what.

    ``treeflow worker`` logs the same kind of line; an operator reading either sees at once a
    wrong database, a tree file refused or a worker count of the wrong size.
    """
    refused = sorted({problem.file for problem in engine.tree_problems})
    workers = (
        f"{processes} worker processes of {threads} thread{'' if threads == 1 else 's'}"
        if processes
        else f"{settings.workers} workers"
    )
    trees = f"{len(engine.trees)} trees loaded"
    if refused:
        trees += f", {len(refused)} file(s) refused ({', '.join(refused)}; treeflow validate)"
    console = settings.console_path
    console_text = f"web console at {console}" if console else "no web console"
    return (
        f"treeflow serve: database {engine.database_url}; {trees}; "
        f"{workers}; scheduler on (one server at a time runs it); "
        f"{console_text}; listening on http://{settings.host}:{settings.port}"
    )


def _run_until_signalled(server: Any) -> None:
    """Run uvicorn; SIGINT or SIGTERM stop it gracefully and the command exits with status 0.

    uvicorn installs its own handlers while it runs, then puts back the ones it found and
    raises the signal again: these are the ones it finds, so that re-raise ends nowhere and
    the engine is closed normally. A signal arriving before uvicorn is listening asks the
    server to stop as soon as it has started.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["serve"]
