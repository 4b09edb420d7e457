"""Tree tests (``treeflow test``): cases in YAML, run in a real engine on in-memory SQLite.

A test file (``tests/NAME.tree-test.yaml`` beside the trees) names a tree and lists cases: the
run's inputs, the results its nodes' handlers give instead of being called (``given``), the
steps that follow the start (complete or update a deferral, advance the virtual clock, resolve
an error) and what must hold at the end (``expect``). ``cases`` reads and checks the file,
``given`` replaces the handlers, ``running`` runs a case and compares, ``coverage`` counts what
the cases reached, ``from_run`` writes a case from a finished run. The README's "Testing trees"
section is the user's guide.
"""
