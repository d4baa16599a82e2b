from __future__ import annotations

import statistics

from aggregator.faults import FaultBook, FaultKind
from aggregator.region import catalogue
from aggregator.region.providers import Outcome, ProviderSimulator
from tests.aggregator.region.conftest import Clock


def simulator(seed: int, faults: FaultBook | None = None) -> ProviderSimulator:
    providers = catalogue.load().region("eu").providers
    return ProviderSimulator(providers, faults or FaultBook(clock=Clock()), seed=seed, region="eu")


def draws(sim: ProviderSimulator, provider: str, n: int) -> list[tuple[Outcome, float]]:
    return [
        (call.outcome, call.latency_s) for call in (sim.call(provider, "round") for _ in range(n))
    ]


def test_latency_model_is_deterministic_under_a_seed() -> None:
    assert draws(simulator(3), "netent", 200) == draws(simulator(3), "netent", 200)
    assert draws(simulator(3), "netent", 200) != draws(simulator(4), "netent", 200)


def test_each_provider_has_its_own_stream() -> None:
    # calls to one provider do not shift another provider's draws
    a, b = simulator(3), simulator(3)
    draws(a, "evolution", 50)
    assert draws(a, "netent", 50) == draws(b, "netent", 50)


def test_latency_is_log_normal_around_the_catalogue_median() -> None:
    sim = simulator(1)
    spec = catalogue.load().region("eu").providers["netent"]
    latencies = [lat for _, lat in draws(sim, "netent", 4000)]
    median = statistics.median(latencies)
    assert abs(median - spec.latency_median_s) / spec.latency_median_s < 0.05
    assert max(latencies) <= spec.timeout_s


def test_provider_latency_fault_shifts_latency_and_the_timeout_applies_to_the_draw() -> None:
    clock = Clock()
    book = FaultBook(clock=clock)
    sim = simulator(1, book)
    spec = catalogue.load().region("eu").providers["netent"]
    book.add(FaultKind.PROVIDER_LATENCY, "netent", 0.5, 60)
    shifted = draws(sim, "netent", 500)
    assert statistics.median(lat for _, lat in shifted) > 0.5
    book.add(FaultKind.PROVIDER_LATENCY, "netent", spec.timeout_s, 60)
    slow = draws(sim, "netent", 200)
    assert all(out is Outcome.TIMEOUT and lat == spec.timeout_s for out, lat in slow)
    # other providers are untouched
    assert all(out is not Outcome.TIMEOUT for out, _ in draws(sim, "evolution", 200))


def test_provider_errors_fault_sets_the_error_share() -> None:
    book = FaultBook(clock=Clock())
    sim = simulator(2, book)
    book.add(FaultKind.PROVIDER_ERRORS, "playngo", 0.5, 60)
    outcomes = [out for out, _ in draws(sim, "playngo", 2000)]
    share = outcomes.count(Outcome.ERROR) / len(outcomes)
    assert 0.45 < share < 0.55


def test_provider_down_times_every_call_out_and_star_targets_all() -> None:
    clock = Clock()
    book = FaultBook(clock=clock)
    sim = simulator(2, book)
    book.add(FaultKind.PROVIDER_DOWN, "*", 1.0, 10)
    for provider in ("netent", "evolution"):
        assert {out for out, _ in draws(sim, provider, 20)} == {Outcome.TIMEOUT}
    clock.advance(10)  # the fault expires by the clock
    assert Outcome.OK in {out for out, _ in draws(sim, "netent", 20)}
