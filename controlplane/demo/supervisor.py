"""The demo's child processes: started in one process group with their logs in files, waited
for until they answer, stopped in order, and never left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests


class Supervisor:
    """The demo's child processes: one process group, logs in files, stopped in order.

    Children also get SIGTERM if the demo itself dies (Linux PR_SET_PDEATHSIG), so even a
    SIGKILLed demo leaves no orphans behind.
    """

    def __init__(self, *, env: Mapping[str, str], log_dir: Path, python: str) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._python = python
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pgid: int | None = None

    def start(self, name: str, args: Sequence[str]) -> None:
        with (self._log_dir / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(
                [self._python, "-m", *args],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0 if self._pgid is None else self._pgid,
                preexec_fn=_die_with_parent,
            )
        self._procs[name] = popen
        if self._pgid is None:
            self._pgid = popen.pid

    def names(self) -> list[str]:
        return list(self._procs)

    def pid(self, name: str) -> int:
        return self._procs[name].pid

    def exited(self) -> str | None:
        return next((n for n, p in self._procs.items() if p.poll() is not None), None)

    def running(self, name: str) -> bool:
        return self._procs[name].poll() is None

    def stop(self, name: str, sig: signal.Signals, *, grace_s: float) -> None:
        proc = self._procs.get(name)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {grace_s:g}s: SIGKILL", file=sys.stderr, flush=True)
            proc.kill()
            proc.wait(timeout=10)

    def kill_group(self, *, wait: bool = True) -> None:
        """Last resort: SIGKILL whatever is left in the group, then reap every child."""
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # group already empty
                os.killpg(self._pgid, signal.SIGKILL)
        if not wait:
            return
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self._log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel for SIGTERM when the demo dies.
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def wait_ready(
    supervisor: Supervisor, name: str, url: str, *, stop: threading.Event, timeout_s: float = 90.0
) -> None:
    deadline = time.monotonic() + timeout_s
    with requests.Session() as http:
        while time.monotonic() < deadline:
            if stop.is_set():
                raise RuntimeError(f"interrupted while waiting for {name}")
            if not supervisor.running(name):
                raise RuntimeError(f"{name} exited during start:\n{supervisor.log_tail(name)}")
            try:
                if http.get(url, timeout=1.0).status_code == 200:
                    return
            except requests.RequestException:
                pass
            stop.wait(0.2)
    raise TimeoutError(f"{name} did not answer {url} within {timeout_s:g}s")
