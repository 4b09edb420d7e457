"""treeflow's built-in node handlers, each module a pluggy plugin like a third party's.

The engine's registry registers them itself (``engine.handlers.builtin``), so they need no entry
point and a host's own ``nodes`` module cannot hide them; they use only the plugin API, as any
plugin does, which makes them the examples to copy.
"""
