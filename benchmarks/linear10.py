"""Runs per second of the 10-step linear tree (trees/linear10.yaml) on an embedded engine.

Accepts N runs with createStart, then processes them on this thread with run_until_idle, and
reports acceptance and processing rates separately, counting only triggers whose state is
committed (every run is checked Completed before the figures are printed).

    python -m benchmarks.linear10 --runs 2000 --database sqlite:////tmp/linear10.db
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from engine import Engine

TREES = Path(__file__).resolve().parents[1] / "trees" / "linear10.yaml"
KEY = {"source_name": "Benchmarks", "source_group": "Throughput", "tree_name": "Linear 10"}
NODES_PER_RUN = 12  # start, ten steps, end


def measure(url: str, runs: int, batch_size: int) -> dict[str, float]:
    with Engine(url, trees=TREES, batch_size=batch_size) as engine:
        began = time.perf_counter()
        for number in range(runs):
            engine.create_start(**KEY, source_id=f"run-{number}")
        accepted = time.perf_counter()
        engine.run_until_idle()
        processed = time.perf_counter()
        with engine.database.read() as connection:
            completed = connection.execute(
                sa.text("SELECT count(*) FROM runs WHERE status = 'Completed'")
            ).scalar_one()
    if completed != runs:
        raise SystemExit(f"only {completed} of {runs} runs completed")
    accept_s, process_s = accepted - began, processed - accepted
    return {
        "runs": runs,
        "create_start_per_s": runs / accept_s,
        "runs_processed_per_s": runs / process_s,
        "node_executions_per_s": runs * NODES_PER_RUN / process_s,
        "end_to_end_runs_per_s": runs / (processed - began),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{folder}/linear10.db"
        result = measure(url, args.runs, args.batch_size)
    print(json.dumps({"database": url.split(":", 1)[0], **result}, indent=2))


if __name__ == "__main__":
    main()
