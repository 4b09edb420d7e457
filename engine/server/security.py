"""Security events: failed and throttled sign-ins, refused tokens and calls, logged and counted.

Each is a WARNING on the logger ``treeflow.security`` naming the user name (as given, shown
with ``repr`` and cut to 150 characters), the client address and the reason, and never the
password or the token; the same reason (a short code) is the label of
``treeflow_auth_failures_total`` in ``/metrics``:

- sign-ins: ``unknown_user``, ``wrong_password``, ``disabled_user``, ``throttled``
  (too many failures for the user name or the address), ``busy`` (no hashing slot freed in
  time), ``oversized_credentials`` (a name or password longer than any user can have);
- bearer tokens: ``malformed_token``, ``unknown_token``, ``expired_token``, ``revoked_token``,
  ``disabled_user``; ``insufficient_role`` for a valid token calling an admin's route;
- ``deferral_token``: a call without credentials refused by deferral-token authentication
  (``engine.server.deferral_auth``; an accepted one is logged too, and not counted);
- ``missing_token``: a protected route called without a token, counted but not logged (every
  client that has not signed in yet does it).

The record also carries them as attributes (``reason``, ``username``, ``client``), for a log
handler that writes structured lines.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from engine.auth.errors import (
    InsufficientRole,
    InvalidCredentials,
    InvalidToken,
    SignInBusy,
    TooManyFailures,
)
from engine.auth.names import MAX_NAME

logger = logging.getLogger("treeflow.security")


def _shown(name: str) -> str:
    return repr(name if len(name) <= MAX_NAME else name[:MAX_NAME] + "...")


class SecurityEvents:
    """Logs security events and counts them in ``failures`` (labelled by ``reason``)."""

    def __init__(self, failures: Counter) -> None:
        self.failures = failures

    def _record(self, reason: str, message: str, *, username: str | None, client: str) -> None:
        self.failures.labels(reason).inc()
        extra = {"reason": reason, "username": username, "client": client}
        logger.warning(message, extra=extra)

    def sign_in_refused(self, error: Exception, *, username: str, client: str) -> None:
        """A ``POST /token`` refused by ``error`` (anything but a malformed form)."""
        who = f"user {_shown(username)} from {client}"
        if isinstance(error, InvalidCredentials):
            reason = error.code
            message = f"sign-in failed for {who}: {reason.replace('_', ' ')}"
        elif isinstance(error, TooManyFailures):
            reason, message = "throttled", f"sign-in throttled for {who}: {error.reason}"
        elif isinstance(error, SignInBusy):
            reason, message = "busy", f"sign-in refused for {who}: {error.reason}"
        else:
            reason, message = "oversized_credentials", f"sign-in refused for {who}: {error}"
        self._record(reason, message, username=username, client=client)

    def token_refused(self, error: InvalidToken, *, client: str) -> None:
        message = f"bearer token refused from {client}: {error.detail}"
        self._record(error.code, message, username=None, client=client)

    def call_refused(self, error: InsufficientRole, *, client: str) -> None:
        message = f"call refused for user {_shown(error.username)} from {client}: {error.reason}"
        self._record("insufficient_role", message, username=error.username, client=client)

    def deferral_token_accepted(self, *, run_id: int, client: str) -> None:
        """A call authenticated by a deferral token alone (``--deferral-token-auth``): logged,
        not counted as a failure, so that every such completion can be traced."""
        logger.warning(
            "a deferred task of run %s was resumed by its token alone from %s",
            run_id,
            client,
            extra={"reason": "deferral_token", "username": None, "client": client},
        )

    def missing_token(self) -> None:
        self.failures.labels("missing_token").inc()


__all__ = ["SecurityEvents"]
