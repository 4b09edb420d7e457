"""The ``treeflow`` command line: one module per command group, ``main`` holding the root."""
