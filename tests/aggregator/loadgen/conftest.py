"""Fixtures of the load generator tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loadgen_fakes import FakeTarget, fake_http_app

from tests.aggregator.served import Served


@pytest.fixture
def fake() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def served(fake: FakeTarget) -> Iterator[Served]:
    server = Served(fake_http_app(fake))
    yield server
    server.close()
