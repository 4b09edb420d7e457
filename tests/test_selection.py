"""Selection labels: engines dedicated to some trees claim only those trees' triggers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine import Engine, RunStatus, TreeError
from engine.errors import BadSelection

from .support import small_tree

REPORTS = small_tree(
    "Reports",
    {
        "Start": {"handler": "system_start_v1", "connectors": [{"to": "Ask"}, {"to": "Pause"}]},
        "Ask": {"handler": "utilities_defer_v1", "defers": True, "connectors": [{"to": "Done"}]},
        "Pause": {
            "handler": "system_wait_v1",
            "defers": True,
            "parameters": {"Time to wait": "0", "Time unit": "Second"},
        },
        "Done": {"handler": "utilities_echo_v1", "parameters": {"input": "done"}},
    },
) | {"selection": "reports"}
PLAIN = small_tree("Plain", {"Start": {"handler": "system_start_v1"}})
LABELLED_DEFAULT = small_tree("Also Plain", {"Start": {"handler": "system_start_v1"}}) | {
    "selection": "default"
}


def _start(engine: Engine, name: str) -> int:
    return engine.create_start(source_name="Tests", source_group="Semantics", tree_name=name).run_id


def _closed_by(engine: Engine) -> dict[int, set[str]]:
    """Run id -> the names of the engines that closed its triggers."""
    with engine.database.read() as connection:
        rows = connection.execute(
            sa.text("SELECT run_id, engine FROM triggers WHERE status = 'Closed'")
        ).all()
    found: dict[int, set[str]] = {}
    for run_id, name in rows:
        found.setdefault(run_id, set()).add(name)
    return found


def _engine(url: str, **options: object) -> Engine:
    engine = Engine(url, **options)  # type: ignore[arg-type]
    for tree in (REPORTS, PLAIN, LABELLED_DEFAULT):
        engine.load_tree(tree)
    return engine


def test_engines_with_disjoint_selections_each_process_only_their_own_trees(
    database_url: str,
) -> None:
    with (
        _engine(database_url) as submitter,
        _engine(database_url, selection=["reports"]) as reports,
        _engine(database_url, selection=["default"]) as others,
    ):
        labelled = [_start(submitter, "Reports") for _ in range(3)]
        plain = [_start(submitter, "Plain"), _start(submitter, "Also Plain")]

        assert reports.run_until_idle() == 3 + 3  # the Roots, then the due timers
        assert {reports.get_run(r).status for r in plain} == {RunStatus.STAGED}
        for run_id in labelled:
            run = reports.get_run(run_id)
            assert run.task("Pause").status.value == "Closed"
            submitter.create_deferred(token=run.open_tokens["Ask"], action="Complete")

        assert others.run_until_idle() == 2  # the plain Roots; never the reports' Completes
        assert reports.run_until_idle() == 3
        closed_by = _closed_by(submitter)
        assert {run_id: closed_by[run_id] for run_id in labelled} == {
            run_id: {reports.name} for run_id in labelled
        }
        assert {run_id: closed_by[run_id] for run_id in plain} == {
            run_id: {others.name} for run_id in plain
        }
        assert {submitter.get_run(r).status for r in labelled + plain} == {RunStatus.COMPLETED}
        with submitter.database.read() as connection:
            labels = connection.execute(
                sa.text(
                    "SELECT action, selection, count(*) FROM triggers GROUP BY action, selection"
                )
            ).all()
        assert sorted(labels) == [
            ("Complete", "reports", 6),
            ("Root", "", 2),
            ("Root", "reports", 3),
        ]


def test_an_engine_without_selection_processes_every_tree(database_url: str) -> None:
    with _engine(database_url) as engine:
        run_ids = [_start(engine, "Reports"), _start(engine, "Plain")]
        engine.run_until_idle()
        assert engine.get_run(run_ids[0]).status is RunStatus.STARTED  # waits for Ask
        assert engine.get_run(run_ids[1]).status is RunStatus.COMPLETED


def test_a_changed_label_is_a_new_version_and_runs_keep_theirs(database_url: str) -> None:
    with _engine(database_url, selection=["reports"]) as engine:
        old = _start(engine, "Plain")
        engine.load_tree(PLAIN | {"selection": "reports"})
        new = _start(engine, "Plain")
        engine.run_until_idle()
        assert engine.get_run(old).status is RunStatus.STAGED
        assert engine.get_run(new).status is RunStatus.COMPLETED
        assert engine.get_run(new).tree_version == 2


@pytest.mark.parametrize("label", ["Reports", "", "two words", "-x", "x" * 65, 7])
def test_a_bad_label_in_a_tree_is_reported_with_its_key(label: object) -> None:
    with pytest.raises(TreeError) as raised:
        Engine().load_tree(PLAIN | {"selection": label})
    assert "selection" in str(raised.value)
    assert repr(label) in str(raised.value)


@pytest.mark.parametrize("label", ["Reports", "", "a b"])
def test_a_bad_label_for_an_engine_is_refused(label: str) -> None:
    with pytest.raises(BadSelection, match="selection label"):
        Engine(selection=[label])
