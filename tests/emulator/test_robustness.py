"""The emulator refuses malformed input, gRPC and HTTP, with a clear status and keeps serving."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import grpc
import pytest
from google.cloud import aiplatform_v1

from devkit import emulated
from emulator.frontends import httpserver
from emulator.server import Emulator

GEN = "/google.cloud.aiplatform.v1.PredictionService/GenerateContent"


def _raw(emulator: Emulator, method: str, payload: bytes, token: str) -> grpc.RpcError | bytes:
    channel = grpc.secure_channel(emulator.grpc.address, grpc.local_channel_credentials())
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        return bytes(call(payload, metadata=(("authorization", f"Bearer {token}"),), timeout=5))
    except grpc.RpcError as err:
        return err
    finally:
        channel.close()


def _healthy_call_works(emulator: Emulator) -> None:
    clients = emulated.clients(emulator)
    response = clients.prediction.generate_content(
        request=aiplatform_v1.GenerateContentRequest(
            model="projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash",
            contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="hi")])],
        )
    )
    assert response.candidates


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xff\xff", b"\x0a\xff", b"\x08" * 1000, bytes(range(256))],
    ids=["varint", "truncated-string", "many-keys", "all-bytes"],
)
def test_garbage_request_is_refused_and_the_server_keeps_serving(emulator: Emulator, payload: bytes) -> None:
    token = emulated.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, GEN, payload, token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    _healthy_call_works(emulator)


def test_unknown_method_is_unimplemented(emulator: Emulator) -> None:
    token = emulated.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, "/google.cloud.aiplatform.v1.PredictionService/Explode", b"", token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() == grpc.StatusCode.UNIMPLEMENTED
    _healthy_call_works(emulator)


def test_empty_request_gets_googles_answer(emulator: Emulator) -> None:
    token = emulated.token_for(emulator, emulator.world.workload)
    outcome = _raw(emulator, GEN, b"", token)
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome.details() == "Invalid resource field value in the request."
    _healthy_call_works(emulator)


# HTTP (REST, admin and metadata share emulator/httpserver.py) --------------------------------------------------------
#
# Each request below goes over a raw socket, so nothing in a client library tidies it up first. After a refusal the
# server must still serve: on a new connection always, and on the same connection unless it said Connection: close
# (then it must really close it, so no leftover of the broken request is read as the next one).


def _request(verb: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{verb} {path} HTTP/1.1", "Host: 127.0.0.1", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _exchange(port: int, raw: bytes, sock: socket.socket | None = None) -> tuple[socket.socket, int, Any, Any]:
    """Send raw bytes; (socket, status, decoded JSON body, headers) of the one answer."""
    sock = sock or _connect(port)
    sock.sendall(raw)
    response = http.client.HTTPResponse(sock, method=raw.split(b" ", 1)[0].decode())
    response.begin()
    body = response.read()
    return sock, response.status, json.loads(body) if body else None, response.headers


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def _admin_works(port: int, sock: socket.socket | None = None) -> None:
    _, status, body, _ = _exchange(port, _request("GET", "/_emulator/calls"), sock)
    assert status == 200, body
    assert "calls" in body


def _port(emulator: Emulator) -> int:
    return emulator.http.port


def _error(status: int, message: str) -> dict[str, Any]:
    statuses = {400: "INVALID_ARGUMENT", 408: "DEADLINE_EXCEEDED", 413: "INVALID_ARGUMENT", 501: "UNIMPLEMENTED"}
    return {"error": {"code": status, "message": message, "status": statuses[status]}}


TOO_LARGE = "request body too large: at most 10485760 bytes"
FRAMING = [
    pytest.param(
        {"Content-Length": "abc"},
        b"{}",
        400,
        "Content-Length must be one non-negative decimal number, got 'abc'",
        id="content-length-not-a-number",
    ),
    pytest.param(
        {"Content-Length": "-5"},
        b"{}",
        400,
        "Content-Length must be one non-negative decimal number, got '-5'",
        id="content-length-negative",
    ),
    pytest.param(
        {"Content-Length": "2, 3"},
        b"{}",
        400,
        "Content-Length must be one non-negative decimal number, got '2, 3'",
        id="content-length-two-values",
    ),
    pytest.param({"Content-Length": "99999999999"}, b"", 413, TOO_LARGE, id="content-length-huge"),
    pytest.param({"Content-Length": "9" * 5000}, b"", 413, TOO_LARGE, id="content-length-5000-digits"),
    pytest.param(
        {"Transfer-Encoding": "gzip"},
        b"",
        501,
        "Transfer-Encoding 'gzip' is not supported; send chunked",
        id="transfer-encoding-unknown",
    ),
    pytest.param(
        {"Transfer-Encoding": "chunked", "Content-Length": "2"},
        b"2\r\n{}\r\n0\r\n\r\n",
        400,
        "a request may not carry both Transfer-Encoding and Content-Length",
        id="chunked-and-content-length",
    ),
    pytest.param(
        {"Transfer-Encoding": "chunked"},
        b"zz\r\n{}\r\n0\r\n\r\n",
        400,
        "malformed chunk size line b'zz\\r\\n' in a chunked body",
        id="chunk-size-not-hex",
    ),
    pytest.param({"Transfer-Encoding": "chunked"}, b"A00001\r\n", 413, TOO_LARGE, id="chunk-too-large"),
    pytest.param(
        {"Content-Length": "10"},
        b'{"a"',
        400,
        "the request body ended after 4 of 10 bytes",
        id="body-shorter-than-content-length",
    ),
]


@pytest.mark.parametrize(("headers", "body", "status", "message"), FRAMING)
@pytest.mark.parametrize(
    ("server", "path"),
    [
        ("http", "/_emulator/clock"),
        ("http", "/v2/entries:write"),
        ("metadata", "/computeMetadata/v1/project/project-id"),
    ],
)
def test_broken_framing_is_refused_the_connection_closed_and_the_server_keeps_serving(
    emulator: Emulator, server: str, path: str, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    sock = _connect(getattr(emulator, server).port)
    sock.sendall(_request("POST", path, headers, body))
    if "ended after" in message:
        sock.shutdown(socket.SHUT_WR)  # the client gives up half-way through its body
    response = http.client.HTTPResponse(sock, method="POST")
    response.begin()
    got_status, got_body, got_headers = response.status, json.loads(response.read()), response.headers
    assert (got_status, got_body) == (status, _error(status, message))
    assert got_headers["Connection"] == "close"
    assert _closed_by_server(sock)
    _admin_works(_port(emulator))


def test_too_large_a_body_is_refused_before_the_client_sends_it(emulator: Emulator) -> None:
    headers = {"Content-Length": str(11 * 1024 * 1024), "Expect": "100-continue"}
    sock, status, body, _ = _exchange(_port(emulator), _request("POST", "/_emulator/clock", headers))
    assert (status, body) == (413, _error(413, TOO_LARGE))  # the final answer, not 100 Continue
    assert _closed_by_server(sock)
    _admin_works(_port(emulator))


def test_a_chunked_body_is_read_and_the_connection_stays_usable(emulator: Emulator) -> None:
    chunks = b'9\r\n{"advance\r\nE\r\n_seconds": 60}\r\n0\r\nX-Trailer: 1\r\n\r\n'
    raw = _request("POST", "/_emulator/clock", {"Transfer-Encoding": "chunked"}, chunks)
    sock, status, body, _ = _exchange(_port(emulator), raw)
    assert (status, body) == (200, {"mode": "virtual", "now": "2026-11-26T09:01:00Z", "rate": 0.0})
    _admin_works(_port(emulator), sock)
    sock.close()


DEEP = b"[" * 100_000 + b"]" * 100_000
ADMIN_BODIES = [
    pytest.param(DEEP, "the request body is not valid JSON: nested deeper than 100 levels", id="nested-100000-deep"),
    pytest.param(
        b'{"advance_seconds": ' + b"[" * 101 + b"]" * 101 + b"}",
        "the request body is not valid JSON: nested deeper than 100 levels",
        id="nested-102-deep",
    ),
    pytest.param(b'{"advance_seconds": NaN}', "the request body is not valid JSON: NaN is not a JSON number", id="nan"),
    pytest.param(
        b'{"advance_seconds": Infinity}',
        "the request body is not valid JSON: Infinity is not a JSON number",
        id="infinity",
    ),
    pytest.param(
        b'{"advance_seconds": 1e400}',
        "the request body is not valid JSON: the number 1e400 is out of range",
        id="1e400",
    ),
    pytest.param(
        b'{"advance_seconds": ' + b"1" * 5000 + b"}",
        "the request body is not valid JSON: the number 1111111111111111111111111111111111111111... is out of range",
        id="5000-digit-integer",
    ),
    pytest.param(
        b'{"advance_seconds": 1e300}', "advance_seconds: at most 3153600000 (100 years), got 1e+300", id="1e300"
    ),
    pytest.param(
        b'{"advance_seconds": "\xff"}',
        "the request body is not valid JSON: not valid UTF-8 (byte 0xff at offset 21)",
        id="invalid-utf8",
    ),
    pytest.param(
        b'{"advance_seconds": 1, "advance_seconds": 2}',
        "the request body is not valid JSON: duplicate key 'advance_seconds'",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("body", "message"), ADMIN_BODIES)
def test_bad_admin_bodies_are_a_400_and_the_same_connection_keeps_serving(
    emulator: Emulator, body: bytes, message: str
) -> None:
    before = emulator.world.clock.now()
    raw = _request("POST", "/_emulator/clock", {"Content-Type": "application/json"}, body)
    sock, status, answer, headers = _exchange(_port(emulator), raw)
    assert (status, answer) == (400, {"error": message})
    assert headers.get("Connection") != "close"
    _admin_works(_port(emulator), sock)  # keep-alive: the same connection
    sock.close()
    _admin_works(_port(emulator))  # and a new one
    assert emulator.world.clock.now() == before


def test_a_nan_hang_cannot_be_armed_to_poison_a_later_call(emulator: Emulator) -> None:
    raw = _request("POST", "/_emulator/faults", {}, b'{"method": "metadata.token", "hang_seconds": NaN}')
    _, status, body, _ = _exchange(_port(emulator), raw)
    assert (status, body) == (400, {"error": "the request body is not valid JSON: NaN is not a JSON number"})
    assert emulator.world.faults == []
    _healthy_call_works(emulator)


NAN_BODY = '{"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"temperature": NaN}}'
HUGE_BODY = '{"contents": [], "generationConfig": {"temperature": 1e400}}'
REST_BODIES = [
    pytest.param(DEEP, "Invalid JSON payload received. Message too deep. Max recursion depth is 100.", id="deep"),
    pytest.param(
        NAN_BODY.encode(),
        f"Invalid JSON payload received. Unexpected token.\n{NAN_BODY}\n{' ' * NAN_BODY.index('NaN')}^",
        id="nan",
    ),
    pytest.param(
        HUGE_BODY.encode(),
        f"Invalid JSON payload received. Number out of range.\n{HUGE_BODY}\n{' ' * HUGE_BODY.index('1e400')}^",
        id="1e400",
    ),
    pytest.param(b'{"contents": "\xc3\x28"}', "Invalid JSON payload received. Invalid UTF-8.", id="invalid-utf8"),
]


@pytest.mark.parametrize(("body", "message"), REST_BODIES)
def test_bad_rest_bodies_get_googles_400_and_the_same_connection_keeps_serving(
    emulator: Emulator, body: bytes, message: str
) -> None:
    token = emulated.token_for(emulator, emulator.world.workload)
    path = "/v1/projects/demo-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sock, status, answer, _ = _exchange(_port(emulator), _request("POST", path, headers, body))
    assert (status, answer) == (400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})
    _, status, answer, _ = _exchange(_port(emulator), _request("POST", path, headers, PROMPT_JSON), sock)
    assert status == 200, answer
    sock.close()
    _healthy_call_works(emulator)


PROMPT_JSON = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'


def test_a_client_that_stalls_mid_body_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpserver, "BODY_TIMEOUT", 0.3)
    server = httpserver.HttpServer(lambda request: httpserver.Response.json({"ok": True}))
    server.start()
    try:
        sock = _connect(server.port)
        sock.sendall(_request("POST", "/", {"Content-Length": "10"}, b"{"))
        _, status, body, _ = _exchange(server.port, b"", sock)
        assert (status, body) == (408, _error(408, "the request body did not arrive within 0.3 s"))
        assert _closed_by_server(sock)
        assert _exchange(server.port, _request("GET", "/"))[1:3] == (200, {"ok": True})
    finally:
        server.stop()


def test_an_application_error_is_a_500_and_the_connection_stays_usable(capsys: pytest.CaptureFixture[str]) -> None:
    def app(request: httpserver.Request) -> httpserver.Response:
        if request.path == "/boom":
            raise OverflowError("date value out of range")
        return httpserver.Response.json({"ok": True})

    server = httpserver.HttpServer(app)
    server.start()
    try:
        sock, status, body, _ = _exchange(server.port, _request("POST", "/boom", body=b"{}"))
        assert (status, body) == (
            500,
            {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}},
        )
        assert _exchange(server.port, _request("GET", "/"), sock)[1:3] == (200, {"ok": True})
        sock.close()
    finally:
        server.stop()
    assert "OverflowError: date value out of range" in capsys.readouterr().err


def test_an_error_reason_google_does_not_have_cannot_be_sent() -> None:
    """The emulator's ErrorInfo reasons are checked against google/api/error_reason.proto's generated enum."""
    from emulator.core.status import error_info

    assert error_info("SERVICE_DISABLED", "googleapis.com", {}).reason == "SERVICE_DISABLED"
    with pytest.raises(ValueError, match=r"'SERVICE_DISABLD' is not a google\.api\.ErrorReason"):
        error_info("SERVICE_DISABLD", "googleapis.com", {})
