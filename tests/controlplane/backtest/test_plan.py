"""What the runbooks would have done in a backtest: the planner on hand-made episodes (times are
seconds after T0), then `controlplane backtest` on an export with the shipped runbooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.backtest.plan import Decision, FiredEpisode, PlannedRun, plan
from controlplane.runbooks.guards import GuardDecision, Verdict
from controlplane.runbooks.load import load_runbook
from controlplane.runbooks.model import Runbook
from controlplane.tsdb.store import Store
from tests.conftest import ROOT
from tests.controlplane.backtest.test_replay import SPAN_S, T0, _append_provider_series, cli

END = T0 + 3_600_000
LABELS = "{{ $labels.region }}", "{{ $labels.provider }}"
ISOLATE = {
    "id": "isolate",
    "action": "provider.isolate",
    "with": {"region": LABELS[0], "provider": LABELS[1]},
}
RESTORE = {
    "id": "restore",
    "action": "provider.restore",
    "with": {"region": LABELS[0], "provider": LABELS[1], "canary_percent": 10},
}


def runbook(tmp_path: Path, **fields: Any) -> Runbook:
    doc = {
        "name": "isolate",
        "trigger": {"alert": "ProviderFailing", "matchers": {"severity": "page"}},
        "mode": "auto",
        "guards": {"cooldown": "10m", "max_concurrent": 5},
        "steps": [ISOLATE],
        "on_resolved": [RESTORE],
        **fields,
    }
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_runbook(path)


def fired(provider: str, at_s: int, resolved_s: int | None = None, **labels: str) -> FiredEpisode:
    base = {
        "alertname": "ProviderFailing",
        "region": "eu",
        "provider": provider,
        "severity": "page",
    }
    return FiredEpisode(
        labels={**base, **labels},
        fired_at_ms=T0 + at_s * 1000,
        resolved_at_ms=None if resolved_s is None else T0 + resolved_s * 1000,
    )


def outcomes(runs: tuple[PlannedRun, ...]) -> list[tuple[str, int, str]]:
    """(provider, seconds after T0, decision) per run."""
    return [(r.labels["provider"], (r.at_ms - T0) // 1000, r.decision.value) for r in runs]


def refused(guard: str, reason: str) -> GuardDecision:
    return GuardDecision(guard=guard, verdict=Verdict.REFUSE, reason=reason)


def test_shipped_isolate_provider_renders_its_steps_with_the_alert_labels() -> None:
    rb = load_runbook(ROOT / "runbooks" / "isolate-provider.yaml")
    episode = FiredEpisode(
        labels={
            "alertname": "ProviderFailing",
            "region": "eu",
            "provider": "alpha",
            "severity": "page",
        },
        fired_at_ms=T0 + 60_000,
        resolved_at_ms=T0 + 300_000,
        value=0.75,
    )
    (run,) = plan([episode], [rb], end_ms=END)
    assert (run.runbook, run.target, run.decision, run.at_ms) == (
        "isolate-provider",
        "provider/eu/alpha",
        Decision.WOULD_RUN,
        T0 + 60_000,
    )
    assert [(s.action, dict(s.params)) for s in run.steps] == [
        (
            "provider.isolate",
            {"region": "eu", "provider": "alpha", "reason": "ProviderFailing (0.75)"},
        ),
        (
            "notify",
            {
                "severity": "warning",
                "message": "isolated alpha in eu; launches fail over to equivalent games",
            },
        ),
    ]
    # the live state the blast radius needs is not in the telemetry: neither passed nor refused
    assert (run.refusals, run.not_evaluated) == ((), ("blast_radius",))
    assert run.resolved_at_ms == T0 + 300_000
    assert [(s.action, s.params.get("canary_percent")) for s in run.on_resolved] == [
        ("provider.restore", 10),
        ("wait", None),
        ("check", None),
        ("provider.restore", 100),
    ]
    assert 'provider="alpha"' in str(run.on_resolved[2].params["expr"])


@pytest.mark.parametrize(
    "episode",
    [
        fired("alpha", 0, severity="ticket"),  # the matcher wants severity=page
        fired("alpha", 0, alertname="ProviderLaunchFailing"),  # another alert
    ],
    ids=["matcher", "alertname"],
)
def test_alerts_the_trigger_does_not_match_plan_nothing(tmp_path: Path, episode: Any) -> None:
    assert plan([episode], [runbook(tmp_path)], end_ms=END) == ()


def test_manual_runbooks_never_run_from_alerts(tmp_path: Path) -> None:
    assert plan([fired("alpha", 0)], [runbook(tmp_path, mode="manual")], end_ms=END) == ()


@pytest.mark.parametrize(
    ("mode", "first", "second", "on_resolved"),
    [
        ("auto", "would_run", "refused", ["provider.restore"]),
        ("approval", "needs_approval", "refused", ["provider.restore"]),
        # shadowed runs are no history for the guards, and never reach on_resolved
        ("shadow", "shadow_only", "shadow_only", []),
    ],
)
def test_mode_decides(
    tmp_path: Path, mode: str, first: str, second: str, on_resolved: list[str]
) -> None:
    rb = runbook(tmp_path, mode=mode)
    runs = plan([fired("alpha", 0, 60), fired("alpha", 120, 140)], [rb], end_ms=END)
    assert outcomes(runs) == [("alpha", 0, first), ("alpha", 120, second)]
    assert [s.action for s in runs[0].on_resolved] == on_resolved


def test_cooldown_is_per_target(tmp_path: Path) -> None:
    episodes = [fired("alpha", 0, 60), fired("alpha", 120, 200), fired("beta", 130, 200)]
    runs = plan(episodes, [runbook(tmp_path)], end_ms=END)
    assert outcomes(runs) == [
        ("alpha", 0, "would_run"),
        ("alpha", 120, "refused"),
        ("beta", 130, "would_run"),
    ]
    again = runs[1]
    assert again.refusals == (
        refused("cooldown", "provider/eu/alpha last ran 120s ago, cooldown 600s"),
    )
    # tried again every 5 s while it fired (120, 125, ... 195), as the engine retries refusals
    assert (again.attempts, again.on_resolved) == (16, ())


def test_a_refused_run_goes_ahead_once_the_cooldown_is_over_if_its_alert_still_fires(
    tmp_path: Path,
) -> None:
    runs = plan([fired("alpha", 0, 60), fired("alpha", 120)], [runbook(tmp_path)], end_ms=END)
    assert outcomes(runs) == [("alpha", 0, "would_run"), ("alpha", 600, "would_run")]
    late = runs[1]
    assert (late.fired_at_ms, late.attempts) == (T0 + 120_000, 97)
    assert late.refusals == (
        refused("cooldown", "provider/eu/alpha last ran 120s ago, cooldown 600s"),
    )


def test_max_concurrent_counts_runs_until_their_alert_resolves_or_the_window_ends(
    tmp_path: Path,
) -> None:
    rb = runbook(tmp_path, guards={"cooldown": "0s", "max_concurrent": 1})
    episodes = [
        fired("alpha", 0, 100),
        fired("beta", 50, 70),  # alpha is still active
        fired("gamma", 120),  # alpha resolved; gamma never does
        fired("delta", 200, 220),  # gamma is active to the end of the window
    ]
    runs = plan(episodes, [rb], end_ms=END)
    assert outcomes(runs) == [
        ("alpha", 0, "would_run"),
        ("beta", 50, "refused"),
        ("gamma", 120, "would_run"),
        ("delta", 200, "refused"),
    ]
    assert (
        runs[1].refusals == runs[3].refusals == (refused("max_concurrent", "1 running, limit 1"),)
    )


def test_the_automation_budget_counts_earlier_actions_and_pauses_automation(
    tmp_path: Path,
) -> None:
    episodes = [fired("alpha", 0, 10), fired("beta", 20, 30), fired("gamma", 700, 710)]
    runs = plan(episodes, [runbook(tmp_path)], end_ms=END, budget_max_actions=2)
    assert outcomes(runs) == [
        ("alpha", 0, "would_run"),
        ("beta", 20, "refused"),
        ("gamma", 700, "refused"),
    ]
    # alpha's isolate at 0 and its restore at 10 used the budget
    assert runs[1].refusals == (
        refused("budget", "automation budget exhausted: 2 actions in the last 600s, limit 2"),
    )
    # past the window, but the engine paused automation until a human resumes it
    assert runs[2].refusals == (
        refused("kill_switch", "automation is paused: automation budget exceeded"),
    )


def test_actions_still_to_come_do_not_use_the_budget(tmp_path: Path) -> None:
    """alpha's restore at 100 s is not spent yet when beta fires at 20 s."""
    episodes = [fired("alpha", 0, 100), fired("beta", 20, 30)]
    runs = plan(episodes, [runbook(tmp_path)], end_ms=END, budget_max_actions=2)
    assert outcomes(runs) == [("alpha", 0, "would_run"), ("beta", 20, "would_run")]


def test_a_label_the_alert_lacks_refuses_the_run(tmp_path: Path) -> None:
    step = {**ISOLATE, "with": {"region": "{{ $labels.zone }}", "provider": LABELS[1]}}
    (run,) = plan([fired("alpha", 0)], [runbook(tmp_path, steps=[step])], end_ms=END)
    assert run.decision is Decision.REFUSED
    assert [d.guard for d in run.refusals] == ["template"]
    assert "$labels.zone is not set" in run.refusals[0].reason
    assert "$labels.zone is not set" in run.steps[0].error


@pytest.mark.parametrize(
    ("file", "alert", "not_evaluated"),
    [
        ("drain-region.yaml", "RegionDown", ("blast_radius",)),  # the healthy regions
        ("replay-wallet-queue.yaml", "WalletQueueBacklog", ("require",)),  # a live query
    ],
)
def test_guards_that_need_live_state_are_not_evaluated(
    file: str, alert: str, not_evaluated: tuple[str, ...]
) -> None:
    rb = load_runbook(ROOT / "runbooks" / file)
    (run,) = plan([fired("", 0, 60, alertname=alert)], [rb], end_ms=END)
    assert (run.decision, run.refusals, run.not_evaluated) == (
        Decision.WOULD_RUN,
        (),
        not_evaluated,
    )


def test_a_runbook_without_a_blast_radius_has_nothing_left_unevaluated(tmp_path: Path) -> None:
    step = {"id": "tell", "action": "notify", "with": {"message": "{{ $labels.provider }}"}}
    rb = runbook(tmp_path, steps=[step], on_resolved=[])
    (run,) = plan([fired("alpha", 0, 60)], [rb], end_ms=END)
    assert (run.decision, run.target, run.not_evaluated) == (
        Decision.WOULD_RUN,
        "none/eu/alpha",
        (),
    )


# -- the command -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Provider alpha in eu fails from T0+180s to T0+300s: ProviderFailing fires at +3m7s and
    resolves at +5m15s; beta stays healthy."""
    store = Store()
    _append_provider_series(store)
    path = tmp_path_factory.mktemp("plan") / "export.npz"
    store.export_range(T0, T0 + SPAN_S * 1000, path)
    return path


def test_backtest_reports_isolate_provider_acting_on_the_failing_provider(export: Path) -> None:
    shipped = (
        "--from",
        str(export),
        "--rules",
        str(ROOT / "rules"),
        "--runbooks",
        str(ROOT / "runbooks"),
    )
    code, out, err = cli(*shipped)
    assert (code, err) == (0, "")
    section = out[out.index("\nRunbooks: what would have acted") :].splitlines()
    assert section[2].startswith(
        "  +3m7s  isolate-provider  provider/eu/alpha  would_run"
        " [blast_radius not evaluated (needs live state)]"
        '  provider.isolate(region="eu", provider="alpha",'
        ' reason="ProviderFailing (0.7777777777777779)")'
        ' -> notify(severity="warning", message="isolated alpha in eu; '
    )
    assert (
        '; on resolved +5m15s: provider.restore(region="eu", provider="alpha", canary_percent=10) -> wait(duration="30s") -> check('
        in section[2]
    )
    assert section[3] == ""  # one run, then the summary
    assert "beta" not in "\n".join(section)

    code, out, err = cli(*shipped, "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["runbooks_dir"] == str(ROOT / "runbooks")
    (run,) = report["runbooks"]
    assert (run["runbook"], run["mode"], run["alert"], run["target"], run["decision"]) == (
        "isolate-provider",
        "auto",
        "ProviderFailing",
        "provider/eu/alpha",
        "would_run",
    )
    assert run["labels"] == {
        "alertname": "ProviderFailing",
        "region": "eu",
        "provider": "alpha",
        "severity": "page",
    }
    assert run["decided"] == {"at": "2023-11-14T22:16:27Z", "offset_s": 187.0}
    assert run["resolved"] == {"at": "2023-11-14T22:18:35Z", "offset_s": 315.0}
    assert run["steps"][0] == {
        "id": "isolate",
        "action": "provider.isolate",
        "params": {
            "region": "eu",
            "provider": "alpha",
            "reason": "ProviderFailing (0.7777777777777779)",
        },
        "error": None,
    }
    assert [s["id"] for s in run["on_resolved"]] == ["canary", "watch", "healthy", "full"]
    assert run["not_evaluated"] == [
        {"guard": "blast_radius", "reason": "not evaluated (needs live state)"}
    ]
    assert (run["refusals"], run["attempts"]) == ([], 1)


def test_backtest_without_runbooks(export: Path) -> None:
    args = ("--from", str(export), "--rules", str(ROOT / "rules"), "--no-runbooks")
    code, out, _ = cli(*args)
    assert code == 0 and "Runbooks:" not in out
    code, out, _ = cli(*args, "--json")
    assert code == 0
    assert (json.loads(out)["runbooks_dir"], json.loads(out)["runbooks"]) == (None, None)


def test_a_malformed_runbook_is_named_with_its_field_and_exits_2(
    tmp_path: Path, export: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "trigger": {"alert": "ProviderFailing"},
                "steps": [{"id": "x", "action": "provider.explode"}],
            }
        )
    )
    code, out, err = cli(
        "--from", str(export), "--rules", str(ROOT / "rules"), "--runbooks", str(tmp_path)
    )
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"controlplane backtest: {bad}: steps[0].action: ")
    assert "provider.explode" in line
    code, _, err = cli("--from", str(export), "--runbooks", str(tmp_path / "missing"))
    assert code == 2 and "no such runbook file or directory" in err


def test_backtest_says_when_no_runbook_would_have_acted(export: Path) -> None:
    """Before alpha fails nothing fires; the rules hold the runbooks' alerts, so the section
    is there, saying so."""
    code, out, _ = cli(
        "--from", str(export), "--rules", str(ROOT / "rules"), "--runbooks", str(ROOT / "runbooks"),
        "--end", str((T0 + 120_000) // 1000),
    )  # fmt: skip
    assert code == 0
    section = out[out.index("\nRunbooks: what would have acted") :].splitlines()
    assert section[2] == "  nothing: no alert fired that a runbook's trigger matches"
