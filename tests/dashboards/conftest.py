"""The incident scenario (tests/dashboards/scenario.py), built once per session, served on a
free port, and a real Chromium to look at it (skipped locally without one, failed under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboards import ReadModels
from tests.conftest import ServedApp, require
from tests.dashboards import browser
from tests.dashboards.scenario import build


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Flask, ReadModels]:
    return build(tmp_path_factory.mktemp("dashboards"))


@pytest.fixture(scope="session")
def reads(scenario: tuple[Flask, ReadModels]) -> ReadModels:
    return scenario[1]


@pytest.fixture(scope="session")
def served(scenario: tuple[Flask, ReadModels]) -> Iterator[ServedApp]:
    server = ServedApp(scenario[0])
    yield server
    server.close()


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[Any]:
    why = browser.available()
    require(why is None, why or "")
    with browser.chromium(tmp_path / "profile") as driver:
        yield driver
