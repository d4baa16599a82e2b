"""`controlplane audit verify` (chain, anchor file, Prometheus) and `controlplane audit export`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy.engine import Engine

from controlplane import audit
from controlplane.cli import main
from controlplane.db import create_engine
from controlplane.migrations import upgrade
from tests.conftest import free_port, require_binary, stop_process
from tests.controlplane.test_audit import fill, tamper, truncate_and_rewrite_head

T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def make_log(url: str, n: int = 5) -> tuple[Engine, audit.AuditLog]:
    engine = create_engine(url)
    upgrade(engine)
    log = audit.AuditLog(engine, clock=iter(T0 + 60 * i for i in range(100)).__next__)
    fill(log, n)
    return engine, log


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Engine, audit.AuditLog]]:
    url = f"sqlite:///{tmp_path}/cp.db"
    engine, log = make_log(url)
    yield url, engine, log
    engine.dispose()


def test_truncation_passes_the_chain_alone_and_fails_against_the_anchor_file(
    db: tuple[str, Engine, audit.AuditLog], capsys: pytest.CaptureFixture[str]
) -> None:
    url, engine, log = db
    audit.Anchorer(log, audit.default_anchor_path(url)).anchor()
    assert main(["audit", "verify", "--url", url, "--anchor"]) == 0
    assert "OK: 5 audit events checked against 1 anchor (the newest at row 5)" in (
        capsys.readouterr().out
    )
    truncate_and_rewrite_head(engine, keep=3)
    assert main(["audit", "verify", "--url", url]) == 0
    assert "rows deleted from the end with the head row rewritten would go unnoticed" in (
        capsys.readouterr().out
    )
    anchor_file = str(audit.default_anchor_path(url))
    assert main(["audit", "verify", "--url", url, "--anchor", anchor_file]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN: rows 4..5 are missing: {anchor_file}:1 anchored row 5" in out
    assert out.endswith("FAILED: 3 audit events checked against 1 anchor (the newest at row 5)\n")


@pytest.mark.postgres
def test_truncation_on_postgresql(
    postgres_schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, log = make_log(postgres_schema)
    anchors = tmp_path / "anchors.jsonl"
    audit.Anchorer(log, anchors).anchor()
    truncate_and_rewrite_head(engine, keep=2)
    engine.dispose()
    assert main(["audit", "verify", "--url", postgres_schema]) == 0
    assert main(["audit", "verify", "--url", postgres_schema, "--anchor", str(anchors)]) == 1
    assert "rows 3..5 are missing" in capsys.readouterr().out


def _bad_anchor_file(tmp: Path) -> list[str]:
    (tmp / "bad.jsonl").write_text('{"seq": "five", "hash": "x"}\n')
    return ["--anchor", str(tmp / "bad.jsonl")]


def _empty_anchor_file(tmp: Path) -> list[str]:
    (tmp / "empty.jsonl").write_text("")
    return ["--anchor", str(tmp / "empty.jsonl")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (lambda tmp: ["--url", f"sqlite:///{tmp}/typo.db"], "no database file at"),
        (lambda tmp: ["--url", "nonsense"], "'nonsense' is not a database URL"),
        (lambda tmp: ["--url", "nonsense", "--anchor"], "Could not parse SQLAlchemy URL"),
        (lambda tmp: ["--anchor", str(tmp / "missing.jsonl")], "cannot read the anchor file"),
        (_bad_anchor_file, "bad.jsonl:1: "),
        (_empty_anchor_file, "no anchors in"),
        (lambda tmp: ["--prometheus", f"http://127.0.0.1:{free_port()}"], "cannot query"),
    ],
)
def test_usage_and_io_errors_exit_2_without_a_traceback(
    db: tuple[str, Engine, audit.AuditLog],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: Any,
    message: str,
) -> None:
    url = db[0]
    assert main(["audit", "verify", "--url", url, *argv(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("controlplane audit: ") and message in err, err
    assert "Traceback" not in err


def test_a_database_without_an_audit_log_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_engine(f"sqlite:///{tmp_path}/empty.db").connect().close()
    assert main(["audit", "verify", "--url", f"sqlite:///{tmp_path}/empty.db"]) == 2
    assert "cannot read the audit log at" in capsys.readouterr().err


def test_export_lets_anyone_recompute_the_chain(
    db: tuple[str, Engine, audit.AuditLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, log = db
    out = tmp_path / "export.jsonl"
    argv = ["--from", "2024-05-01T12:01:00Z", "--to", "1714565040", "-o", str(out)]
    assert main(["audit", "export", "--url", url, *argv]) == 0
    assert "exported 3 audit events to" in capsys.readouterr().err
    header, *events, end = (json.loads(line) for line in out.read_text().splitlines())
    assert header["type"] == "header" and header["from"] == "2024-05-01T12:01:00.000Z"
    assert header["head"] == {"seq": 5, "hash": log.events()[-1].hash}
    assert "sha256(hash_input)" in header["verify"]
    assert [e["seq"] for e in events] == [2, 3, 4]
    assert end == {
        "type": "end",
        "events": 3,
        "first_seq": 2,
        "last_seq": 4,
        "last_hash": events[-1]["hash"],
    }
    prev = log.events()[0].hash
    for e in events:  # the recipe of the header, with nothing of the control plane
        assert hashlib.sha256(e["hash_input"].encode()).hexdigest() == e["hash"]
        hashed = json.loads(e["hash_input"])
        assert hashed[:2] == [prev, e["seq"]] and float(hashed[2]) == e["at"]
        assert hashed[3:6] == [e["actor"], e["kind"], e["execution_id"]]
        assert json.loads(hashed[6]) == e["payload"] and e["prev_hash"] == prev
        prev = e["hash"]
    assert events[0]["time"] == "2024-05-01T12:01:00.000Z" and events[0]["actor"] == "alice"
    assert events[0]["payload"] == {"i": 1, "note": "é ✓"}


def test_export_to_stdout_with_relative_times_and_an_edited_row(
    db: tuple[str, Engine, audit.AuditLog], capsys: pytest.CaptureFixture[str]
) -> None:
    url, engine, _ = db
    tamper(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert main(["audit", "export", "--url", url, "--from", "0", "--to", "now+1h"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["type"] for line in lines] == ["header", *["event"] * 5, "end"]
    assert lines[2]["actor"] == "mallory"  # the evidence is written either way
    assert "BROKEN: row 2: content does not match its hash (edited)" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "yesterday"], "--from/--to: cannot parse"),
        (["--from", "now", "--to", "now-1h"], "--to 'now-1h' must be after --from 'now'"),
        (["--from", "0", "-o", "/nonexistent/dir/x.jsonl"], "cannot write"),
    ],
)
def test_export_usage_errors_exit_2(
    db: tuple[str, Engine, audit.AuditLog],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert main(["audit", "export", "--url", db[0], *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.fixture
def scraped(
    db: tuple[str, Engine, audit.AuditLog], tmp_path: Path
) -> Iterator[tuple[str, Engine, audit.AuditLog, str]]:
    """The head on a /metrics that a real Prometheus scrapes every second."""
    binary = require_binary("prometheus")
    registry = CollectorRegistry()
    registry.register(audit.HeadCollector(db[2]))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: controlplane\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    prom_port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{prom_port}"
        _wait_for_head(url, 5, proc)
        yield (*db, url)
    finally:
        stop_process(proc)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _wait_for_head(url: str, seq: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    query = f"controlplane_audit_head_sequence == {seq}"
    while time.monotonic() < deadline:
        assert proc is None or proc.poll() is None, "prometheus exited early"
        try:
            answer = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=1)
            if answer.ok and answer.json()["data"]["result"]:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"prometheus at {url} did not scrape head {seq} within 30s")


@pytest.mark.slow
def test_prometheus_keeps_the_head_the_database_lost(
    scraped: tuple[str, Engine, audit.AuditLog, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, engine, _, prom = scraped
    argv = ["audit", "verify", "--url", url, "--prometheus", prom]
    assert main([*argv, "--selector", 'job="controlplane"']) == 0
    assert "against 2 anchors (the newest at row 5)" in capsys.readouterr().out
    truncate_and_rewrite_head(engine, keep=3)
    _wait_for_head(prom, 3)  # the scrapes saw the lower head too: the older one stays
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"BROKEN: rows 4..5 are missing: Prometheus {prom} anchored row 5 (hash '" in out
    assert main([*argv, "--selector", 'job="other"']) == 2
    assert "has no controlplane_audit_head_sequence" in capsys.readouterr().err
    assert main([*argv, "--selector", "job=="]) == 2
    assert "refused" in capsys.readouterr().err


def test_reading_verbs_find_the_demos_database_from_the_project_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.db import DEFAULT_URL, DEMO_URL, reading_url

    monkeypatch.chdir(tmp_path)
    assert reading_url({}) == DEFAULT_URL  # nothing there: the default, never created
    (tmp_path / "var" / "demo").mkdir(parents=True)
    (tmp_path / "var" / "demo" / "controlplane.db").touch()
    assert reading_url({}) == DEMO_URL
    (tmp_path / "var" / "controlplane.db").touch()
    assert reading_url({}) == DEFAULT_URL
    assert reading_url({"CONTROLPLANE_DATABASE_URL": "sqlite:///x.db"}) == "sqlite:///x.db"
