"""The setup beside the figures: machine, versions and the command that produced them.

A rate means little without the hardware, the database versions and the exact invocation, so
they are recorded in every result: figures are reported with the setup beside them.
"""

from __future__ import annotations

import os
import platform
import shlex
import sqlite3
import sys
from importlib import metadata
from typing import Any


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(command: list[str], postgres: dict[str, str] | None) -> dict[str, Any]:
    """Everything about this machine and this invocation that a figure depends on.

    ``postgres`` is what ``PostgresTarget.server_settings`` read, or None without PostgreSQL.
    """
    postgres = postgres or {}
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql_server": postgres.get("server_version"),
        "postgresql_synchronous_commit": postgres.get("synchronous_commit"),
        "postgresql_fsync": postgres.get("fsync"),
        "treeflow": _version("treeflow"),
        "spiffworkflow": _version("SpiffWorkflow"),
        "sqlalchemy": _version("SQLAlchemy"),
        "psycopg": _version("psycopg"),
        "executable": sys.executable,
        "command": shlex.join(command),
    }


__all__ = ["describe"]
