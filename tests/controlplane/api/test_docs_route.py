"""The alert pages the shipped rules' runbook_url annotations point at are served."""

from __future__ import annotations

import pytest

from controlplane.app import create_app
from controlplane.config import Config
from tests.conftest import ROOT


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return create_app(Config(docs_dir=ROOT / "docs"), pipeline=False).test_client()


def test_every_alert_page_is_served(client) -> None:  # type: ignore[no-untyped-def]
    pages = sorted((ROOT / "docs" / "alerts").glob("*.md"))
    assert pages
    for page in pages:
        r = client.get(f"/docs/alerts/{page.name}")
        assert r.status_code == 200, page
        assert r.get_data(as_text=True) == page.read_text()
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/docs/alerts/").get_data(as_text=True).startswith("#")


@pytest.mark.parametrize("name", ["Nope.md", "..%2F..%2FREADME.md", "a.b.md", "x/../README.md"])
def test_nothing_else_is(client, name: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(f"/docs/alerts/{name}")
    assert r.status_code == 404
    assert r.is_json
