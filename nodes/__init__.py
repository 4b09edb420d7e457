"""treeflow's built-in node handlers, each module a pluggy plugin of the ``treeflow.nodes`` group.

They register exactly as a third-party plugin does (an entry point naming the module, whose
``treeflow_node_handlers`` hook returns its handlers), so they double as the examples to copy.
"""
