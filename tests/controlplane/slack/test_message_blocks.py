"""Block Kit rendering: pure, data in, blocks out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from controlplane.notify.alerts import Alert, AlertStatus, GroupKey
from controlplane.notify.slack_blocks import (
    BLOCKS_MAX,
    HEADER_MAX,
    SECTION_MAX,
    Automation,
    ExecutionRef,
    MessageView,
    incident_url,
    render,
    reply,
)
from tests.controlplane.slack.standin_helpers import KEY, T0, alert


def view(alerts: list[Alert], **more: Any) -> MessageView:
    status = AlertStatus.FIRING if any(a.ends_at is None for a in alerts) else AlertStatus.RESOLVED
    fields: dict[str, Any] = {
        "key": KEY,
        "receiver": "oncall",
        "status": status,
        "alerts": tuple(alerts),
        "started_at": min(a.starts_at for a in alerts),
        "external_url": "http://cp.example:8000/",
    }
    return MessageView(**(fields | more))


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def of_type(blocks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == kind]


def test_a_firing_group_shows_severity_summary_labels_and_links() -> None:
    text, blocks = render(view([alert("pgsoft")]))
    assert text == "[FIRING:1] ProviderDown (region=eu): pgsoft is down"
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": ":red_circle: [FIRING:1] ProviderDown (region=eu)",
            "emoji": True,
        },
    }
    overview = blocks[1]["text"]["text"]
    assert "*Severity* `page`" in overview and "*pgsoft is down*" in overview
    fields = [f["text"] for f in of_type(blocks, "section")[1]["fields"]]
    assert fields == ["*region*\neu", "*provider*\npgsoft"]
    links = of_type(blocks, "context")[-1]["elements"]
    # the incident is named by the minute its first alert started, in UTC
    assert (
        links[0]["text"]
        == "<http://cp.example:8000/dash/incidents/20260302-1115|Incident timeline>"
    )
    assert links[1]["text"] == "<http://docs/ProviderDown|Runbook>"
    assert of_type(blocks, "actions") == []


def test_the_incident_is_the_groups_first_alert() -> None:
    later = Alert.of({"alertname": "X"}, starts_at=T0 + timedelta(hours=3))
    assert incident_url(view([later], started_at=T0)).endswith("/dash/incidents/20260302-1115")


def test_several_alerts_are_listed_by_what_sets_them_apart() -> None:
    ended = T0 + timedelta(minutes=4)
    _, blocks = render(view([alert("pgsoft"), alert("evolution", ends_at=ended)]))
    listing = of_type(blocks, "section")[2]["text"]["text"]
    assert "`provider=pgsoft` since 11:15 UTC" in listing
    assert ":white_check_mark: `provider=evolution` resolved 11:19 UTC" in listing
    assert "1 firing, 1 resolved" in blocks[1]["text"]["text"]


def test_a_resolved_group_says_so() -> None:
    ended = T0 + timedelta(minutes=4)
    text, blocks = render(view([alert("pgsoft", ends_at=ended)]))
    assert text.startswith("[RESOLVED] ProviderDown")
    assert blocks[0]["text"]["text"].startswith(":white_check_mark:")


def test_an_slo_alert_shows_its_error_budget() -> None:
    burn = Alert.of(
        {
            "alertname": "LaunchSuccessBudgetBurn",
            "severity": "page",
            "slo_id": "launches-launch-success",
            "slo_service": "launches",
            "slo_name": "launch-success",
            "slo_severity": "page",
        },
        starts_at=T0,
        annotations={"summary": "burning", "budget_burnt": "12%"},
    )
    _, blocks = render(view([burn]))
    budget = texts(blocks)
    assert (
        "*Error budget* · SLO <http://cp.example:8000/dash/slos/launches-launch-success|" in budget
    )
    assert "budget burnt: 12%" in budget and "launches launch-success" in budget
    assert "slo_id" not in json.dumps(of_type(blocks, "section")[1].get("fields", []))


def test_automation_state_and_buttons_when_given() -> None:
    automation = Automation(
        paused=True,
        reason="maintenance (alice)",
        executions=(
            ExecutionRef(id="ex1", runbook="isolate-provider", state="running", target="eu/pgsoft"),
        ),
    )
    seen: list[MessageView] = []

    def buttons(v: MessageView) -> list[dict[str, Any]]:
        seen.append(v)
        return [{"type": "button", "action_id": f"b{i}"} for i in range(30)]

    _, blocks = render(view([alert("pgsoft")], automation=automation), actions=buttons)
    assert "*Automation paused* maintenance (alice)" in texts(blocks)
    assert (
        "<http://cp.example:8000/dash/executions/ex1|isolate-provider> on eu/pgsoft: running"
        in texts(blocks)
    )
    [actions] = of_type(blocks, "actions")
    assert len(actions["elements"]) == 25  # Slack's limit per actions block
    assert seen[0].key == KEY


def test_text_is_escaped_and_clipped_to_slacks_limits() -> None:
    loud = Alert.of(
        {"alertname": "A" * 300, "team": "<b&b>"},
        starts_at=T0,
        annotations={"summary": "<!channel> & more", "description": "x" * 5000},
    )
    many = [Alert.of({"alertname": "A" * 300, "i": str(i)}, starts_at=T0) for i in range(60)]
    text, blocks = render(view([loud, *many], key=GroupKey(route_key="{}", labels=())))
    assert len(blocks[0]["text"]["text"]) <= HEADER_MAX
    assert all(
        len(b["text"]["text"]) <= SECTION_MAX for b in of_type(blocks, "section") if "text" in b
    )
    assert len(blocks) <= BLOCKS_MAX
    assert "&lt;!channel&gt; &amp; more" in texts(blocks) and "<!channel>" not in text
    assert "… and 51 more" in texts(blocks)


def test_a_configured_title_text_and_mention() -> None:
    text, blocks = render(
        view([alert("pgsoft")], title="Provider down", text="See *#ops*", mention="<!here>")
    )
    assert text == "<!here> Provider down: See *#ops*"
    assert blocks[0]["text"]["text"].endswith("Provider down")
    assert blocks[1]["text"]["text"].startswith("<!here>\n")


def test_a_reply_in_a_thread() -> None:
    text, blocks = reply(
        "warning",
        "runbook isolate on eu: rolled_back (<verify failed>)",
        ("http://x/e/1", "execution 1"),
    )
    assert text == "runbook isolate on eu: rolled_back (<verify failed>)"
    assert blocks[0]["text"]["text"].startswith(":warning: runbook isolate")
    assert "&lt;verify failed&gt;" in blocks[0]["text"]["text"]
    assert blocks[1]["elements"][0]["text"] == "<http://x/e/1|execution 1>"
