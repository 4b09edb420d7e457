"""The README's instructions survive being followed: the plugin guide's ``pyproject.toml`` is
the one tests/test_plugins.py installs with pip (so ``pip install .`` of what the README shows
works), its module is that package's module, and the test command CI runs is the README's."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "tests" / "plugin_package"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, re.M | re.S)


def test_the_plugin_guides_pyproject_is_the_installed_packages_whole_file() -> None:
    shown = [block for block in _blocks("toml") if "treeflow.nodes" in block]
    assert shown == [(PACKAGE / "pyproject.toml").read_text(encoding="utf-8")]
    assert "[build-system]" in shown[0] and "[project]" in shown[0]


def test_the_plugin_guides_module_is_the_installed_packages_code() -> None:
    [shown] = [block for block in _blocks("python") if block.startswith("# treeflow_greeter.py")]
    module = (PACKAGE / "treeflow_greeter.py").read_text(encoding="utf-8")
    code = module.split('"""', 2)[2].lstrip("\n")  # the package's module less its docstring
    assert shown.removeprefix("# treeflow_greeter.py\n") == code


def test_ci_runs_the_readmes_test_command_then_the_deselected_markers() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install '.[test]' && pytest\n" in README
    assert "TEST_COMMAND=\"pip install '.[test]' && pytest\"" in ci
    assert 'pytest -m "fault or bench" -n 0' in ci
