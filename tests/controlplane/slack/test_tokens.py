"""Button values: ours, bound to action, subject, parameters and expiry, spent once; and the
buttons and decided blocks built from them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from controlplane.db import create_engine
from controlplane.notify.alerts import Alert, GroupKey
from controlplane.runbooks.store import State
from controlplane.slack.buttons import approval_block_id, decided_blocks
from controlplane.slack.tables import metadata
from controlplane.slack.tokens import (
    MAX_VALUE,
    Action,
    BadToken,
    Nonces,
    Signer,
    TokenTooLong,
)
from tests.controlplane.slack.conftest import REGION_DOWN, Clock, SlackWorld
from tests.controlplane.slack.slackreq import value_of


def signer(key: str = "k" * 64, clock: Clock | None = None) -> Signer:
    return Signer(lambda: key, clock=clock or Clock())


def test_a_value_round_trips_and_fits_a_button() -> None:
    s = signer()
    value = s.sign(Action.SILENCE_1H, '{}:{region="eu"}', {"matchers": {"region": "eu"}})
    assert len(value) <= MAX_VALUE
    token = s.verify(value)
    assert (token.action, token.subject, dict(token.params)) == (
        Action.SILENCE_1H,
        '{}:{region="eu"}',
        {"matchers": {"region": "eu"}},
    )
    assert s.verify(s.sign(Action.PAUSE, "g")).nonce != token.nonce  # a fresh nonce each


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("a", "approve"),
        ("s", "another-execution"),
        ("p", {"matchers": {"region": "latam"}}),
        ("e", 4_000_000_000),
        ("n", "AAAAAAAAAAAAAAAA"),
        ("m", "0" * 64),
    ],
)
def test_changing_any_part_of_a_value_makes_it_not_ours(field: str, changed: object) -> None:
    s = signer()
    body = json.loads(s.sign(Action.SILENCE_4H, "group", {"matchers": {"region": "eu"}}))
    body[field] = changed
    with pytest.raises(BadToken):
        s.verify(json.dumps(body))


def test_another_key_or_garbage_is_not_ours() -> None:
    value = signer("one-key").sign(Action.APPROVE, "ex-1")
    with pytest.raises(BadToken):
        signer("another-key").verify(value)
    for junk in ("", "approve:ex-1", "[]", '{"v":1}', "x" * (MAX_VALUE + 1)):
        with pytest.raises(BadToken):
            signer().verify(junk)


def test_values_expire_and_too_long_ones_are_not_made() -> None:
    clock = Clock()
    s = signer(clock=clock)
    token = s.verify(s.sign(Action.ACKNOWLEDGE, "g"))
    assert not token.expired(clock.now + 23 * 3600)
    assert token.expired(clock.now + 24 * 3600)  # the default: a day
    approval = s.verify(s.sign(Action.APPROVE, "ex", expires_at=clock.now + 600))
    assert approval.expires_at == int(clock.now + 600)
    with pytest.raises(TokenTooLong):
        s.sign(Action.RUN, "g", {"labels": {"big": "x" * MAX_VALUE}})


def test_a_nonce_is_spent_once_per_spender_in_the_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/n.db")
    metadata.create_all(engine)
    clock = Clock()
    nonces = Nonces(engine, clock)
    later = clock.now + 3600
    assert nonces.spend("n1", "*", action="run", expires_at=later)
    assert not nonces.spend("n1", "*", action="run", expires_at=later)
    assert nonces.spend("n1", "UALICE", action="approve", expires_at=later)
    assert nonces.spend("n1", "UBOB", action="approve", expires_at=later)
    assert not Nonces(engine, clock).spend("n1", "UBOB", action="approve", expires_at=later)
    assert Nonces(engine, clock).spent("n1", "UALICE")  # another replica, another process
    engine.dispose()


def test_group_buttons(world: SlackWorld) -> None:
    alert = Alert.of(
        {**REGION_DOWN, "provider": "pv1"}, starts_at=world.clock.utc() - timedelta(minutes=1)
    )
    wallet = Alert.of(
        {"alertname": "WalletQueueBacklog", "region": "eu"}, starts_at=world.clock.utc()
    )
    view = _View(GroupKey(route_key="{}", labels=(("region", "eu"),)), (alert, wallet))
    elements = world.slack.buttons.for_group(view)
    assert [e["action_id"] for e in elements] == [
        "cp:silence_1h",
        "cp:silence_4h",
        "cp:acknowledge",
        "cp:pause",
        "cp:run:drain-region",  # approval mode, triggered by an alert of the group
        "cp:run:replay-wallet-queue",  # manual, triggered by another
    ]
    signed = world.slack.buttons.signer
    silence = signed.verify(value_of(elements, "cp:silence_1h"))
    assert silence.params == {"matchers": {"region": "eu"}}  # what the alerts share
    run = signed.verify(value_of(elements, "cp:run:replay-wallet-queue"))
    assert run.params == {"runbook": "replay-wallet-queue", "labels": wallet.label_map}
    resolved = Alert.of(REGION_DOWN, starts_at=world.clock.utc(), ends_at=world.clock.utc())
    assert world.slack.buttons.for_group(_View(view.key, (resolved,))) == []


def test_approval_buttons_last_as_long_as_the_approval(world: SlackWorld) -> None:
    ex = world.pending_drain()
    elements = world.slack.buttons.for_execution(ex)
    assert [e["action_id"] for e in elements] == ["cp:approve", "cp:reject"]
    token = world.slack.buttons.signer.verify(elements[0]["value"])
    assert token.subject == ex.id and ex.deadline is not None
    assert token.expires_at == int(ex.deadline) == int(world.clock.now + 600)


def test_decided_blocks_replace_the_buttons(world: SlackWorld) -> None:
    ex = world.pending_drain()
    block = world.slack.buttons.execution_block(ex)
    assert block is not None and block["block_id"] == approval_block_id(ex.id)
    header = {"type": "section", "text": {"type": "mrkdwn", "text": "drain eu?"}}
    world.ops.approve(world.access().by_name("alice"), ex.id)  # type: ignore[arg-type]
    half = world.executions.get(ex.id)
    assert half is not None
    kept = decided_blocks([header, block], half)
    assert kept[1] is block and "alice" in kept[2]["elements"][0]["text"]  # still open
    world.ops.approve(world.access().by_name("bob"), ex.id)  # type: ignore[arg-type]
    done = world.executions.get(ex.id)
    assert done is not None and done.state is State.RUNNING
    final = decided_blocks(kept, done)
    assert [b["type"] for b in final] == ["section", "context"]
    assert final[1]["elements"][0]["text"].endswith("approved by alice, bob: running")


class _View:
    def __init__(self, key: GroupKey, alerts: tuple[Alert, ...]) -> None:
        self.key, self.alerts = key, alerts
