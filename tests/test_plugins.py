"""Node plugins: found through the ``treeflow.nodes`` entry point, checked when registered.

The entry-point case installs the example distribution in ``tests/plugin_package`` with pip
into a private folder and runs an engine in a subprocess that has only that folder added to
its path, so the handler can come from nowhere but the installed entry point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine import (
    Engine,
    Handler,
    HandlerContext,
    HandlerContractError,
    Parameter,
    RunStatus,
    TreeError,
    hookimpl,
)

PLUGIN_PACKAGE = Path(__file__).resolve().parent / "plugin_package"

GREET_TREE = """
source: Examples
group: Plugins
name: Greet
nodes:
  Start: {handler: system_start_v1, connectors: [{to: Greet}]}
  Greet: {handler: greeter_hello_v1, parameters: {name: "{{ source.id }}"}}
"""


def _run_python(script: str, *, cwd: Path, site: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # inside pytest's 120 s (pyproject.toml), so a hang fails as this one
        check=False,
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``treeflow-greeter-plugin`` installed by pip into a folder of its own."""
    root = tmp_path_factory.mktemp("greeter")
    package = root / "package"
    shutil.copytree(PLUGIN_PACKAGE, package)  # pip builds in the tree: keep the checkout clean
    site = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
               "--no-build-isolation", "--target", str(site), str(package)]  # fmt: skip
    installed = subprocess.run(command, capture_output=True, text=True, timeout=100, check=False)
    # --no-build-isolation builds with this environment's setuptools (the "test" extra).
    assert installed.returncode == 0, installed.stderr
    return site


RUN_GREET = f"""
    from engine import Engine

    with Engine() as engine:
        engine.load_tree({GREET_TREE!r})
        trigger = engine.create_start(
            source_name="Examples", source_group="Plugins", tree_name="Greet", source_id="Ada"
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)
        print(run.status.value, run.task("Greet").results["greeting"], sep="|")
"""


def test_an_installed_plugin_provides_its_handler_through_the_entry_point(
    plugin_site: Path, tmp_path: Path
) -> None:
    result = _run_python(RUN_GREET, cwd=tmp_path, site=plugin_site)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Completed|Hello, Ada!"


def test_without_the_plugin_installed_the_same_script_fails_naming_the_handler(
    tmp_path: Path,
) -> None:
    result = _run_python(RUN_GREET, cwd=tmp_path, site=None)

    assert result.returncode == 1
    assert "engine.errors.TreeError" in result.stderr
    assert "unknown handler 'greeter_hello_v1'" in result.stderr


def test_an_installed_plugin_declares_its_required_parameter(
    plugin_site: Path, tmp_path: Path
) -> None:
    script = """
        from engine import Engine, TreeError

        tree = {"source": "S", "group": "G", "name": "Nameless", "nodes": {
            "Start": {"handler": "system_start_v1", "connectors": [{"to": "Greet"}]},
            "Greet": {"handler": "greeter_hello_v1"},
        }}
        try:
            Engine().load_tree(tree)
        except TreeError as exc:
            print(exc.problems[0].message)
    """

    result = _run_python(script, cwd=tmp_path, site=plugin_site)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "required parameter 'name' of 'greeter_hello_v1' is missing"


# -- what a plugin author imports, and the built-ins whatever is on the path -----------------------

HEAVY = ("sqlalchemy", "sqlmodel", "apscheduler", "jinja2", "lxml", "networkx")


def test_the_plugin_api_imports_none_of_the_engines_heavy_libraries(tmp_path: Path) -> None:
    script = f"""
        import sys
        from engine import Handler, HandlerContext, Parameter, hookimpl
        loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
        print(",".join(loaded) or "none", Handler.__module__, hookimpl.project_name, sep="|")
    """

    result = _run_python(script, cwd=tmp_path, site=None)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none|engine.handlers.handler|treeflow"


def test_importing_the_engine_itself_still_loads_what_it_runs_on(tmp_path: Path) -> None:
    script = f"""
        import sys
        from engine import Engine
        print(",".join(sorted({{n.split(".")[0] for n in sys.modules}} & set({HEAVY!r}))))
    """

    result = _run_python(script, cwd=tmp_path, site=None)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ",".join(sorted(HEAVY))


def test_every_public_name_of_the_facade_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    import engine

    for name in engine.__all__:
        exported = getattr(engine, name)
        module = importlib.import_module(engine._EXPORTS[name])  # type: ignore[attr-defined]
        assert exported is getattr(module, name), name
    assert sorted(engine.__all__) == sorted(engine._EXPORTS)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="module 'engine' has no attribute 'Nothing'"):
        engine.Nothing  # type: ignore[attr-defined]  # noqa: B018


def test_a_nodes_module_beside_the_script_does_not_hide_the_built_in_nodes(tmp_path: Path) -> None:
    (tmp_path / "nodes.py").write_text('GREETING = "the host\'s own nodes"\n', encoding="utf-8")
    echo_tree = GREET_TREE.replace("greeter_hello_v1", "utilities_echo_v1").replace(
        "{name:", "{input:"
    )
    script = f"""
        import nodes
        from engine import Engine

        with Engine() as engine:
            engine.load_tree({echo_tree!r})
            trigger = engine.create_start(
                source_name="Examples", source_group="Plugins", tree_name="Greet", source_id="Ada"
            )
            engine.run_until_idle()
            run = engine.get_run(trigger.run_id)
        print(nodes.GREETING, run.status.value, run.task("Greet").results["output"], sep="|")
    """

    result = _run_python(script, cwd=tmp_path, site=None)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the host's own nodes|Completed|Ada"


def test_without_entry_points_an_engine_still_knows_the_built_in_nodes() -> None:
    with Engine(load_entry_points=False) as engine:
        ids = set(engine.registry.ids)

    assert {"system_start_v1", "system_join_v1", "utilities_echo_v1"} <= ids
    assert "system_schedule_create_v1" in ids


# -- the contract, in process --------------------------------------------------------------------


def _echo_name(context: HandlerContext) -> Mapping[str, str]:
    return {"said": f"{context.parameters['name']} from {context.source.id}"}


class Plugin:
    """A plugin object whose hook returns the handlers it was given."""

    def __init__(self, *handlers: object) -> None:
        self.handlers = handlers

    @hookimpl
    def treeflow_node_handlers(self) -> Sequence[object]:
        return self.handlers


def good(definition_id: str = "tests_say_v1", **changes: object) -> Handler:
    fields: dict[str, object] = {
        "definition_id": definition_id,
        "execute": _echo_name,
        "parameters": (Parameter("name", required=True),),
        "results": ("said",),
    }
    fields.update(changes)
    return Handler(**fields)  # type: ignore[arg-type]


def test_a_plugin_object_passed_to_the_engine_runs_like_a_built_in() -> None:
    tree = {"source": "S", "group": "G", "name": "Say", "nodes": {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Say"}]},
        "Say": {"handler": "tests_say_v1", "parameters": {"name": "Grace"}},
    }}  # fmt: skip

    with Engine(plugins=[Plugin(good())]) as engine:
        engine.load_tree(tree)
        trigger = engine.create_start(
            source_name="S", source_group="G", tree_name="Say", source_id="R-1"
        )
        engine.run_until_idle()
        run = engine.get_run(trigger.run_id)

    assert run.status is RunStatus.COMPLETED
    assert run.task("Say").results == {"said": "Grace from R-1"}


BAD_HANDLERS = [
    (
        good("Tests-Say"),
        "Handler 'Tests-Say' cannot be registered: a definition id is lower_snake_case "
        "ending in a version such as _v1",
    ),
    (
        good("tests_say"),
        "Handler 'tests_say' cannot be registered: a definition id is lower_snake_case",
    ),
    (
        good("utilities_echo_v1"),
        "Handler 'utilities_echo_v1' cannot be registered: already provided by plugin "
        "'utilities', provided again by ",
    ),
    (
        SimpleNamespace(definition_id="tests_say_v1", execute=_echo_name),
        "Handler 'tests_say_v1' cannot be registered: plugin '.+' returned SimpleNamespace",
    ),
    (
        good(execute="not a function"),
        "Handler 'tests_say_v1' cannot be registered: execute is not callable",
    ),
    (
        good(parameters=(Parameter("name"), Parameter("name"))),
        r"Handler 'tests_say_v1' cannot be registered: parameters declared twice: \['name'\]",
    ),
    (
        good(parameters=(Parameter("tone", default="loud", menu=("soft", "warm")),)),
        "Handler 'tests_say_v1' cannot be registered: default 'loud' of 'tone' is not in its menu",
    ),
]


@pytest.mark.parametrize(
    ("handler", "message"),
    BAD_HANDLERS,
    ids=[
        "id-not-snake-case",
        "id-without-version",
        "id-of-a-built-in",
        "not-a-handler",
        "execute-not-callable",
        "duplicate-parameter",
        "default-outside-menu",
    ],
)
def test_a_handler_breaking_the_contract_fails_engine_construction_naming_it(
    handler: object, message: str
) -> None:
    with pytest.raises(HandlerContractError, match=message):
        Engine(plugins=[Plugin(handler)])


def test_two_plugins_providing_the_same_id_fail_naming_the_id() -> None:
    with pytest.raises(HandlerContractError, match="Handler 'tests_say_v1' cannot be registered"):
        Engine(plugins=[Plugin(good()), Plugin(good())])


def test_a_tree_using_a_handler_nobody_provides_fails_to_load_naming_the_known_ids() -> None:
    tree = GREET_TREE.replace("name: Greet", "name: Greet Offline")

    with Engine() as engine, pytest.raises(TreeError) as caught:
        engine.load_tree(tree)

    (problem,) = caught.value.problems
    assert problem.node == "Greet"
    assert problem.line == 7
    assert problem.message.startswith("unknown handler 'greeter_hello_v1'; known handlers: ")
    known = problem.message.split("known handlers: ", 1)[1].split(", ")
    assert known == sorted(known)
    assert {"system_start_v1", "utilities_echo_v1", "utilities_defer_v1"} <= set(known)
    assert "greeter_hello_v1" not in known
