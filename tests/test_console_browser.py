"""The web console in a real browser: headless Chromium driven by Selenium against a live
``treeflow serve`` (its own process group, killed whatever happens).

The scenarios a user meets first: sign in; a run started over the trigger API shows up in Runs
within the page's refresh; its page draws the picture, the deferral is completed from the form
and the page follows the run to Completed; a failing node's error is resolved with Retry Task
from the inbox; a run is cancelled; one is run again with an edited input; a plain user cannot
open another user's run; a forged CSRF post is refused. Screenshots of the main pages are
written to ``$TREEFLOW_CONSOLE_SCREENSHOTS`` (default ``build/console/``), light and dark, wide
and phone-sized; ``docs/console/`` holds copies for the README.

Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``): without
them the tests are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from engine import Engine
from engine.auth import Accounts

from .conftest import IN_CI, REPO, TREES
from .support import treeflow_serve

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = os.environ.get("TREEFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TREEFLOW_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(os.environ.get("TREEFLOW_CONSOLE_SCREENSHOTS", REPO / "build" / "console"))
START_URL = "/kineticTask/rest/v1/Trigger/createStart"
REGISTRATION = {
    "source_name": "Kinetic Request",
    "source_group": "KEG Catalog > Conference Registration",
    "tree_name": "Process Registration",
}
GREET = """\
source: Tests
group: Console
name: Greet
nodes:
  Start:
    handler: system_start_v1
    connectors: [{to: Review}]
  Review:
    handler: utilities_defer_v1
    defers: true
    connectors: [{to: Hello}]
  Hello:
    handler: utilities_echo_v1
    parameters: {input: "Hello {{ inputs['Name'] }}"}
"""
CALL_OUT = """\
source: Tests
group: Console
name: Call Out
nodes:
  Start:
    handler: system_start_v1
    connectors: [{to: Ping}]
  Ping:
    handler: http_request_v1
    parameters: {method: GET, url: "http://127.0.0.1:%d/ping", timeout: "5"}
"""
BROWSER_ZONE = "Asia/Kolkata"  # no daylight saving time: always GMT+5:30
WAIT = 30  # seconds a page condition may take; the runs list refreshes every 5


def _browser_present() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if not _browser_present():
        if IN_CI:
            pytest.fail("Chromium or chromedriver is missing: CI must run the browser tests")
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")


class Pong(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"pong"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Serve:
    url: str
    database: str
    ping: socket.socket  # bound, not listening: the Call Out tree's requests are refused

    def token(self, user: str) -> str:
        response = httpx.post(f"{self.url}/token", data={"username": user, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def start(self, user: str, tree: dict[str, str], **form: str) -> int:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        response = httpx.post(
            f"{self.url}{START_URL}", data={**tree, **form}, headers=headers, timeout=30
        )
        assert response.status_code == 200, response.text
        trigger = httpx.get(
            f"{self.url}/api/triggers/{response.headers['X-ID']}",
            headers={"Authorization": f"Bearer {self.token('root')}"},
        )
        return int(trigger.json()["run_id"])


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    if not _browser_present():
        pytest.skip("no browser")  # the autouse fixture above says why (or fails, in CI)
    home = tmp_path_factory.mktemp("console")
    ping = socket.socket()
    ping.bind(("127.0.0.1", 0))
    trees = home / "trees"
    trees.mkdir()
    shutil.copy(TREES / "process-registration.yaml", trees)
    (trees / "greet.yaml").write_text(GREET)
    (trees / "call-out.yaml").write_text(CALL_OUT % ping.getsockname()[1])
    database = f"sqlite:///{home / 'console.db'}"
    with Engine(database, trees=trees) as engine:
        accounts = Accounts(engine)
        accounts.add_user("root", PASSWORD, role="admin")
        accounts.add_user("ada", PASSWORD, role="user")
    try:
        with treeflow_serve(database, trees, cwd=home) as url:
            yield Serve(url, database, ping)
    finally:
        ping.close()


@pytest.fixture(scope="module")
def browser(serve: Serve) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to read CSP reports
    try:
        # A zone far from UTC, so that a time shown in the browser's zone is told from UTC.
        service = webdriver.ChromeService(CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_ZONE})
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as exc:
        pytest.fail(f"Chromium did not start: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


# What Chromium answers, instead of a stale element, for an element of a document that a
# navigation (a form posted) is replacing just then.
NODE_OF_A_GONE_DOCUMENT = "does not belong to the document"


def wait(
    browser: WebDriver, condition: Callable[[WebDriver], object], timeout: float = WAIT
) -> object:
    """Until ``condition(browser)`` holds; an element htmx swapped out meanwhile, or one of the
    page a navigation is replacing, is no failure: the condition is asked again."""

    def holds(driver: WebDriver) -> object:
        try:
            return condition(driver)
        except WebDriverException as exc:
            if NODE_OF_A_GONE_DOCUMENT in (exc.msg or ""):
                return False
            raise

    waiting = WebDriverWait(
        browser, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    return waiting.until(holds)


def sign_in(browser: WebDriver, serve: Serve, user: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{serve.url}/console/runs")
    assert "/console/sign-in" in browser.current_url
    browser.find_element(By.ID, "username").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(browser, lambda b: b.current_url.endswith("/console/runs"))


def status_is(status: str) -> object:
    def check(browser: WebDriver) -> bool:
        try:
            return bool(browser.find_element(By.ID, "run-status").text == status)
        except WebDriverException:  # the page is being reloaded
            return False

    return check


def shoot(browser: WebDriver, name: str) -> None:
    """The page as it is, light and dark (emulated ``prefers-color-scheme``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        browser.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        browser.save_screenshot(str(SCREENSHOTS / f"{name}-{scheme}.png"))
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})  # type: ignore[attr-defined]


def test_a_new_run_appears_and_its_deferral_is_completed_from_the_form(
    browser: WebDriver, serve: Serve
) -> None:
    sign_in(browser, serve, "root")
    shoot(browser, "runs-empty")
    run_id = serve.start("root", REGISTRATION, source_id="browser-registration")
    row = f"tr[data-run='{run_id}']"
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, row))  # the htmx refresh, no reload
    shoot(browser, "runs")
    browser.find_element(By.CSS_SELECTOR, f"{row} a").click()
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "form.deferral"))
    started = browser.find_element(By.CSS_SELECTOR, "dl.facts time")
    assert started.get_attribute("title").endswith(" UTC")  # UTC on hover
    assert "GMT+5:30" in started.text  # the browser's own zone
    picture = browser.find_element(By.CSS_SELECTOR, "#picture svg")
    assert "Review" in picture.text
    shoot(browser, "run-waiting")
    review = browser.find_element(
        By.XPATH, "//*[@id='picture']//*[local-name()='a'][.//*[text()='Review']]"
    )
    review.click()
    assert "#task-" in browser.current_url  # the node links to its task's row
    first_name = browser.find_element(By.CSS_SELECTOR, "form.deferral input[name=name_0]")
    assert first_name.get_attribute("value") == "Status"  # the result the tree's conditions read
    value = browser.find_element(By.CSS_SELECTOR, "form.deferral input[name=value_0]")
    assert value.get_attribute("value") == "Approved"
    browser.find_element(By.CSS_SELECTOR, "form.deferral button[type=submit]").click()
    wait(browser, lambda b: "Complete Review of run" in b.find_element(By.TAG_NAME, "h1").text)
    browser.find_element(By.XPATH, "//button[text()='Yes, complete it']").click()
    wait(browser, status_is("Completed"))  # the page reloads itself when the run changes
    notify = browser.find_element(By.ID, "tasks").text
    assert "Registration browser-registration approved: Approved" in notify
    shoot(browser, "run-completed")
    refused = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]  # type: ignore[attr-defined]
    assert refused == []  # nothing on these pages needed what the policy forbids


def test_a_failing_nodes_error_is_retried_from_the_inbox(browser: WebDriver, serve: Serve) -> None:
    sign_in(browser, serve, "root")
    run_id = serve.start(
        "root",
        {"source_name": "Tests", "source_group": "Console", "tree_name": "Call Out"},
        source_id="browser-call-out",
    )
    browser.get(f"{serve.url}/console/errors?run={run_id}")

    def listed(b: WebDriver) -> bool:
        b.refresh()
        return bool(b.find_elements(By.CSS_SELECTOR, "#errors tr[data-error]"))

    wait(browser, listed)
    shoot(browser, "errors")
    serve.ping.listen()  # the service is back: the retried request is answered
    pong = HTTPServer(("127.0.0.1", 0), Pong, bind_and_activate=False)
    pong.socket.close()
    pong.socket = serve.ping
    thread = threading.Thread(target=pong.serve_forever, daemon=True)
    thread.start()
    try:
        # From the keyboard: the row becomes the form, and the focus goes into it (not back
        # to the top of the page with the link the swap removed).
        browser.find_element(By.LINK_TEXT, "Resolve…").send_keys(Keys.ENTER)
        wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "tr.resolving"))
        # htmx focuses the form's autofocus field once it has settled the swap, a moment after
        # the row is in the page: wait for it rather than read it at once.
        wait(browser, lambda b: b.switch_to.active_element.get_attribute("name") == "action")
        focused = browser.switch_to.active_element
        assert focused.get_attribute("name") == "action", focused.get_attribute("outerHTML")
        browser.find_element(By.CSS_SELECTOR, "input[name=action][value='Retry Task']").click()
        browser.find_element(By.CSS_SELECTOR, "tr.resolving input[name=message]").send_keys(
            "the service is back"
        )
        browser.find_element(By.XPATH, "//button[text()='Resolve']").click()
        resolved = "#errors td.resolution"
        wait(
            browser,
            lambda b: "Retry Task by root" in b.find_element(By.CSS_SELECTOR, resolved).text,
        )
        browser.get(f"{serve.url}/console/runs/{run_id}")
        wait(browser, status_is("Completed"))
        assert "Retry Task by root" in browser.find_element(By.ID, "errors").text
    finally:
        pong.shutdown()


def test_cancel_a_run(browser: WebDriver, serve: Serve) -> None:
    sign_in(browser, serve, "root")
    greet = {"source_name": "Tests", "source_group": "Console", "tree_name": "Greet"}
    results = '<results><result name="Name">Ada</result></results>'
    run_id = serve.start("root", greet, source_id="browser-cancel", results=results)
    browser.get(f"{serve.url}/console/runs/{run_id}")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "form.deferral"))
    browser.find_element(By.LINK_TEXT, "Cancel run…").click()
    browser.find_element(By.ID, "reason").send_keys("a duplicate")
    shoot(browser, "confirm-cancel")
    browser.find_element(By.XPATH, "//button[text()='Yes, cancel the run']").click()
    wait(browser, status_is("Cancelled"))
    assert "by root" in browser.find_element(By.ID, "triggers").text


def test_run_again_with_an_edited_input(browser: WebDriver, serve: Serve) -> None:
    sign_in(browser, serve, "root")
    greet = {"source_name": "Tests", "source_group": "Console", "tree_name": "Greet"}
    results = '<results><result name="Name">Ada</result></results>'
    run_id = serve.start("root", greet, source_id="browser-again", results=results)
    browser.get(f"{serve.url}/console/runs/{run_id}")
    browser.find_element(By.LINK_TEXT, "Run again…").click()
    name = browser.find_element(By.CSS_SELECTOR, "input[name=input_Name]")
    assert name.get_attribute("value") == "Ada"
    name.clear()
    name.send_keys("Grace")
    browser.find_element(By.XPATH, "//button[text()='Start the new run']").click()
    wait(browser, lambda b: "This is the new run." in b.page_source)
    assert f"run #{run_id}" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert '"Name": "Grace"' in browser.find_element(By.CSS_SELECTOR, "pre").text
    shoot(browser, "run-again")


def test_a_plain_user_cannot_open_another_users_run(browser: WebDriver, serve: Serve) -> None:
    others = serve.start("root", REGISTRATION, source_id="browser-not-ada")
    own = serve.start("ada", REGISTRATION, source_id="browser-ada")
    sign_in(browser, serve, "ada")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, f"tr[data-run='{own}']"))
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-run='{others}']")
    browser.get(f"{serve.url}/console/runs/{others}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    browser.get(f"{serve.url}/console/deferred")
    assert browser.find_elements(By.CSS_SELECTOR, "section.waiting")
    # Keyboard: the first Tab reaches "Skip to content", the next ones the navigation.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    focused = []
    for _ in range(3):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        focused.append(browser.switch_to.active_element.text)
    assert focused == ["treeflow", "Runs", "Deferred"]  # a plain user is offered no Errors
    shoot(browser, "deferred")
    browser.set_window_size(390, 844)  # a phone
    try:
        browser.get(f"{serve.url}/console/runs")
        shoot(browser, "runs-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_a_forged_csrf_post_is_refused(browser: WebDriver, serve: Serve) -> None:
    sign_in(browser, serve, "root")
    run_id = serve.start("root", REGISTRATION, source_id="browser-forged")
    browser.get(f"{serve.url}/console/runs/{run_id}/cancel")
    browser.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(f => f.value = arguments[0])",
        "0" * 64,
    )
    browser.find_element(By.XPATH, "//button[text()='Yes, cancel the run']").click()
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "h1").text == "Refused")
    assert "The form was refused" in browser.find_element(By.CSS_SELECTOR, ".notice").text
    browser.get(f"{serve.url}/console/runs/{run_id}")
    assert browser.find_element(By.ID, "run-status").text == "Started"


def test_the_runs_refresh_keeps_the_keyboards_place(browser: WebDriver, serve: Serve) -> None:
    # The list is swapped every five seconds: a keyboard user tabbing through the runs was
    # sent back to the top of the page by each refresh.
    serve.start("root", REGISTRATION, source_id="browser-keyboard")
    sign_in(browser, serve, "root")
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#runs tbody a"))
    browser.execute_script(
        "window.polls = 0;"
        "document.body.addEventListener('htmx:beforeRequest', () => { window.polls += 1; });"
    )
    for _ in range(40):  # Tab, as a keyboard user would, to the first run's link
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.execute_script("return !!document.activeElement.closest('#runs tbody')"):
            break
    link = browser.switch_to.active_element.get_attribute("href")
    assert link and "/console/runs/" in link
    wait(browser, lambda b: b.execute_script("return window.polls") >= 2)  # a refresh went by
    assert browser.switch_to.active_element.get_attribute("href") == link
