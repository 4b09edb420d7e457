"""The handlers one engine can run: its own pluggy plugin manager, and the handlers it collected.

treeflow's built-in nodes are registered by the registry itself (``engine.handlers.builtin``),
so an engine knows them however it was installed and whatever else is on ``sys.path``; third
parties come through the ``treeflow.nodes`` entry-point group, and a host may pass plugin
objects directly. All of them implement the same hook, and every handler passes
:func:`~engine.handlers.handler.check_contract` when it is collected. Nothing is global: two
engines in one process have two registries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pluggy

from engine.errors import HandlerContractError
from engine.handlers import builtin, hookspecs
from engine.handlers.handler import Handler, check_contract


class HandlerRegistry:
    """The handlers one engine can run, gathered from its plugin manager.

    ``load_entry_points=False`` leaves out the third-party plugins installed in the environment
    (tests, hosts that want only what they pass in ``plugins``); the built-ins are always there.
    ``wrap``, when given, replaces every handler collected by what it returns for it (the same
    definition id, checked again): ``treeflow test`` gives a tree's nodes the results a test case
    names instead of calling their handlers (``engine.testing.given``).
    """

    def __init__(
        self,
        plugins: Iterable[object] = (),
        *,
        load_entry_points: bool = True,
        wrap: Callable[[Handler], Handler] | None = None,
    ) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        for name, module in builtin.plugins():
            self.plugin_manager.register(module, name=name)
        if load_entry_points:
            self.plugin_manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        for plugin in plugins:
            self.plugin_manager.register(plugin)
        self._handlers = self._collect()
        if wrap is not None:
            self._handlers = {key: _wrapped(wrap, h) for key, h in self._handlers.items()}

    def _collect(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {}
        owners: dict[str, str] = {}
        hook = self.plugin_manager.hook.treeflow_node_handlers
        for impl in hook.get_hookimpls():
            plugin = self.plugin_manager.get_name(impl.plugin) or repr(impl.plugin)
            returned: Iterable[object] = impl.function() or ()  # type: ignore[assignment]
            for candidate in returned:
                handler = check_contract(candidate, plugin=plugin)
                if handler.definition_id in handlers:
                    raise HandlerContractError(
                        handler=handler.definition_id,
                        reason=f"already provided by plugin {owners[handler.definition_id]!r}, "
                        f"provided again by {plugin!r}",
                    )
                handlers[handler.definition_id] = handler
                owners[handler.definition_id] = plugin
        return handlers

    def get(self, definition_id: str) -> Handler | None:
        return self._handlers.get(definition_id)

    def __contains__(self, definition_id: object) -> bool:
        return definition_id in self._handlers

    @property
    def ids(self) -> Sequence[str]:
        return sorted(self._handlers)


def _wrapped(wrap: Callable[[Handler], Handler], handler: Handler) -> Handler:
    wrapped = check_contract(wrap(handler), plugin="wrap")
    if wrapped.definition_id != handler.definition_id:
        reason = f"a wrapped handler keeps its definition id, not {wrapped.definition_id!r}"
        raise HandlerContractError(handler=handler.definition_id, reason=reason)
    return wrapped


__all__ = ["HandlerRegistry"]
