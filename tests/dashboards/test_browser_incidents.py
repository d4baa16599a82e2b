"""The incident pages in a real browser (Debian's headless Chromium), served by the scenario:
the list leads to the detail keeping the view, and the timeline draws every lane."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ServedApp
from tests.dashboards import browser
from tests.dashboards.test_browser import no_errors, open_page, shots

pytestmark = pytest.mark.slow

LANE_TITLES = (
    "FAULTS",
    "ALERTS",
    "EXECUTIONS",
    "guard refusals",
    "verifications",
    "approvals",
    "notifications",
    "automation switches",
)


def lane_labels(driver: Any) -> list[str]:
    script = (
        "return Array.from(document.querySelectorAll('#incd-timeline .yaxislayer-above text'))"
        ".map(t => t.textContent)"
    )
    labels: list[str] = driver.execute_script(script)
    return labels


def test_from_the_list_to_the_incident_and_its_timeline(
    chrome: Any, served: ServedApp, tmp_path: Path
) -> None:
    open_page(chrome, served, "incidents?range=6h", "20260302-1018", "ongoing")
    browser.screenshot(chrome, shots(tmp_path) / "incidents-light.png")
    chrome.find_element("link text", "20260302-1115").click()
    browser.wait_text(chrome, "What happened, in order")
    browser.settled(chrome)
    url = urlsplit(chrome.current_url)
    assert url.path == "/dash/incidents/20260302-1115"
    assert parse_qs(url.query) == {"range": ["6h"]}
    labels = browser.wait_for(chrome, lane_labels, what="the timeline's rows")
    assert [t for t in LANE_TITLES if t not in labels] == []
    assert "ProviderFailing eu/evolution (page)" in labels
    legend = chrome.find_element("id", "incd-timeline").text
    assert "launches/launch-success region=eu" in legend  # the budget, on the same axis
    body = chrome.find_element("tag name", "body").text
    assert "refused: cooldown" in body and "approved (1 of 2)" in body
    no_errors(chrome, served)
    browser.screenshot(chrome, shots(tmp_path) / "incident-light.png")


def test_a_minute_inside_the_incident_opens_it_in_dark(
    chrome: Any, served: ServedApp, tmp_path: Path
) -> None:
    # the overview links ProviderFailing by the minute it fired: 11:17
    open_page(chrome, served, "incidents/20260302-1117?range=6h", "Casino control plane")
    browser.set_dark(chrome, True)
    browser.wait_text(chrome, "Incident 20260302-1115")
    browser.settled(chrome)
    assert [t for t in LANE_TITLES if t not in lane_labels(chrome)] == []
    scheme = chrome.find_element("tag name", "html").get_attribute("data-mantine-color-scheme")
    assert scheme == "dark"
    no_errors(chrome, served)
    browser.screenshot(chrome, shots(tmp_path) / "incident-dark.png")
    chrome.find_element("link text", "all incidents").click()
    browser.wait_text(chrome, "20260302-1018")
    assert parse_qs(urlsplit(chrome.current_url).query) == {"range": ["6h"]}
