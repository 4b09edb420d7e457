"""The HTTP adapter: a FastAPI app over an :class:`~engine.Engine`, served by ``treeflow serve``.

Only translation lives here (HTTP requests to engine calls, engine errors to responses through
one table in :mod:`engine.server.errors`); the engine never imports this package, and it needs
the ``server`` extra (``pip install 'treeflow[server]'``).
"""

from engine.server.app import create_app
from engine.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
