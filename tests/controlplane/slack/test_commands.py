"""The slash command, signed as Slack signs it: acknowledged at once, done on the worker,
answered through response_url, audited, through the same Operations as the HTTP API."""

from __future__ import annotations

from controlplane.runbooks.store import State
from controlplane.slack.commands import split_words
from tests.controlplane.slack.conftest import SlackWorld
from tests.controlplane.slack.slackreq import command, trigger


def outcomes(world: SlackWorld) -> list[tuple[str | None, str, str]]:
    return [(e["user"], e["command"], e["outcome"]) for e in world.events("slack_command")]


def test_pause_from_slack_shows_in_the_api(world: SlackWorld) -> None:
    response = command(world, "UONCALL", "pause provider storm")
    assert response.status_code == 200
    assert response.get_json()["response_type"] == "ephemeral"  # "working on it", at once
    automation = world.app.test_client().get("/api/v1/automation").get_json()
    assert automation["paused"] is True
    assert (automation["reason"], automation["changed_by"]) == ("provider storm", "oncall")
    assert world.slack_side.ephemerals() == [
        "automation paused: no runbook acts by itself until resumed"
    ]
    assert outcomes(world) == [("oncall", "pause", "accepted")]
    assert world.events("automation_paused") == [{"reason": "provider storm"}]


def test_roles_as_in_the_access_file(world: SlackWorld) -> None:
    command(world, "UVERA", "pause")  # a viewer may not
    command(world, "UNOBODY", "pause")  # nor a stranger
    assert world.ops.switches.automation()[0] is False
    command(world, "UONCALL", "pause")
    command(world, "UONCALL", "resume")  # an operator pauses, only an approver resumes
    assert world.ops.switches.automation()[0] is True
    command(world, "UALICE", "resume")
    assert world.ops.switches.automation()[0] is False
    assert outcomes(world) == [
        ("vera", "pause", "forbidden"),
        (None, "pause", "unknown_user"),
        ("oncall", "pause", "accepted"),
        ("oncall", "resume", "forbidden"),
        ("alice", "resume", "accepted"),
    ]
    refusals = world.slack_side.ephemerals()
    assert "vera (viewer) may not pause" in refusals[0]
    assert "not in the control plane's access file" in refusals[1]
    assert "oncall (operator) may not resume" in refusals[3]


def test_silence_with_matchers_and_a_duration(world: SlackWorld) -> None:
    command(world, "UONCALL", 'silence alertname=RegionDown region="eu" 2h')
    command(world, "UONCALL", 'silence {alertname=~"Wallet.*", region!=latam} 30m')
    command(world, "UONCALL", "silence region=eu forever")
    command(world, "UONCALL", "silence region=eu 90d")  # over silence_max_duration
    silences = world.ops.silencing.silences.list_silences()  # type: ignore[union-attr]
    shown = sorted(tuple(s.matcher_strings) for s in silences)
    assert shown == [
        ('alertname="RegionDown"', 'region="eu"'),
        ('alertname=~"Wallet.*"', 'region!="latam"'),
    ]
    assert all(s.created_by == "oncall" for s in silences)
    assert [o for _u, _c, o in outcomes(world)] == [
        "accepted",
        "accepted",
        "bad_request",
        "bad_request",
    ]


def test_run_a_runbook_with_labels(world: SlackWorld) -> None:
    command(world, "UONCALL", "run replay-wallet-queue region=eu --dry-run")
    command(world, "UONCALL", "run replay-wallet-queue region=eu")
    command(world, "UONCALL", "run no-such-runbook region=eu")
    runs = world.executions.find(runbook="replay-wallet-queue")
    assert sorted(e.state.value for e in runs) == [State.RUNNING.value, State.SHADOWED.value]
    assert all(e.requested_by == "oncall" and e.labels == {"region": "eu"} for e in runs)
    assert len(world.jobs) == 1
    assert [o for _u, _c, o in outcomes(world)] == ["accepted", "accepted", "conflict"]
    assert "unknown runbook" in world.slack_side.ephemerals()[-1]


def test_status_says_what_waits(world: SlackWorld) -> None:
    ex = world.pending_drain()
    command(world, "UVERA", "status")  # reading: any role
    text = world.slack_side.ephemerals()[0]
    assert "automation: on" in text and "waiting for approval: 1" in text and ex.id in text


def test_a_retried_command_acts_once(world: SlackWorld) -> None:
    again = trigger()
    command(world, "UONCALL", "run replay-wallet-queue region=eu", trigger_id=again)
    retry = command(
        world,
        "UONCALL",
        "run replay-wallet-queue region=eu",
        trigger_id=again,
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry.status_code == 200
    assert len(world.executions.find(runbook="replay-wallet-queue")) == 1
    assert [e["outcome"] for e in world.events("slack_command")] == ["accepted", "duplicate"]


def test_help_and_unknown_commands(world: SlackWorld) -> None:
    command(world, "UONCALL", "")
    command(world, "UONCALL", "reboot everything")
    texts = world.slack_side.ephemerals()
    assert texts[0].startswith("usage:") and "unknown command 'reboot'" in texts[1]


def test_words_split_outside_quotes() -> None:
    assert split_words('a="x y", b=~"z,w"} 2h') == ['a="x y"', 'b=~"z,w"', "2h"]
    assert split_words('{alertname="A \\" B"} 1h') == ['alertname="A \\" B"', "1h"]
    assert split_words("  ") == []
