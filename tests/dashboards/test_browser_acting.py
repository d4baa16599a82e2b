"""Acting from the dashboards in a real browser: signing in with a token, a viewer's approve
refused, an operator's pause seen by the HTTP API, and two approvers letting a drain run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from controlplane.runbooks.store import State
from tests.conftest import ServedApp, require
from tests.dashboards import browser
from tests.dashboards.acting_scenario import ActingWorld, build_acting
from tests.dashboards.test_browser import no_errors, shots
from tests.people import people, token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ActingWorld:
    return build_acting(tmp_path_factory.mktemp("acting"))


@pytest.fixture(scope="module")
def served(world: ActingWorld) -> Iterator[ServedApp]:
    server = ServedApp(world.app)
    yield server
    server.close()


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = browser.available()
    require(why is None, why or "")
    with browser.chromium(tmp_path_factory.mktemp("profile")) as driver:
        yield driver


def sign_in(driver: Any, served: ServedApp, who: str, then: str) -> None:
    driver.get(f"{served.url}/dash/signout")
    driver.get(f"{served.url}/dash/signin?next=/dash/{then}")
    driver.find_element("id", "token").send_keys(token(who))
    driver.find_element("css selector", "button[type=submit]").click()
    browser.wait_text(driver, f"{who} · {people()().by_name(who).role.value}")  # type: ignore[union-attr]
    browser.settled(driver)


def press(driver: Any, button_id: str, expect: str) -> None:
    driver.find_element("id", button_id).click()
    browser.wait_text(driver, expect)


def test_a_wrong_token_is_refused_and_a_viewer_cannot_approve(
    chrome: Any, served: ServedApp, world: ActingWorld, tmp_path: Path
) -> None:
    chrome.get(f"{served.url}/dash/signin")
    chrome.find_element("id", "token").send_keys("guess")
    chrome.find_element("css selector", "button[type=submit]").click()
    browser.wait_text(chrome, "Unknown token.")
    chrome.get_log("browser")  # the 401 of that sign-in is the point, not an error
    (drain,) = world.reads.executions.find(states=[State.PENDING_APPROVAL])
    sign_in(chrome, served, "vera", f"executions/{drain.id}")
    press(chrome, "exd-approve", "refused: vera (viewer) may not approve")
    browser.screenshot(chrome, shots(tmp_path) / "acting-refused.png")
    assert world.reads.executions.get(drain.id).state is State.PENDING_APPROVAL
    no_errors(chrome, served)


def test_an_operators_pause_shows_in_the_api(
    chrome: Any, served: ServedApp, world: ActingWorld
) -> None:
    sign_in(chrome, served, "oncall", "")
    chrome.find_element("id", "ov-reason").send_keys("bad deploy in eu")
    press(chrome, "ov-pause", "automation paused by oncall")
    browser.wait_text(chrome, "bad deploy in eu")  # the panel shows it at once
    seen = requests.get(f"{served.url}/api/v1/automation", timeout=5).json()
    assert (seen["paused"], seen["changed_by"], seen["reason"]) == (
        True,
        "oncall",
        "bad deploy in eu",
    )
    press(chrome, "ov-resume", "may not resume")  # an operator pauses; an approver resumes
    world.ops.resume(people()().by_name("alice"))  # type: ignore[arg-type]


def test_two_approvers_approve_and_the_execution_runs(
    chrome: Any, served: ServedApp, world: ActingWorld, tmp_path: Path
) -> None:
    oncall = people()().by_name("oncall")
    asked = world.ops.run(
        oncall, "drain-region", labels={"region": "latam"}, params={}, dry_run=False
    )  # type: ignore[arg-type]
    assert asked.state is State.PENDING_APPROVAL
    sign_in(chrome, served, "alice", f"executions/{asked.id}")
    press(chrome, "exd-approve", "approved by alice: 1 approval(s), now pending_approval")
    sign_in(chrome, served, "bob", f"executions/{asked.id}")
    press(chrome, "exd-approve", "approved by bob: 2 approval(s), now running")
    browser.screenshot(chrome, shots(tmp_path) / "acting-approved.png")
    seen = requests.get(f"{served.url}/api/v1/executions/{asked.id}", timeout=5).json()
    assert seen["state"] == "running"
    assert [a["user"] for a in seen["approvals"]] == ["alice", "bob"]
    assert len(world.jobs) == 1  # handed to the executor
    no_errors(chrome, served)
