"""The web console over a real server, on SQLite and PostgreSQL: its HTML parsed with lxml.

Sign-in (the session cookie's flags, its expiry and its revocation by the security stamp),
CSRF refusals, the security headers, who sees which run, the lists' filters, paging and empty
states, and each action's effect in the database. The server runs no workers: each test
processes the triggers it made with ``run_until_idle``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import anyio
import httpx
import lxml.html
import pytest

from engine.server import ServerSettings, create_app
from engine.statuses import RunStatus, TaskStatus

from .live_server import (
    CHEAP_PASSWORDS,
    DATABASES,
    FORM,
    PASSWORD,
    Live,
    live_server,
    module_engine,
)
from .support import ExplodePlugin, approval_tree, small_tree

START_URL = "/kineticTask/rest/v1/Trigger/createStart"
APPROVAL = {"source_name": "Tests", "source_group": "Semantics", "tree_name": "Approval"}
EXPLODE = {"source_name": "Tests", "source_group": "Console", "tree_name": "Explode"}
NAME = '<results><result name="Name">Ada</result></results>'
SESSION_SECONDS = 600


@pytest.fixture(scope="module", params=DATABASES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    with module_engine(request, tmp_path_factory, plugins=[ExplodePlugin()]) as engine:
        engine.load_tree(approval_tree())
        engine.load_tree(
            small_tree(
                "Explode",
                {
                    "Start": {"handler": "system_start_v1", "connectors": [{"to": "Send"}]},
                    "Send": {"handler": "tests_explode_v1", "parameters": {"to": "x"}},
                },
            )
            | {"source": EXPLODE["source_name"], "group": EXPLODE["source_group"]}
        )
        settings = ServerSettings(workers=0, session_seconds=SESSION_SECONDS)
        with live_server(engine, settings) as server:
            server.add_user("root", "admin")
            server.add_user("ada", "user")
            server.add_user("bob", "user")
            yield server


def page(response: httpx.Response) -> lxml.html.HtmlElement:
    assert response.headers["content-type"].startswith("text/html"), response.text
    return lxml.html.fromstring(response.text)


def csrf_of(response: httpx.Response) -> str:
    tokens = page(response).xpath("//input[@name='csrf_token']/@value")
    assert tokens and tokens[0], response.text
    return str(tokens[0])


@contextmanager
def sign_in(live: Live, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with live.client() as client:
        form = client.get("/console/sign-in")
        response = client.post(
            "/console/sign-in",
            data={"username": name, "password": password, "csrf_token": csrf_of(form)},
        )
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
def root(live: Live) -> Iterator[httpx.Client]:
    with sign_in(live, "root") as client:
        yield client


@pytest.fixture
def ada(live: Live) -> Iterator[httpx.Client]:
    with sign_in(live, "ada") as client:
        yield client


def start_as(live: Live, user: str, tree: dict[str, str], **form: str) -> int:
    source_id = form.pop("source_id", f"c-{secrets.token_hex(4)}")
    with live.client(live.token(user)) as api:
        response = api.post(START_URL, data={**tree, "source_id": source_id, **form})
    assert response.status_code == 200, response.text
    live.engine.run_until_idle()
    return live.engine.get_trigger(int(response.headers["X-ID"])).run_id


def post_confirmed(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """POST ``fields`` to ``path`` with the CSRF token of the page the client last had."""
    token = csrf_of(client.get("/console/runs"))
    return client.post(path, data={**fields, "csrf_token": token})


def post_form(client: httpx.Client, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    """A form with repeated fields (the bulk resolve's ticked errors)."""
    return client.post(path, content=urlencode(pairs), headers={"Content-Type": FORM})


# -- sign-in, sessions, headers -------------------------------------------------------------------


def test_pages_redirect_to_sign_in_and_back(live: Live) -> None:
    with live.client() as client:
        response = client.get("/console/runs?status=Completed")
        assert response.status_code == 303
        assert (
            response.headers["location"]
            == "/console/sign-in?next=%2Fconsole%2Fruns%3Fstatus%3DCompleted"
        )
        form = client.get(response.headers["location"])
        assert page(form).xpath("//input[@name='next']/@value") == [
            "/console/runs?status=Completed"
        ]
        signed_in = client.post(
            "/console/sign-in",
            data={
                "username": "ROOT",  # names are found ignoring case, as POST /token finds them
                "password": PASSWORD,
                "next": "/console/runs?status=Completed",
                "csrf_token": csrf_of(form),
            },
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/console/runs?status=Completed"


def test_session_cookie_flags(live: Live) -> None:
    with live.client() as client:
        form = client.get("/console/sign-in")
        response = client.post(
            "/console/sign-in",
            data={"username": "ada", "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
    cookie = next(v for v in response.headers.get_list("set-cookie") if "treeflow_session=" in v)
    parts = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= parts
    assert "samesite=lax" in cookie.lower()
    assert "Path=/console" in cookie
    assert f"Max-Age={SESSION_SECONDS}" in cookie
    assert "secure" not in parts  # plain HTTP here; over TLS it is Secure


def test_sign_in_over_tls_sets_a_secure_cookie(live: Live) -> None:
    """Behind a trusted TLS-terminating proxy (X-Forwarded-Proto: https) the cookie is Secure."""
    proxied = ServerSettings(workers=0, forwarded_allow_ips=("127.0.0.1",))
    with live_server(live.engine, proxied) as server, server.client() as client:
        client.headers["X-Forwarded-Proto"] = "https"
        form = client.get("/console/sign-in")
        pre_session = form.cookies["treeflow_console_csrf"]  # Secure: httpx keeps it off http
        assert "secure" in form.headers["set-cookie"].lower()
        response = client.post(
            "/console/sign-in",
            data={"username": "ada", "password": PASSWORD, "csrf_token": csrf_of(form)},
            headers={"Cookie": f"treeflow_console_csrf={pre_session}"},
        )
    cookies = response.headers.get_list("set-cookie")
    cookie = next(v for v in cookies if "treeflow_session=" in v)
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_wrong_password_is_refused_with_the_form_again(live: Live) -> None:
    with live.client() as client:
        form = client.get("/console/sign-in")
        response = client.post(
            "/console/sign-in",
            data={"username": "ada", "password": "not the password", "csrf_token": csrf_of(form)},
        )
        assert response.status_code == 401
        assert "Wrong user name or password." in page(response).text_content()
        assert "treeflow_session" not in response.headers.get("set-cookie", "")
        assert client.get("/console/runs").status_code == 303


def test_security_headers_allow_no_inline_code(live: Live, root: httpx.Client) -> None:
    response = root.get("/console/runs")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    html = page(response)
    assert html.xpath("//script[not(@src)]") == []
    assert html.xpath("//style") == [] and html.xpath("//*[@style]") == []
    for src in html.xpath("//script/@src | //link[@rel='stylesheet']/@href"):
        assert src.startswith("/console/static/")
        assert root.get(src).status_code == 200
    assert html.xpath("//nav[@aria-label='Console']//a/text()") == [
        "Runs",
        "Errors",
        "Deferred",
        "Trees",
        "Schedules",
        "Instances",
        "Health",
    ]


def test_expired_session_goes_back_to_sign_in(live: Live) -> None:
    with sign_in(live, "bob") as client:
        assert client.get("/console/runs").status_code == 200
        live.clock.advance(SESSION_SECONDS + 1)
        try:
            response = client.get("/console/runs")
        finally:
            live.clock.advance(-(SESSION_SECONDS + 1))
        assert response.status_code == 303
        assert "ended=1" in response.headers["location"]


def test_rotating_the_security_stamp_ends_sessions(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    with sign_in(live, "bob") as client:
        assert client.get("/console/runs").status_code == 200
        live.accounts.rotate("bob")
        caplog.set_level(logging.WARNING, "treeflow.security")
        response = client.get("/console/runs")
        assert response.status_code == 303
        logged = [r.getMessage() for r in caplog.records if r.name == "treeflow.security"]
        assert "bearer token refused from 127.0.0.1: token of user 'bob' was revoked" in logged
        revoked = client.get(response.headers["location"])
        assert "ended or was revoked" in page(revoked).text_content()


def test_htmx_requests_without_a_session_get_hx_redirect(live: Live) -> None:
    with live.client() as client:
        response = client.get("/console/runs", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/console/sign-in")


# -- CSRF ----------------------------------------------------------------------------------------


def test_a_forged_post_is_refused_and_changes_nothing(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", APPROVAL, results=NAME)
    for token in ("", "0" * 64):
        fields = {"confirmed": "yes"} | ({"csrf_token": token} if token else {})
        response = root.post(f"/console/runs/{run_id}/cancel", data=fields)
        assert response.status_code == 403
        assert "The form was refused" in page(response).text_content()
    live.engine.run_until_idle()
    assert live.engine.get_run(run_id).status is RunStatus.STARTED


def test_another_sessions_token_does_not_pass(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", APPROVAL, results=NAME)
    with sign_in(live, "root") as other:
        foreign = csrf_of(other.get("/console/runs"))
    response = root.post(
        f"/console/runs/{run_id}/cancel", data={"confirmed": "yes", "csrf_token": foreign}
    )
    assert response.status_code == 403
    assert live.engine.get_run(run_id).status is RunStatus.STARTED


# -- who sees what -------------------------------------------------------------------------------


def test_a_plain_user_sees_only_its_own_runs(live: Live, ada: httpx.Client) -> None:
    own = start_as(live, "ada", APPROVAL, results=NAME)
    other = start_as(live, "root", APPROVAL, results=NAME)
    runs_page = page(ada.get("/console/runs"))
    listed = runs_page.xpath("//table[@id='runs']//tr/@data-run")
    assert str(own) in listed and str(other) not in listed
    # The navigation offers only the pages a plain user may open.
    assert runs_page.xpath("//nav[@aria-label='Console']//a/text()") == [
        "Runs",
        "Deferred",
        "Instances",
    ]
    assert ada.get(f"/console/runs/{own}").status_code == 200
    response = ada.get(f"/console/runs/{other}")
    assert response.status_code == 404
    assert f"Unable to locate a run with the id {other}" in page(response).text_content()
    assert ada.get(f"/console/runs/{own}/cancel").status_code == 403  # actions: admins only
    assert ada.get("/console/errors").status_code == 403


def test_admin_filters_runs_by_creator_status_and_source_id(live: Live, root: httpx.Client) -> None:
    source_id = f"f-{secrets.token_hex(4)}"
    by_ada = start_as(live, "ada", APPROVAL, results=NAME, source_id=source_id)
    by_root = start_as(live, "root", APPROVAL, results=NAME, source_id=source_id)

    def listed(query: str) -> list[str]:
        response = root.get(f"/console/runs?source_id={source_id}{query}")
        assert response.status_code == 200, response.text
        return [str(r) for r in page(response).xpath("//table[@id='runs']//tr/@data-run")]

    assert listed("") == [str(by_root), str(by_ada)]
    assert listed("&creator=ada") == [str(by_ada)]
    assert listed("&status=Completed") == []
    assert listed("&tree=Approval&status=Started") == [str(by_root), str(by_ada)]
    counts = page(root.get(f"/console/runs?source_id={source_id}"))
    started = counts.xpath("//ul[@class='counts']//span[@data-status='Started']//span/text()")
    assert started == ["2"]
    empty = page(root.get(f"/console/runs?source_id={source_id}&status=Completed"))
    assert "No run matches these filters." in empty.text_content()
    assert root.get("/console/runs?status=Sleeping").status_code == 400
    assert root.get("/console/runs?from=yesterday").status_code == 400
    assert root.get("/console/runs?creator=nobody-at-all").status_code == 400


def test_runs_are_paged(live: Live, root: httpx.Client) -> None:
    source_id = f"p-{secrets.token_hex(4)}"
    with live.client(live.token("root")) as api:
        for _ in range(51):
            api.post(START_URL, data={**APPROVAL, "source_id": source_id, "results": NAME})
    first = page(root.get(f"/console/runs?source_id={source_id}"))
    assert len(first.xpath("//table[@id='runs']//tbody/tr")) == 50
    older = first.xpath("//a[@rel='next']/@href")[0]
    second = page(root.get(older))
    assert len(second.xpath("//table[@id='runs']//tbody/tr")) == 1
    assert second.xpath("//a[@rel='prev']") and not second.xpath("//a[@rel='next']")
    live.engine.run_until_idle()


def test_htmx_refresh_returns_the_live_part_only(live: Live, root: httpx.Client) -> None:
    response = root.get("/console/runs", headers={"HX-Request": "true"})
    html = page(response)
    assert html.get("id") == "runs-live"
    assert html.get("hx-trigger") == "every 5s"


# -- the run page and its actions ----------------------------------------------------------------


def test_run_page_shows_picture_tasks_and_the_deferral_form(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", APPROVAL, results=NAME)
    html = page(root.get(f"/console/runs/{run_id}"))
    assert html.xpath("//h1/span[@id='run-status']/text()") == ["Started"]
    names = html.xpath("//table[@id='tasks']//tr/td[1]/text()")
    assert [n.strip() for n in names] == ["Start", "Approve"]
    svg = html.xpath("//div[@id='picture']/svg")
    if svg:  # drawn when Graphviz is installed: each node links to its task's row
        links = html.xpath("//div[@id='picture']//a/@*[name()='xlink:href']")
        task_rows = {f"#{row}" for row in html.xpath("//table[@id='tasks']//tr/@id")}
        assert links and set(links) <= task_rows
    assert html.xpath("//form[@class='deferral']")
    assert html.xpath("//ol[@id='triggers']/li/strong/text()")[0] == "Root"


def test_completing_a_deferral_is_confirmed_then_done(live: Live, ada: httpx.Client) -> None:
    run_id = start_as(live, "ada", APPROVAL, results=NAME)
    task = live.engine.get_run(run_id).task("Approve")
    path = f"/console/runs/{run_id}/deferrals/{task.id}"
    confirm = post_confirmed(ada, path, action="Complete", name_0="Status", value_0="Approved")
    assert confirm.status_code == 200
    assert "Complete Approve of run" in page(confirm).text_content()
    live.engine.run_until_idle()
    assert live.engine.get_run(run_id).task("Approve").status is TaskStatus.DEFERRED
    hidden = {
        i.get("name"): i.get("value") for i in page(confirm).xpath("//form//input[@type='hidden']")
    }
    done = ada.post(path, data=hidden)
    assert done.status_code == 303
    live.engine.run_until_idle()
    run = live.engine.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.task("Approve").results["Status"] == "Approved"
    assert run.task("Notify").results["output"] == "Ada: Approved"


def test_results_xml_that_does_not_parse_is_refused_before_the_confirmation(
    live: Live, ada: httpx.Client
) -> None:
    run_id = start_as(live, "ada", APPROVAL, results=NAME)
    task = live.engine.get_run(run_id).task("Approve")
    path = f"/console/runs/{run_id}/deferrals/{task.id}"

    refused = post_confirmed(ada, path, action="Complete", results_xml="<results><result")

    assert refused.status_code == 400  # not a page asking to confirm what cannot be sent
    assert "results" in page(refused).xpath("//main//p/text()")[0]
    live.engine.run_until_idle()
    assert live.engine.get_run(run_id).task("Approve").status is TaskStatus.DEFERRED


def test_cancel_records_who(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", APPROVAL, results=NAME)
    confirm = root.get(f"/console/runs/{run_id}/cancel")
    assert "Cancel run" in page(confirm).text_content()
    response = root.post(
        f"/console/runs/{run_id}/cancel",
        data={"confirmed": "yes", "reason": "duplicate", "csrf_token": csrf_of(confirm)},
    )
    assert response.status_code == 303
    live.engine.run_until_idle()
    assert live.engine.get_run(run_id).status is RunStatus.CANCELLED
    _, triggers = live.engine.list_triggers(run_id=run_id)
    cancel = next(t for t in triggers if t.action.value == "Cancel")
    assert (cancel.requested_by, cancel.message) == ("root", "duplicate")


def test_run_again_with_an_edited_input(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", APPROVAL, results=NAME)
    form = root.get(f"/console/runs/{run_id}/run-again")
    assert page(form).xpath("//input[@name='input_Name']/@value") == ["Ada"]
    response = root.post(
        f"/console/runs/{run_id}/run-again",
        data={
            "input_Name": "Grace",
            "version": "same",
            "confirmed": "yes",
            "csrf_token": csrf_of(form),
        },
    )
    assert response.status_code == 303
    new_run = int(re.search(r"/runs/(\d+)", response.headers["location"]).group(1))  # type: ignore[union-attr]
    live.engine.run_until_idle()
    again = live.engine.get_run(new_run)
    assert (again.again_of, dict(again.inputs)) == (run_id, {"Name": "Grace"})
    assert live.engine.run_creator(new_run) == live.accounts.users.by_key("root").id  # type: ignore[union-attr]


# -- errors and deferred inboxes -----------------------------------------------------------------


def test_errors_inbox_resolves_one_and_many(live: Live, root: httpx.Client) -> None:
    source_id = f"e-{secrets.token_hex(4)}"
    runs = [start_as(live, "root", EXPLODE, source_id=source_id) for _ in range(3)]
    errors = {run: live.engine.get_run(run).errors[0] for run in runs}
    inbox = page(root.get(f"/console/errors?run={runs[0]}"))
    assert inbox.xpath("//table[@id='errors']//tr/@data-error") == [errors[runs[0]].id]
    confirm = root.get(f"/console/errors/{errors[runs[0]].id}/resolve?next=/console/errors")
    actions = page(confirm).xpath("//input[@name='action']/@value")
    assert "Skip Task" in actions and "Retry Task" in actions
    done = root.post(
        f"/console/errors/{errors[runs[0]].id}/resolve",
        data={"action": "Skip Task", "message": "by hand", "csrf_token": csrf_of(confirm)},
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=resolve")
    token = csrf_of(confirm)
    bulk = [("error", errors[runs[1]].id), ("error", errors[runs[2]].id)]
    fields = [*bulk, ("action", "Skip Task"), ("message", ""), ("csrf_token", token)]
    asked = post_form(root, "/console/errors/resolve", fields)
    assert "Resolve 2 errors with Skip Task?" in page(asked).text_content()
    applied = post_form(root, "/console/errors/resolve", [*fields, ("confirmed", "yes")])
    assert "2 resolutions accepted" in page(applied).text_content()
    live.engine.run_until_idle()
    for run in runs:
        resolved = live.engine.get_run(run).errors[0]
        assert (resolved.status, resolved.resolved_by) == ("Handled", "root")
        assert live.engine.get_run(run).status is RunStatus.COMPLETED
    again = post_form(root, "/console/errors/resolve", [*fields, ("confirmed", "yes")])
    assert len(page(again).xpath("//ul[@id='refused']/li")) == 2
    none_left = page(root.get(f"/console/errors?run={runs[1]}"))
    assert "No active errors match these filters." in " ".join(none_left.text_content().split())


def test_deferred_inbox_shows_the_users_tasks(live: Live, ada: httpx.Client) -> None:
    own = start_as(live, "ada", APPROVAL, results=NAME)
    other = start_as(live, "root", APPROVAL, results=NAME)
    html = page(ada.get("/console/deferred?tree=Approval"))
    shown = html.xpath("//section[@class='waiting']/@data-task")
    assert live.engine.get_run(own).task("Approve").id in shown
    assert live.engine.get_run(other).task("Approve").id not in shown
    assert html.xpath("//form[@class='deferral']//input[@name='name_0']")
    empty = page(ada.get("/console/deferred?tree=Explode"))
    assert "Nothing waits for a person in Explode." in empty.text_content()


def test_signing_out_revokes_the_session(live: Live) -> None:
    with sign_in(live, "bob") as client:
        stolen = client.cookies["treeflow_session"]
        signed_out = client.post(
            "/console/sign-out", data={"csrf_token": csrf_of(client.get("/console/runs"))}
        )
        assert signed_out.status_code == 303
    with live.client() as thief:
        thief.cookies.set("treeflow_session", stolen, path="/console")
        assert (
            thief.get("/console/runs").status_code == 303
        )  # the token is gone, not just the cookie


def test_signing_in_again_ends_the_session_it_replaces(live: Live) -> None:
    with sign_in(live, "bob") as client:
        replaced = client.cookies["treeflow_session"]
        form = client.get("/console/sign-in")
        again = client.post(
            "/console/sign-in",
            data={"username": "ada", "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert again.status_code == 303
        assert client.cookies["treeflow_session"] != replaced
    with live.client() as other:
        other.cookies.set("treeflow_session", replaced, path="/console")
        assert other.get("/console/runs").status_code == 303  # no cookie left holds bob's


def test_run_page_shows_the_source_data(live: Live, root: httpx.Client) -> None:
    with live.client(live.token("root")) as api:
        response = api.post(
            "/app/api/v1/run-tree/Tests/Semantics/Approval", json={"Colour": "blue"}
        )
    assert response.status_code == 200, response.text
    run_id = response.json()["run"]["id"]
    live.engine.run_until_idle()
    html = page(root.get(f"/console/runs/{run_id}"))
    headings = html.xpath("//h2/text()")
    assert "Source data" in headings
    shown = html.xpath("//h2[text()='Source data']/following-sibling::pre[1]/text()")[0]
    assert '"Colour": "blue"' in shown


def test_an_unexpected_error_is_a_page_with_a_reference(live: Live) -> None:
    """A bug in a page is a 500 page naming a reference in the log, with the console's
    headers, and the exception goes no further (the API's app would drop the connection)."""
    app = create_app(live.engine, ServerSettings(workers=0), passwords=CHEAP_PASSWORDS)
    console = next(route.app for route in app.routes if getattr(route, "path", "") == "/console")

    def broken() -> None:
        raise RuntimeError("a bug in a page")

    console.add_api_route("/broken", broken)

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raises what the app lets escape
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return await client.get("/console/broken")

    response = anyio.run(fetch)
    assert response.status_code == 500
    text = page(response).text_content()
    assert "Unexpected server error (reference " in text and "a bug" not in text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_console_path_is_a_setting_and_can_be_off(live: Live) -> None:
    elsewhere = ServerSettings(workers=0, console_path="/ops/console")
    with live_server(live.engine, elsewhere) as server, server.client() as client:
        form = client.get("/ops/console/sign-in")
        assert form.status_code == 200
        assert page(form).xpath("//form/@action") == ["/ops/console/sign-in"]
        assert client.get("/console/sign-in").status_code == 404
        assert (
            client.get("/ops/console/runs").headers["location"].startswith("/ops/console/sign-in?")
        )
    without = ServerSettings(workers=0, console_path=None)
    with live_server(live.engine, without) as server, server.client() as client:
        assert client.get("/console/sign-in").status_code == 404
    for wrong in ("console", "/console/", "//console"):
        with pytest.raises(ValueError, match="console_path must start with /"):
            ServerSettings(console_path=wrong)


def test_malformed_addresses_are_pages_too(root: httpx.Client) -> None:
    for path in (
        "/console/runs/abc",
        "/console/runs/0",
        "/console/errors/" + "x" * 65 + "/resolve",
    ):
        response = root.get(path)
        assert response.status_code == 404
        assert page(response).xpath("//h1/text()") == ["Not found"]
    response = root.get("/console/runs?offset=-1")
    assert response.status_code == 400
    assert "offset" in page(response).text_content()
    assert root.get("/console/static/../sessions.py").status_code == 404


def test_sign_in_is_throttled_like_post_token(live: Live) -> None:
    live.add_user("carol", "user")
    with live.client() as client:
        token = csrf_of(client.get("/console/sign-in"))
        wrong = {"username": "carol", "password": "not the password", "csrf_token": token}
        statuses = [client.post("/console/sign-in", data=wrong).status_code for _ in range(5)]
        right = {**wrong, "password": PASSWORD}
        throttled = client.post("/console/sign-in", data=right)
    assert statuses == [401] * 5
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins for" in page(throttled).text_content()
    assert live.accounts.failed_sign_ins("carol") == 5  # the same counts as POST /token's


def test_an_error_resolved_from_its_run_page_goes_back_there(
    live: Live, root: httpx.Client
) -> None:
    run_id = start_as(live, "root", EXPLODE)
    run_page = page(root.get(f"/console/runs/{run_id}"))
    link = run_page.xpath("//table[@id='errors']//a[text()='Resolve…']/@href")[0]
    confirm = root.get(link)
    error_id = live.engine.get_run(run_id).errors[0].id
    done = root.post(
        f"/console/errors/{error_id}/resolve",
        data={
            "action": "Retry Task",
            "next": page(confirm).xpath("//input[@name='next']/@value")[0],
            "csrf_token": csrf_of(confirm),
        },
    )
    assert done.headers["location"] == f"/console/runs/{run_id}?done=resolve"
    shown = page(root.get(done.headers["location"])).text_content()
    assert "The resolution was accepted; a worker applies it." in shown
    live.engine.run_until_idle()
    error = live.engine.get_error(error_id)
    assert (error.resolution_action, error.resolved_by) == ("Retry Task", "root")


def test_an_error_is_resolved_in_place_by_htmx(live: Live, root: httpx.Client) -> None:
    run_id = start_as(live, "root", EXPLODE)
    error_id = live.engine.get_run(run_id).errors[0].id
    htmx = {"HX-Request": "true"}
    inbox = root.get(f"/console/errors?run={run_id}")
    link = page(inbox).xpath(f"//tr[@data-error='{error_id}']//a[text()='Resolve…']")[0]
    assert link.get("hx-get") == link.get("href")  # the same confirmation, in the row
    row = page(root.get(link.get("href"), headers=htmx))
    assert (row.tag, row.get("class")) == ("tr", "resolving")
    form = {"action": "Skip Task", "message": "in place", "next": "/console/errors"}
    headers = {**htmx, "X-CSRF-Token": csrf_of(inbox)}
    resolved = root.post(f"/console/errors/{error_id}/resolve", data=form, headers=headers)
    assert resolved.status_code == 200
    shown = page(resolved)
    assert shown.tag == "tr" and "Skip Task by root" in shown.text_content()
    again = root.post(f"/console/errors/{error_id}/resolve", data=form, headers=headers)
    assert again.status_code == 409  # htmx shows the error page in the page's main part
    assert again.headers["HX-Retarget"] == "#content"
    assert live.engine.get_error(error_id).resolution_message == "in place"


def test_bad_query_values_are_400_pages_naming_the_field(root: httpx.Client) -> None:
    for path, field in (
        ("/console/runs?offset=%C2%B2", "offset"),  # "²": a digit to str.isdigit, not to int
        ("/console/deferred?offset=%C2%B2", "offset"),
        ("/console/errors?run=%C2%B2", "run"),
        ("/console/errors?run=99999999999999999999", "run"),  # beyond any run id
        ("/console/runs?until=9999-12-31", "until"),  # the day after it is past year 9999
    ):
        response = root.get(path)
        assert response.status_code == 400, (path, response.text)
        assert page(response).xpath("//h1/text()") == ["Not accepted"]
        assert field in page(response).text_content(), path


def test_an_error_id_with_a_nul_is_a_400_page_on_every_database(root: httpx.Client) -> None:
    # PostgreSQL cannot compare text with a NUL in it: the read itself failed, a 500 page.
    token = csrf_of(root.get("/console/errors"))
    for response in (
        root.get("/console/errors/a%00b/resolve"),
        post_form(
            root,
            "/console/errors/resolve",
            [("error", "a\x00b"), ("action", "Retry Task"), ("csrf_token", token)],
        ),
    ):
        assert response.status_code == 400, response.text
        assert "error_id: contains a NUL character" in page(response).text_content()


def test_markup_in_tree_node_and_source_names_is_text_in_every_page(
    live: Live, root: httpx.Client
) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    tree = {"source_name": "Tests", "source_group": "Console", "tree_name": f"Odd\n{hostile}"}
    live.engine.load_tree(
        small_tree(
            tree["tree_name"],
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": hostile}]},
                hostile: {"handler": "utilities_echo_v1", "parameters": {"input": hostile}},
            },
        )
        | {"source": tree["source_name"], "group": tree["source_group"]}
    )
    run_id = start_as(live, "root", tree, source_id=f"<script>alert({secrets.token_hex(2)})")

    for path in (f"/console/runs/{run_id}", "/console/runs", "/console/trees"):
        shown = page(root.get(path))
        assert shown.xpath("//img | //script[not(@src)] | //*[@onerror]") == [], path
        assert hostile in shown.text_content(), path
    picture = page(root.get(f"/console/runs/{run_id}")).xpath("//*[@id='picture']")[0]
    assert len(picture.xpath(".//*[local-name()='svg']")) == 1
    assert all(href.startswith("#task-") for href in picture.xpath(".//@*[local-name()='href']"))


def test_a_bulk_resolution_without_a_known_action_is_a_400_page(
    live: Live, root: httpx.Client
) -> None:
    run_id = start_as(live, "root", EXPLODE)
    error = live.engine.get_run(run_id).errors[0]
    token = csrf_of(root.get("/console/errors"))
    for action in ([], [("action", "")], [("action", "Retry Everything")]):
        for confirmed in ([], [("confirmed", "yes")]):
            fields = [("error", error.id), *action, *confirmed, ("csrf_token", token)]
            refused = post_form(root, "/console/errors/resolve", fields)
            assert refused.status_code == 400, (action, confirmed, refused.text)
            assert "action" in page(refused).xpath("//main//p/text()")[0]
    assert live.engine.get_error(error.id).status == "Active"


def test_a_page_past_the_end_of_a_list_says_so_and_links_to_the_first(
    live: Live, root: httpx.Client
) -> None:
    # An "Older" link kept after the list shrank: the lists are not empty, only that page is.
    start_as(live, "root", EXPLODE)
    start_as(live, "root", APPROVAL, results=NAME)
    for path in ("/console/runs", "/console/errors", "/console/deferred", "/console/trees"):
        shown = page(root.get(f"{path}?offset=1000000"))
        empty = " ".join(shown.xpath("//div[@class='empty']")[0].text_content().split())
        assert "past the end" in empty, (path, empty)
        [first] = shown.xpath("//div[@class='empty']//a/@href")
        assert first.startswith(path) and "offset" not in first, (path, first)


def test_sign_in_goes_nowhere_outside_the_console(live: Live) -> None:
    for wanted in (
        "//evil.example/console/runs",
        "https://evil.example/console/runs",
        "/console//evil.example",
        "/console/\\evil.example",
        "/consolex/runs",
        "/api/runs",
        "/console/runs\r\nSet-Cookie: planted=1",
    ):
        with live.client() as client:
            form = client.get("/console/sign-in", params={"next": wanted})
            signed_in = client.post(
                "/console/sign-in",
                data={
                    "username": "ada",
                    "password": PASSWORD,
                    "next": wanted,
                    "csrf_token": csrf_of(form),
                },
            )
        location = signed_in.headers["location"]
        assert location.startswith("/console/") and "//" not in location, (wanted, location)
        assert "\r" not in location and "\n" not in location
        assert "planted" not in signed_in.headers.get("set-cookie", "")


def test_a_plain_user_reaches_another_users_run_by_no_route(live: Live, ada: httpx.Client) -> None:
    other = start_as(live, "root", APPROVAL, results=NAME)
    failing = start_as(live, "root", EXPLODE)
    task = live.engine.get_run(other).task("Approve")
    error = live.engine.get_run(failing).errors[0]
    token = csrf_of(ada.get("/console/runs"))
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    deferral = {"action": "Complete", "name_0": "Status", "value_0": "Approved"}
    for method, path, data, status in (
        ("GET", f"/console/runs/{other}/changed?since=0", None, 404),
        ("POST", f"/console/runs/{other}/deferrals/{task.id}", deferral, 404),
        (
            "POST",
            f"/console/runs/{other}/deferrals/{task.id}",
            {**deferral, "confirmed": "yes"},
            404,
        ),
        ("POST", f"/console/runs/{other}/cancel", {"confirmed": "yes"}, 403),
        ("POST", f"/console/runs/{other}/run-again", {"version": "same"}, 403),
        ("GET", f"/console/errors/{error.id}/resolve", None, 403),
        ("POST", f"/console/errors/{error.id}/resolve", {"action": "Skip Task"}, 403),
        ("GET", "/console/health/live", None, 403),
        ("GET", "/console/trees/versions/1/picture.svg", None, 403),
    ):
        response = ada.request(method, path, data=data, headers=htmx)
        assert response.status_code == status, (method, path, response.text)
    bulk = [
        ("error", error.id),
        ("action", "Skip Task"),
        ("confirmed", "yes"),
        ("csrf_token", token),
    ]
    assert post_form(ada, "/console/errors/resolve", bulk).status_code == 403
    for path in (
        "/console/runs",
        f"/console/runs?creator=root&source_id={live.engine.get_run(other).source_id}",
    ):
        listed = page(ada.get(path, headers={"HX-Request": "true"})).xpath("//tr/@data-run")
        assert str(other) not in listed and str(failing) not in listed, path
    waiting = page(ada.get("/console/deferred")).xpath("//section[@class='waiting']/@data-task")
    assert task.id not in waiting
    live.engine.run_until_idle()
    assert live.engine.get_run(other).task("Approve").status is TaskStatus.DEFERRED
    assert live.engine.get_error(error.id).status == "Active"
    assert live.engine.get_run(failing).status is not RunStatus.CANCELLED


def test_a_deferral_form_with_many_suggested_results_can_be_sent_as_offered(
    live: Live, root: httpx.Client
) -> None:
    # Each result the tree reads is a row of the form: with 20 of them (and the empty rows
    # after) the form once had more fields than a form may carry, and was refused as sent.
    reads = [{"to": "Tell", "condition": f"results['Ask']['r{i}'] == 'yes'"} for i in range(20)]
    many = {"source_name": "Tests", "source_group": "Console", "tree_name": "Many Reads"}
    live.engine.load_tree(
        small_tree(
            many["tree_name"],
            {
                "Start": {"handler": "system_start_v1", "connectors": [{"to": "Ask"}]},
                "Ask": {"handler": "utilities_defer_v1", "defers": True, "connectors": reads},
                "Tell": {"handler": "utilities_echo_v1", "parameters": {"input": "told"}},
            },
        )
        | {"source": many["source_name"], "group": many["source_group"]}
    )
    run_id = start_as(live, "root", many)
    [form] = page(root.get(f"/console/runs/{run_id}")).xpath("//form[@class='deferral']")
    suggested = form.xpath(".//input[starts-with(@name, 'name_')]/@value")
    assert suggested[:3] == ["r0", "r1", "r2"]  # as many as fit; the others go in the XML box

    confirm = root.post(form.get("action"), data=dict(form.form_values()))

    assert confirm.status_code == 200, confirm.text
    assert "Complete Ask of run" in page(confirm).text_content()


def test_a_bulk_resolution_takes_a_whole_page_of_ticked_errors(
    live: Live, root: httpx.Client
) -> None:
    # The inbox ticks up to 50 errors a page; the form parser once stopped at 32 fields.
    source_id = f"bulk-{secrets.token_hex(4)}"
    runs = [start_as(live, "root", EXPLODE, source_id=source_id) for _ in range(40)]
    ticked = [("error", live.engine.get_run(run).errors[0].id) for run in runs]
    token = csrf_of(root.get("/console/errors"))
    fields = [*ticked, ("action", "Do Nothing"), ("csrf_token", token)]

    asked = post_form(root, "/console/errors/resolve", fields)
    assert asked.status_code == 200, asked.text
    assert "Resolve 40 errors with Do Nothing?" in page(asked).text_content()
    applied = post_form(root, "/console/errors/resolve", [*fields, ("confirmed", "yes")])
    assert "40 resolutions accepted" in page(applied).text_content()


def test_json_on_the_run_page_reads_as_it_was_given(live: Live, root: httpx.Client) -> None:
    # Jinja's tojson writes <, > and & as \u003c, \u003e, \u0026 (for script elements): in a
    # <pre> they showed as those escapes. Escaped as HTML, they read as given.
    given = "R&D <review> 'now'"
    escaped = given.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    results = f'<results><result name="Name">{escaped}</result></results>'
    run_id = start_as(live, "root", APPROVAL, results=results)
    html = page(root.get(f"/console/runs/{run_id}"))
    inputs = html.xpath("//h2[text()='Inputs']/following-sibling::pre[1]/text()")[0]
    assert f'"Name": "{given}"' in inputs
    assert html.xpath("//pre//*") == []  # text, not markup


def test_sign_in_tells_no_name_apart(live: Live) -> None:
    """A name nobody has, a wrong password and a disabled account's right password are all
    answered alike: the page does not tell which names exist."""
    name = f"dora{secrets.token_hex(3)}"
    live.add_user(name, "user")
    live.accounts.set_disabled(name, True)
    answers = set()
    for username, password in (
        (f"nobody{secrets.token_hex(3)}", PASSWORD),
        ("bob", "not the password"),
        (name, PASSWORD),
    ):
        with live.client() as client:
            form = client.get("/console/sign-in")
            response = client.post(
                "/console/sign-in",
                data={"username": username, "password": password, "csrf_token": csrf_of(form)},
            )
        notice = page(response).xpath("//*[contains(@class, 'notice')]/text()")
        answers.add((response.status_code, tuple(notice)))
        assert "treeflow_session" not in response.headers.get("set-cookie", "")
    assert answers == {(401, ("Wrong user name or password.",))}


def test_a_run_with_many_inputs_can_be_run_again_as_offered(live: Live, root: httpx.Client) -> None:
    # One field per input: past 29 inputs the form had more fields than a form could carry.
    names = [f"Input{i}" for i in range(40)]
    results = "".join(f'<result name="{name}">{name.lower()}</result>' for name in names)
    run_id = start_as(live, "root", APPROVAL, results=f"<results>{results}</results>")
    [form] = page(root.get(f"/console/runs/{run_id}/run-again")).xpath("//main//form")
    fields = dict(form.form_values())
    fields["input_Input7"] = "edited"

    again = root.post(form.get("action"), data=fields)

    assert again.status_code == 303, again.text
    new_run = int(again.headers["location"].split("/runs/")[1].split("?")[0])
    live.engine.run_until_idle()
    inputs = live.engine.get_run(new_run).inputs
    assert inputs["Input7"] == "edited" and inputs["Input8"] == "input8" and len(inputs) == 40
