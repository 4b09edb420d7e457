"""Pictures of trees and runs: the DOT names every node and connector with its style, Graphviz
draws valid SVG and PNG of the size it lays out, and a run's nodes are coloured by task status.

The DOT is read back through ``dot -Tjson`` (Graphviz's own parser), so the assertions are on
what Graphviz understood, not on how the text happens to be quoted.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from engine import Engine
from engine.errors import BadRequest, GraphvizNotFound
from engine.handlers.registry import HandlerRegistry
from engine.tree.expressions import Expressions
from engine.tree.files import load_tree_files
from engine.tree.model import Tree
from engine.tree.picture import (
    CONNECTOR_STYLE,
    STATUS_FILL,
    render,
    run_dot,
    tree_dot,
    write_picture,
)

from .support import REGISTRATION, run_treeflow, small_tree, start, start_small

pytestmark = pytest.mark.graphviz
TREES = Path(__file__).resolve().parents[1] / "trees"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAD_POINTS = 4  # Graphviz's default pad around the drawing, on each side
PNG_DPI = 96


def example_trees() -> list[Tree]:
    return load_tree_files([TREES], registry=HandlerRegistry(), expressions=Expressions())


def tree_named(name: str) -> Tree:
    return next(tree for tree in example_trees() if tree.key.name == name)


def layout(dot: str) -> dict[str, Any]:
    """What Graphviz makes of DOT text: its objects, edges and bounding box."""
    done = subprocess.run(
        ["dot", "-Tjson"], input=dot, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


def nodes_of(drawn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in drawn["objects"]}


def edges_of(drawn: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    names = [node["name"] for node in drawn["objects"]]
    return [(names[edge["tail"]], names[edge["head"]], edge) for edge in drawn["edges"]]


def drawn_size_points(drawn: dict[str, Any]) -> tuple[float, float]:
    _, _, width, height = map(float, drawn["bb"].split(","))
    return width + 2 * PAD_POINTS, height + 2 * PAD_POINTS


@pytest.mark.parametrize("tree", example_trees(), ids=lambda tree: tree.key.name)
def test_dot_names_every_node_with_its_handler(tree: Tree) -> None:
    drawn = nodes_of(layout(tree_dot(tree)))

    assert set(drawn) == set(tree.nodes)
    for name, node in tree.nodes.items():
        assert drawn[name]["label"].split("\\n")[:2] == [
            name,
            node.handler_id + (" (defers)" if node.defers else ""),
        ]


@pytest.mark.parametrize("tree", example_trees(), ids=lambda tree: tree.key.name)
def test_dot_draws_every_connector_styled_by_type_with_label_and_condition(tree: Tree) -> None:
    drawn = edges_of(layout(tree_dot(tree)))

    connectors = [c for node in tree.nodes.values() for c in node.connectors]
    assert [(tail, head) for tail, head, _ in drawn] == [(c.source, c.target) for c in connectors]
    for (_, _, edge), connector in zip(drawn, connectors, strict=True):
        assert edge["style"] == CONNECTOR_STYLE[connector.type]["style"]
        assert edge["tooltip"] == connector.type.value
        label = edge.get("label", "").split("\\n")
        expected = [connector.label] if connector.label else []
        if connector.condition is not None:
            expected.append(f"[{connector.condition.source}]")
        assert label == (expected or [""])


def test_connector_types_have_three_distinct_styles() -> None:
    assert {style["style"] for style in CONNECTOR_STYLE.values()} == {"solid", "dashed", "dotted"}


def test_text_from_the_tree_is_never_graphviz_markup() -> None:
    tree = Engine().load_tree(
        small_tree(
            'Odd "names"',
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": 'A "quoted" \\N'}]},
                'A "quoted" \\N': {
                    "handler": "utilities_echo_v1",
                    "parameters": {"input": "x"},
                    "connectors": [{"to": "<b>", "condition": "'\\\\' != '\"'", "label": "\\G"}],
                },
                "<b>": {"handler": "system_noop_v1"},
            },
        )
    )

    drawn = layout(tree_dot(tree))

    assert set(nodes_of(drawn)) == {"Start", 'A "quoted" \\\\N', "<b>"}
    [_, (_, _, edge)] = edges_of(drawn)
    assert edge["label"] == "\\\\G\\n['\\\\\\\\' != '\"']"


def test_a_line_break_in_a_tree_name_cannot_add_to_the_dot_text() -> None:
    # The tree's key is the DOT text's comment line: a name with a line break once ended the
    # comment there, and the rest of the name was read as DOT (here a second graph whose
    # node links to a script), drawn into the console's page beside the tree's own picture.
    injected = 'Evil\ndigraph x { a [URL="javascript:alert(1)"] }\r// '
    tree = Engine().load_tree(small_tree(injected, {"Start": {"handler": "system_start_v1"}}))

    svg = render(tree_dot(tree), "svg").decode("utf-8")

    assert svg.count("<svg") == 1
    assert 'href="javascript:' not in svg  # the name is text (in titles), never a link
    assert set(nodes_of(layout(tree_dot(tree)))) == {"Start"}


def test_svg_is_an_svg_document_of_the_laid_out_size(tmp_path: Path) -> None:
    dot = tree_dot(tree_named("Process Registration"))

    assert write_picture(dot, tmp_path / "tree.svg") == "svg"

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(tmp_path / "tree.svg"), parser).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    width, height = (float(root.get(side).removesuffix("pt")) for side in ("width", "height"))
    assert width > 0 and height > 0
    expected = drawn_size_points(layout(dot))
    assert width == pytest.approx(expected[0], abs=1)
    assert height == pytest.approx(expected[1], abs=1)


def test_png_has_the_signature_and_the_size_dot_lays_out(tmp_path: Path) -> None:
    dot = tree_dot(tree_named("Parallel Checks"))

    assert write_picture(dot, tmp_path / "tree.png") == "png"

    data = (tmp_path / "tree.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0
    points = drawn_size_points(layout(dot))
    assert width == pytest.approx(points[0] * PNG_DPI / 72, abs=1)
    assert height == pytest.approx(points[1] * PNG_DPI / 72, abs=1)


def test_dot_output_is_the_dot_text(tmp_path: Path) -> None:
    dot = tree_dot(tree_named("Process Registration"))

    assert write_picture(dot, tmp_path / "tree.gv") == "dot"
    assert (tmp_path / "tree.gv").read_text(encoding="utf-8") == dot


def test_an_unknown_picture_format_is_refused_by_name() -> None:
    message = r"Invalid output file: 'tree\.jpg' does not end in \.svg, \.png, \.dot, \.gv"
    with pytest.raises(BadRequest, match=message):
        write_picture("digraph {}", Path("tree.jpg"))


def test_missing_graphviz_names_the_dot_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(GraphvizNotFound, match="Graphviz's 'dot' executable was not found"):
        render("digraph {}", "svg")
    assert render("digraph {}", "dot") == b"digraph {}"


# -- runs ----------------------------------------------------------------------------------------


def fills(engine: Engine, run_id: int) -> dict[str, str]:
    run = engine.get_run(run_id)
    drawn = nodes_of(layout(run_dot(engine.tree_of_run(run), run)))
    return {name: node["fillcolor"] for name, node in drawn.items()}


def test_run_nodes_are_coloured_closed_deferred_and_not_reached(engine: Engine) -> None:
    run_id = start(engine, REGISTRATION, source_id="REG-1")

    assert fills(engine, run_id) == {
        "Start": STATUS_FILL["Closed"],
        "Review": STATUS_FILL["Deferred"],
        "Notify Reviewer": STATUS_FILL["Closed"],
        "Approved": STATUS_FILL["Not reached"],
        "Denied": STATUS_FILL["Not reached"],
    }
    run = engine.get_run(run_id)
    drawn = layout(run_dot(engine.tree_of_run(run), run))
    assert nodes_of(drawn)["Approved"]["style"] == "rounded,dashed"
    assert nodes_of(drawn)["Review"]["label"].endswith("\\nDeferred")


def test_run_nodes_are_coloured_failed_and_waiting(engine: Engine) -> None:
    engine.load_tree(
        small_tree(
            "Colours",
            {
                "Start": {
                    "handler": "system_start_v1",
                    "connectors": [{"to": "Broken"}, {"to": "Wait"}, {"to": "Quick"}],
                },
                "Broken": {
                    "handler": "utilities_echo_v1",
                    "parameters": {"input": "{{ results['No' ~ 'pe']['x'] }}"},
                },
                "Wait": {
                    "handler": "utilities_defer_v1",
                    "defers": True,
                    "connectors": [{"to": "Both"}],
                },
                "Quick": {"handler": "system_noop_v1", "connectors": [{"to": "Both"}]},
                "Both": {"handler": "system_join_v1", "parameters": {"type": "All"}},
            },
        )
    )
    run_id = start_small(engine, "Colours")

    colours = fills(engine, run_id)

    assert colours["Broken"] == STATUS_FILL["Failed"]
    assert colours["Wait"] == STATUS_FILL["Deferred"]
    assert colours["Quick"] == STATUS_FILL["Closed"]
    assert colours["Both"] == STATUS_FILL["New"]  # the join waits for Wait


def test_a_node_run_twice_shows_its_count(engine: Engine) -> None:
    nodes = {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "A"}, {"to": "B"}]},
        "A": {"handler": "system_noop_v1", "connectors": [{"to": "Merge"}]},
        "B": {"handler": "system_noop_v1", "connectors": [{"to": "Merge"}]},
        "Merge": {"handler": "system_noop_v1"},
    }
    engine.load_tree(small_tree("Twice", nodes))
    run = engine.get_run(start_small(engine, "Twice"))

    drawn = nodes_of(layout(run_dot(engine.tree_of_run(run), run)))

    assert drawn["Merge"]["label"].endswith("\\nClosed x2")


# -- the commands --------------------------------------------------------------------------------


def test_graph_command_draws_a_tree_by_name_and_by_file(tmp_path: Path) -> None:
    by_name = run_treeflow(
        "graph", "Process Registration", "--trees", str(TREES), "-o", "t.svg", cwd=tmp_path
    )
    by_file = run_treeflow(
        "graph", str(TREES / "parallel-checks.yaml"), "-o", "p.png", cwd=tmp_path
    )
    printed = run_treeflow("graph", "Process Registration", "--trees", str(TREES), cwd=tmp_path)

    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stderr.strip() == "wrote t.svg (svg)"
    assert (tmp_path / "t.svg").read_bytes().startswith(b"<?xml")
    assert by_file.returncode == 0, by_file.stderr
    assert (tmp_path / "p.png").read_bytes().startswith(PNG_SIGNATURE)
    assert printed.stdout == tree_dot(tree_named("Process Registration"))


def test_graph_command_draws_a_routine_caller_file_with_the_routines_under_trees(
    tmp_path: Path,
) -> None:
    caller = str(TREES / "welcome-starter.yaml")
    drawn = run_treeflow("graph", caller, "--trees", str(TREES), cwd=tmp_path)
    alone = run_treeflow("graph", caller, "--trees", str(tmp_path / "none"), cwd=tmp_path)

    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout == tree_dot(tree_named("Welcome Starter"))
    assert alone.returncode == 1
    assert "unknown handler 'routine_compose_welcome_v1'" in alone.stderr


def test_graph_command_names_an_unknown_tree(tmp_path: Path) -> None:
    result = run_treeflow("graph", "Nope", "--trees", str(TREES), cwd=tmp_path)

    assert result.returncode == 1
    assert f"Error: no file and no tree in {str(TREES)!r} is named 'Nope' (known: " in result.stderr


def test_graph_command_without_graphviz_says_which_executable_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    args = ("graph", "Process Registration", "--trees", str(TREES))

    result = run_treeflow(*args, "-o", "t.png", cwd=tmp_path, env={"PATH": str(empty)})
    as_dot = run_treeflow(*args, "-o", "t.dot", cwd=tmp_path, env={"PATH": str(empty)})

    assert result.returncode == 1
    assert "Error: Graphviz's 'dot' executable was not found on PATH" in result.stderr
    assert not (tmp_path / "t.png").exists()
    assert as_dot.returncode == 0, as_dot.stderr


def test_runs_show_graph_draws_the_run_and_prints_what_it_printed_before(tmp_path: Path) -> None:
    flags = ("--database", f"sqlite:///{tmp_path / 't.db'}")
    started = run_treeflow(
        "run", "Process Registration", *flags, "--trees", str(TREES), cwd=tmp_path
    )
    assert started.returncode == 0, started.stderr

    plain = run_treeflow("runs", "show", "1", *flags, cwd=tmp_path)
    drawn = run_treeflow("runs", "show", "1", "--graph", "run.svg", *flags, cwd=tmp_path)

    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout == plain.stdout
    assert drawn.stderr.strip() == "wrote run.svg (svg)"
    svg = (tmp_path / "run.svg").read_text(encoding="utf-8")
    assert STATUS_FILL["Deferred"] in svg
    assert "Run 1 of Process Registration (version 1): Started" in svg
