"""Who may call the HTTP API: users with roles, Argon2id passwords, opaque bearer tokens.

Kept out of the HTTP layer so that the CLI (``treeflow users``) and the server share one set of
rules, and out of the engine facade because embedding needs none of it (``argon2-cffi`` comes
with the ``server`` extra).
"""

from engine.auth.accounts import (
    DEFAULT_TOKEN_SECONDS,
    ROLES,
    Accounts,
    IssuedToken,
    SignInPolicy,
    User,
    require_role,
)
from engine.auth.hash_slots import HashSlots
from engine.auth.password_rules import check_new_password
from engine.auth.passwords import Passwords
from engine.auth.throttle import SignInThrottle
from engine.auth.token_cache import TokenCache

__all__ = [
    "DEFAULT_TOKEN_SECONDS",
    "ROLES",
    "Accounts",
    "HashSlots",
    "IssuedToken",
    "Passwords",
    "SignInPolicy",
    "SignInThrottle",
    "TokenCache",
    "User",
    "check_new_password",
    "require_role",
]
