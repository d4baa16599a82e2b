"""Every shipped alert, the generated SLO alerts included, says what it is and where its page
is: non-empty summary and description, and a runbook_url under the external URL that is a page
of docs/alerts/ with the five sections the on-call engineer looks for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from controlplane.pipeline import rule_groups
from controlplane.rules.model import AlertingRule
from controlplane.rules.templates import TemplateContext, expand
from tests.conftest import ROOT

PAGES = ROOT / "docs" / "alerts"
RUNBOOK_URL = re.compile(r"\{\{ \$externalURL \}\}/(docs/alerts/[A-Za-z0-9_-]+\.md)")
SECTIONS = (
    "## What it means",
    "## How it is computed",
    "## Likely causes",
    "## What the automation does",
    "## What to do",
)


def shipped_alerts() -> list[AlertingRule]:
    return [
        rule
        for group in rule_groups(ROOT / "rules")
        for rule in group.rules
        if isinstance(rule, AlertingRule)
    ]


def page_of(rule: AlertingRule) -> Path:
    url = dict(rule.annotations).get("runbook_url", "")
    match = RUNBOOK_URL.fullmatch(url)
    assert match, (
        f"{rule.name}: runbook_url {url!r} is not '{{{{ $externalURL }}}}/docs/alerts/<page>.md'"
    )
    return ROOT / match[1]


def test_the_shipped_alerts_are_all_here() -> None:
    names = {rule.name for rule in shipped_alerts()}
    assert {
        "ProviderFailing",
        "RegionDown",
        "WalletQueueStale",
        "LaunchSuccessBudgetBurn",
        "WalletLatencyBudgetBurn",
        "Watchdog",
        "ControlPlaneNotificationsFailing",
    } <= names
    assert len(names) >= 11 + 4 + 6


@pytest.mark.parametrize("rule", shipped_alerts(), ids=lambda r: r.name)
def test_every_shipped_alert_has_summary_description_and_a_page(rule: AlertingRule) -> None:
    annotations = dict(rule.annotations)
    assert annotations.get("summary", "").strip(), f"{rule.name}: no summary"
    assert annotations.get("description", "").strip(), f"{rule.name}: no description"
    page = page_of(rule)
    assert page.is_file(), f"{rule.name}: {page} does not exist"
    text = page.read_text()
    assert rule.name in text, f"{page.name} does not mention {rule.name}"
    # the link is the control plane's external URL + the file's path in the repository
    ctx = TemplateContext(labels={"alertname": rule.name}, external_url="https://cp.example")
    url = expand(annotations["runbook_url"], "runbook_url", ctx)
    assert url == f"https://cp.example/{page.relative_to(ROOT)}"


def test_every_page_is_linked_and_has_the_sections() -> None:
    linked = {page_of(rule) for rule in shipped_alerts()}
    pages = {p for p in PAGES.glob("*.md") if p.name != "README.md"}
    assert pages == linked, "pages without an alert, or alerts without a page"
    index = (PAGES / "README.md").read_text()
    for page in sorted(pages):
        text = page.read_text()
        assert text.startswith("# "), page.name
        positions = [text.find(section + "\n") for section in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), (page.name, positions)
        assert f"({page.name})" in index, f"README.md does not list {page.name}"


@pytest.mark.parametrize("path", sorted((ROOT / "runbooks").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_page_of_each_runbooks_trigger_names_the_runbook_and_its_mode(path: Path) -> None:
    runbook = yaml.safe_load(path.read_text())
    trigger = runbook.get("trigger")
    if not trigger:
        pytest.skip(f"{path.name} has no alert trigger")
    rule = next(r for r in shipped_alerts() if r.name == trigger["alert"])
    text = page_of(rule).read_text()
    # the header line says which runbook acts and how; the section says what it does
    assert f"**{runbook['name']}**, mode `{runbook.get('mode', 'auto')}`" in text
    automation = text[text.index("## What the automation does") : text.index("## What to do")]
    assert f"runbooks/{path.name}" in automation
