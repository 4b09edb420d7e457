"""treeflow: a workflow engine that runs task trees.

Import everything from here::

    from engine import Engine, TreeError, TokenNotFound
"""

from engine.engine import Engine
from engine.errors import (
    AuthError,
    BadAction,
    BadRequest,
    BadResults,
    BodyTooLarge,
    ExpressionError,
    HandlerContractError,
    IllegalTransition,
    InsufficientRole,
    InvalidCredentials,
    InvalidScope,
    InvalidToken,
    MissingToken,
    Problem,
    RunNotFound,
    TokenNotFound,
    TooManyFailures,
    TreeError,
    TreeflowError,
    TreeNotFound,
    TriggerNotFound,
    UnsupportedGrantType,
    UserExists,
    UserNotFound,
    VersionConflict,
)
from engine.handlers import Handler, HandlerContext, Parameter, SourceInfo
from engine.hookspecs import hookimpl
from engine.records import Run, RunError, Task, Trigger
from engine.statuses import (
    ConnectorType,
    ErrorType,
    RunStatus,
    TaskStatus,
    TriggerAction,
    TriggerStatus,
)
from engine.tree import Tree, TreeKey

__all__ = [
    "AuthError",
    "BadAction",
    "BadRequest",
    "BadResults",
    "BodyTooLarge",
    "ConnectorType",
    "Engine",
    "ErrorType",
    "ExpressionError",
    "Handler",
    "HandlerContext",
    "HandlerContractError",
    "IllegalTransition",
    "InsufficientRole",
    "InvalidCredentials",
    "InvalidScope",
    "InvalidToken",
    "MissingToken",
    "Parameter",
    "Problem",
    "Run",
    "RunError",
    "RunNotFound",
    "RunStatus",
    "SourceInfo",
    "Task",
    "TaskStatus",
    "TokenNotFound",
    "TooManyFailures",
    "Tree",
    "TreeError",
    "TreeKey",
    "TreeNotFound",
    "TreeflowError",
    "Trigger",
    "TriggerAction",
    "TriggerNotFound",
    "TriggerStatus",
    "UnsupportedGrantType",
    "UserExists",
    "UserNotFound",
    "VersionConflict",
    "hookimpl",
]
