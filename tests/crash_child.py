"""The engine process that tests/test_crash.py kills: accepts runs while its workers process them.

Run as ``python crash_child.py URL RUNS``; prints each trigger id once createStart returned.
"""

from __future__ import annotations

import sys
import time

from engine import Engine, Handler, HandlerContext, Parameter, hookimpl

STEPS = 6


def _slow_echo(context: HandlerContext) -> dict[str, str]:
    time.sleep(0.01)  # long enough that the kill lands mid-run
    return {"output": context.parameters["input"]}


class SlowPlugin:
    @hookimpl
    def treeflow_node_handlers(self) -> list[Handler]:
        return [
            Handler(
                "tests_slow_echo_v1",
                _slow_echo,
                parameters=(Parameter("input", required=True),),
                results=("output",),
            )
        ]


def crash_tree() -> dict[str, object]:
    nodes: dict[str, object] = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Step 1"}]}
    }
    for step in range(1, STEPS + 1):
        nodes[f"Step {step}"] = {
            "handler": "tests_slow_echo_v1",
            "parameters": {"input": f"{{{{ source.id }}}}-{step}"},
            "connectors": [{"to": f"Step {step + 1}"}] if step < STEPS else [],
        }
    return {"source": "Tests", "group": "Crash", "name": "Crash", "nodes": nodes}


def main(url: str, runs: int) -> None:
    engine = Engine(
        url, plugins=[SlowPlugin()], lease_seconds=1.0, poll_interval=0.05, batch_size=4
    )
    engine.load_tree(crash_tree())
    engine.start(workers=2)
    for number in range(runs):
        trigger = engine.create_start(
            source_name="Tests", source_group="Crash", tree_name="Crash", source_id=str(number)
        )
        print(trigger.id, flush=True)
    time.sleep(600)  # until killed


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
