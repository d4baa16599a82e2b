from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import ConfigError
from controlplane.runbooks import templates
from controlplane.runbooks.load import load_runbook, load_runbooks
from controlplane.runbooks.model import Mode

# the runbook example of docs/design.md
DESIGN_EXAMPLE = """\
name: isolate-provider
description: Take a failing provider out of routing; new sessions go to healthy providers.
trigger: {alert: ProviderLaunchFailing, matchers: {severity: page}}
mode: auto                # auto | approval | shadow | manual
guards:
  cooldown: 10m           # per target
  max_concurrent: 1
  blast_radius: {max_isolated_providers: 2, max_isolated_fraction: 0.25}
steps:
  - id: isolate
    action: provider.isolate
    with: {region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}
verify:
  expr: 'casino:launch_success:ratio_rate1m{region="{{ $labels.region }}"} > 0.99'
  within: 60s
rollback:
  - action: provider.restore
    with: {region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}
on_resolved:
  - action: provider.restore
    with: {region: "{{ $labels.region }}", provider: "{{ $labels.provider }}", canary_percent: 10}
"""


def write(tmp_path: Path, text: str, name: str = "isolate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_design_example_loads_into_typed_values(tmp_path: Path) -> None:
    rb = load_runbook(write(tmp_path, DESIGN_EXAMPLE), known_alerts={"ProviderLaunchFailing"})
    assert rb.mode is Mode.AUTO
    assert rb.guards.cooldown_s == 600
    assert rb.guards.blast_radius is not None
    assert rb.guards.blast_radius.max_isolated_fraction == 0.25
    assert [s.action for s in rb.steps] == ["provider.isolate"]
    assert rb.verify is not None and rb.verify.within_s == 60
    assert rb.on_resolved[0].params["canary_percent"] == 10
    assert rb.trigger is not None
    assert rb.trigger.matches({"alertname": "ProviderLaunchFailing", "severity": "page"})
    assert not rb.trigger.matches({"alertname": "ProviderLaunchFailing", "severity": "ticket"})


@pytest.mark.parametrize(
    ("old", "new", "field", "why"),
    [
        (
            "action: provider.isolate",
            "action: provider.explode",
            "steps[0].action",
            "unknown action",
        ),
        (
            'provider: "{{ $labels.provider }}"}\nverify',
            'provider: "{{ $labels.provider }}", force: true}\nverify',
            "steps[0].with.force",
            "unknown parameter",
        ),
        ("cooldown: 10m", "cooldown: 10 minutes", "guards.cooldown", "not a duration"),
        ("within: 60s", "within: soon", "verify.within", "not a duration"),
        ("alert: ProviderLaunchFailing", "alert: NoSuchAlert", "trigger.alert", "no rule defines"),
        (
            'region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}\nverify',
            'region: "{{ .Labels.region }}", provider: "x"}\nverify',
            "steps[0].with.region",
            "is not allowed",
        ),
        (
            '{region: "{{ $labels.region }}", provider: "{{ $labels.provider }}", canary_percent: 10}',
            '{region: "{{ $labels.region }}", provider: "x", canary_percent: 1000}',
            "on_resolved[0].with.canary_percent",
            "must be <= 100",
        ),
        ("> 0.99'", "> > 0.99'", "verify.expr", "invalid PromQL"),
        ("mode: auto ", "mode: yolo ", "mode", "unknown mode"),
        (
            "max_isolated_fraction: 0.25",
            "max_isolated_fraction: 4",
            "max_isolated_fraction",
            "fraction",
        ),
        (
            "  max_concurrent: 1",
            "  max_concurrent: 1\n  colour: red",
            "guards.colour",
            "unknown field",
        ),
        (
            '{region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}\nverify',
            '{region: "{{ $params.region }}", provider: "x"}\nverify',
            "steps[0].with.region",
            "not declared",
        ),
        (
            '    with: {region: "{{ $labels.region }}", provider: "{{ $labels.provider }}"}\nverify',
            '    with: {region: "{{ $labels.region }}"}\nverify',
            "steps[0].with",
            "needs parameter",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, old: str, new: str, field: str, why: str
) -> None:
    assert old in DESIGN_EXAMPLE, old
    path = write(tmp_path, DESIGN_EXAMPLE.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_runbook(path, known_alerts={"ProviderLaunchFailing"})
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert field in message and why in message, message


def test_manual_runbooks_need_no_trigger_and_others_do(tmp_path: Path) -> None:
    text = DESIGN_EXAMPLE.replace(
        "trigger: {alert: ProviderLaunchFailing, matchers: {severity: page}}\n", ""
    )
    with pytest.raises(ConfigError, match="trigger: required unless mode is manual"):
        load_runbook(write(tmp_path, text))
    rb = load_runbook(write(tmp_path, text.replace("mode: auto", "mode: manual")))
    assert rb.trigger is None and rb.mode is Mode.MANUAL


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, DESIGN_EXAMPLE, "a.yaml")
    write(tmp_path, DESIGN_EXAMPLE, "b.yaml")
    with pytest.raises(ConfigError, match="also defined in"):
        load_runbooks(tmp_path)


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_runbook(path)


def test_render_fills_only_the_allowed_forms() -> None:
    ctx = templates.Context(labels={"region": "eu"}, value=0.5, params={"n": 3})
    assert templates.render("{{ $labels.region }}/{{$value}}/{{ $params.n }}", ctx) == "eu/0.5/3"
    with pytest.raises(ConfigError, match="not set"):
        templates.render("{{ $labels.provider }}", ctx)
    with pytest.raises(ConfigError, match="not allowed"):
        templates.references('{{ printf "%s" $labels.region }}')
