from __future__ import annotations

from aggregator.region.breakers import (
    BreakerBoard,
    BreakerPolicy,
    BreakerState,
    CallResult,
    CircuitBreaker,
)
from tests.aggregator.region.conftest import Clock


def make(clock: Clock, opened: list[str] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        clock=clock, on_open=(lambda: opened.append("open")) if opened is not None else None
    )


def test_opens_after_five_consecutive_failures_and_counts_the_event() -> None:
    clock, opened = Clock(), list[str]()
    breaker = make(clock, opened)
    for _ in range(4):
        breaker.record(CallResult.FAILURE)
        assert breaker.state is BreakerState.CLOSED
        assert breaker.allow()
    breaker.record(CallResult.FAILURE)
    assert breaker.state is BreakerState.OPEN
    assert int(breaker.state) == 1
    assert not breaker.allow()
    assert opened == ["open"]
    assert breaker.snapshot().retry_in_s == 30.0


def test_success_resets_the_consecutive_count() -> None:
    breaker = make(Clock())
    for _ in range(4):
        breaker.record(CallResult.FAILURE)
    breaker.record(CallResult.SUCCESS)
    for _ in range(4):
        breaker.record(CallResult.FAILURE)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 4


def test_business_outcomes_never_count_as_failures() -> None:
    breaker = make(Clock())
    for _ in range(50):
        breaker.record(CallResult.BUSINESS)
    assert breaker.state is BreakerState.CLOSED
    # and a business answer is an answer: it resets a run of failures like a success does
    for _ in range(4):
        breaker.record(CallResult.FAILURE)
    breaker.record(CallResult.BUSINESS)
    breaker.record(CallResult.FAILURE)
    assert breaker.state is BreakerState.CLOSED


def open_breaker(clock: Clock, opened: list[str] | None = None) -> CircuitBreaker:
    breaker = make(clock, opened)
    for _ in range(5):
        breaker.record(CallResult.FAILURE)
    assert breaker.state is BreakerState.OPEN
    return breaker


def test_half_open_after_30s_lets_exactly_one_trial_through_and_success_closes() -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.advance(29.9)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert int(breaker.state) == 2
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # nobody else while it runs
    breaker.record(CallResult.SUCCESS)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_trial_opens_again_for_another_30s() -> None:
    clock, opened = Clock(), list[str]()
    breaker = open_breaker(clock, opened)
    clock.advance(30)
    assert breaker.allow()
    breaker.record(CallResult.FAILURE)
    assert breaker.state is BreakerState.OPEN
    assert opened == ["open", "open"]
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_abandoned_or_lost_trial_does_not_wedge_half_open() -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.advance(30)
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()  # given back: the next caller may try
    # a trial whose caller never reports is given up after trial_timeout_s
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


def test_failures_reported_while_open_do_not_extend_it() -> None:
    clock = Clock()
    breaker = open_breaker(clock)
    clock.advance(20)
    breaker.record(CallResult.FAILURE)  # a call admitted before it opened
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN


def test_board_names_the_provider_on_open_and_keeps_breakers_apart() -> None:
    clock, opened = Clock(), list[str]()
    board = BreakerBoard(
        ["a", "b"], policy=BreakerPolicy(failure_threshold=2), clock=clock, on_open=opened.append
    )
    board["a"].record(CallResult.FAILURE)
    board["a"].record(CallResult.FAILURE)
    assert opened == ["a"]
    assert board.states() == {"a": BreakerState.OPEN, "b": BreakerState.CLOSED}
