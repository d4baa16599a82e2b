"""A minimal keep-alive HTTP/1.1 client for the aggregator's hot paths (region -> wallet, front
door -> region, load generator -> front door). urllib3 cost ~300 us of CPU per call here; this
costs ~35 us. Like the pools it replaced it never retries, checks an idle connection for a
server close before reusing it, and tells refused, timed-out and other failures apart.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from aggregator.errors import AggregatorError


@dataclass(frozen=True, kw_only=True)
class HttpReply:
    status: int
    body: bytes
    content_type: str = "application/json"


class HttpCallError(AggregatorError):
    """No complete HTTP answer. `refused`: no connection could be made (nothing was sent);
    `timeout`: the connection or the answer took too long. `name` is the urllib3 exception
    this used to be, kept because load-generator reports show it."""

    def __init__(
        self, message: str, *, refused: bool = False, timeout: bool = False, name: str = ""
    ) -> None:
        super().__init__(message)
        self.refused = refused
        self.timeout = timeout
        self.name = name or ("NewConnectionError" if refused else "ProtocolError")


class KeepAliveClient:
    """Pooled keep-alive HTTP/1.1 client for the roles' own JSON calls (region -> wallet,
    front door -> region, load generator -> both).

    It exists because urllib3 spent ~300 us of CPU per call here against ~35 us for this:
    one `sendall` per request, the answer framed by Content-Length (chunked and
    read-to-close also understood). Like the urllib3 pools it replaces it never retries,
    keeps at most `maxsize` idle connections per host (more may be open at once), and drops
    an idle connection the server has closed before reusing it.
    """

    def __init__(self, *, maxsize: int = 32, connect_timeout: float | None = None) -> None:
        self._maxsize = maxsize
        self._connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[socket.socket]] = {}
        self._targets: dict[str, tuple[str, int, str, bytes]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self, method: str, url: str, *, body: bytes | None = None, timeout: float
    ) -> HttpReply:
        host, port, path, host_header = self._target(url)
        head = f"{method} {path} HTTP/1.1\r\n".encode() + host_header
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        sock = self._checkout(host, port, timeout)
        try:
            sock.settimeout(timeout)
            sock.sendall(head + b"\r\n" + (body or b""))
            reply, reusable = _read_reply(sock, method)
        except TimeoutError as exc:
            sock.close()
            raise HttpCallError(f"{method} {url}: timed out", timeout=True) from exc
        except (OSError, ValueError) as exc:
            sock.close()
            raise HttpCallError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        self._checkin(host, port, sock, reusable)
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                sock.close()

    def _target(self, url: str) -> tuple[str, int, str, bytes]:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise HttpCallError(f"only http:// URLs are supported, got {url!r}")
            port = parts.port or 80
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            header = f"Host: {parts.hostname}:{port}\r\nAccept: application/json\r\n".encode()
            target = (parts.hostname, port, path, header)
            if len(self._targets) < 1024:  # the roles call a handful of URLs
                self._targets[url] = target
        return target

    def _checkout(self, host: str, port: int, timeout: float) -> socket.socket:
        while True:
            with self._lock:
                idle = self._idle.get((host, port))
                sock = idle.pop() if idle else None
            if sock is None:
                break
            if not _dropped(sock):
                return sock
            sock.close()
        connect_timeout = min(timeout, self._connect_timeout or timeout)
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except TimeoutError as exc:
            raise HttpCallError(
                f"connect to {host}:{port} timed out", timeout=True, name="ConnectTimeoutError"
            ) from exc
        except OSError as exc:
            raise HttpCallError(f"cannot connect to {host}:{port}: {exc}", refused=True) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _checkin(self, host: str, port: int, sock: socket.socket, reusable: bool) -> None:
        if reusable:
            with self._lock:
                idle = self._idle.setdefault((host, port), [])
                if not self._closed and len(idle) < self._maxsize:
                    idle.append(sock)
                    return
        sock.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle keep-alive connection with anything to read was closed by the server."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


_MAX_HEAD = 64 * 1024


def _read_reply(sock: socket.socket, method: str) -> tuple[HttpReply, bool]:
    """The answer and whether the connection may carry another request."""
    buf = b""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        if len(buf) > _MAX_HEAD:
            raise ValueError("response head too long")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed before the response")
        buf += chunk
    lines = buf[:end].decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status, rest = int(status_text), buf[end + 4 :]
    keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body, rest = _read_chunked(sock, rest)
    elif "content-length" in headers:
        body, rest = _read_exactly(sock, rest, int(headers["content-length"]))
    else:
        body, rest, keep = _read_to_close(sock, rest), b"", False
    content_type = headers.get("content-type", "application/json")
    # bytes past the answer mean we lost the framing: never reuse such a connection
    return HttpReply(status=status, body=body, content_type=content_type), keep and not rest


def _read_exactly(sock: socket.socket, buf: bytes, n: int) -> tuple[bytes, bytes]:
    while len(buf) < n:
        chunk = sock.recv(max(65536, n - len(buf)))
        if not chunk:
            raise ConnectionResetError("connection closed inside the response body")
        buf += chunk
    return buf[:n], buf[n:]


def _read_chunked(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        while (eol := buf.find(b"\r\n")) < 0:
            buf = _more(sock, buf)
        size = int(buf[:eol].split(b";")[0], 16)
        buf = buf[eol + 2 :]
        if size == 0:
            while (end := buf.find(b"\r\n")) != 0:  # skip trailers up to the empty line
                buf = buf[end + 2 :] if end > 0 else _more(sock, buf)
            return body, buf[2:]
        chunk, buf = _read_exactly(sock, buf, size + 2)
        body += chunk[:-2]


def _read_to_close(sock: socket.socket, buf: bytes) -> bytes:
    while chunk := sock.recv(65536):
        buf += chunk
    return buf


def _more(sock: socket.socket, buf: bytes) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionResetError("connection closed inside a chunked response")
    return buf + chunk
