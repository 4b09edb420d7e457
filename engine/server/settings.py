"""What ``treeflow serve`` can be told, with its defaults (the README's Settings).

The database and the trees belong to the :class:`~engine.Engine` the app is given, so they are
not here; everything the HTTP layer itself decides is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from engine.auth import DEFAULT_TOKEN_SECONDS, SignInPolicy
from engine.auth.hash_slots import DEFAULT_HASH_CONCURRENCY, DEFAULT_HASH_WAIT_SECONDS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Over the engine's 1 MiB results cap even when every byte of the XML is percent-encoded (x3).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_PAGE = 500
# Short beside a token's 299 s; long enough that a busy client's token is read once a period.
DEFAULT_TOKEN_CACHE_SECONDS = 2.0
# Connections (engine.server.connections, engine.server.limits): an idle connection is kept for
# uvicorn's own default; a request head, sent in one packet by any real client, gets ten seconds;
# a whole body (up to 4 MiB) a minute, about 70 KB/s at the cap.
DEFAULT_KEEP_ALIVE_SECONDS = 5
DEFAULT_REQUEST_HEAD_SECONDS = 10.0
DEFAULT_REQUEST_BODY_SECONDS = 60.0
# A request line and headers (the "head"): 64 KiB is four times what a browser sends with its
# cookies, and 100 header fields are Apache's LimitRequestFields.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 100
# The web console (engine.server.console): where it is served, and how long a sign-in lasts. A
# working day: long beside a bearer token's 299 s, because a person, not a client, signs in.
DEFAULT_CONSOLE_PATH = "/console"
DEFAULT_SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class ServerSettings:
    """Settings of the HTTP adapter.

    ``workers``: engine worker threads started with the app (0: this process only accepts
    triggers; another process runs them). ``subscription_id``: the installation's id, which
    ``POST /token`` expects as ``scope`` and reports as ``subscriptionId``. ``public_url``: the
    ``hostURL`` a token response names (default: the URL the request came to).
    ``token_cache_seconds``: how long a verified bearer token is remembered in this process
    (0: read the database on every request); a user rotated or disabled by another process,
    such as ``treeflow users``, can go on calling this server for up to that long.

    Connections: ``keep_alive_seconds`` is how long a connection may sit idle after a response;
    ``request_head_seconds`` how long a request head (request line and headers) may take to
    arrive, from the connection's opening or the first byte of a later request;
    ``request_body_seconds`` how long the whole body may take once the route starts reading it
    (408 after that, nothing done). ``max_connections`` caps open connections: at the cap an
    idle one is closed for each new one (None: three quarters of the open-file limit, see
    :func:`engine.server.connections.default_max_connections`).
    ``forwarded_allow_ips``: the proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
    believed (addresses, networks such as ``10.0.0.0/8``, or ``*``); by default none, so the
    client address, which the sign-in throttle counts by, is the connection's.
    ``public_metrics``: ``/metrics`` and ``/docs`` answer without a token.
    ``hash_concurrency`` and ``hash_wait_seconds``: how many passwords are checked at once, and
    how long a sign-in waits for its turn before a 503 (:mod:`engine.auth.hash_slots`).
    ``max_header_bytes`` and ``max_headers``: the largest request head (request line and
    headers) and the most header fields a request may have; beyond them, 431.
    ``deferral_token_auth``: calls that complete or update a deferred task of a tree that opts
    in may authenticate by its token alone (:mod:`engine.server.deferral_auth`).
    ``console_path``: where the web console is served (None: not at all); ``session_seconds``:
    how long a console sign-in lasts (:mod:`engine.server.console.sessions`).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 4
    subscription_id: str | None = None
    public_url: str | None = None
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    token_cache_seconds: float = DEFAULT_TOKEN_CACHE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_page_size: int = DEFAULT_MAX_PAGE
    failures_per_user: int = 5
    failures_per_address: int = 20
    failure_window: float = 900.0
    shutdown_seconds: float = 30.0  # for the engine to finish the triggers in hand
    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS
    request_head_seconds: float = DEFAULT_REQUEST_HEAD_SECONDS
    request_body_seconds: float = DEFAULT_REQUEST_BODY_SECONDS
    max_connections: int | None = None
    forwarded_allow_ips: tuple[str, ...] = ()
    public_metrics: bool = False
    hash_concurrency: int = DEFAULT_HASH_CONCURRENCY
    hash_wait_seconds: float = DEFAULT_HASH_WAIT_SECONDS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    deferral_token_auth: bool = False
    console_path: str | None = DEFAULT_CONSOLE_PATH
    session_seconds: int = DEFAULT_SESSION_SECONDS

    def __post_init__(self) -> None:
        for name in (
            "token_seconds",
            "max_body_bytes",
            "max_page_size",
            "keep_alive_seconds",
            "hash_concurrency",
            "max_header_bytes",
            "max_headers",
            "session_seconds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("request_head_seconds", "request_body_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, not {getattr(self, name)}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")
        for name in ("workers", "token_cache_seconds", "hash_wait_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)}")
        for proxy in self.forwarded_allow_ips:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {proxy!r} is not an IP address, a network or *"
                    ) from None

        if self.console_path is not None and (
            not self.console_path.startswith("/")
            or self.console_path.endswith("/")
            or "//" in self.console_path
        ):
            raise ValueError(
                f"console_path must start with / and not end with one, not {self.console_path!r}"
            )

    @property
    def sign_in_policy(self) -> SignInPolicy:
        return SignInPolicy(
            token_seconds=self.token_seconds,
            failures_per_user=self.failures_per_user,
            failures_per_address=self.failures_per_address,
            failure_window=self.failure_window,
        )


__all__ = [
    "DEFAULT_CONSOLE_PATH",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_SESSION_SECONDS",
    "ServerSettings",
]
