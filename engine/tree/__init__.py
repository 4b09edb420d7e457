"""A tree's definition, as it is at load time: YAML to a validated, compiled, frozen :class:`Tree`.

Reading YAML with lines (``yaml_reader``), building and checking one tree (``loader``) and its
whole graph (``graph_checks``), what needs all files at once (``files``), the versions an engine
knows (``catalog``), templates and conditions (``expressions``, ``substitution``), the settings
of control nodes (``control``), junction regions, loop pairs and loop sources, a process's fields,
selection labels, routine signatures and pictures. Nothing here runs a tree; only the catalog
touches the database, to store and read versions.
"""
