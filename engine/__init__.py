"""treeflow: a workflow engine that runs task trees.

Import everything public from here::

    from engine import Engine, TreeError, TokenNotFound

The names load on first use (a module ``__getattr__``, PEP 562): a plugin's
``from engine import Handler, HandlerContext, Parameter, hookimpl`` loads the plugin API and
nothing else, while ``from engine import Engine`` brings in the database, templates and
scheduler the engine runs on. Where each name lives is ``ARCHITECTURE.md``'s code map.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.errors import (
        BadAction,
        BadRequest,
        BadResolution,
        BadResults,
        ErrorAlreadyResolved,
        ErrorNotFound,
        ExpressionError,
        FieldNotSettable,
        HandlerContractError,
        HandlerFailed,
        HandlerTimeout,
        IdempotencyKeyReused,
        IllegalTransition,
        InstanceNotFound,
        Problem,
        ProcessNotFound,
        RunCancelled,
        RunNotDeletable,
        RunNotFound,
        RunNotOpen,
        ScheduleNotFound,
        TokenNotFound,
        TreeError,
        TreeflowError,
        TreeNotFound,
        TriggerNotFound,
        UnknownField,
        VersionConflict,
        VersionRequired,
    )
    from engine.handlers.handler import (
        Handler,
        HandlerContext,
        Parameter,
        SourceInfo,
    )
    from engine.handlers.hookspecs import hookimpl
    from engine.kianda.field_values import FieldValue
    from engine.kianda.instances import Instance
    from engine.kianda.processes import Deployment, Process, ProcessVersion
    from engine.records import (
        Explanation,
        Firing,
        Run,
        RunError,
        RunLink,
        Schedule,
        StartCall,
        Task,
        TreeKey,
        Trigger,
        Waiting,
    )
    from engine.statuses import (
        ConnectorType,
        ErrorStatus,
        ErrorType,
        ResolutionAction,
        RunStatus,
        TaskStatus,
        TriggerAction,
        TriggerStatus,
    )
    from engine.tree.fields import FieldSpec
    from engine.tree.model import Tree

# Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "Engine": "engine.engine",
    "BadAction": "engine.errors",
    "BadRequest": "engine.errors",
    "BadResolution": "engine.errors",
    "BadResults": "engine.errors",
    "ErrorAlreadyResolved": "engine.errors",
    "ErrorNotFound": "engine.errors",
    "ExpressionError": "engine.errors",
    "FieldNotSettable": "engine.errors",
    "HandlerContractError": "engine.errors",
    "HandlerFailed": "engine.errors",
    "HandlerTimeout": "engine.errors",
    "IdempotencyKeyReused": "engine.errors",
    "IllegalTransition": "engine.errors",
    "InstanceNotFound": "engine.errors",
    "Problem": "engine.errors",
    "ProcessNotFound": "engine.errors",
    "RunCancelled": "engine.errors",
    "RunNotDeletable": "engine.errors",
    "RunNotFound": "engine.errors",
    "RunNotOpen": "engine.errors",
    "ScheduleNotFound": "engine.errors",
    "TokenNotFound": "engine.errors",
    "TreeError": "engine.errors",
    "TreeflowError": "engine.errors",
    "TreeNotFound": "engine.errors",
    "TriggerNotFound": "engine.errors",
    "UnknownField": "engine.errors",
    "VersionConflict": "engine.errors",
    "VersionRequired": "engine.errors",
    "Handler": "engine.handlers.handler",
    "HandlerContext": "engine.handlers.handler",
    "Parameter": "engine.handlers.handler",
    "SourceInfo": "engine.handlers.handler",
    "hookimpl": "engine.handlers.hookspecs",
    "Explanation": "engine.records",
    "Firing": "engine.records",
    "Run": "engine.records",
    "RunError": "engine.records",
    "RunLink": "engine.records",
    "Schedule": "engine.records",
    "StartCall": "engine.records",
    "Task": "engine.records",
    "TreeKey": "engine.records",
    "Trigger": "engine.records",
    "Waiting": "engine.records",
    "ConnectorType": "engine.statuses",
    "ErrorStatus": "engine.statuses",
    "ErrorType": "engine.statuses",
    "ResolutionAction": "engine.statuses",
    "RunStatus": "engine.statuses",
    "TaskStatus": "engine.statuses",
    "TriggerAction": "engine.statuses",
    "TriggerStatus": "engine.statuses",
    "Tree": "engine.tree.model",
    "FieldSpec": "engine.tree.fields",
    "FieldValue": "engine.kianda.field_values",
    "Instance": "engine.kianda.instances",
    "Deployment": "engine.kianda.processes",
    "Process": "engine.kianda.processes",
    "ProcessVersion": "engine.kianda.processes",
}

__all__ = [
    "BadAction",
    "BadRequest",
    "BadResolution",
    "BadResults",
    "ConnectorType",
    "Deployment",
    "Engine",
    "ErrorAlreadyResolved",
    "ErrorNotFound",
    "ErrorStatus",
    "ErrorType",
    "Explanation",
    "ExpressionError",
    "FieldNotSettable",
    "FieldSpec",
    "FieldValue",
    "Firing",
    "Handler",
    "HandlerContext",
    "HandlerContractError",
    "HandlerFailed",
    "HandlerTimeout",
    "IdempotencyKeyReused",
    "IllegalTransition",
    "Instance",
    "InstanceNotFound",
    "Parameter",
    "Problem",
    "Process",
    "ProcessNotFound",
    "ProcessVersion",
    "ResolutionAction",
    "Run",
    "RunCancelled",
    "RunError",
    "RunLink",
    "RunNotDeletable",
    "RunNotFound",
    "RunNotOpen",
    "RunStatus",
    "Schedule",
    "ScheduleNotFound",
    "SourceInfo",
    "StartCall",
    "Task",
    "TaskStatus",
    "TokenNotFound",
    "Tree",
    "TreeError",
    "TreeKey",
    "TreeNotFound",
    "TreeflowError",
    "Trigger",
    "TriggerAction",
    "TriggerNotFound",
    "TriggerStatus",
    "UnknownField",
    "VersionConflict",
    "VersionRequired",
    "Waiting",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without coming here again
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
