"""File positions and names print as written: no emoji codes (``:100:`` is not 💯), no markup.

``treeflow validate`` and ``treeflow import-kinetic`` print ``file.yaml:100: node ...``; rich would
turn ``:100:`` into an emoji and ``[b]...[/b]`` into bold unless told not to. Run as a user runs
them (the console script, in a subprocess), on a terminal-less pipe as in CI.
"""

from __future__ import annotations

from pathlib import Path

from .support import run_treeflow

NODE = "Ping :smile: [b]now[/b]"
PADDING = "".join(f"# line {n}\n" for n in range(1, 91))  # so that the handler is on line 100


def tree_with_unknown_handler_on_line_100() -> str:
    text = (
        PADDING + "source: Tests\ngroup: Positions\nname: Hundred\nnodes:\n"
        "  Start:\n    handler: system_start_v1\n    connectors:\n"
        f"      - to: '{NODE}'\n  '{NODE}':\n    handler: utilities_ecko_v1\n"
    )
    assert text.splitlines()[99] == "    handler: utilities_ecko_v1"
    return text


def test_validate_prints_line_100_and_node_names_literally(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(tree_with_unknown_handler_on_line_100(), encoding="utf-8")

    result = run_treeflow("validate", "bad.yaml", cwd=tmp_path)

    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error ")]
    assert error.startswith(
        f"error bad.yaml:100: node '{NODE}': unknown handler 'utilities_ecko_v1'"
    )
    assert "\U0001f4af" not in result.stderr and "\U0001f604" not in result.stderr


def test_validate_prints_an_ok_line_with_markup_in_the_tree_name_literally(tmp_path: Path) -> None:
    text = "source: ':100:'\ngroup: '[b]g[/b]'\nname: ':smile:'\n"
    text += "nodes:\n  Start: {handler: system_start_v1}\n"
    (tmp_path / "ok.yaml").write_text(text, encoding="utf-8")

    result = run_treeflow("validate", "ok.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok ok.yaml: :100: :: [b]g[/b] :: :smile: (1 nodes)"


EXPORT = """\
<?xml version="1.0" encoding="UTF-8"?>
<tree>
  <sourceName>Kinetic Request CE</sourceName>
  <sourceGroup>Submissions &gt; services &gt; ping</sourceGroup>
  <type>Tree</type>
  <taskTree>
    <name>Ping</name>
    <request>
      <task definition_id="system_start_v1" id="start" name="Start">
        <dependents><task type="Complete" label="" value="">kinetic_ping_v1_1</task></dependents>
      </task>
      <task definition_id="kinetic_ping_v1" id="kinetic_ping_v1_1" name="{node}">
        <parameters><parameter id="to">:100: [i]everyone[/i]</parameter></parameters>
        <messages><message type="Complete">:smile: done</message></messages>
      </task>
    </request>
  </taskTree>
</tree>
"""


def test_import_kinetic_prints_positions_and_names_literally(tmp_path: Path) -> None:
    (tmp_path / "ping.xml").write_text(EXPORT.format(node=NODE), encoding="utf-8")

    result = run_treeflow("import-kinetic", "ping.xml", "-o", "ping.yaml", cwd=tmp_path)

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (
        f"kept ping.xml:14: node '{NODE}': the Complete message ':smile: done' is not"
        in "\n".join(lines)
    )
    [error] = [line for line in lines if line.startswith("error ")]
    written = (tmp_path / "ping.yaml.imported").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(written, 1) if "handler: kinetic_ping_v1" in text)
    assert error.startswith(f"error ping.yaml.imported:{line}: node '{NODE}': unknown handler")
    assert "\U0001f4af" not in result.stderr and "\U0001f604" not in result.stderr
