"""The audit head kept outside the database: the anchor file, /metrics, and their wiring."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.engine import Engine

from controlplane import audit
from controlplane.app import EXTENSION, create_app
from controlplane.config import AuditConfig, Config, StoreConfig
from controlplane.db import create_engine
from tests.conftest import ROOT
from tests.controlplane.test_audit import fill, truncate_and_rewrite_head


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path}/cp.db")
    audit.install(eng)
    yield eng
    eng.dispose()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_anchors_are_appended_when_the_head_moved_and_fsynced(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(audit.anchor.os, "fsync", synced.append)
    log, path = audit.AuditLog(engine), tmp_path / "sub" / "anchors.jsonl"
    anchorer = audit.Anchorer(log, path, clock=lambda: 1714564800.0)
    assert anchorer.anchor() is None and not path.exists()  # an empty log has no head
    fill(log, 2)
    assert anchorer.anchor() == log.head()
    assert anchorer.anchor() is None  # unmoved: nothing appended
    fill(log, 1)
    anchorer.anchor()
    assert lines(path) == [
        {"seq": 2, "hash": log.events()[1].hash, "at": "2024-05-01T12:00:00.000Z"},
        {"seq": 3, "hash": log.events()[2].hash, "at": "2024-05-01T12:00:00.000Z"},
    ]
    assert len(synced) == 3  # the file at each append, and its directory once, when created


def test_stop_anchors_once_more_and_a_restart_does_not_repeat_it(
    engine: Engine, tmp_path: Path
) -> None:
    log, path = audit.AuditLog(engine), tmp_path / "anchors.jsonl"
    first = audit.Anchorer(log, path, interval_s=3600)
    first.start()
    fill(log, 3)
    first.stop()
    assert [a.seq for a in audit.read_anchors(path)] == [3]
    again = audit.Anchorer(log, path, interval_s=3600)
    again.start()
    again.stop()
    assert [a.seq for a in audit.read_anchors(path)] == [3]


def test_the_thread_anchors_every_interval(engine: Engine, tmp_path: Path) -> None:
    log, path = audit.AuditLog(engine), tmp_path / "anchors.jsonl"
    fill(log, 1)
    anchorer = audit.Anchorer(log, path, interval_s=0.01)
    anchorer.start()
    try:
        for _ in range(500):
            if path.exists():
                break
            time.sleep(0.01)
        assert [a.seq for a in audit.read_anchors(path)] == [1]
    finally:
        anchorer.stop()


def test_a_restart_after_truncation_says_so_and_keeps_the_evidence(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, path = audit.AuditLog(engine), tmp_path / "anchors.jsonl"
    fill(log, 5)
    audit.Anchorer(log, path).anchor()
    truncate_and_rewrite_head(engine, keep=3)
    with caplog.at_level(logging.ERROR, logger="controlplane.audit.anchor"):
        restarted = audit.Anchorer(log, path, interval_s=3600)
        restarted.start()
    assert "row 5 has hash None but" in caplog.text
    assert "controlplane audit verify --anchor" in caplog.text
    log.append("step", {"after": "restart"})  # the new head is anchored too, the old one stays
    restarted.stop()
    assert [a.seq for a in audit.read_anchors(path)] == [5, 4]
    assert not log.verify(audit.read_anchors(path)).ok


def test_a_torn_last_line_is_skipped_and_the_next_anchor_starts_a_new_line(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, path = audit.AuditLog(engine), tmp_path / "anchors.jsonl"
    fill(log, 1)
    audit.Anchorer(log, path).anchor()
    with path.open("a") as f:
        f.write('{"seq": 2, "ha')  # a crash mid-append
    assert [a.seq for a in audit.read_anchors(path)] == [1]
    assert "anchors.jsonl:2: torn line skipped" in caplog.text
    fill(log, 1)
    audit.Anchorer(log, path).anchor()
    assert path.read_text().splitlines()[1] == '{"seq": 2, "ha'
    assert [a.seq for a in audit.read_anchors(path)] == [1, 2]


@pytest.mark.parametrize(
    "line",
    ['{"seq": 0, "hash": "' + "a" * 64 + '"}', '{"seq": 1, "hash": "short"}', '{"s": 1}', "[1]"],
)
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "anchors.jsonl"
    path.write_text(f'{{"seq": 1, "hash": "{"b" * 64}", "at": "x"}}\n{line}\n')
    with pytest.raises(audit.AnchorError, match=r"anchors\.jsonl:2: .* is not an anchor line"):
        audit.read_anchors(path)


def test_an_unreadable_anchor_file_is_an_anchor_error(tmp_path: Path) -> None:
    with pytest.raises(audit.AnchorError, match="cannot read the anchor file"):
        audit.read_anchors(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/controlplane.db", "var/controlplane-audit-anchors.jsonl"),
        ("sqlite:////data/demo/cp.db", "/data/demo/cp-audit-anchors.jsonl"),
        ("sqlite://", "var/controlplane-audit-anchors.jsonl"),
        ("postgresql+psycopg://db/cp", "var/controlplane-audit-anchors.jsonl"),
    ],
)
def test_default_anchor_path(url: str, path: str) -> None:
    assert audit.default_anchor_path(url) == Path(path)


def test_the_head_on_metrics(engine: Engine, tmp_path: Path) -> None:
    log = audit.AuditLog(engine)
    anchorer = audit.Anchorer(log, tmp_path / "anchors.jsonl")
    registry = CollectorRegistry()
    registry.register(audit.HeadCollector(log, anchorer))
    text = generate_latest(registry).decode()
    assert "controlplane_audit_head_sequence 0.0" in text
    assert "controlplane_audit_head_info{" not in text
    fill(log, 2)
    anchorer.errors = 1
    head = log.head()
    assert head is not None
    text = generate_latest(registry).decode()
    assert "controlplane_audit_head_sequence 2.0" in text
    assert f'controlplane_audit_head_info{{hash="{head.hash}",seq="2"}} 1.0' in text
    assert "controlplane_audit_anchor_errors_total 1.0" in text


def test_an_unreadable_head_leaves_the_scrape_working(engine: Engine) -> None:
    registry = CollectorRegistry()
    registry.register(audit.HeadCollector(audit.AuditLog(engine)))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_head")
    assert "controlplane_audit_head_sequence " not in generate_latest(registry).decode()


def test_the_control_plane_anchors_and_exports_its_head(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    config = Config(
        api_token="t",
        database_url=f"sqlite:///{tmp_path / 'cp.db'}",
        rules_dir=ROOT / "rules",
        runbooks_dir=ROOT / "runbooks",
        routing_file=ROOT / "config" / "routing.yml",
        store=StoreConfig(checkpoint_path=None),
        audit=AuditConfig(anchor_path=anchors, anchor_interval_s=3600),
    )
    app = create_app(config)
    plane = app.extensions[EXTENSION]
    plane.start()
    try:
        client = app.test_client()
        paused = client.post(
            "/api/v1/automation/pause", json={"reason": "x"}, headers={"Authorization": "Bearer t"}
        )
        assert paused.status_code == 200
        metrics = client.get("/metrics").get_data(as_text=True)
        assert "controlplane_audit_head_sequence 1.0" in metrics
        assert "controlplane_audit_anchor_errors_total 0.0" in metrics
    finally:
        plane.stop()
    (anchor,) = audit.read_anchors(anchors)
    assert anchor.seq == 1 and f'hash="{anchor.hash}"' in metrics
