"""`serve()` exits by its shutdown timeout whatever a request is doing, even one that holds the
GIL in C code (where no Python signal handler can run): a real process, a real SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_http

# Python's backtracking `re` holds the GIL for the whole match: the worst request there is
HANGING_APP = """
import re, sys
from flask import Flask
from controlplane.serve import serve

app = Flask("hang")

@app.get("/hang")
def hang():
    re.match(r"(a+)+$", "a" * 64 + "b")
    return "never"

@app.get("/healthz")
def healthz():
    return "ok"

serve(app, host="127.0.0.1", port=int(sys.argv[1]), grace_s=0.5,
      shutdown_timeout_s=float(sys.argv[2]))
"""


def _start(tmp_path: Path, timeout_s: float) -> tuple[subprocess.Popen[bytes], str, Path]:
    script, log = tmp_path / "hang.py", tmp_path / "hang.log"
    script.write_text(HANGING_APP)
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(port), str(timeout_s)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz")
    return proc, url, log


def _hang(url: str) -> None:
    def call() -> None:
        with contextlib.suppress(requests.RequestException):  # the process dies under it
            requests.get(f"{url}/hang", timeout=30)

    threading.Thread(target=call, daemon=True).start()
    time.sleep(0.5)


@pytest.mark.slow
def test_sigterm_during_a_gil_holding_request_exits_within_the_timeout(tmp_path: Path) -> None:
    proc, url, log = _start(tmp_path, timeout_s=3.0)
    try:
        _hang(url)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert code == 1, log.read_text()
    assert took < 10, f"exited {took:.1f}s after SIGTERM"
    assert "Timeout" in log.read_text()  # faulthandler's stacks: where it was stuck


@pytest.mark.slow
def test_a_process_frozen_for_the_timeout_exits_without_a_signal(tmp_path: Path) -> None:
    proc, url, log = _start(tmp_path, timeout_s=3.0)
    try:
        _hang(url)
        code = proc.wait(timeout=15)
    finally:
        proc.kill()
    assert code == 1, log.read_text()


@pytest.mark.slow
def test_a_healthy_process_is_not_killed_by_its_watchdog(tmp_path: Path) -> None:
    # the timeout also bounds the stop after SIGTERM: long enough for that on a loaded machine
    proc, url, log = _start(tmp_path, timeout_s=6.0)
    try:
        time.sleep(9)  # well past the watchdog: the serving loop keeps re-arming it
        assert proc.poll() is None, log.read_text()
        assert requests.get(f"{url}/healthz", timeout=5).text == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, log.read_text()
    finally:
        proc.kill()
