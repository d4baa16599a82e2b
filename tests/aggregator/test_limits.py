"""aggregator/limits.py on its own: JSON nesting and the WSGI body limit, including what the
servers do and Flask's test client does not (a chunked body, an unreadable declared one)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from aggregator.errors import BadRequest
from aggregator.limits import MAX_JSON_DEPTH, BodyLimit, depth_exceeds, parse_json

DEEP = MAX_JSON_DEPTH


def arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


PARSED = {
    "flat object": (b'{"user": "p1", "amount": 5}', {"user": "p1", "amount": 5}),
    "arrays at the limit": (arrays(DEEP), json.loads(arrays(DEEP))),
    "brackets inside strings do not nest": (
        b'{"a": "' + arrays(5000) + b'"}',
        {"a": arrays(5000).decode()},
    ),
    "many shallow arrays": (b"[" + b",".join([b"[]"] * 5000) + b"]", [[]] * 5000),
}


@pytest.mark.parametrize(("raw", "value"), PARSED.values(), ids=PARSED.keys())
def test_parse_json_reads_what_is_within_the_limits(raw: bytes, value: Any) -> None:
    assert parse_json(raw) == value


REFUSED = {
    "arrays one past the limit": (arrays(DEEP + 1), "json_too_deep"),
    "objects one past the limit": (
        b'{"a":' * (DEEP + 1) + b"1" + b"}" * (DEEP + 1),
        "json_too_deep",
    ),
    "mixed, past the limit": (b'{"a":[' * 17 + b"1" + b"]}" * 17, "json_too_deep"),
    "thousands deep (RecursionError in json)": (arrays(10_000), "json_too_deep"),
    "a million deep": (arrays(1_000_000), "json_too_deep"),
    "unclosed thousands deep": (b"[" * 10_000, "json_too_deep"),
    "not JSON": (b"{nope", "malformed_json"),
    "not UTF-8": (b'"\xff"', "malformed_json"),
    "empty": (b"", "malformed_json"),
}


@pytest.mark.parametrize(("raw", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_parse_json_refuses_with_a_400_code(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_json(raw)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_depth_is_counted_without_recursion() -> None:
    value: Any = 1
    for _ in range(100_000):  # far past the interpreter's recursion limit
        value = [value]
    assert depth_exceeds(value, 99_999)
    assert not depth_exceeds(value, 100_000)
    assert not depth_exceeds("scalar", 0)


class Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body of a refused request must not be read")


def run(app: BodyLimit, **environ: Any) -> tuple[str, dict[str, Any] | bytes]:
    seen: list[str] = []
    out = b"".join(app({"REQUEST_METHOD": "POST", **environ}, lambda s, h: seen.append(s)))
    body = json.loads(out) if out.startswith(b"{") else out
    return seen[0], body


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"read %d" % len(body)]


def test_a_declared_length_over_the_limit_is_413_unread() -> None:
    status, body = run(BodyLimit(echo, 100), CONTENT_LENGTH="101", **{"wsgi.input": Unreadable()})
    assert status == "413 REQUEST ENTITY TOO LARGE"
    assert body == {
        "error": "payload_too_large",
        "message": "request body of 101 bytes is over the limit of 100 bytes",
    }


@pytest.mark.parametrize(("size", "expected"), [(0, b"read 0"), (100, b"read 100")])
def test_a_chunked_body_within_the_limit_reaches_the_app_with_its_length(
    size: int, expected: bytes
) -> None:
    stream = {"wsgi.input": io.BytesIO(b"x" * size), "wsgi.input_terminated": True}
    assert run(BodyLimit(echo, 100), **stream) == ("200 OK", expected)


def test_a_chunked_body_over_the_limit_is_413_after_limit_plus_one_bytes() -> None:
    stream = io.BytesIO(b"x" * 10_000)
    status, body = run(
        BodyLimit(echo, 100), **{"wsgi.input": stream, "wsgi.input_terminated": True}
    )
    assert status.startswith("413") and isinstance(body, dict)
    assert body["error"] == "payload_too_large"
    assert stream.tell() == 101


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", " 5"])
def test_a_content_length_that_is_no_byte_count_is_400(length: str) -> None:
    status, body = run(BodyLimit(echo, 100), CONTENT_LENGTH=length, **{"wsgi.input": Unreadable()})
    assert status.startswith("400") and isinstance(body, dict)
    assert body["error"] == "bad_content_length"


def test_a_limit_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        BodyLimit(echo, 0)
