"""`aggregator serve` as a real process, on either server: serves, runs the retry worker in the
serving process, keeps state over a restart and stops cleanly on SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.aggregator.region.region_fakes import FakeWallet
from tests.conftest import Proc, ServedApp, free_port, wait_http

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def start_region(
    procs: list[Proc],
    env: dict[str, str],
    tmp_path: Path,
    wallet_url: str,
    port: int,
    server: str = "waitress",
) -> Proc:
    proc = Proc(
        f"region-{len(procs)}",
        [
            "aggregator",
            "serve",
            "--region",
            "eu",
            "--port",
            str(port),
            "--threads",
            "4",
            "--wallet-url",
            wallet_url,
            "--database",
            f"sqlite:///{tmp_path}/region.db",
            "--server",
            server,
        ],
        env,
        tmp_path,
    ).start()
    procs.append(proc)
    wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("server", ["waitress", "granian"])
def test_serve_plays_retries_and_restarts(
    server: str,
    procs: list[Proc],
    base_env: dict[str, str],
    tmp_path: Path,
    fake_wallet: tuple[FakeWallet, ServedApp],
    http: requests.Session,
) -> None:
    wallet, served = fake_wallet
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_region(procs, base_env, tmp_path, served.url, port, server)
    launch = http.post(
        url + "/player/launch",
        json={"user": "p1", "token": "t", "currency": "EUR", "category": "crash"},
        timeout=10,
    ).json()
    wallet.fail["win"] = "error"
    body = {"session": launch["session"], "round": "proc-1", "bet": 100}
    assert http.post(url + "/player/round", json=body, timeout=10).json()["win_pending"]
    wallet.fail.clear()
    # the background worker pays the owed win without anyone replaying by hand
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if http.get(url + "/admin/wallet/queue", headers=ADMIN, timeout=5).json()["depth"] == 0:
            break
        time.sleep(0.2)
    assert http.get(url + "/admin/wallet/queue", headers=ADMIN, timeout=5).json()["depth"] == 0
    assert wallet.sent("win").count(wallet.sent("win")[0]) == 2

    isolate = http.post(
        url + "/admin/providers/spribe/isolate",
        json={"reason": "restart"},
        headers=ADMIN,
        timeout=5,
    )
    assert isolate.status_code == 200
    assert proc.popen is not None
    proc.popen.terminate()
    assert proc.popen.wait(timeout=15) == 0
    assert f"listening on {url} ({server})" in proc.log()

    start_region(procs, base_env, tmp_path, served.url, port, server)
    state = http.get(url + "/admin/state", headers=ADMIN, timeout=5).json()
    spribe = next(p for p in state["providers"] if p["id"] == "spribe")
    assert spribe["isolated"] is True and spribe["reason"] == "restart"
    metrics = http.get(url + "/metrics", timeout=5).text
    assert 'casino_provider_isolated{provider="spribe",region="eu"} 1.0' in metrics


def test_bad_catalogue_exits_2_naming_the_file(
    base_env: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("providers: {}\nregions: {}\n")
    proc = Proc(
        "bad",
        [
            "aggregator",
            "serve",
            "--region",
            "eu",
            "--port",
            str(free_port()),
            "--catalogue",
            str(bad),
            "--database",
            f"sqlite:///{tmp_path}/x.db",
        ],
        base_env,
        tmp_path,
    ).start()
    procs.append(proc)
    assert proc.popen is not None
    assert proc.popen.wait(timeout=30) == 2
    assert "broken.yaml" in proc.log()
