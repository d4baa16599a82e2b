"""The control plane's part of `controlplane demo`: its environment (it scrapes every role of
the bundle, and itself, each second and acts on them with the shipped runbooks), its Slack (the
stand-in, controlplane/slack/standin.py, with a generated bot token and signing secret, and a
routing file that also posts pages and tickets there) and `--scenario NAME`, which injects a
named incident after a warm-up and prints the timeline as it happens."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from controlplane.demo.scenarios import SCENARIOS, Event, Follower, Outcome

DEMO_USERS = (
    "CONTROLPLANE_TOKEN_ONCALL",
    "CONTROLPLANE_TOKEN_ALICE",
    "CONTROLPLANE_TOKEN_BOB",
    "CONTROLPLANE_TOKEN_VIEWER",
)


# the receivers of config/routing.yml that also post to Slack in the demo, and where
SLACK_RECEIVERS: Mapping[str, Mapping[str, Any]] = {
    "oncall": {"channel": "#casino-oncall", "mention": "<!here>"},
    "tickets": {"channel": "#casino-tickets"},
}
SLACK_CHANNELS = tuple(str(c["channel"]).lstrip("#") for c in SLACK_RECEIVERS.values())
ROUTING_SOURCE = "config/routing.yml"


def slack_env(urls: Mapping[str, str], data: Path) -> dict[str, str]:
    """The control plane pointed at the stand-in: fresh secrets every run (a real token in the
    environment is never sent to it), and the demo's routing file."""
    return {
        "CONTROLPLANE_SLACK_API_URL": f"{urls['slack']}/api/",
        "CONTROLPLANE_SLACK_BOT_TOKEN": f"xoxb-demo-{secrets.token_hex(12)}",
        "CONTROLPLANE_SLACK_SIGNING_SECRET": secrets.token_hex(16),
        "CONTROLPLANE_ROUTING_FILE": str(data / "routing.yml"),
    }


def standin_args(port: int, controlplane_url: str) -> tuple[str, ...]:
    """The stand-in's command line (after `python -m`): its token and signing secret come
    from the environment it shares with the control plane."""
    channels = [arg for name in SLACK_CHANNELS for arg in ("--channel", name)]
    request_url = f"{controlplane_url}/slack/actions"
    return (
        "controlplane.slack.standin",
        "--port",
        str(port),
        "--request-url",
        request_url,
        *channels,
    )


def demo_routing(text: str, source: str) -> str:
    """`source`'s routing with the receivers of SLACK_RECEIVERS (those it has) also posting to
    the stand-in's channels, beside what they already do (Slack channels of their own are
    replaced: the demo's Slack is the stand-in, which has only its own channels)."""
    data = yaml.safe_load(text)
    for receiver in (data.get("receivers") or []) if isinstance(data, dict) else []:
        wanted = SLACK_RECEIVERS.get(str(receiver.get("name")))
        if wanted is not None:
            receiver["slack_configs"] = [dict(wanted)]
    header = (
        f"# Written by `controlplane demo` from {source}, at every start: the same routes, and\n"
        "# pages and tickets posted to the Slack stand-in too (see /dash/chat).\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def write_routing(source: Path, target: Path) -> None:
    try:
        text = source.read_text()
    except OSError as exc:
        raise SystemExit(
            f"controlplane demo: cannot read the routing file {source}: {exc}"
        ) from None
    target.write_text(demo_routing(text, str(source)))


def controlplane_env(
    urls: Mapping[str, str], data: Path, environ: Mapping[str, str], admin_token: str
) -> dict[str, str]:
    targets = ",".join(
        f"{job}={urls[name]}/metrics"
        for job, name in (
            ("wallet", "wallet"),
            ("region", "eu"),
            ("region", "latam"),
            ("frontdoor", "frontdoor"),
            # itself: the rules of rules/controlplane.yml read its own metrics
            ("controlplane", "controlplane"),
        )
    )
    return {
        "CONTROLPLANE_API_TOKEN": environ.get("CONTROLPLANE_API_TOKEN")
        or secrets.token_urlsafe(24),
        "CONTROLPLANE_SCRAPE_TARGETS": targets,
        "CONTROLPLANE_SCRAPE_INTERVAL": "1s",
        "CONTROLPLANE_SCRAPE_TIMEOUT": "900ms",
        "CONTROLPLANE_DATABASE_URL": f"sqlite:///{data / 'controlplane.db'}",
        "CONTROLPLANE_CHECKPOINT_PATH": str(data / "controlplane-store"),
        "CONTROLPLANE_FRONTDOOR_URL": urls["frontdoor"],
        "CONTROLPLANE_REGION_URLS": f"eu={urls['eu']},latam={urls['latam']}",
        "CONTROLPLANE_AGGREGATOR_TOKEN": admin_token,
        "CONTROLPLANE_EXTERNAL_URL": urls["controlplane"],
        # the people of config/access.yml, so that signing in and approving can be tried
        **{name: environ.get(name) or secrets.token_urlsafe(18) for name in DEMO_USERS},
    }


def run_scenario(
    name: str,
    *,
    urls: Mapping[str, str],
    admin_token: str,
    stop: threading.Event,
    warmup_s: float,
    timeout_s: float = 240.0,
) -> Outcome | None:
    """Warm up (players play, the control plane learns the baseline), inject, follow."""
    scenario = SCENARIOS[name]
    print(f"\nscenario {name}: {scenario.description}; injecting in {warmup_s:g}s", flush=True)
    if stop.wait(warmup_s):
        return None
    follower = Follower(
        controlplane_url=urls["controlplane"],
        admin_token=admin_token,
        admin_urls={k: urls[k] for k in ("eu", "latam", "wallet")},
        loadgen_url=urls.get("loadgen"),
    )

    def show(event: Event) -> None:
        print(f"  {event.at_s:7.1f}s  {event.text}", flush=True)

    outcome = follower.run(scenario, until="resolved", timeout_s=timeout_s, on_event=show)
    print(f"\nsummary: {outcome.summary()}", flush=True)
    return outcome
