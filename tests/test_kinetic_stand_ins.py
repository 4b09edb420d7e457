"""Stand-ins for the Kinetic handlers and routines treeflow lacks, and the migration report.

A converted export that calls the Kinetic Platform API, the discussions API and a routine that is
not beside it does not validate; with the stand-ins package and stand-in routines
``import-kinetic --stand-ins`` writes it validates and dry-runs, its branches following the
results configured for the stand-ins. The package is loaded directly (``Engine(plugins=[...])``)
and, once, installed by pip and found through its entry point by the ``treeflow`` command; the
routines are tree files loaded beside the tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Engine, RunStatus, TaskStatus
from engine.errors import HandlerContractError, TreeError
from engine.handlers.registry import HandlerRegistry
from engine.kinetic.importer import KineticTree, convert_kinetic
from engine.kinetic.report import export_report, write_report
from engine.kinetic.stand_in_routines import routine_file
from engine.kinetic.stand_ins import PACKAGE, find_stand_ins, load_stand_ins, write_stand_ins

from .support import run_treeflow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kinetic"
PLATFORM = FIXTURES / "platform-calls-tree.xml"
ONBOARDING = FIXTURES / "onboarding-tree.xml"
START = '<results><result name="Username">ada</result><result name="Discussion">D-1</result>'


def convert(path: Path) -> KineticTree:
    return convert_kinetic(path.read_bytes(), file=path.name)


def stand_ins_for(directory: Path, *paths: Path) -> Path:
    trees = [(path.name, convert(path).definition) for path in paths]
    return write_stand_ins(directory, find_stand_ins(trees, HandlerRegistry()))


def configure(handlers_file: Path, handler: str, **values: str) -> None:
    data = json.loads(handlers_file.read_text(encoding="utf-8"))
    data["handlers"][handler]["results"].update(
        {name.replace("_", " "): value for name, value in values.items()}
    )
    handlers_file.write_text(json.dumps(data), encoding="utf-8")


def dry_run(directory: Path, database_url: str, text: str | None = None) -> tuple[Engine, int]:
    engine = Engine(
        database_url,
        trees=[directory / "routines"],
        plugins=[load_stand_ins(directory)],
        load_entry_points=False,
    )
    tree = engine.load_tree(convert(PLATFORM).yaml() if text is None else text)
    trigger = engine.create_start(
        source_name=tree.key.source_name,
        source_group=tree.key.source_group,
        tree_name=tree.key.name,
        source_id="S-1",
        results=START + "</results>",
    )
    engine.run_until_idle()
    return engine, trigger.run_id


def test_each_unknown_handler_is_declared_with_the_parameters_passed_and_results_read() -> None:
    found = find_stand_ins([("t.xml", convert(PLATFORM).definition)], HandlerRegistry())

    assert sorted(found.handlers) == ["kinetic_core_api_v1", "kinetic_discussions_api_v1"]
    api = found.handlers["kinetic_core_api_v1"]
    assert api.parameters == ["error_handling", "method", "path", "body"]
    assert api.results == ["Response Code", "Response Body"]  # read by a condition, a parameter
    assert (api.deferrable, api.used_by) == (False, ["t.xml"])
    assert found.handlers["kinetic_discussions_api_v1"].results == ["Message Id"]
    assert sorted(found.routines) == ["routine_kinetic_finish_v1"]  # a routine, not a handler
    assert found.routines["routine_kinetic_finish_v1"].parameters == ["Run Id"]
    # treeflow's own handlers and a tree with none missing need no stand-in
    onboarding = [("o.xml", convert(ONBOARDING).definition)]
    assert find_stand_ins(onboarding, HandlerRegistry()).handlers == {}


def test_the_package_is_installable_and_declares_the_entry_point(tmp_path: Path) -> None:
    handlers_file = stand_ins_for(tmp_path / "stand-ins", PLATFORM)

    pyproject = (tmp_path / "stand-ins" / "pyproject.toml").read_text(encoding="utf-8")
    assert "[build-system]" in pyproject and "[project]" in pyproject
    assert f'[project.entry-points."treeflow.nodes"]\nkinetic_stand_ins = "{PACKAGE}"' in pyproject
    declared = json.loads(handlers_file.read_text(encoding="utf-8"))["handlers"]
    assert declared["kinetic_core_api_v1"]["results"] == {"Response Code": "", "Response Body": ""}


def test_without_stand_ins_the_tree_does_not_validate_and_with_them_it_does(
    tmp_path: Path,
) -> None:
    text = convert(PLATFORM).yaml()
    with Engine(load_entry_points=False) as bare, pytest.raises(TreeError) as caught:
        bare.load_tree(text)
    assert "unknown handler 'kinetic_core_api_v1'" in str(caught.value)

    stand_ins_for(tmp_path / "s", PLATFORM)
    plugins = [load_stand_ins(tmp_path / "s")]
    with Engine(plugins=plugins, load_entry_points=False) as alone, pytest.raises(TreeError) as no:
        alone.load_tree(text)  # the handlers are stood in for, the routine is not beside it
    assert "unknown handler 'routine_kinetic_finish_v1'" in str(no.value)
    routines = [tmp_path / "s" / "routines"]
    with Engine(trees=routines, plugins=plugins, load_entry_points=False) as engine:
        assert engine.load_tree(text).key.name == "Submitted"


def test_dry_run_follows_the_configured_results(tmp_path: Path, database_url: str) -> None:
    handlers_file = stand_ins_for(tmp_path / "s", PLATFORM)
    configure(handlers_file, "kinetic_core_api_v1", Response_Code="200", Response_Body='{"a":1}')
    configure(handlers_file, "kinetic_discussions_api_v1", Message_Id="M-7")

    engine, run_id = dry_run(tmp_path / "s", database_url)
    with engine:
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        retrieved = run.task("Retrieve User").results
        assert retrieved == {"Response Code": "200", "Response Body": '{"a":1}'}
        assert run.task("Echo").results["output"] == "posted M-7"
        assert "Finish" not in {task.name for task in run.tasks}


def test_results_file_in_the_environment_overrides_the_package(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins_for(tmp_path / "s", PLATFORM)
    override = tmp_path / "not-found.json"
    override.write_text(json.dumps({"kinetic_core_api_v1": {"Response Code": "404"}}), "utf-8")
    monkeypatch.setenv("TREEFLOW_STAND_IN_RESULTS", str(override))

    engine, run_id = dry_run(tmp_path / "s", database_url)
    with engine:
        run = engine.get_run(run_id)
        assert run.task("Retrieve User").results["Response Code"] == "404"
        assert run.status is RunStatus.COMPLETED, run.errors  # the stand-in routine returned
        assert run.task("Finish").status is TaskStatus.CLOSED
        assert [child.status for child in run.children] == [RunStatus.COMPLETED]
        assert "Post Message" not in {task.name for task in run.tasks}


def test_a_bad_results_file_is_refused_by_name_when_the_engine_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins_for(tmp_path / "s", PLATFORM)
    override = tmp_path / "bad.json"
    override.write_text('{"kinetic_core_api_v1": {"Response Code": 404}}', encoding="utf-8")
    monkeypatch.setenv("TREEFLOW_STAND_IN_RESULTS", str(override))

    with pytest.raises(HandlerContractError) as caught:
        HandlerRegistry([load_stand_ins(tmp_path / "s")], load_entry_points=False)
    assert str(override) in str(caught.value)
    assert '{"handler_id": {"Result": "text"}}' in str(caught.value)


def test_writing_again_merges_and_keeps_configured_results(tmp_path: Path) -> None:
    handlers_file = stand_ins_for(tmp_path / "s", PLATFORM)
    configure(handlers_file, "kinetic_core_api_v1", Response_Code="200")
    other = convert(PLATFORM).definition
    other["nodes"]["Retrieve User"]["parameters"]["timeout"] = "30"
    write_stand_ins(tmp_path / "s", find_stand_ins([("other.xml", other)], HandlerRegistry()))

    api = json.loads(handlers_file.read_text(encoding="utf-8"))["handlers"]["kinetic_core_api_v1"]
    assert api["parameters"] == ["error_handling", "method", "path", "body", "timeout"]
    assert api["results"] == {"Response Code": "200", "Response Body": ""}
    assert api["used_by"] == ["platform-calls-tree.xml", "other.xml"]


def test_report_counts_translations_and_names_what_is_missing(tmp_path: Path) -> None:
    converted = convert(PLATFORM)
    entry = export_report(converted, registry=HandlerRegistry(), routines=())

    assert (entry.name, entry.kind, entry.nodes) == ("Submitted", "tree", 5)
    assert (entry.parameters.translated, entry.parameters.kept) == (5, 0)
    assert (entry.conditions.translated, entry.conditions.kept) == (2, 0)
    assert entry.missing_handlers == ["kinetic_core_api_v1", "kinetic_discussions_api_v1"]
    assert entry.missing_routines == ["routine_kinetic_finish_v1"]

    write_report(tmp_path / "r.json", [entry])
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["totals"]["exports"] == 1
    assert data["exports"][0]["missing_routines"] == ["routine_kinetic_finish_v1"]


def test_a_report_with_another_suffix_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"one of \.md, \.markdown, \.json, not 'r\.txt'"):
        write_report(tmp_path / "r.txt", [])
    assert not (tmp_path / "r.txt").exists()


def test_cli_writes_stand_ins_and_a_markdown_report_one_export_at_a_time(tmp_path: Path) -> None:
    for export in (PLATFORM, FIXTURES / "untranslatable-tree.xml"):
        result = run_treeflow(
            "import-kinetic", str(export), "-o", f"{export.stem}.yaml", "--stand-ins", "stand-ins",
            "--report", "report.md", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr  # neither validates without stand-ins
        assert "report: report.md" in result.stderr
    declared = json.loads((tmp_path / "stand-ins" / PACKAGE / "handlers.json").read_text("utf-8"))
    assert "kinetic_core_api_v1" in declared["handlers"]  # from the first export, kept

    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Kinetic migration report\n\n2 export(s): 2 converted, 0 validate.")
    assert f"## {PLATFORM}" in report
    assert f"## {FIXTURES / 'untranslatable-tree.xml'}" in report
    assert "- `kinetic_core_api_v1`: 1" in report
    assert "- kept as written:" in report  # the untranslatable tree's Ruby, with its reason

    again = run_treeflow(
        "import-kinetic", str(PLATFORM), "-o", "again.yaml", "--report", "report.md", cwd=tmp_path
    )
    assert again.returncode == 1
    assert (tmp_path / "report.md").read_text(encoding="utf-8").count(f"## {PLATFORM}") == 1


def test_cli_records_an_export_it_cannot_convert_in_the_report(tmp_path: Path) -> None:
    (tmp_path / "broken.xml").write_text("<tree><taskTree>", encoding="utf-8")
    result = run_treeflow("import-kinetic", "broken.xml", "--report", "report.json", cwd=tmp_path)

    assert result.returncode == 1
    entry = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["exports"][0]
    assert (entry["file"], entry["converted"], entry["validates"]) == ("broken.xml", False, False)
    assert entry["problems"] and "line 1" in entry["problems"][0]


def test_installed_stand_ins_make_validate_and_run_pass(tmp_path: Path) -> None:
    (tmp_path / "trees").mkdir()
    imported = run_treeflow(
        "import-kinetic", str(PLATFORM), "-o", "trees/submitted.yaml", "--stand-ins", "stand-ins",
        cwd=tmp_path,
    )  # fmt: skip
    assert imported.returncode == 1  # it does not validate yet: the handlers are unknown
    assert "stand-in routines in stand-ins/routines: routine_kinetic_finish_v1" in imported.stderr
    shutil.copytree(tmp_path / "stand-ins" / "routines", tmp_path / "trees" / "stand-in-routines")
    site = tmp_path / "site"
    package = str(tmp_path / "stand-ins")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
               "--no-build-isolation", "--target", str(site), package]  # fmt: skip
    installed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stderr
    env = {"PYTHONPATH": str(site)}

    validated = run_treeflow("validate", "trees", cwd=tmp_path, env=env)
    assert validated.returncode == 0, validated.stderr
    ran = run_treeflow(
        "run", "Submitted", "--results", START + "</results>", "--database",
        f"sqlite:///{tmp_path / 'dry.db'}", "--trees", "trees", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "Finish" in ran.stdout  # empty stand-in results: the "Not found" branch
    assert "Completed" in ran.stdout  # the stand-in routine returned


def test_the_corpus_measure_reports_each_stage_of_each_export(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus" / "fixtures"
    corpus.mkdir(parents=True)
    for export in (PLATFORM, ONBOARDING, FIXTURES / "untranslatable-tree.xml"):
        shutil.copy(export, corpus)
    script = Path(__file__).resolve().parents[1] / "tools" / "kinetic_corpus.py"
    command = [sys.executable, str(script), str(tmp_path / "corpus"), "--json", "out.json"]
    measured = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )

    assert measured.returncode == 0, measured.stderr
    assert "validates with stand-ins: 2 (67%) of 3" in measured.stdout
    exports = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["exports"]
    rows = {Path(row["file"]).name: row for row in exports}
    platform = rows[PLATFORM.name]
    assert [platform[stage] for stage in ("converts", "validates alone")] == [True, False]
    assert (platform["validates with stand-ins"], platform["runs"]) == (True, "Completed")
    assert rows["untranslatable-tree.xml"]["runs"] == "not run"  # its Ruby does not compile


def test_cli_refuses_a_report_name_it_cannot_write_before_writing_anything(tmp_path: Path) -> None:
    result = run_treeflow(
        "import-kinetic", str(PLATFORM), "-o", "t.yaml", "--report", "r.txt", cwd=tmp_path
    )

    assert result.returncode == 2
    assert "'r.txt' does not end in one of .md, .markdown, .json" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def unversioned_export(tmp_path: Path) -> Path:
    """The platform export with its routine called as Kinetic also allows: without a version."""
    text = PLATFORM.read_text(encoding="utf-8")
    text = text.replace(
        'definition_id="routine_kinetic_finish_v1"', 'definition_id="routine_finish"'
    )
    export = tmp_path / "unversioned.xml"
    export.write_text(text, encoding="utf-8")
    return export


def calling_unversioned(export: Path) -> dict[str, Any]:
    """Its converted definition, with a node after the call reading an output of the routine."""
    definition = convert(export).definition
    definition["nodes"]["Finish"]["connectors"] = [{"to": "Done"}]
    definition["nodes"]["Done"] = {
        "handler": "utilities_echo_v1",
        "parameters": {"input": "finished: {{ results['Finish']['Outcome'] }}"},
    }
    return definition


def test_an_unknown_unversioned_routine_gets_a_stand_in_routine_that_validates_and_runs(
    tmp_path: Path, database_url: str
) -> None:
    definition = calling_unversioned(unversioned_export(tmp_path))
    found = find_stand_ins([("u.xml", definition)], HandlerRegistry())
    assert (sorted(found.routines), found.refused) == (["routine_finish"], {})
    assert "routine_finish" not in found.handlers
    write_stand_ins(tmp_path / "s", found)
    written = yaml.safe_load(routine_file(tmp_path / "s", "routine_finish").read_text("utf-8"))
    assert (written["type"], written["definition_id"]) == ("routine", "routine_finish")
    assert written["inputs"] == [{"name": "Run Id", "required": False}]
    assert written["outputs"] == ["Outcome"]
    assert written["nodes"]["Return"]["parameters"] == {"Outcome": ""}

    text = yaml.safe_dump(definition, sort_keys=False)
    plugins = [load_stand_ins(tmp_path / "s")]
    with Engine(plugins=plugins, load_entry_points=False) as bare, pytest.raises(TreeError) as no:
        bare.load_tree(text)  # without the stand-in routine beside it
    assert "unknown handler 'routine_finish'" in str(no.value)
    configure(tmp_path / "s" / PACKAGE / "handlers.json", "kinetic_core_api_v1", Response_Code="1")
    engine, run_id = dry_run(tmp_path / "s", database_url, text)
    with engine:
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("Finish").results == {"Outcome": ""}
        assert run.task("Done").results["output"] == "finished: "


def test_the_outputs_configured_in_a_stand_in_routine_are_returned_and_kept_on_merge(
    tmp_path: Path, database_url: str
) -> None:
    definition = calling_unversioned(unversioned_export(tmp_path))
    write_stand_ins(tmp_path / "s", find_stand_ins([("u.xml", definition)], HandlerRegistry()))
    path = routine_file(tmp_path / "s", "routine_finish")
    path.write_text(path.read_text("utf-8").replace("Outcome: ''", "Outcome: approved"), "utf-8")
    other = calling_unversioned(unversioned_export(tmp_path))
    other["nodes"]["Finish"]["parameters"]["Reason"] = "none"
    write_stand_ins(tmp_path / "s", find_stand_ins([("o.xml", other)], HandlerRegistry()))

    merged = yaml.safe_load(path.read_text("utf-8"))
    assert [i["name"] for i in merged["inputs"]] == ["Run Id", "Reason"]
    assert merged["nodes"]["Return"]["parameters"] == {"Outcome": "approved"}
    assert "u.xml, o.xml" in merged["description"]
    engine, run_id = dry_run(tmp_path / "s", database_url, yaml.safe_dump(other, sort_keys=False))
    with engine:
        run = engine.get_run(run_id)
        assert run.status is RunStatus.COMPLETED, run.errors
        assert run.task("Done").results["output"] == "finished: approved"


def test_cli_writes_a_stand_in_routine_and_the_tree_validates_beside_it(tmp_path: Path) -> None:
    export = unversioned_export(tmp_path)
    (tmp_path / "trees").mkdir()
    imported = run_treeflow(
        "import-kinetic", str(export), "-o", "trees/u.yaml", "--stand-ins", "stand-ins",
        cwd=tmp_path,
    )  # fmt: skip
    assert "stand-in routines in stand-ins/routines: routine_finish" in imported.stderr
    assert "no stand-in for 'routine_finish'" not in imported.stderr
    assert routine_file(tmp_path / "stand-ins", "routine_finish").exists()
    declared = json.loads((tmp_path / "stand-ins" / PACKAGE / "handlers.json").read_text("utf-8"))
    assert "routine_finish" not in declared["handlers"]

    shutil.copytree(tmp_path / "stand-ins" / "routines", tmp_path / "trees" / "stand-ins")
    again = run_treeflow(
        "import-kinetic", str(export), "-o", "trees/u.yaml", "--force", "--stand-ins",
        "stand-ins", cwd=tmp_path,
    )  # fmt: skip
    # A stand-in copied beside the trees is no real routine: still listed as one to stand in for.
    assert "stand-in routines in stand-ins/routines: routine_finish" in again.stderr
