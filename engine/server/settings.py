"""What ``treeflow serve`` can be told, with the defaults DESIGN.md fixes.

The database and the trees belong to the :class:`~engine.Engine` the app is given, so they are
not here; everything the HTTP layer itself decides is.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.auth import DEFAULT_TOKEN_SECONDS, SignInPolicy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Over the engine's 1 MiB results cap even when every byte of the XML is percent-encoded (x3).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_PAGE = 500


@dataclass(frozen=True)
class ServerSettings:
    """Settings of the HTTP adapter.

    ``workers``: engine worker threads started with the app (0: this process only accepts
    triggers; another process runs them). ``subscription_id``: the installation's id, which
    ``POST /token`` expects as ``scope`` and reports as ``subscriptionId``. ``public_url``: the
    ``hostURL`` a token response names (default: the URL the request came to).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 4
    subscription_id: str | None = None
    public_url: str | None = None
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_page_size: int = DEFAULT_MAX_PAGE
    failures_per_user: int = 5
    failures_per_address: int = 20
    failure_window: float = 900.0
    shutdown_seconds: float = 30.0  # for the engine to finish the triggers in hand

    def __post_init__(self) -> None:
        for name in ("token_seconds", "max_body_bytes", "max_page_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, not {self.workers}")

    @property
    def sign_in_policy(self) -> SignInPolicy:
        return SignInPolicy(
            token_seconds=self.token_seconds,
            failures_per_user=self.failures_per_user,
            failures_per_address=self.failures_per_address,
            failure_window=self.failure_window,
        )


__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_PORT", "ServerSettings"]
