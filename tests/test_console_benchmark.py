"""``benchmarks/console.py`` works: on a small database it fetches every page it names and
weighs the assets the package ships. It says nothing of how fast anything was."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from benchmarks import console

pytestmark = pytest.mark.bench


def test_the_console_benchmark_measures_every_page(tmp_path: Path) -> None:
    figures = console.measure(f"sqlite:///{tmp_path / 'c.db'}", stored=30, repeat=2)
    assert figures["stored_runs"] == 30
    assert set(figures["pages"]) == {label for label, _ in (*console.PAGES, *console.PLAIN_PAGES)}
    for page in figures["pages"].values():
        assert page["median_ms"] > 0 and page["max_ms"] >= page["median_ms"]
        assert 0 < page["html_gzip_bytes"] < page["html_bytes"]
    static = files("engine.server.console").joinpath("static")
    for name, weight in figures["assets"].items():
        assert weight["bytes"] == len(static.joinpath(name).read_bytes())
