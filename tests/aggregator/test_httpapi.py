"""The hot-path HTTP pieces shared by the roles: the keep-alive client (against a scripted raw
socket server, so framing and connection reuse are what is tested) and the fast WSGI routes
(answering exactly as the Flask routes and error handlers they stand in front of)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, Response

from aggregator.errors import ApiError, NotFound, Unauthorized
from aggregator.httpapi import FastRoutes, install_error_handlers, json_response
from aggregator.httpclient import HttpCallError, KeepAliveClient
from tests.conftest import free_port

Answer = Callable[[bytes], bytes]


def content_length(body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class ScriptedServer:
    """Answers each request with `answer(request)`; counts connections; closes after the
    answer if the answer says Connection: close or has no length."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                request, buf = head + b"\r\n\r\n" + buf[:length], buf[length:]
                self.requests.append(request)
                reply = self.answer(request)
                if reply:
                    conn.sendall(reply)
                framed = b"Content-Length" in reply or b"chunked" in reply
                if not reply or b"Connection: close" in reply or not framed:
                    return
        except OSError:
            return
        finally:
            conn.close()

    def drop_idle(self) -> None:
        """Close every server-side connection, as an idle timeout would."""
        for conn in self._open:
            # shutdown, not only close: it sends the FIN even while _serve blocks in recv
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self.drop_idle()


@pytest.fixture
def client() -> Iterator[KeepAliveClient]:
    client = KeepAliveClient(maxsize=2, connect_timeout=1.0)
    yield client
    client.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answer: Answer) -> ScriptedServer:
        servers.append(ScriptedServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_keep_alive_reuses_one_connection(client: KeepAliveClient, serve: Callable) -> None:
    server = serve(lambda request: content_length(b'{"ok": true}'))
    for n in range(5):
        reply = client.request("POST", f"{server.url}/x?n={n}", body=b'{"n": 1}', timeout=5)
        assert (reply.status, reply.body, reply.content_type) == (
            200,
            b'{"ok": true}',
            "application/json",
        )
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /x?n=0 HTTP/1.1\r\n")
    assert b"Content-Length: 8\r\n" in first and first.endswith(b'\r\n\r\n{"n": 1}')
    assert client.request("GET", f"{server.url}/readyz", timeout=5).status == 200
    assert b"Content-Length" not in server.requests[-1]


def test_framings_chunked_close_delimited_and_connection_close(
    client: KeepAliveClient, serve: Callable
) -> None:
    chunked = (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: text/plain\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: 1\r\n\r\n"
    )
    server = serve(lambda request: chunked)
    reply = client.request("POST", f"{server.url}/c", body=b"{}", timeout=5)
    assert (reply.status, reply.body, reply.content_type) == (503, b"abcdefg", "text/plain")
    client.request("POST", f"{server.url}/c", body=b"{}", timeout=5)
    assert server.connections == 1  # a chunked answer keeps the connection

    to_close = serve(lambda request: b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
    assert client.request("GET", f"{to_close.url}/", timeout=5).body == b"until the end"
    closing = serve(lambda request: content_length(b"{}", close=True))
    for _ in range(2):
        assert client.request("GET", f"{closing.url}/", timeout=5).body == b"{}"
    assert (to_close.connections, closing.connections) == (1, 2)


def test_an_idle_connection_the_server_closed_is_replaced(
    client: KeepAliveClient, serve: Callable
) -> None:
    server = serve(lambda request: content_length(b"{}"))
    client.request("GET", f"{server.url}/", timeout=5)
    server.drop_idle()
    assert client.request("GET", f"{server.url}/", timeout=5).status == 200
    assert server.connections == 2


def test_refused_timeout_and_broken_answers(client: KeepAliveClient, serve: Callable) -> None:
    with pytest.raises(HttpCallError) as refused:
        client.request("GET", f"http://127.0.0.1:{free_port()}/", timeout=2)
    assert refused.value.refused and not refused.value.timeout
    assert refused.value.name == "NewConnectionError"

    silent = serve(lambda request: b"")  # reads the request, closes without an answer
    with pytest.raises(HttpCallError) as reset:
        client.request("POST", f"{silent.url}/", body=b"{}", timeout=2)
    assert not reset.value.refused and not reset.value.timeout

    stall = threading.Event()
    slow = serve(lambda request: stall.wait(2) and b"")  # answers nothing, after a while
    with pytest.raises(HttpCallError) as late:
        client.request("POST", f"{slow.url}/", body=b"{}", timeout=0.2)
    stall.set()
    assert late.value.timeout and not late.value.refused
    with pytest.raises(HttpCallError):
        client.request("GET", "https://127.0.0.1/", timeout=1)


class Boom(Exception):
    pass


def twin_apps(error: Exception | None) -> tuple[Flask, Flask]:
    """The same route as a plain Flask view and as a fast route, raising `error` if given."""

    def answer(raw: bytes) -> tuple[int, object]:
        if error is not None:
            raise error
        return 201, {"echo": json.loads(raw)}

    def view() -> Response:
        from flask import request

        status, body = answer(request.get_data())
        return json_response(body, status)

    apps = []
    for fast in (False, True):
        app = Flask(f"twin-{fast}")
        install_error_handlers(app)
        app.add_url_rule("/hot", "hot", view, methods=["POST"])
        if fast:
            app.wsgi_app = FastRoutes(app, {("POST", "/hot"): answer})  # type: ignore[method-assign]
        apps.append(app)
    return apps[0], apps[1]


@pytest.mark.parametrize(
    "error",
    [
        None,
        NotFound("no such thing 'x'", code="unknown_x", extra=1),
        Unauthorized("wrong bearer token"),
        ApiError("teapot"),
        Boom("unexpected"),
    ],
)
def test_fast_routes_answer_as_flask_does(error: Exception | None) -> None:
    plain, fast = twin_apps(error)
    answers = []
    for app in (plain, fast):
        client = app.test_client()
        got = client.post("/hot", data=b'{"a": 1}')
        wrong_method = client.get("/hot")
        answers.append(
            (
                got.status,
                got.get_data(),
                got.headers.get("Content-Type"),
                got.headers.get("WWW-Authenticate"),
                wrong_method.status_code,
                wrong_method.get_json(),
            )
        )
    assert answers[0] == answers[1]
    assert answers[1][4] == 405


def test_fast_routes_propagate_unexpected_errors_when_testing() -> None:
    _, fast = twin_apps(Boom("unexpected"))
    fast.testing = True
    with pytest.raises(Boom):
        fast.test_client().post("/hot", data=b"{}")
