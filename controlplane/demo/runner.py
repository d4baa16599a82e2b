"""The control plane's part of `controlplane demo`: its environment (it scrapes every role of
the bundle, and itself, each second and acts on them with the shipped runbooks) and
`--scenario NAME`, which injects a named incident after a warm-up and prints the timeline as it
happens."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from controlplane.demo.scenarios import SCENARIOS, Event, Follower, Outcome

DEMO_USERS = (
    "CONTROLPLANE_TOKEN_ONCALL",
    "CONTROLPLANE_TOKEN_ALICE",
    "CONTROLPLANE_TOKEN_BOB",
    "CONTROLPLANE_TOKEN_VIEWER",
)


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
