"""``treeflow bench --plot`` draws a bar in every workload's panel, the ones without a peer
(``http``, ``processes``) included, and ``treeflow bench`` without the bench extra's parts says
which extra to install instead of a traceback.

The chart is drawn from a result shaped as the harness writes it (every row's figure present),
so this needs matplotlib but no benchmark run; the run itself is tests/test_benchmarks.py's.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli.main import main

pytest.importorskip("matplotlib")

from benchmarks.plot import chart, drawn_rows
from benchmarks.registry import WORKLOADS


def _put(figures: dict[str, Any], path: str, value: float) -> None:
    *parents, last = path.split(".")
    for part in parents:
        figures = figures.setdefault(part, {})
    figures[last] = value


def _result() -> dict[str, Any]:
    workloads: dict[str, Any] = {}
    for name, workload in WORKLOADS.items():
        figures: dict[str, Any] = {}
        if workload.table == "scaling":
            figures = {"treeflow": {"sizes": [{"stored": 10, "runs_per_s": 5.0},
                                              {"stored": 100, "runs_per_s": 4.0}]}}  # fmt: skip
        for row in workload.rows:
            _put(figures, row.treeflow, 3.0)
            if row.peer:
                _put(figures, row.peer, 1.5)
        workloads[name] = {"sqlite": figures}
    return {
        "started_at": "2026-12-01T13:45:00+00:00",
        "databases": [{"name": "sqlite", "label": "SQLite"}],
        "workloads": workloads,
    }


def test_every_workload_panel_has_bars_those_without_a_peer_too() -> None:
    result = _result()
    figure = chart(result)
    panels = dict(zip(result["workloads"], figure.axes, strict=False))

    for name in ("http", "processes"):
        assert WORKLOADS[name].table != "scaling"
        assert all(row.peer is None for row in drawn_rows(name))
        heights = [patch.get_height() for patch in panels[name].patches]
        assert heights == [3.0] * len(drawn_rows(name)), name
    linear = [patch.get_height() for patch in panels["linear10"].patches]
    assert sorted(set(linear)) == [1.5, 3.0]  # treeflow and the peer side by side
    assert panels["scaling"].lines, "the scaling panel plots a line"


def test_bench_without_the_bench_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in [module for module in sys.modules if module.startswith("benchmarks")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if the bench extra were not installed

    result = CliRunner().invoke(main, ["bench", "--help"])

    assert result.exit_code == 1
    assert "treeflow bench needs the bench extra (aiohttp is not installed)" in result.stderr
    assert "pip install 'treeflow[bench]'" in result.stderr
    assert "Traceback" not in result.output
