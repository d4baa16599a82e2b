"""The dashboards in a real browser (Debian's headless Chromium): what an on-call engineer
sees and clicks, served by the test scenario. Screenshots go to var/screenshots/ (not
committed), or to $DASH_SCREENSHOTS when set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ROOT, ServedApp
from tests.dashboards import browser

pytestmark = pytest.mark.slow


def shots(tmp_path: Path) -> Path:
    """var/screenshots/ (not committed: var/ is ignored), or $DASH_SCREENSHOTS; `tmp_path` is
    kept for callers that pass it."""
    del tmp_path
    folder = Path(os.environ.get("DASH_SCREENSHOTS") or ROOT / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver: Any, served: ServedApp, path: str, *texts: str) -> None:
    driver.get(f"{served.url}/dash/{path}")
    for text in texts:
        browser.wait_text(driver, text)
    browser.settled(driver)


def query(driver: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def click_text(driver: Any, tag: str, text: str) -> None:
    browser.click(driver, "xpath", f"//{tag}[normalize-space()='{text}']")


def no_errors(driver: Any, served: ServedApp) -> None:
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    fetched = [u for u in browser.requested_urls(driver) if u.startswith(("http:", "https:", "ws"))]
    elsewhere = [u for u in fetched if not u.startswith(served.url)]
    assert elsewhere == []  # nothing fetched from anywhere but the control plane


def test_the_overview_answers_what_needs_me_now(
    chrome: Any, served: ServedApp, tmp_path: Path
) -> None:
    open_page(
        chrome,
        served,
        "",
        "ProviderFailing",
        "1 waiting for approval",
        "action budget: 18 of 20 left",
        "launches / launch-success",
        "replay-wallet-queue",
    )
    body = chrome.find_element("tag name", "body").text.lower()
    assert "43m" in body  # ProviderFailing has fired for 43 minutes
    assert body.index("launches / launch-success") < body.index("rounds / round-success")
    no_errors(chrome, served)
    browser.screenshot(chrome, shots(tmp_path) / "overview-light.png")


def test_the_view_lives_in_the_url_and_a_link_reproduces_it(chrome: Any, served: ServedApp) -> None:
    open_page(chrome, served, "executions", "replay-wallet-queue")
    click_text(chrome, "label", "6h")
    browser.wait_for(chrome, lambda d: query(d).get("range") == ["6h"], what="range=6h in the URL")
    browser.wait_text(chrome, "rolled back")  # 11:20's run is inside 6h, not inside 1h
    click_text(chrome, "label", "auto-refresh")
    browser.wait_for(chrome, lambda d: query(d).get("paused") == ["1"], what="paused=1")
    browser.wait_text(chrome, "(paused)")
    link = chrome.current_url
    chrome.get("about:blank")
    chrome.get(link)
    browser.wait_text(chrome, "rolled back")
    checked = chrome.find_element("css selector", "#range input:checked").get_attribute("value")
    assert checked == "6h"
    assert not chrome.find_element("css selector", "#live").is_selected()
    # the page's own filters sit in the URL beside the view
    chrome.get(f"{served.url}/dash/executions?range=6h&state=refused")
    browser.wait_text(chrome, "cooldown: isolate-provider ran")
    browser.settled(chrome)
    assert "replay-wallet-queue" not in chrome.find_element("id", "ex-table").text


def test_an_slo_from_the_overview(chrome: Any, served: ServedApp, tmp_path: Path) -> None:
    open_page(chrome, served, "?range=6h", "launches / launch-success")
    browser.click(chrome, "link text", "launches / launch-success")
    browser.wait_text(chrome, "ERROR BUDGET LEFT")
    browser.settled(chrome)
    url = urlsplit(chrome.current_url)
    assert url.path == "/dash/slos/launches-launch-success"
    assert parse_qs(url.query) == {"range": ["6h"], "region": ["eu"]}
    body = chrome.find_element("tag name", "body").text.lower()
    assert "bad events over the" in body and "exhausted" in body
    assert len(chrome.find_elements("css selector", ".js-plotly-plot")) == 3
    assert "page 14.4x" in chrome.find_element("id", "slo-burn").text
    no_errors(chrome, served)
    browser.screenshot(chrome, shots(tmp_path) / "slo-light.png")


def test_an_execution_and_the_audit_log(chrome: Any, served: ServedApp, tmp_path: Path) -> None:
    open_page(chrome, served, "executions?state=succeeded", "isolate-provider")
    browser.click(chrome, "css selector", "#ex-table a")
    browser.wait_text(chrome, "Guard decisions")
    browser.settled(chrome)
    body = chrome.find_element("tag name", "body").text.lower()
    assert "blast_radius" in body and "held" in body and "provider.isolate" in body
    browser.screenshot(chrome, shots(tmp_path) / "execution-light.png")
    open_page(
        chrome, served, "audit?range=6h&actor=alice", "Audit chain intact", "automation_paused"
    )
    assert "GUARD" not in chrome.find_element("id", "audit-table").text.upper().split()
    no_errors(chrome, served)


PAGES = ("", "slos", "slos/launches-launch-success", "executions", "audit")


def test_every_page_in_light_and_dark(chrome: Any, served: ServedApp, tmp_path: Path) -> None:
    for path in PAGES:
        open_page(chrome, served, path, "Casino control plane")
        name = path.replace("/", "-") or "overview"
        html = chrome.find_element("tag name", "html")
        scheme = html.get_attribute("data-mantine-color-scheme")
        browser.screenshot(chrome, shots(tmp_path) / f"{name}-{scheme}.png")
        browser.click(chrome, "id", "scheme")  # kept in localStorage: the next page too
        other = "dark" if scheme == "light" else "light"
        browser.wait_for(
            chrome,
            lambda d, want=other: (
                d.find_element("tag name", "html").get_attribute("data-mantine-color-scheme")
                == want
            ),
        )
        browser.settled(chrome)
        browser.screenshot(chrome, shots(tmp_path) / f"{name}-{other}.png")
        no_errors(chrome, served)
