"""Acting from the dashboards, below the browser: `acting.act` with the request a click makes
(the session cookie, the CSRF token the page echoes, the Origin), through the same operations
as the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from controlplane.access.session import COOKIE
from controlplane.runbooks.store import State
from dashboards import actions
from dashboards.acting import Outcome, act, session_view
from dashboards.activity import current_alerts
from tests.dashboards.acting_scenario import ActingWorld, build_acting
from tests.people import people


@pytest.fixture
def world(tmp_path: Path) -> ActingWorld:
    return build_acting(tmp_path)


@contextmanager
def clicked(
    world: ActingWorld, who: str | None, *, origin: str = "http://localhost"
) -> Iterator[dict[str, Any]]:
    """A click's request by `who` (None: not signed in); yields what the page holds."""
    headers = {"Origin": origin}
    if who is not None:
        user = people()().by_name(who)
        assert world.reads.acting is not None and user is not None
        headers["Cookie"] = f"{COOKIE}={world.reads.acting.sessions.issue(user)}"
    with world.app.test_request_context(
        "/dash/_dash-update-component", method="POST", headers=headers
    ):
        yield session_view(world.reads.acting)


def click(world: ActingWorld, who: str | None, do: Any, **kw: Any) -> Outcome:
    with clicked(world, who, **kw) as page:
        return act(world.reads.acting, page, do)


def pending_drain(world: ActingWorld) -> str:
    (found,) = world.reads.executions.find(states=[State.PENDING_APPROVAL])
    return found.id


def test_nobody_acts_without_signing_in_or_from_a_stale_page(world: ActingWorld) -> None:
    assert click(world, None, actions.pause_do("x")).message == "sign in with your token to act"
    assert (
        "stale"
        in click(world, "oncall", actions.pause_do("x"), origin="https://evil.example").message
    )
    with clicked(world, "oncall") as page:
        forged = act(world.reads.acting, {**page, "csrf": "guessed"}, actions.pause_do("x"))
    assert not forged.ok and "stale" in forged.message
    assert world.reads.automation.automation()[0] is False


def test_a_viewer_is_refused_and_nothing_changes(world: ActingWorld) -> None:
    drain = pending_drain(world)
    before = len(world.reads.audit.events())
    refused = click(world, "vera", actions.approve_do(drain))
    assert not refused.ok and "vera (viewer) may not approve" in refused.message
    assert world.reads.executions.get(drain).state is State.PENDING_APPROVAL
    assert len(world.reads.audit.events()) == before and world.jobs == []


def test_two_approvers_approve_and_the_drain_runs(world: ActingWorld) -> None:
    labels = {"region": "latam"}
    asked = click(world, "oncall", actions.run_do("drain-region", labels, dry_run=False))
    drain = (asked.link or "").rsplit("/", 1)[1]
    assert world.reads.executions.get(drain).state is State.PENDING_APPROVAL
    first = click(world, "alice", actions.approve_do(drain))
    assert first.ok and "1 approval(s), now pending_approval" in first.message
    again = click(world, "alice", actions.approve_do(drain))
    assert not again.ok and "already approved by" in again.message
    own = click(world, "oncall", actions.approve_do(drain))
    assert not own.ok and "may not approve" in own.message
    second = click(world, "bob", actions.approve_do(drain))
    assert second.ok and second.message.endswith("now running")
    assert world.reads.executions.get(drain).state is State.RUNNING and len(world.jobs) == 1
    approved = [
        e.actor for e in world.reads.audit.events(execution_id=drain) if e.kind == "approved"
    ]
    assert approved == ["alice", "bob"]


def test_an_operator_pauses_and_an_approver_resumes(world: ActingWorld) -> None:
    paused = click(world, "oncall", actions.pause_do("bad deploy"))
    assert paused.ok and world.reads.automation.automation()[:3] == (True, "bad deploy", "oncall")
    refused = click(world, "oncall", actions.resume_do())
    assert not refused.ok and "may not resume" in refused.message
    assert click(world, "alice", actions.resume_do()).ok
    kinds = [(e.kind, e.actor) for e in world.reads.audit.events()[-2:]]
    assert kinds == [("automation_paused", "oncall"), ("automation_resumed", "alice")]


def test_silencing_an_alert_for_an_hour(world: ActingWorld) -> None:
    rows, _ = current_alerts(world.reads)
    options = actions.alert_options(rows)
    chosen = next(o["value"] for o in options if o["value"].startswith("alertname=ProviderFailing"))
    matchers = actions.matchers_of(chosen, rows)
    assert matchers == {"alertname": "ProviderFailing", "provider": "evolution", "region": "eu"}
    assert not click(world, "vera", actions.silence_do(matchers, 1, world.reads.clock())).ok
    done = click(world, "oncall", actions.silence_do(matchers, 1, world.reads.clock()))
    assert done.ok and "for 1h" in done.message
    (event,) = [e for e in world.reads.audit.events() if e.kind == "silence_created"]
    assert event.actor == "oncall" and event.data["matchers"] == [
        'alertname="ProviderFailing"',
        'provider="evolution"',
        'region="eu"',
    ]
    assert event.data["endsAt"] == "2026-03-02T13:00:00Z"


def test_a_manual_run_is_planned_and_its_requester_cannot_approve_it(world: ActingWorld) -> None:
    labels, problem = actions.parse_labels("region=latam")
    assert problem is None and actions.parse_labels("region")[1] == "'region' is not name=value"
    plan = click(world, "alice", actions.run_do("drain-region", labels, dry_run=True))
    assert plan.ok and "dry run" in plan.message and plan.link is not None
    assert world.reads.executions.get(plan.link.rsplit("/", 1)[1]).dry_run is True
    assert world.jobs == []
    run = click(world, "alice", actions.run_do("drain-region", labels, dry_run=False))
    ex_id = (run.link or "").rsplit("/", 1)[1]
    own = click(world, "alice", actions.approve_do(ex_id))
    assert not own.ok and "alice requested" in own.message and "cannot approve" in own.message
    assert click(world, "root", actions.approve_do(ex_id)).ok  # an admin who did not ask may
