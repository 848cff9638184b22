"""The HTTP port as an HTTPS proxy: `CONNECT host:443` to a served host is a TLS tunnel with a certificate from the
emulator's CA (curl trusts it through CURL_CA_BUNDLE, and refuses it without), its requests reach the host's handler
with the CONNECT host; anything else is refused before a tunnel opens, a handshake that never comes is cut off, and
the framing limits hold inside the tunnel."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator

import pytest

from emulator.core.network import Outbound, Reply
from emulator.frontends import httpserver
from emulator.server import Emulator
from tests.prerequisites import need

HOST = "served-3pbqmqz6le-uc.a.run.app"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    emulator = Emulator("healthy").start()
    seen: list[Outbound] = []

    def echo(request: Outbound) -> Reply:
        seen.append(request)
        text = f"{request.method} {request.url} {len(request.body)}\n"
        return Reply(200, {"content-type": "text/plain"}, text.encode())

    emulator.world.network.route(HOST, echo)
    try:
        yield emulator
    finally:
        emulator.stop()


def _connect(emu: Emulator, target: str) -> tuple[socket.socket, bytes]:
    """A raw CONNECT: the socket and the proxy's answer head (status line and headers)."""
    sock = socket.create_connection((emu.http.host, emu.http.port), timeout=10)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, head


def _tls(emu: Emulator, sock: socket.socket) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    return context.wrap_socket(sock, server_hostname=HOST)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_curl_reaches_the_served_host_through_the_tunnel_and_checks_the_certificate(emu: Emulator) -> None:
    need("curl")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "https_proxy": emu.rest_url}
    trusted = {**env, "CURL_CA_BUNDLE": str(emu.ca_file)}
    done = subprocess.run(
        ["curl", "-sS", f"https://{HOST}/a?b=1", f"https://{HOST}/second", "-d", "xyz"],
        env=trusted, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"POST https://{HOST}/a?b=1 3\nPOST https://{HOST}/second 3\n"
    assert emu.info()["ca_file"] == str(emu.ca_file)
    assert emu.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")

    # Without the emulator's CA the certificate is not trusted: curl's "SSL certificate problem" (exit 60).
    untrusted = {**env, "CURL_CA_BUNDLE": str(emu.ca_file.parent / "missing.pem")}
    refused = subprocess.run(
        ["curl", "-sS", f"https://{HOST}/"], env=untrusted, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode in (60, 77), refused.stderr  # 77: the named CA file cannot be read


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("elsewhere.a.run.app:443", b"502"),  # not a served host: nothing is opened
        (f"{HOST}:80", b"403"),  # a served host, but not port 443
        ("127.0.0.1:443", b"502"),  # the emulator itself is not a served host either
        ("no port", b"400"),
        (f"{HOST}:99999999", b"400"),
    ],
)
def test_connect_is_refused_for_anything_but_a_served_host_on_443(emu: Emulator, target: str, status: bytes) -> None:
    sock, head = _connect(emu, target)
    with sock:
        assert head.split(b" ")[1] == status, head
        assert _answer(sock).endswith(b"\n")  # the reason, then the connection closes
    with emu.world.lock:
        assert emu.world.network.routed() == [HOST]


def test_requests_inside_the_tunnel_are_the_connect_hosts_and_keep_the_limits(emu: Emulator) -> None:
    sock, head = _connect(emu, f"{HOST}:443")
    assert head.startswith(b"HTTP/1.1 200 Connection established\r\n"), head
    with _tls(emu, sock) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        assert ("DNS", HOST) in cert["subjectAltName"]
        # An absolute URI or another Host header does not move the request off the tunnel's host.
        tls.sendall(b"GET http://elsewhere.example/x HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n")
        first = tls.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        assert first.endswith(f"GET https://{HOST}/x 0\n".encode())
        # A body over the limit is refused by its Content-Length before it is read, and the tunnel closes.
        tls.sendall(f"POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {httpserver.MAX_BODY + 1}\r\n\r\n".encode())
        refused = _answer(tls)
        assert refused.startswith(b"HTTP/1.1 413"), refused
        assert b"request body too large" in refused


def test_connect_inside_a_tunnel_is_not_allowed(emu: Emulator) -> None:
    sock, _ = _connect(emu, f"{HOST}:443")
    with _tls(emu, sock) as tls:
        tls.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
        assert _answer(tls).startswith(b"HTTP/1.1 405")


def test_a_handshake_that_never_comes_is_cut_off(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpserver, "HANDSHAKE_TIMEOUT", 0.3)
    sock, head = _connect(emu, f"{HOST}:443")
    with sock:
        assert head.startswith(b"HTTP/1.1 200"), head
        assert sock.recv(1) == b""  # the emulator closed the tunnel (the client's own timeout is 10 s)
    sock, _ = _connect(emu, f"{HOST}:443")
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP where TLS was due
        try:
            answer = _answer(sock)
        except ConnectionResetError:  # closed with the request unread
            answer = b""
        assert b"HTTP/" not in answer  # at most a TLS alert: nothing was served
