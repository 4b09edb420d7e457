"""``--plot``: a PNG bar chart of a JSON result (matplotlib, imported only when asked for).

One panel per workload: for each compared metric, treeflow's and the peer's bars on each
database side by side (treeflow's alone for http and processes, which have no peer); the
scaling panel plots runs/s against the number of stored runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.measure import BenchmarkError
from benchmarks.registry import WORKLOADS, Row, figure

COLOURS = {"treeflow": ("#1f6fb2", "#7fb3e0"), "peer": ("#c2571a", "#f0a878")}


def require() -> Any:
    """matplotlib's pyplot on the non-interactive backend, or a clear error if it is missing."""
    try:
        import matplotlib
    except ImportError as exc:
        raise BenchmarkError(
            "--plot needs matplotlib: pip install 'treeflow[bench]' (or matplotlib>=3.8)"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def drawn_rows(name: str) -> list[Row]:
    """The rows a workload's panel draws: those compared with the peer, in per-second figures
    (node executions are 10x larger and would flatten every other bar); a workload with no
    peer (http, processes) draws its own per-second rows, treeflow's bars alone."""
    rows = WORKLOADS[name].rows
    compared = [row for row in rows if row.peer and "node_executions" not in row.treeflow]
    return compared or [row for row in rows if row.unit == "/s"]


def _bars(axes: Any, name: str, by_database: dict[str, Any], labels: dict[str, str]) -> None:
    rows = drawn_rows(name)
    engines = ("treeflow", "peer") if any(row.peer for row in rows) else ("treeflow",)
    databases = [db for db in labels if db in by_database]
    width = 0.8 / max(1, len(engines) * len(databases))
    for d, database in enumerate(databases):
        for e, engine in enumerate(engines):
            values = [
                figure(by_database[database], row.peer if engine == "peer" and row.peer else
                       row.treeflow) or 0
                for row in rows
            ]  # fmt: skip
            offset = (len(engines) * d + e) * width - 0.4 + width / 2
            axes.bar(
                [i + offset for i in range(len(rows))],
                values,
                width,
                label=f"{labels[database]} {engine}",
                color=COLOURS[engine][d % 2],
            )
    axes.set_xticks(range(len(rows)))
    axes.set_xticklabels([row.label.replace(", ", ",\n") for row in rows], fontsize=7)
    axes.set_ylabel("per second")
    axes.set_title(name)
    axes.legend(fontsize=7)


def _scaling(axes: Any, by_database: dict[str, Any], labels: dict[str, str]) -> None:
    for database, figures in by_database.items():
        sizes = figures["treeflow"]["sizes"]
        axes.plot(
            [size["stored"] for size in sizes],
            [size["runs_per_s"] for size in sizes],
            marker="o",
            label=labels.get(database, database),
        )
    axes.set_xscale("log")
    axes.set_xlabel("runs already stored")
    axes.set_ylabel("linear10 runs/s (phased)")
    axes.set_ylim(bottom=0)
    axes.set_title("scaling")
    axes.legend(fontsize=7)


def write_chart(result: dict[str, Any], path: Path) -> None:
    pyplot = require()
    figure_ = chart(result)
    figure_.savefig(path, dpi=120)
    pyplot.close(figure_)


def chart(result: dict[str, Any]) -> Any:
    """The matplotlib figure of a JSON result: one panel (axes) per workload, in its order."""
    pyplot = require()
    labels = {entry["name"]: entry["label"] for entry in result["databases"]}
    names = list(result["workloads"])
    figure_, axes = pyplot.subplots(len(names), 1, figsize=(11, 4.2 * len(names)), squeeze=False)
    for panel, name in zip(axes[:, 0], names, strict=True):
        if WORKLOADS[name].table == "scaling":
            _scaling(panel, result["workloads"][name], labels)
        else:
            _bars(panel, name, result["workloads"][name], labels)
    figure_.suptitle(f"treeflow benchmarks, {result['started_at']}")
    figure_.tight_layout(rect=(0, 0, 1, 0.98))
    return figure_


__all__ = ["chart", "drawn_rows", "require", "write_chart"]
