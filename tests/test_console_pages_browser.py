"""The console's Trees, Schedules, Instances and Health pages in a real browser: headless
Chromium against a live ``treeflow serve`` (the fixtures of ``test_console_browser``: its own
process group, killed whatever happens; skipped without Chromium, failed in CI).

An administrator opens a tree and sees its picture, disables a schedule and runs it now from
the confirmation pages, and watches the Health page refresh itself; a plain user sees its own
instance with its fields and is refused the administrators' pages. Screenshots of each page
go beside the others (``$TREEFLOW_CONSOLE_SCREENSHOTS``).
"""

from __future__ import annotations

import httpx

from . import test_console_browser as browser_tests
from .test_console_browser import REGISTRATION, By, Serve, WebDriver, shoot, sign_in, wait

# The browser tests' fixtures, under their names: a server and a browser for this module too.
_needs_chromium = browser_tests._needs_chromium
serve = browser_tests.serve
browser = browser_tests.browser

PROCESS = "process-registration"


def api(serve: Serve, user: str) -> httpx.Client:
    token = serve.token(user)
    return httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"})


def test_a_tree_and_its_picture(browser: WebDriver, serve: Serve) -> None:
    serve.start("root", REGISTRATION, source_id="browser-tree")
    sign_in(browser, serve, "root")
    browser.find_element(By.LINK_TEXT, "Trees").click()
    row = browser.find_element(
        By.XPATH, "//table[@id='trees']//tr[.//a[text()='Process Registration']]"
    )
    assert "Started" in row.find_element(By.CSS_SELECTOR, "td[data-label=Runs]").text
    shoot(browser, "trees")
    row.find_element(By.LINK_TEXT, "Process Registration").click()
    picture = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#picture svg"))
    assert "Review" in picture[0].text  # type: ignore[index]
    shoot(browser, "tree-version")


def test_disable_a_schedule_and_run_it_now(browser: WebDriver, serve: Serve) -> None:
    with api(serve, "root") as root:
        created = root.post(
            "/api/tasks",
            json={
                "name": "Browser weekdays",
                **REGISTRATION,
                "source_id": "browser-schedule",
                "when": {"kind": "weekdays", "time": "08:30"},
                "timezone": "Europe/Dublin",
            },
        )
    assert created.status_code == 201, created.text
    sign_in(browser, serve, "root")
    browser.find_element(By.LINK_TEXT, "Schedules").click()
    shoot(browser, "schedules")
    browser.find_element(By.LINK_TEXT, "Browser weekdays").click()
    browser.find_element(By.LINK_TEXT, "Disable…").click()
    browser.find_element(By.XPATH, "//main//button[text()='Disable']").click()
    wait(browser, lambda b: b.find_element(By.ID, "done").text == "The schedule is disabled.")
    assert browser.find_element(By.ID, "state").text == "disabled"
    browser.find_element(By.LINK_TEXT, "Run now…").click()
    browser.find_element(By.XPATH, "//main//button[text()='Run now']").click()
    notice = wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#done a"))
    assert notice[0].text.startswith("run #")  # type: ignore[index]
    assert "run now" in browser.find_element(By.ID, "history").text
    shoot(browser, "schedule")
    notice[0].click()  # type: ignore[index]
    wait(browser, lambda b: b.find_elements(By.ID, "run-status"))


def test_a_user_sees_its_instance_and_not_the_administrators_pages(
    browser: WebDriver, serve: Serve
) -> None:
    with api(serve, "ada") as ada:
        created = ada.post(
            "/api/instances/create",
            json={"processName": PROCESS, "FieldsMappings": []},
        )
    assert created.status_code == 200, created.text
    name = created.json()["instanceID"]
    sign_in(browser, serve, "ada")
    browser.find_element(By.LINK_TEXT, "Instances").click()
    browser.find_element(By.LINK_TEXT, name).click()
    wait(browser, lambda b: b.find_element(By.TAG_NAME, "h1").text == name)
    assert browser.find_element(By.ID, "version").text.startswith("1")
    shoot(browser, "instance")
    for page in ("trees", "schedules", "health"):
        browser.get(f"{serve.url}/console/{page}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed"


def test_health_refreshes_itself(browser: WebDriver, serve: Serve) -> None:
    sign_in(browser, serve, "root")
    browser.find_element(By.LINK_TEXT, "Health").click()
    first = browser.find_element(By.CSS_SELECTOR, "#health time").get_attribute("datetime")
    serve.start("root", REGISTRATION, source_id="browser-health")

    def refreshed(b: WebDriver) -> bool:  # the htmx poll swapped in a newer part, no reload
        try:
            return (
                b.find_element(By.CSS_SELECTOR, "#health time").get_attribute("datetime") != first
            )
        except Exception:
            return False

    wait(browser, refreshed)
    assert "this server" in browser.find_element(By.ID, "closers").text
    shoot(browser, "health")
