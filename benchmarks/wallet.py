"""Operator wallet throughput: client threads send bet+win pairs to a real `aggregator wallet`
process on 127.0.0.1 for a bounded time; prints wallet calls per second, p50/p99 latency and the
wallet's own CPU per call, then checks the ledger still adds up.

    .venv/bin/python benchmarks/wallet.py --duration 10 --clients 8
    .venv/bin/python benchmarks/wallet.py \\
        --database 'postgresql+psycopg://postgres@127.0.0.1/test?options=-csearch_path%3Dbench'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from procstat import cpu_seconds  # this directory is on the path: the script runs from it

ADMIN = "bench-admin-token"


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, latencies: list[float], statuses: Counter[str]) -> None:
        with self.lock:
            self.latencies.extend(latencies)
            self.statuses.update(statuses)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_wallet(database: str, port: int, threads: int, server: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AGGREGATOR_ADMIN_TOKEN": ADMIN, "WALLET_TOKEN_SECRET": "bench"}
    args = ["--port", str(port), "--threads", str(threads), "--database", database]
    args += ["--server", server]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "wallet", *args, "--initial-balance", str(10**12)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    with urllib3.PoolManager() as http:
        while time.monotonic() < deadline:
            try:
                # Connection: close, so no idle keep-alive lingers to hold up the wallet's stop
                ready = http.request(
                    "GET",
                    f"http://127.0.0.1:{port}/readyz",
                    retries=False,
                    headers={"Connection": "close"},
                )
                if ready.status == 200:
                    return proc
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
    proc.kill()
    raise SystemExit("wallet did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    started = time.monotonic()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        print("warning: the wallet ignored SIGTERM for 15 s and was killed", file=sys.stderr)
    else:
        print(f"wallet stopped {time.monotonic() - started:.1f}s after SIGTERM", file=sys.stderr)


def post(pool: urllib3.HTTPConnectionPool, path: str, body: dict[str, Any]) -> Any:
    response = pool.request(
        "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    return json.loads(response.data)


def client(port: int, players: list[tuple[str, str]], deadline: float, results: Results) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, timeout=10.0)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    i = 0
    while time.monotonic() < deadline:
        user, token = players[i % len(players)]
        i += 1
        rnd = uuid.uuid4().hex
        base = {"user": user, "token": token, "currency": "EUR", "round": rnd}
        bet = {**base, "transaction_uuid": f"{rnd}:bet", "amount": 100}
        win = {**base, "transaction_uuid": f"{rnd}:win", "amount": 150}
        win["reference_transaction_uuid"] = f"{rnd}:bet"
        for path, body in (("/transaction/bet", bet), ("/transaction/win", win)):
            started = time.perf_counter()
            answer = post(pool, path, body)
            latencies.append(time.perf_counter() - started)
            statuses[answer["status"]] += 1
    pool.close()
    results.add(latencies, statuses)


def load(args: argparse.Namespace, port: int, players: list[tuple[str, str]]) -> Results:
    results = Results()
    deadline = time.monotonic() + args.duration
    threads = [
        threading.Thread(
            target=client, args=(port, players[k :: args.clients] or players, deadline, results)
        )
        for k in range(args.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.duration + 60)
    return results


def run(args: argparse.Namespace) -> None:
    port = free_port()
    proc = start_wallet(args.database, port, args.server_threads, args.server)
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
    try:
        players = [
            (f"bench{n}", post(pool, "/operator/token", {"user": f"bench{n}"})["token"])
            for n in range(args.players)
        ]
        cpu_before, started = cpu_seconds(proc.pid), time.monotonic()
        results = load(args, port, players)
        elapsed = time.monotonic() - started
        server_cpu = cpu_seconds(proc.pid) - cpu_before
        auth = {"Authorization": f"Bearer {ADMIN}"}
        summary = json.loads(pool.request("GET", "/admin/ledger/summary", headers=auth).data)
    finally:
        pool.close()
        stop(proc)
    report(args, results, elapsed, server_cpu, summary)


def report(
    args: argparse.Namespace,
    results: Results,
    elapsed: float,
    server_cpu: float,
    summary: dict[str, Any],
) -> None:
    calls = len(results.latencies)
    cuts = statistics.quantiles(results.latencies, n=100)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}"
    )
    print(
        f"database: {args.database.split('@')[-1]}, server {args.server}, "
        f"server threads {args.server_threads}, "
        f"client threads {args.clients}, players {args.players}, duration {elapsed:.1f}s"
    )
    print(
        f"wallet calls: {calls}  tx/s: {calls / elapsed:.0f}  "
        f"p50: {cuts[49] * 1000:.2f} ms  p99: {cuts[98] * 1000:.2f} ms"
    )
    print(
        f"server CPU: {server_cpu:.1f}s ({server_cpu / elapsed:.0%} of one core), "
        f"{server_cpu / max(calls, 1) * 1e6:.0f} us per call"
    )
    print(f"statuses: {dict(results.statuses)}")
    print(f"ledger consistent: {summary['consistent']}, transactions: {summary['transactions']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=None, help="default: SQLite file in a temp dir")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--players", type=int, default=64)
    parser.add_argument("--server-threads", type=int, default=32)
    parser.add_argument("--server", choices=("granian", "waitress"), default="granian")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.database is None:
            args.database = f"sqlite:///{Path(tmp) / 'wallet.db'}"
        run(args)


if __name__ == "__main__":
    main()
