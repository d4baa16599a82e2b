"""`controlplane serve` as a real process under hostile queries: a text that crashed the
parser binding (SIGSEGV), operator chains that recursed, catastrophic regexes against a long
scraped label value, a subquery resolving to millions of steps, all at once; /healthz keeps
answering and the process lives on to a clean SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.conftest import Proc, free_port, wait_http

pytestmark = pytest.mark.slow
LONG = "a" * 20_000 + "!"


@pytest.fixture
def exporter() -> Iterator[int]:
    registry = CollectorRegistry()
    Gauge("hostile", "A long label value.", ["l"], registry=registry).labels(LONG).set(1)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def hostile_requests(url: str) -> list[tuple[str, Callable[[], requests.Response], int]]:
    def post(expr: str) -> Callable[[], requests.Response]:
        return lambda: requests.post(f"{url}/api/v1/query", data={"query": expr}, timeout=60)

    def series(selector: str) -> Callable[[], requests.Response]:
        return lambda: requests.get(f"{url}/api/v1/series", {"match[]": selector}, timeout=60)

    return [
        ("50,000 parentheses", post("(" * 50_000 + "1" + ")" * 50_000), 400),
        ("30,000 parentheses", post("(" * 30_000 + "1" + ")" * 30_000), 400),
        ("a 10,000-term chain", post("+".join(["1"] * 10_000)), 400),
        ("a regex in a query", post('count(hostile{l=~"(a+)+$"}) or vector(0)'), 200),
        ("a regex in match[]", series('hostile{l=~"(a|aa)+$"}'), 200),
        ("label_replace", post('label_replace(hostile, "x", "$1", "l", "(a*)*b")'), 200),
        ("a fine subquery", post("max_over_time(hostile[30d:1ms])"), 422),
    ]


def test_hostile_queries_leave_the_process_answering(tmp_path: Path, exporter: int) -> None:
    config = tmp_path / "cp.yaml"
    config.write_text(
        "scrape:\n"
        f"  targets: [{{job: hostile, url: 'http://127.0.0.1:{exporter}', interval: 500ms}}]\n"
        f"store: {{checkpoint_path: '{tmp_path / 'store'}'}}\n"
        f"database_url: 'sqlite:///{tmp_path / 'cp.db'}'\n"
    )
    port = free_port()
    env = {"CONTROLPLANE_CONFIG": str(config), "PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    proc = Proc("controlplane", ["controlplane", "serve", "--port", str(port)], env, tmp_path)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=60, proc=proc)
        deadline = time.monotonic() + 30
        while not requests.get(f"{url}/api/v1/query", {"query": "hostile"}, timeout=10).json()[
            "data"
        ]["result"]:
            assert time.monotonic() < deadline, proc.log()[-3000:]
            time.sleep(0.2)
        cases = hostile_requests(url) * 2
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = [(name, pool.submit(send), want) for name, send, want in cases]
            for _ in range(10):  # the probe answers while they run
                assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
                time.sleep(0.1)
            for name, answer, want in answers:
                response = answer.result(timeout=60)
                # 503: more hostile queries at once than query.max_concurrency lets in
                assert response.status_code in (want, 503), (name, response.text[:300])
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        for name, send, want in hostile_requests(url):  # one at a time: each its own answer
            assert send().status_code == want, name
        assert proc.popen is not None and proc.popen.poll() is None, proc.log()[-3000:]
        proc.popen.terminate()
        assert proc.popen.wait(timeout=30) == 0, proc.log()[-3000:]
    finally:
        proc.stop()
    assert "Traceback" not in proc.log(), proc.log()[-3000:]
