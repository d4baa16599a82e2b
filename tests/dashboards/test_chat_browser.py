"""/dash/chat in a real browser: signed in as oncall, Pause automation is pressed on the
Slack stand-in's message, confirmed as Slack asks, and the control plane pauses as oncall; its
answer shows to oncall alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require
from tests.dashboards import browser
from tests.dashboards.test_browser import no_errors, shots
from tests.dashboards.test_chat_clicks import Chat, region_down_message, unwire, wire
from tests.people import token

pytestmark = pytest.mark.slow


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Chat]:
    made = wire(tmp_path, dash=True)
    yield made
    unwire(made)


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[Any]:
    why = browser.available()
    require(why is None, why or "")
    with browser.chromium(tmp_path / "profile") as driver:
        yield driver


def test_pause_automation_pressed_on_the_chat_page_pauses_it(
    chrome: Any, wired: Chat, tmp_path: Path
) -> None:
    region_down_message(wired)
    url = wired.controlplane.url
    chrome.get(f"{url}/dash/signin?next=/dash/chat")
    chrome.find_element("id", "token").send_keys(token("oncall"))
    chrome.find_element("css selector", "button[type=submit]").click()
    browser.wait_text(chrome, "Buttons press as oncall (UONCALL)")
    browser.wait_text(chrome, "#casino-oncall")
    browser.settled(chrome)
    browser.click(chrome, "css selector", "button.chat-button[id*='cp:pause']")
    browser.wait_text(chrome, "No runbook acts by itself until resumed.")  # Slack's confirm
    browser.click(chrome, "css selector", "#chat-confirm-yes")
    browser.wait_text(chrome, "pressed “Pause automation” as oncall (UONCALL)")
    browser.wait_text(chrome, "Only visible to you")
    browser.settled(chrome)
    browser.screenshot(chrome, shots(tmp_path) / "chat-paused.png")
    seen = requests.get(f"{url}/api/v1/automation", timeout=5).json()
    assert (seen["paused"], seen["changed_by"]) == (True, "oncall")
    no_errors(chrome, wired.controlplane)
