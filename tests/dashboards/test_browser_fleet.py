"""The providers, wallet and regions pages in a real browser: each loads without a console
error, every chart on it has data, and it reads in light and dark (screenshots in the
test's tmp folder, or $DASH_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServedApp
from tests.dashboards import browser
from tests.dashboards.test_browser import no_errors, open_page, query, shots

pytestmark = pytest.mark.slow

# what each chart has drawn: its id, whether any trace holds a value (as decoded by plotly:
# `data` may still hold base64 arrays), its annotations
CHARTS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map((el) => {
  const values = (v) => (v && typeof v === 'object' && 'length' in v ? Array.from(v) : []);
  const drawn = (el._fullData || []).some((t) =>
    values(t.z).some((row) => values(row).some((v) => v !== null)) ||
    values(t.y).some((v) => v !== null && !Number.isNaN(v)));
  const notes = ((el.layout || {}).annotations || []).map((a) => a.text).join(' ');
  return [el.closest('[id]').id, drawn, notes];
});
"""

PAGES = {
    "providers": ("Now: isolated", "half-open", "no calls sent"),
    "wallet": ("wallet / wallet-success", "items waiting"),
    "regions": ("Failover events in this range", "provider failover"),
}
CHART_IDS = {
    "providers": {"pv-latency", "pv-errors", "pv-breakers", "pv-routing", "pv-launches"},
    "wallet": {"wl-budget", "wl-answered", "wl-latency", "wl-queue", "wl-replays"},
    "regions": {"rg-health", "rg-weights", "rg-sessions", "rg-failovers"},
}


def charts_drawn(driver: Any) -> dict[str, tuple[bool, str]]:
    return {chart: (drawn, notes) for chart, drawn, notes in driver.execute_script(CHARTS)}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_chart_has_data_in_light_and_dark(
    page: str, chrome: Any, served: ServedApp, tmp_path: Path
) -> None:
    # paused: nothing redraws while the test looks
    open_page(chrome, served, f"{page}?range=6h&paused=1", *PAGES[page])
    browser.wait_for(chrome, lambda d: set(charts_drawn(d)) == CHART_IDS[page], what="charts")
    drawn = charts_drawn(chrome)
    assert {chart: ok for chart, (ok, _notes) in drawn.items()} == dict.fromkeys(drawn, True)
    assert not any("in this range" in notes for _ok, notes in drawn.values())
    no_errors(chrome, served)
    browser.screenshot(chrome, shots(tmp_path) / f"{page}-light.png")
    chrome.find_element("id", "scheme").click()
    browser.wait_for(
        chrome,
        lambda d: (
            d.find_element("tag name", "html").get_attribute("data-mantine-color-scheme") == "dark"
        ),
    )
    browser.settled(chrome)
    browser.screenshot(chrome, shots(tmp_path) / f"{page}-dark.png")
    no_errors(chrome, served)
    if page == "providers":
        region_filter(chrome)


def region_filter(driver: Any) -> None:
    """The region picker writes the URL beside the range; the panels follow it."""
    driver.find_element("id", "pv-region").click()
    browser.wait_for(
        driver, lambda d: d.find_element("xpath", "//*[@role='option'][.='latam']"), what="latam"
    ).click()
    browser.wait_for(driver, lambda d: query(d).get("region") == ["latam"], what="region=latam")
    assert query(driver)["range"] == ["6h"]
    browser.wait_for(
        driver, lambda d: "evolution" in d.find_element("id", "pv-now").text, what="the table"
    )
    browser.settled(driver)
    assert " eu " not in f" {driver.find_element('id', 'pv-now').text} "
    titles = driver.execute_script(
        "return document.getElementById('pv-latency').querySelector('.js-plotly-plot')"
        ".layout.yaxis.title.text"
    )
    assert titles == "latam"
