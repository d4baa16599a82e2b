from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import ConfigError
from controlplane.model.series import MatchOp, labels_from
from controlplane.notify.matchers import (
    matcher_string,
    matchers_string,
    matches,
    parse_matcher,
    parse_matchers,
)
from controlplane.notify.routing import load_routing
from tests.conftest import ROOT
from tests.controlplane.notify.conftest import (
    FakeClock,
    RecordingNotifier,
    alert,
    make_dispatcher,
    routing_from,
)


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ("alertname=X", "alertname", MatchOp.EQ, "X"),
        ('alertname="X"', "alertname", MatchOp.EQ, "X"),
        ("  severity != page ", "severity", MatchOp.NE, "page"),
        ('region=~"eu|latam"', "region", MatchOp.RE, "eu|latam"),
        ("region!~eu.*", "region", MatchOp.NRE, "eu.*"),
        ('msg="say \\"hi\\""', "msg", MatchOp.EQ, 'say "hi"'),
        ('msg="a\\nb"', "msg", MatchOp.EQ, "a\nb"),
        ("path=C:\\x", "path", MatchOp.EQ, "C:\\x"),  # a spurious escape stays literal
        ("empty=", "empty", MatchOp.EQ, ""),
        ('job:name="x,y"', "job:name", MatchOp.EQ, "x,y"),
    ],
)
def test_matcher_syntax(text: str, name: str, op: MatchOp, value: str) -> None:
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == (name, op, value)


@pytest.mark.parametrize(
    "text",
    ["", "alertname", "=x", "1a=b", 'a="unterminated', 'a="x"y"', "a=~(", "a~=b"],
)
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(text)


def test_several_matchers_per_line_and_rendering() -> None:
    found = parse_matchers('{alertname="A", region=~"eu|latam",msg="x,y"}')
    assert [matcher_string(m) for m in found] == [
        'alertname="A"',
        'region=~"eu|latam"',
        'msg="x,y"',
    ]
    assert matchers_string(parse_matchers('b!="1", a="2"')) == '{b!="1",a="2"}'


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ("region=~eu", {"region": "eu"}, True),
        ("region=~eu", {"region": "eu-west"}, False),  # anchored: not a substring search
        ("region=~eu", {"region": "xeu"}, False),
        ("region=~eu.*", {"region": "eu-west"}, True),
        ("region=~eu|latam", {"region": "latam"}, True),
        ("region!~eu|latam", {"region": "us"}, True),
        ("region!~eu|latam", {"region": "eu"}, False),
        ("severity!=page", {}, True),  # a missing label is the empty string
        ("severity=", {}, True),
        ("severity=~.+", {}, False),
        ("severity=~.*", {}, True),
    ],
)
def test_matching_is_anchored(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert matches([parse_matcher(matcher)], labels_from(labels)) is expected


TREE = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['severity="page"']
      receiver: pager
      routes:
        - matchers: ['region="eu"']
          receiver: pager-eu
        - match_re: {region: "latam|us"}
          receiver: pager-americas
    - match: {team: wallet}
      receiver: wallet-log
      continue: true
      group_by: ['...']
    - matchers: ['team=~"wallet|games"']
      receiver: teams
      group_by: []
    - matchers: ['team="wallet"']
      receiver: never   # a previous sibling without continue already took it
receivers:
  - {name: default}
  - {name: pager}
  - {name: pager-eu}
  - {name: pager-americas}
  - {name: wallet-log}
  - {name: teams}
  - {name: never}
"""


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "A"}, ["default"]),
        ({"alertname": "A", "severity": "page"}, ["pager"]),
        ({"alertname": "A", "severity": "page", "region": "eu"}, ["pager-eu"]),
        ({"alertname": "A", "severity": "page", "region": "us"}, ["pager-americas"]),
        ({"alertname": "A", "severity": "page", "region": "usa"}, ["pager"]),
        ({"alertname": "A", "team": "wallet"}, ["wallet-log", "teams"]),
        ({"alertname": "A", "team": "games"}, ["teams"]),
        ({"alertname": "A", "severity": "page", "team": "wallet"}, ["pager"]),
    ],
)
def test_route_tree(labels: dict[str, str], receivers: list[str]) -> None:
    config = routing_from(TREE)
    found = config.route.match(labels_from(labels))
    assert [r.options.receiver for r in found] == receivers


def test_group_by_inheritance_and_all_labels() -> None:
    config = routing_from(TREE)
    labels = labels_from({"alertname": "A", "team": "wallet", "region": "eu"})
    wallet, teams = config.route.match(labels)
    assert wallet.options.group_by_all
    assert wallet.group_labels(labels) == labels
    assert teams.group_labels(labels) == (("alertname", "A"),)  # [] inherits, as in Alertmanager
    pager = config.route.routes[0]
    assert pager.group_labels(labels) == (("alertname", "A"),)  # inherited from the root
    assert pager.routes[0].options.group_by == ("alertname",)


def test_route_keys_are_alertmanagers() -> None:
    config = routing_from(TREE)
    pager = config.route.routes[0]
    assert config.route.key == "{}"
    assert pager.key == '{}/{severity="page"}'
    assert pager.routes[1].key == '{}/{severity="page"}/{region=~"latam|us"}'
    assert pager.routes[1].id == '{}/{severity="page"}/{region=~"latam|us"}/1'


def test_inherited_timings_and_defaults() -> None:
    config = routing_from(
        """
route:
  receiver: a
  group_wait: 10s
  routes:
    - {receiver: b, matchers: [x=1], repeat_interval: 1h30m}
receivers: [{name: a}, {name: b}]
"""
    )
    child = config.route.routes[0].options
    assert child.group_wait.total_seconds() == 10
    assert child.group_interval.total_seconds() == 300
    assert child.repeat_interval.total_seconds() == 5400


BASE = "receivers: [{name: a}]\n"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("route: {receiver: b}\n" + BASE, "route.receiver: undefined receiver 'b'"),
        (BASE, "route: missing"),
        ("route: {receiver: a, matchers: [x=1]}\n" + BASE, "route.matchers: the root route"),
        ("route: {receiver: a, continue: true}\n" + BASE, "route.continue"),
        (
            "route: {receiver: a, routes: [{matchers: ['x=~(']}]}\n" + BASE,
            "route.routes[0].matchers[0]: '(' is not a valid regex",
        ),
        (
            "route: {receiver: a, routes: [{matchers: ['x~1']}]}\n" + BASE,
            "route.routes[0].matchers[0]: bad matcher format",
        ),
        ("route: {receiver: a, group_wait: 5x}\n" + BASE, "route.group_wait: '5x' is not"),
        ("route: {receiver: a, group_interval: 0s}\n" + BASE, "route.group_interval"),
        ("route: {receiver: a, group_by: ['...', x]}\n" + BASE, "route.group_by: cannot"),
        ("route: {receiver: a, group_by: [x, x]}\n" + BASE, "route.group_by[1]: duplicated"),
        ("route: {receiver: a, group_by: [1x]}\n" + BASE, "route.group_by[0]"),
        ("route: {receiver: a, mute_time_intervals: [x]}\n" + BASE, "route.mute_time_intervals"),
        ("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]", "receivers[1].name: duplicate"),
        (
            "route: {receiver: a}\nreceivers: [{name: a, opsgenie_configs: [{}]}]",
            "receivers[0].opsgenie_configs: unknown or unsupported",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, email_configs: [{}]}]",
            "receivers[0].email_configs[0].to: None is not an email address",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: ftp://x}]}]",
            "receivers[0].webhook_configs[0].url: 'ftp://x'",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: "
            "[{url: 'http://x', max_alerts: -1}]}]",
            "receivers[0].webhook_configs[0].max_alerts",
        ),
        (
            "route: {receiver: a}\n" + BASE + "inhibit_rules: [{source_matchers: ['a=~[']}]",
            "inhibit_rules[0].source_matchers[0]",
        ),
        (
            "route: {receiver: a}\n" + BASE + "inhibit_rules: [{equal: [x], bogus: 1}]",
            "inhibit_rules[0].bogus: unknown field",
        ),
        ("route: {receiver: a}\n" + BASE + "global: {}", "global: unknown or unsupported"),
    ],
)
def test_config_errors_name_file_and_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        routing_from(text)
    assert str(info.value).startswith("test.yml: ")
    assert where in str(info.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.yml"
    path.write_text("route: [\n")
    with pytest.raises(ConfigError, match=r"routing\.yml: not valid YAML"):
        load_routing(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_routing(tmp_path / "absent.yml")


def test_shipped_routing_file() -> None:
    config = load_routing(ROOT / "config" / "routing.yml")
    page = labels_from({"alertname": "SLOBurn", "severity": "page", "region": "eu"})
    ticket = labels_from({"alertname": "SLOBurn", "severity": "ticket", "region": "eu"})
    other = labels_from({"alertname": "Unrouted"})
    assert [r.options.receiver for r in config.route.match(page)] == ["oncall"]
    assert [r.options.receiver for r in config.route.match(ticket)] == ["tickets"]
    assert [r.options.receiver for r in config.route.match(other)] == ["log"]
    # the dead man's switch gets the Watchdog, and nothing else does, whatever its severity
    for severity in ("none", "page"):
        watchdog = labels_from({"alertname": "Watchdog", "severity": severity})
        assert [r.options.receiver for r in config.route.match(watchdog)] == ["deadmansswitch"]
    assert config.route.options.group_by == ("alertname", "region")
    assert config.inhibit_rules[0].equal == ("alertname", "region")


def test_the_shipped_routing_sends_the_watchdog_every_minute(clock: FakeClock) -> None:
    notifiers: dict[str, RecordingNotifier] = {}
    dispatcher = make_dispatcher(load_routing(ROOT / "config" / "routing.yml"), clock, notifiers)
    dispatcher.put([alert("Watchdog", severity="none")])
    for second in range(0, 301, 5):
        dispatcher.tick(clock.at(seconds=second))
    sent = notifiers["deadmansswitch"].sent
    assert [s.names for s in sent] == [["Watchdog"]] * 6  # at 0s, 1m, ... 5m
    assert not any(n.sent for name, n in notifiers.items() if name != "deadmansswitch")
