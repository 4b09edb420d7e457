"""The plugin API: what a node handler declares and receives, the hook, and the registry.

``handler`` is the contract (:class:`Handler`, :class:`Parameter`, :class:`HandlerContext`),
``hookspecs`` the one hook a plugin implements, ``registry`` an engine's plugin manager, and
``builtin`` treeflow's own nodes and the parameter names the engine gives behaviour to. This
package imports only pluggy and the standard library, so writing a plugin loads nothing heavy.
"""
