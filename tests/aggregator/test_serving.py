"""Both production servers behind `aggregator.serving.serve`, as real processes: they answer,
run `on_start` and `on_stop` in the process that serves, stop on SIGTERM with exit 0, and a
role killed with SIGKILL leaves no process behind (granian's worker dies with its parent)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import Proc, free_port, wait_http

# A role in miniature: a WSGI app whose answer names the serving process, and hooks that
# record which process ran them.
SCRIPT = """
import os, sys
from pathlib import Path
from aggregator.serving import serve

marks = Path(sys.argv[3])

def mark(what):
    with marks.open("a") as f:
        f.write(f"{what} {os.getpid()}\\n")

def app(environ, start_response):
    body = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

serve(app, port=int(sys.argv[2]), threads=4, name="mini", server=sys.argv[1],
      on_start=lambda: mark("start"), on_stop=lambda: mark("stop"),
      before_fork=lambda: mark("before_fork"))
"""

SERVERS = ["waitress", "granian"]


def start(server: str, tmp_path: Path, procs: list[Proc]) -> tuple[Proc, str, Path]:
    port, marks = free_port(), tmp_path / "marks.txt"
    script = tmp_path / "mini.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = Proc("mini", [str(script), server, str(port), str(marks)], env, tmp_path)
    _start_script(proc)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ready", proc=proc)
    return proc, url, marks


def _start_script(proc: Proc) -> None:
    """Proc.start runs `python -m`; this role is a script."""
    with proc.log_path.open("ab") as log:
        proc.popen = subprocess.Popen(
            [sys.executable, *proc.args], env=proc.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def marks_of(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(w, int(p)) for w, p in (line.split() for line in path.read_text().splitlines())]


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): it has exited, only nobody reaped it yet
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("server", SERVERS)
def test_serves_and_stops_cleanly_on_sigterm(
    server: str, tmp_path: Path, procs: list[Proc]
) -> None:
    proc, url, marks = start(server, tmp_path, procs)
    assert proc.popen is not None
    with requests.Session() as http:  # keep-alive: the stop must not wait on idle clients
        method, path, serving = http.post(f"{url}/x/y", data=b"{}", timeout=5).text.split()
    assert (method, path) == ("POST", "/x/y")
    started = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=15) == 0
    assert time.monotonic() - started < 12
    wait_until(lambda: ("stop", int(serving)) in marks_of(marks))
    recorded = marks_of(marks)
    assert ("start", int(serving)) in recorded, recorded
    assert ("stop", int(serving)) in recorded, recorded
    if server == "granian":
        # the worker serves; the role's own process only forks it, after `before_fork`
        assert int(serving) != proc.popen.pid
        assert recorded[0] == ("before_fork", proc.popen.pid), recorded
        assert not alive(int(serving))
    else:
        assert int(serving) == proc.popen.pid
        assert "before_fork" not in {what for what, _ in recorded}
    assert f"mini listening on {url} ({server})" in proc.log()


@pytest.mark.parametrize("server", SERVERS)
def test_sigkill_of_the_role_leaves_no_process_and_frees_the_port(
    server: str, tmp_path: Path, procs: list[Proc]
) -> None:
    proc, url, _ = start(server, tmp_path, procs)
    assert proc.popen is not None
    serving = int(requests.get(f"{url}/", timeout=5).text.split()[2])
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(timeout=10)
    wait_until(lambda: not alive(serving))
    port = int(url.rsplit(":", 1)[1])
    wait_until(lambda: port_free(port))
    # and the role starts again on the same port
    _start_script(proc)
    wait_http(f"{url}/again", proc=proc)


def test_unknown_server_is_refused() -> None:
    from aggregator.serving import serve

    with pytest.raises(ValueError, match="unknown server 'gunicorn'"):
        serve(lambda e, s: [], port=free_port(), server="gunicorn")
