"""The console's Trees pages over a real server (SQLite): the list with versions, runs by
status and in-flight runs on older versions, paging and filters, a version's picture, and
administrators only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine import Engine

from .console_pages import console_server, page, signed_in, text_of
from .live_server import Live
from .support import APPROVED, REGISTRATION, small_tree, start, start_small
from .test_console_reads import review

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def live(engine: Engine) -> Iterator[Live]:
    with console_server(engine, root="admin", ada="user") as server:
        yield server


def test_the_list_shows_each_tree_with_its_runs_by_status(live: Live) -> None:
    engine = live.engine
    start(engine, source_id="waiting")
    done = start(engine, source_id="done")
    token = next(t.token for t in engine.get_run(done).tasks if t.token)
    engine.create_deferred(token=token or "", results=APPROVED)
    engine.run_until_idle()
    with signed_in(live, "root") as root:
        document = page(root, "/trees")
    rows = document.xpath("//table[@id='trees']/tbody/tr")
    assert len(rows) == len(engine.trees)
    [row] = [r for r in rows if r.xpath(".//td[1]//a/text()") == [REGISTRATION["tree_name"]]]
    assert text_of(row, ".//td[@data-label='Runs']//a") == ["Started 1", "Completed 1"]
    [started] = row.xpath(".//td[@data-label='Runs']//a[1]/@href")
    assert started == "/console/runs?tree=Process+Registration&status=Started"
    assert text_of(row, ".//td[@data-label='Version']") == ["v1"]
    assert text_of(row, ".//td[@data-label='Status']") == ["Active"]


def test_the_list_pages_and_filters(live: Live) -> None:
    engine = live.engine
    for n in range(55):
        engine.load_tree(small_tree(f"Tree {n:02d}", {"Start": {"handler": "system_start_v1"}}))
    total = len(engine.trees)
    with signed_in(live, "root") as root:
        first = page(root, "/trees")
        second = page(root, "/trees?offset=50")
        assert len(first.xpath("//table[@id='trees']/tbody/tr")) == 50
        assert len(second.xpath("//table[@id='trees']/tbody/tr")) == total - 50
        assert text_of(first, "//nav[@class='pager']/span") == [f"1\u201350 of {total}"]
        assert first.xpath("//nav[@class='pager']/a[@rel='next']/@href") == ["?offset=50"]
        found = page(root, "/trees?name=tree+07")
        assert text_of(found, "//table[@id='trees']/tbody/tr/td[1]") == ["Tree 07"]
        nothing = page(root, "/trees?status=Inactive")
        assert text_of(nothing, "//div[@class='empty']/p[1]") == ["No tree matches these filters."]
        refused = page(root, "/trees?offset=-1", status=400)
        assert "offset" in refused.text_content()
        page(root, "/trees?status=Sleeping", status=400)


@pytest.mark.graphviz
def test_a_version_shows_its_picture_versions_and_runs_on_older_versions(live: Live) -> None:
    engine = live.engine
    engine.load_tree(review("First"))
    old_run = start_small(engine, "Review")
    engine.load_tree(review("Second"))
    start_small(engine, "Review")
    with signed_in(live, "root") as root:
        listing = page(root, "/trees?name=review")
        assert text_of(listing, "//p[@id='stale-total']")[0].startswith("1 run in flight")
        [row] = listing.xpath("//table[@id='trees']/tbody/tr")
        assert text_of(row, ".//td[@data-label='On older versions']") == ["1"]
        [href] = row.xpath(".//td[1]//a/@href")
        latest = page(root, href.removeprefix("/console"))
        assert text_of(latest, "//h1") == ["Review v2"]
        [svg] = latest.xpath("//figure[@id='picture']/*[local-name()='svg']")
        assert "Second" in svg.text_content() and "First" not in svg.text_content()
        assert text_of(latest, "//table[@id='versions']/tbody/tr/td[1]") == ["v2 latest", "v1"]
        assert text_of(latest, "//table[@id='stale-runs']/tbody/tr/td[1]") == [f"#{old_run}"]
        assert text_of(latest, "//table[@id='stale-runs']//td[@data-label='On version']") == [
            "v1 (latest v2)"
        ]
        [older] = latest.xpath("//table[@id='versions']//a/@href")
        first = page(root, older.removeprefix("/console"))
        [svg] = first.xpath("//figure[@id='picture']/*[local-name()='svg']")
        assert "First" in svg.text_content()
        picture = root.get(f"{href}/picture.svg")
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/svg+xml"
        assert b"Second" in picture.content
        page(root, "/trees/versions/9999", status=404)


def test_trees_are_for_administrators(live: Live) -> None:
    with signed_in(live, "ada") as ada:
        for path in ("/trees", "/trees/versions/1", "/trees/versions/1/picture.svg"):
            refused = page(ada, path, status=403)
            assert "administrators" in refused.text_content()
    with signed_in(live, "root") as root:
        assert page(root, "/trees").xpath("//h1/text()") == ["Trees"]


def test_signed_out_the_list_sends_to_the_sign_in_page(live: Live) -> None:
    with live.client() as anonymous:
        response = anonymous.get("/console/trees")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Ftrees"
