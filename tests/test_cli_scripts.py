"""The CLI for scripts and for 80 columns: ``--json`` with its documented keys on every list and
show command, tables that fit 80 columns without wrapping a cell a character per line,
``treeflow handlers``, "did you mean" for unknown tree names, handler ids and actions, each
setting's environment variable in ``--help``, the ``serve`` startup line, and a missing default
``trees/`` folder reported.

The commands run in-process through click's CliRunner (the real ``main``, a real SQLite file in
the test's folder, the console held at 80 columns); one runs as the installed script, to show
the JSON is the same there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine import Engine
from engine.cli import support
from engine.cli.main import main
from engine.cli.serve import startup_summary

from .support import run_treeflow

TREES = Path(__file__).resolve().parents[1] / "trees"
BROKEN = """\
source: Tests
group: Scripts
name: Broken
nodes:
  Start:
    handler: system_start_v1
    connectors:
      - to: Greet
  Greet:
    handler: utilities_echo_v1
    parameters:
      input: "Hello {{ inputs['Name'] }}, this summary is long enough to wrap in a narrow column"
"""
RUN_KEYS = {"id", "status", "source_name", "source_group", "tree_name", "tree_version",
            "source_id", "parent_run_id", "created_at", "updated_at"}  # fmt: skip
TASK_KEYS = {"id", "name", "handler_id", "status", "loop_index", "results", "token",
             "created_at", "updated_at"}  # fmt: skip
ERROR_KEYS = {"id", "run_id", "type", "status", "node", "loop_index", "summary", "task_id",
              "trigger_id", "connector_to", "created_at", "resolution"}  # fmt: skip


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support.console, "width", 80)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``treeflow ARGS --database <tmp>/t.db`` in-process; ``trees=`` adds ``--trees``."""
    monkeypatch.chdir(tmp_path)
    for name in ("TREEFLOW_DATABASE_URL", "TREEFLOW_TREES"):
        monkeypatch.delenv(name, raising=False)
    database = f"sqlite:///{tmp_path / 't.db'}"

    def call(
        *args: str, trees: Path | None = TREES, code: int = 0, stdin: str = "", db: bool = True
    ) -> Result:
        flags = (["--database", database] if db else []) + (
            ["--trees", str(trees)] if trees else []
        )
        result = CliRunner().invoke(main, [*args, *flags], input=stdin)
        assert result.exit_code == code, (result.output, result.stderr, result.exception)
        return result

    yield call


def _broken_trees(tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    return folder


# -- --json ----------------------------------------------------------------------------------


def test_runs_list_and_show_json_have_the_documented_keys_and_values(cli: Any) -> None:
    cli("run", "Process Registration", "--source-id", "REG-1")
    cli("run", "Parallel Checks", "--results", '<results><result name="Attendee">A</result>'
        "</results>")  # fmt: skip

    listed = json.loads(cli("runs", "list", "--json").stdout)
    shown = json.loads(cli("runs", "show", "1", "--json").stdout)

    assert [(run["id"], run["tree_name"], run["status"]) for run in listed] == [
        (2, "Parallel Checks", "Completed"),
        (1, "Process Registration", "Started"),
    ]
    assert all(set(run) == RUN_KEYS for run in listed)
    assert set(shown) == RUN_KEYS | {"inputs", "values", "tasks", "errors", "children",
                                     "open_tokens"}  # fmt: skip
    assert shown["source_id"] == "REG-1"
    assert shown["created_at"].endswith("+00:00")
    assert all(set(task) == TASK_KEYS for task in shown["tasks"])
    review = next(task for task in shown["tasks"] if task["name"] == "Review")
    assert review["status"] == "Deferred"
    assert shown["open_tokens"] == {"Review": review["token"]}
    assert len(review["token"]) == 40


def test_errors_list_json_has_the_documented_keys(cli: Any, tmp_path: Path) -> None:
    cli("run", "Broken", trees=_broken_trees(tmp_path))

    [error] = json.loads(cli("errors", "list", "--json").stdout)

    assert set(error) == ERROR_KEYS
    assert (error["run_id"], error["type"], error["status"], error["node"]) == (
        1, "Node Parameter Error", "Active", "Greet",
    )  # fmt: skip
    assert error["resolution"] is None
    cli("errors", "resolve", error["id"], "--action", "Skip Task", "--by", "ops",
        trees=_broken_trees(tmp_path / "again"))  # fmt: skip
    [handled] = json.loads(cli("errors", "list", "--json").stdout)
    assert handled["status"] == "Handled"
    assert handled["resolution"]["action"] == "Skip Task"
    assert handled["resolution"]["by"] == "ops"


def test_schedules_list_and_show_json(cli: Any) -> None:
    cli("schedules", "add", "Nightly", "--source", "Kinetic Request", "--group",
        "Shop > Orders", "--tree", "Cooling Off Period", "--cron", "0 2 * * *")  # fmt: skip

    [listed] = json.loads(cli("schedules", "list", "--json", trees=None).stdout)
    shown = json.loads(cli("schedules", "show", str(listed["id"]), "--json", trees=None).stdout)

    assert listed["name"] == "Nightly"
    assert listed["when"] == {"kind": "cron", "cron": "0 2 * * *"}
    assert listed["next_fire_time"].endswith("T02:00:00+00:00")
    assert shown["history"] == []
    assert {key: shown[key] for key in listed} == listed


def test_users_list_json(cli: Any) -> None:
    cli("users", "add", "ada", "--role", "admin", trees=None, stdin="a long enough passphrase 1")

    [user] = json.loads(cli("users", "list", "--json", trees=None).stdout)

    assert set(user) == {"id", "name", "role", "disabled", "created_at"}
    assert (user["name"], user["role"], user["disabled"]) == ("ada", "admin", False)


def test_validate_json_lists_trees_and_problems_and_exits_1_on_a_problem(
    cli: Any, tmp_path: Path
) -> None:
    good = json.loads(cli("validate", str(TREES / "cooling-off-period.yaml"), "--json",
                          trees=None, db=False).stdout)  # fmt: skip
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(BROKEN.replace("utilities_echo_v1", "utilities_echo_v2"), "utf-8")
    bad = json.loads(cli("validate", str(bad_file), "--json", trees=None, db=False, code=1).stdout)

    assert good["problems"] == [] and good["warnings"] == []
    [tree] = good["trees"]
    assert (tree["name"], tree["nodes"]) == ("Cooling Off Period", 5)
    assert bad["trees"] == []
    [problem] = bad["problems"]
    assert set(problem) == {"file", "line", "node", "message", "rule"}
    assert (problem["node"], problem["line"], problem["rule"]) == ("Greet", 10, None)
    assert problem["message"].startswith("unknown handler 'utilities_echo_v2'; known handlers: ")
    assert problem["message"].endswith("; did you mean 'utilities_echo_v1'?")


def test_the_installed_script_prints_the_same_json(cli: Any, tmp_path: Path) -> None:
    cli("run", "Process Registration", "--source-id", "REG-1")
    in_process = json.loads(cli("runs", "list", "--json").stdout)

    done = run_treeflow("runs", "list", "--json", "--database", f"sqlite:///{tmp_path / 't.db'}",
                        cwd=tmp_path)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == in_process


# -- 80 columns ------------------------------------------------------------------------------


def _fits(output: str, *texts: str) -> None:
    """Every line within 80 columns, and each word of ``texts`` whole in some line."""
    assert max(len(line) for line in output.splitlines()) <= 80, output
    for word in " ".join(texts).split():
        assert word in output, f"{word!r} was wrapped apart:\n{output}"


def test_errors_list_fits_80_columns_without_wrapping_words(cli: Any, tmp_path: Path) -> None:
    cli("run", "Broken", trees=_broken_trees(tmp_path))
    [error] = json.loads(cli("errors", "list", "--json").stdout)

    table = cli("errors", "list").stdout

    _fits(table, error["summary"], error["id"], error["type"])


def test_the_other_tables_fit_80_columns(cli: Any) -> None:
    cli("run", "Process Registration", "--source-id", "REG-1")
    cli("schedules", "add", "Nightly", "--source", "Kinetic Request", "--group",
        "Shop > Orders", "--tree", "Cooling Off Period", "--cron", "0 2 * * *")  # fmt: skip
    cli("users", "add", "ada", trees=None, stdin="a long enough passphrase 1")

    _fits(cli("runs", "list").stdout, "Process Registration", "REG-1")
    _fits(cli("schedules", "list", trees=None).stdout, "Nightly")
    _fits(cli("users", "list", trees=None).stdout, "ada")
    _fits(cli("handlers", db=False).stdout, "system_wait_v1", "utilities_create_trigger_v1")


# -- treeflow handlers -----------------------------------------------------------------------


def test_handlers_lists_each_installed_handler_with_parameters_and_results(cli: Any) -> None:
    listed = {
        h["id"]: h for h in json.loads(cli("handlers", "--json", trees=None, db=False).stdout)
    }
    table = cli("handlers", trees=None, db=False).stdout

    wait = listed["system_wait_v1"]
    assert wait["behaviour"] == "wait"
    assert wait["deferrable"] is True
    assert [p["name"] for p in wait["parameters"]] == ["Time to wait", "Time unit"]
    assert wait["parameters"][1]["menu"][:2] == ["Second", "Minute"]
    assert wait["results"] == ["due_at"]
    assert listed["utilities_echo_v1"]["results"] == ["output"]
    assert "tests_explode_v1" not in listed  # test plugins are not installed entry points
    assert "system_wait_v1 (defers)" in table
    assert "Time to wait" in table


def test_handlers_with_trees_adds_their_routines_and_shows_one(cli: Any) -> None:
    listed = {h["id"] for h in json.loads(cli("handlers", "--json", db=False).stdout)}
    one = json.loads(cli("handlers", "routine_compose_welcome_v1", "--json", db=False).stdout)

    assert "routine_compose_welcome_v1" in listed
    assert [p["name"] for p in one["parameters"]] == ["Name", "Team"]
    assert "Behaviour: routine" in cli("handlers", "routine_compose_welcome_v1", db=False).stdout


# -- did you mean ----------------------------------------------------------------------------


def test_an_unknown_handler_id_suggests_the_close_one(cli: Any) -> None:
    result = cli("handlers", "system_wiat_v1", trees=None, code=1, db=False)
    assert "no handler 'system_wiat_v1' is installed; did you mean 'system_wait_v1'" in (
        result.stderr
    )


def test_an_unknown_tree_name_suggests_the_close_one(cli: Any) -> None:
    result = cli("run", "Process Registraton", code=1)
    assert (
        "no tree named 'Process Registraton' is loaded; did you mean 'Process Registration'?"
        in result.stderr
    )


def test_an_unknown_action_suggests_the_close_one_and_changes_nothing(
    cli: Any, tmp_path: Path
) -> None:
    cli("run", "Broken", trees=_broken_trees(tmp_path))
    [error] = json.loads(cli("errors", "list", "--json").stdout)

    result = cli("errors", "resolve", error["id"], "--action", "retry task", code=2)

    assert "'retry task' is not an action; did you mean 'Retry Task'?" in result.stderr
    [after] = json.loads(cli("errors", "list", "--json").stdout)
    assert after == error


# -- help, serve, missing trees --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        (["run"], ["TREEFLOW_DATABASE_URL", "TREEFLOW_TREES"]),
        (["worker"], ["TREEFLOW_WORKERS", "TREEFLOW_LEASE_SECONDS", "TREEFLOW_MAX_CHILD_RUNS"]),
        (["serve"], ["TREEFLOW_PORT", "TREEFLOW_HOST", "TREEFLOW_MAX_BODY_BYTES"]),
        (["users", "list"], ["TREEFLOW_DATABASE_URL"]),
    ],
)
def test_help_names_each_settings_environment_variable(
    command: list[str], variables: list[str]
) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click wraps the help text at its own width
    for variable in variables:
        assert f"env var: {variable}" in text


def test_serve_summary_names_database_trees_refused_workers_and_scheduler(tmp_path: Path) -> None:
    from engine.server import ServerSettings

    trees = _broken_trees(tmp_path)
    (trees / "refused.yaml").write_text("name: [", encoding="utf-8")
    with Engine(f"sqlite:///{tmp_path / 's.db'}", trees=trees) as engine:
        line = startup_summary(engine, ServerSettings(host="127.0.0.1", port=8123, workers=3))

    assert line.startswith(f"treeflow serve: database sqlite:///{tmp_path / 's.db'}; ")
    assert f"1 trees loaded, 1 file(s) refused ({trees / 'refused.yaml'}; treeflow validate)" in (
        line
    )
    assert "; 3 workers; scheduler on" in line
    assert "; web console at /console; " in line
    assert line.endswith("listening on http://127.0.0.1:8123")
    without = ServerSettings(port=8123, console_path=None)
    assert "; no web console; listening on" in startup_summary(engine, without)


def test_a_missing_default_trees_folder_is_reported(cli: Any) -> None:
    result = cli("run", "Process Registration", trees=None, code=1)
    assert "no trees/ folder in" in result.stderr
    assert "give --trees or TREEFLOW_TREES" in result.stderr
