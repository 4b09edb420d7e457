"""treeflow's own node plugins, and the names the engine and those nodes must agree on.

The built-in nodes live in the top-level ``nodes`` package (``nodes.system``, ``nodes.utilities``,
``nodes.schedules``), written exactly as a third-party plugin is, so they are the examples to copy.
The registry registers them itself (:func:`plugins`), as pytest registers its own ``_pytest``
plugins, rather than through entry points: an engine knows them with ``load_entry_points=False``,
and a script's own ``nodes.py`` (or another project's ``nodes`` package) earlier on ``sys.path``
cannot hide them, because they are loaded from the files installed beside this package.

The control nodes declare parameters that the engine gives behaviour to (a wait's time, a loop
head's data source, a join's type): their names are defined here once, for both sides.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

NODE_MODULES = ("system", "utilities", "schedules", "smtp", "http_request", "conversions")
_HOME = Path(__file__).resolve().parents[2] / "nodes"  # installed beside the engine package
_PRIVATE_NAME = "_treeflow_builtin_nodes"  # when the name ``nodes`` is taken by someone else

# A join (system_join_v1) and a loop tail (system_loop_tail_v1): how many arrivals they wait for.
QUORUM_TYPE = "type"
QUORUM_NUMBER = "number"
QUORUM_TYPES = ("All", "Any", "Some")

# A wait (system_wait_v1).
WAIT_TIME = "Time to wait"
WAIT_UNIT = "Time unit"
UNIT_SECONDS: Mapping[str, int] = {
    "Second": 1,
    "Minute": 60,
    "Hour": 3600,
    "Day": 86_400,
    "Week": 604_800,
}

# A loop head (system_loop_head_v1).
DATA_SOURCE = "data_source"
LOOP_PATH = "loop_path"
VAR_NAME = "var_name"

# The node that ends a routine; its parameters are the routine's outputs.
RETURN_HANDLER = "system_tree_return_v1"


def plugins() -> list[tuple[str, ModuleType]]:
    """The built-in node modules with the plugin names they are registered under."""
    package = _package()
    return [(name, importlib.import_module(f"{package}.{name}")) for name in NODE_MODULES]


def _ours(locations: Iterable[str] | None) -> bool:
    return any(Path(place).resolve() == _HOME for place in locations or ())


def _package() -> str:
    """``nodes`` when that name is this distribution's package, else a private name for it."""
    taken = sys.modules.get("nodes")
    if taken is not None:
        if _ours(getattr(taken, "__path__", ())):
            return "nodes"
    else:
        spec = importlib.util.find_spec("nodes")
        if spec is not None and _ours(spec.submodule_search_locations):
            return "nodes"
    if _PRIVATE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            _PRIVATE_NAME, _HOME / "__init__.py", submodule_search_locations=[str(_HOME)]
        )
        if spec is None or spec.loader is None:  # pragma: no cover - the files ship with us
            raise ImportError(f"treeflow's built-in nodes are missing from {_HOME}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PRIVATE_NAME] = module
        spec.loader.exec_module(module)
    return _PRIVATE_NAME


__all__ = [
    "DATA_SOURCE",
    "LOOP_PATH",
    "NODE_MODULES",
    "QUORUM_NUMBER",
    "QUORUM_TYPE",
    "QUORUM_TYPES",
    "RETURN_HANDLER",
    "UNIT_SECONDS",
    "VAR_NAME",
    "WAIT_TIME",
    "WAIT_UNIT",
    "plugins",
]
