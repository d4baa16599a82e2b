"""Debian's headless Chromium driven through Debian's chromedriver (never a downloaded one).

with chromium(profile_dir) as driver:
    driver.get(url); wait_text(driver, "SLOs")

python -m tests.dashboards.browser URL OUT.png [dark]    a screenshot, to look at by hand
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def available() -> str | None:
    """Why a browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is missing (Debian packages chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed"
    return None


@contextlib.contextmanager
def chromium(profile: Path, *, width: int = 1440, height: int = 900) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, predicate: Any, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate(driver)
        except Exception:  # the page is re-rendering: try again
            last = None
        if last:
            return last
        time.sleep(0.1)
    body = driver.find_element("tag name", "body").text[:2000]
    raise TimeoutError(f"waited {timeout}s for {what or predicate}; the page says:\n{body}")


def wait_text(driver: Any, text: str, timeout: float = 45.0) -> None:
    """Case-insensitive: badges and labels are upper-cased by CSS, which `.text` applies. The
    time allowed is for a loaded CI machine running four workers, not a target."""

    def shown(d: Any) -> bool:
        return text.lower() in d.find_element("tag name", "body").text.lower()

    wait_for(driver, shown, timeout, repr(text))


def settled(driver: Any, timeout: float = 20.0) -> None:
    """No Dash callback in flight and no loading placeholder left."""

    def idle(d: Any) -> bool:
        busy = d.execute_script(
            "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"
            " + document.querySelectorAll('._dash-loading').length"
        )
        return busy == 0

    wait_for(driver, idle, timeout, "Dash to settle")
    time.sleep(0.5)  # let plotly finish drawing


def click(driver: Any, by: str, value: str, timeout: float = 20.0) -> None:
    """Find the element and click it; found again when a re-render (a Dash callback finishing
    late on a loaded machine) replaced it in between: StaleElementReferenceException is raised
    before the click is sent, so it never clicks twice."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            driver.find_element(by, value).click()
            return
        except StaleElementReferenceException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def set_dark(driver: Any, dark: bool) -> None:
    """Mantine keeps the colour scheme in localStorage; a reload applies it."""
    scheme = "dark" if dark else "light"
    driver.execute_script(f"localStorage.setItem('mantine-color-scheme-value', '{scheme}')")
    driver.refresh()


def screenshot(driver: Any, path: Path, *, full_page: bool = True) -> Path:
    if full_page:
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        driver.set_window_size(driver.get_window_size()["width"], min(max(height, 900), 4000))
        time.sleep(0.4)
    driver.save_screenshot(str(path))
    return path


def main(argv: list[str]) -> None:  # pragma: no cover - by hand
    url, out = argv[0], Path(argv[1])
    dark = len(argv) > 2 and argv[2] == "dark"
    with tempfile.TemporaryDirectory() as profile, chromium(Path(profile)) as driver:
        driver.get(url)
        if dark:
            set_dark(driver, True)
        settled(driver)
        time.sleep(1.5)
        settled(driver)
        screenshot(driver, out)
        for entry in driver.get_log("browser"):
            print(entry)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
