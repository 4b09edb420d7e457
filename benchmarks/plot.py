"""``--plot``: a PNG bar chart of a JSON result (matplotlib, imported only when asked for).

One panel per workload: for each compared metric, treeflow's and the peer's bars on each
database side by side; the scaling panel plots runs/s against the number of stored runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.measure import BenchmarkError
from benchmarks.registry import WORKLOADS, figure

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


def _bars(axes: Any, name: str, by_database: dict[str, Any], labels: dict[str, str]) -> None:
    # Runs (or starts, completes) per second only: node executions are 10x larger and would
    # flatten every other bar of the panel.
    rows = [
        row for row in WORKLOADS[name].rows if row.peer and "node_executions" not in row.treeflow
    ]
    databases = [db for db in labels if db in by_database]
    width = 0.8 / max(1, 2 * len(databases))
    for d, database in enumerate(databases):
        for e, engine in enumerate(("treeflow", "peer")):
            values = [
                figure(by_database[database], row.treeflow if engine == "treeflow" else row.peer)
                or 0
                for row in rows
                if row.peer is not None  # every row drawn has a peer (see rows above)
            ]
            offset = (2 * d + e) * width - 0.4 + width / 2
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
    figure_.savefig(path, dpi=120)
    pyplot.close(figure_)


__all__ = ["require", "write_chart"]
