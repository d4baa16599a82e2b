from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from controlplane.db import create_engine
from controlplane.runbooks.store import ExecutionStore, State, metadata
from controlplane.runbooks.switches import Switches


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path}/cp.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_schema")
    )
    eng = create_engine(url)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def new(store: ExecutionStore, state: State = State.PENDING_APPROVAL):  # type: ignore[no-untyped-def]
    return store.create(
        runbook="drain-region",
        mode="approval",
        state=state,
        target_key="region/eu",
        trigger="alert",
        labels={"region": "eu"},
        requested_by="controlplane",
    )


def test_transitions_are_compare_and_set(engine: Engine) -> None:
    store = ExecutionStore(engine)
    ex = new(store, State.RUNNING)
    assert store.transition(ex.id, [State.RUNNING], State.VERIFYING)
    assert not store.transition(ex.id, [State.RUNNING], State.FAILED)  # already moved on
    assert store.transition(ex.id, [State.VERIFYING], State.SUCCEEDED, reason="verified")
    got = store.get(ex.id)
    assert got is not None and got.state is State.SUCCEEDED and got.reason == "verified"
    assert [e.id for e in store.find(states=[State.SUCCEEDED])] == [ex.id]


def test_only_one_of_many_concurrent_workers_wins_a_transition(engine: Engine) -> None:
    store = ExecutionStore(engine)
    ex = new(store, State.PENDING_APPROVAL)
    wins: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda: wins.append(
                store.transition(ex.id, [State.PENDING_APPROVAL], State.RUNNING)
            )
        )
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]


def test_approvals_count_distinct_users_only_while_pending(engine: Engine) -> None:
    store = ExecutionStore(engine)
    ex = new(store)
    assert store.add_approval(ex.id, "alice", 2) == (True, 1)
    assert store.add_approval(ex.id, "alice", 2) == (False, 1)  # same person twice does not count
    assert store.add_approval(ex.id, "bob", 2) == (True, 2)
    store.transition(ex.id, [State.PENDING_APPROVAL], State.RUNNING)
    assert store.add_approval(ex.id, "carol", 2) == (False, 0)  # single use: no longer pending


def test_a_step_is_recorded_before_it_acts_and_never_begins_twice(engine: Engine) -> None:
    store = ExecutionStore(engine)
    ex = new(store, State.RUNNING)
    first = store.begin_step(ex.id, "steps", "isolate", "provider.isolate")
    again = store.begin_step(ex.id, "steps", "isolate", "provider.isolate")
    assert first.state == again.state == "started"
    assert first.idempotency_key == again.idempotency_key == f"{ex.id}:steps:isolate"
    store.finish_step(ex.id, "steps", "isolate", ok=True, result={"status": 200})
    store.finish_step(ex.id, "steps", "isolate", ok=False, result={"late": True})  # no effect
    record = store.step(ex.id, "steps", "isolate")
    assert record is not None and record.state == "done" and record.result == {"status": 200}


def test_kill_switch_and_maintenance_windows_persist(engine: Engine) -> None:
    clock = iter([100.0, 200.0, 300.0]).__next__
    switches = Switches(engine, clock=clock)
    assert switches.automation()[0] is False
    switches.set_automation(paused=True, reason="incident", by="alice")
    assert Switches(engine).automation()[:3] == (True, "incident", "alice")
    wid = switches.add_maintenance(
        matchers={"region": "eu"}, starts_at=0, ends_at=10_000, reason="upgrade", by="bob"
    )
    assert [w["id"] for w in switches.maintenance_windows(active_at=250)] == [wid]
    assert switches.end_maintenance(wid)
    assert switches.maintenance_windows(active_at=10_000) == []
