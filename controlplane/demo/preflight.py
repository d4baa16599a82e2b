"""Before the demo touches anything: is another demo running on this data, and is every port
free? Both answers name who is in the way, so a second `make demo` stops with a sentence the
user can act on instead of wiping the first demo's databases and dying on "Address already in
use".
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

_LISTEN = "0A"  # TCP state in /proc/net/tcp*


class DemoBusy(RuntimeError):
    """The demo cannot start here now; the message says why and who holds what."""


class DemoLock:
    """An exclusive lock beside the data dir (`var/demo.lock`), held while the demo runs.

    It lives outside the data dir, which every run wipes; the kernel drops it when the holder
    dies, even by SIGKILL, so a crashed demo never blocks the next one.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir.with_name(data_dir.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise DemoBusy(
                f"a demo is already running (pid {holder}) with its data in "
                f"{str(self.path.with_suffix(''))!r}: stop it first (Ctrl-C in its terminal, "
                f"or kill {holder}), or give this one another --data-dir and --base-port"
            ) from None
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def check_ports(ports: Mapping[str, int], host: str = "127.0.0.1") -> None:
    """DemoBusy naming every taken port, its role and the process listening on it."""
    taken = [(role, port) for role, port in ports.items() if not _free(host, port)]
    if taken:
        lines = [f"  {port} ({role}): {port_holder(port)}" for role, port in taken]
        raise DemoBusy(
            "ports already in use:\n" + "\n".join(lines) + "\nstop what holds them, or "
            "move the demo with --base-port (or --<role>-port)"
        )


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_holder(port: int, proc: Path = Path("/proc")) -> str:
    """`pid 123: python -m aggregator wallet ...` for the process listening on `port`, as far
    as /proc lets us see (another user's processes are hidden)."""
    inodes = set(_listening_inodes(port, proc))
    if not inodes:
        return "held by a process this user cannot see"
    for pid_dir in proc.iterdir():
        if pid_dir.name.isdigit() and inodes & set(_socket_inodes(pid_dir)):
            return f"pid {pid_dir.name}: {_cmdline(pid_dir)}"
    return "held by a process this user cannot see"


def _listening_inodes(port: int, proc: Path) -> Iterable[str]:
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                yield inode


def _socket_inodes(pid_dir: Path) -> Iterable[str]:
    try:
        for fd in (pid_dir / "fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                yield target[8:-1]
    except OSError:  # gone, or not ours to look at
        return


def _cmdline(pid_dir: Path) -> str:
    try:
        words = (pid_dir / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    return text if len(text) <= 120 else text[:117] + "..."
