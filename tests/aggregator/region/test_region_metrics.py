"""Every label value the region can emit is exported at 0 before its first event, so rate()
and increase() see the first breaker opening, failover or failed launch."""

from __future__ import annotations

import pytest

from aggregator.region import metrics as m
from tests.aggregator.region.conftest import MakeRegion

FAMILIES = [
    ("casino_failover_events_total", "kind", m.FAILOVER_KINDS),
    ("casino_game_launches_total", "outcome", m.LAUNCH_OUTCOMES),
    ("casino_rounds_total", "outcome", m.ROUND_OUTCOMES),
    ("casino_provider_requests_total", "outcome", m.PROVIDER_OUTCOMES),
    ("casino_wallet_requests_total", "outcome", m.WALLET_OUTCOMES),
    ("casino_wallet_queue_replayed_total", "outcome", m.REPLAY_OUTCOMES),
]


@pytest.mark.parametrize(("name", "label", "values"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_known_series_exist_at_zero_before_any_traffic(
    make_region: MakeRegion, name: str, label: str, values: tuple[str, ...]
) -> None:
    h = make_region()
    samples = {key: v for key, v in h.metrics().items() if key[0] == name}
    seen = {dict(labels)[label] for _, labels in samples}
    assert seen == set(values)
    assert set(samples.values()) == {0.0}


def test_every_provider_of_the_catalogue_has_its_launch_series(make_region: MakeRegion) -> None:
    h = make_region()
    providers = set(h.region.catalogue.providers)
    launches = [
        dict(labels) for name, labels in h.metrics() if name == "casino_game_launches_total"
    ]
    assert {(s["provider"], s["outcome"]) for s in launches} == {
        (p, o) for p in providers for o in m.LAUNCH_OUTCOMES
    }
