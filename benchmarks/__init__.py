"""treeflow's benchmark harness: ``python -m benchmarks`` or ``treeflow bench``.

Named workloads (``registry``) run on SQLite and PostgreSQL, each measurement on a fresh
database (``databases``): treeflow in two modes (``workloads``, ``defer_resume``, sharing
``measure``), the same workload on the peer engine SpiffWorkflow (``peers.spiff``), a raw
driver loop as the floor (``floor``), and linear10 over a growing history (``scaling``).
``cli`` writes a JSON result and a Markdown report (``report``), optionally a chart (``plot``).
The benchmark trees are in ``trees/``, found next to this file, not in the working directory.

Benchmarks are not tests: nothing here asserts a timing, and the test suite only runs a quick
smoke pass to prove the harness works.
"""
