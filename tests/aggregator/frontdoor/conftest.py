"""Fixtures of the front door tests."""

from __future__ import annotations

import pytest
from frontdoor_fakes import FakeTransport


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()
