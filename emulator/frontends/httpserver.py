"""A small threaded HTTP server on loopback, shared by the metadata server and the REST/admin front end.

Request framing is checked before the application sees a request, and a request whose framing is broken is refused
with a JSON error and the connection closed (nothing of it can poison the next request on that connection):

- `Content-Length` must be one non-negative decimal number (RFC 9112 §6.3; repeated equal values are one value):
  otherwise 400. A body longer than `MAX_BODY` is refused with 413 before any of it is read, also when the client
  waits for `Expect: 100-continue`.
- `Transfer-Encoding: chunked` bodies are read (RFC 9112 §7.1), within `MAX_BODY`; a malformed chunk is 400, any
  other transfer coding 501, and both Transfer-Encoding and Content-Length together 400 (RFC 9112 §6.1).
- A body that does not arrive whole (the client closes, or sends nothing for `BODY_TIMEOUT` seconds) is 400 / 408.
- An application that raises anyway answers 500 INTERNAL "Internal error encountered." (the trace goes to stderr);
  the connection stays usable, since the whole body was read.

Its requests and responses are `emulator.core.http`'s, which also holds the strict JSON reader both front ends use.

A server given `Tunnels` also answers `CONNECT host:443` (RFC 9110 §9.3.6), as the HTTPS proxy a client such as curl
is pointed at with `https_proxy`: only from a loopback client, only to port 443 (else 403) of a host `Tunnels.admits`
(else 502, and nothing is opened). It answers `200 Connection established`, terminates TLS on the tunnel with a
certificate for that host from `Tunnels.authority` (a handshake not done within `HANDSHAKE_TIMEOUT` seconds closes
the connection), and serves the requests inside with `Tunnels.app`, each with `Request.host` set to the CONNECT host
and under the same framing rules and limits as above.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator.core.http import Request, Response
from emulator.core.tls import Authority, valid_hostname

MAX_BODY = 10 * 1024 * 1024
BODY_TIMEOUT = 30.0  # seconds a client may pause while sending a body
HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to complete the TLS handshake inside a CONNECT tunnel
_AUTHORITY_FORM = re.compile(r"([A-Za-z0-9.-]{1,253}):([0-9]{1,5})")  # CONNECT's request target (RFC 9112 §3.2.3)
_DIGITS = re.compile(r"[0-9]{1,18}")  # 18 digits: far above MAX_BODY, and within what int() reads cheaply
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_TRAILERS = 100
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
}


def error_body(status: int, message: str) -> Response:
    """The google.rpc.Status JSON body the HTTP layer answers with when it refuses a request itself."""
    doc = {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
    return Response.json(doc, status)


class _Refused(Exception):
    """The request's framing is broken: answer `response` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = error_body(status, message)


App = Callable[[Request], Response]


@dataclass(frozen=True)
class Tunnels:
    """What CONNECT reaches: the hosts `admits` accepts (port 443 only), with `authority`'s certificate for the
    host, their requests served by `app`."""

    admits: Callable[[str], bool]
    authority: Authority
    app: App


def _handler_class(app: App, tunnels: Tunnels | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each keep-alive answer after the first waits ~40 ms for an ACK
        server_version = "emulator"
        sys_version = ""
        tunnel_host: str | None = None  # inside a CONNECT tunnel: the host it was opened to
        _tls: ssl.SSLSocket | None = None

        def _framing(self) -> int | None:
            """The body's length by Content-Length, None for a chunked body; raises _Refused."""
            codings = [c.strip().lower() for v in self.headers.get_all("Transfer-Encoding") or [] for c in v.split(",")]
            lengths = [v.strip() for h in self.headers.get_all("Content-Length") or [] for v in h.split(",")]
            if codings:
                if lengths:
                    raise _Refused(400, "a request may not carry both Transfer-Encoding and Content-Length")
                if codings != ["chunked"]:
                    raise _Refused(501, f"Transfer-Encoding {', '.join(codings)!r} is not supported; send chunked")
                return None
            if not lengths:
                return 0
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
                shown = ", ".join(lengths)[:60]
                raise _Refused(400, f"Content-Length must be one non-negative decimal number, got {shown!r}")
            if not _DIGITS.fullmatch(lengths[0]) or int(lengths[0]) > MAX_BODY:
                raise _Refused(413, f"request body too large: at most {MAX_BODY} bytes")
            return int(lengths[0])

        def handle_expect_100(self) -> bool:
            try:
                self._framing()
            except _Refused as refused:  # refused before the client sends the body
                self._send(refused.response, close=True)
                return False
            return super().handle_expect_100()

        def _read(self, length: int) -> bytes:
            data = self.rfile.read(length)
            if len(data) < length:
                raise _Refused(400, f"the request body ended after {len(data)} of {length} bytes")
            return data

        def _read_chunked(self) -> bytes:
            body = bytearray()
            while True:
                line = self.rfile.readline(1025)
                size_field = line.split(b";", 1)[0].strip()
                if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_field):
                    raise _Refused(400, f"malformed chunk size line {line[:40]!r} in a chunked body")
                size = int(size_field, 16)
                if len(body) + size > MAX_BODY:
                    raise _Refused(413, f"request body too large: at most {MAX_BODY} bytes")
                if size == 0:
                    break
                body += self._read(size)
                if self.rfile.read(2) != b"\r\n":
                    raise _Refused(400, "a chunk of a chunked body does not end with CRLF")
            for _ in range(_MAX_TRAILERS):
                trailer = self.rfile.readline(65537)
                if trailer in (b"\r\n", b"\n"):
                    return bytes(body)
                if not trailer:
                    break
            raise _Refused(400, "the chunked body's trailer section does not end")

        def _body(self) -> bytes:
            length = self._framing()
            if length == 0:
                return b""
            self.connection.settimeout(BODY_TIMEOUT)
            try:
                return self._read_chunked() if length is None else self._read(length)
            except TimeoutError:
                raise _Refused(408, f"the request body did not arrive within {BODY_TIMEOUT:g} s") from None
            finally:
                with contextlib.suppress(OSError):
                    self.connection.settimeout(None)

        def _serve(self) -> None:
            try:
                body = self._body()
            except _Refused as refused:
                self._send(refused.response, close=True)
                return
            split = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
                host=self.tunnel_host or _host(split.hostname, headers.get("host", "")),
            )
            serve = tunnels.app if tunnels is not None and self.tunnel_host else app
            try:
                response = serve(request)
            except Exception:  # noqa: BLE001 - an application bug: answer 500, keep the trace, keep serving
                traceback.print_exc(file=sys.stderr)
                response = error_body(500, "Internal error encountered.")
            if response.close:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(response)

        def _send(self, response: Response, close: bool = False) -> None:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")  # also sets close_connection
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            if close:
                self._linger()

        def _linger(self) -> None:
            """Let the client read the answer: closing with unread bytes pending would reset the connection."""
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.2)
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline and self.connection.recv(65536):
                    pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def do_CONNECT(self) -> None:
            refusal = self._connect_refusal()
            if refusal is not None:
                self._send(refusal, close=True)
                return
            assert tunnels is not None
            host = self.path.rsplit(":", 1)[0].lower()
            self.send_response(200, "Connection established")
            self.end_headers()
            try:
                context = tunnels.authority.context(host)
                self.connection.settimeout(HANDSHAKE_TIMEOUT)
                tls = context.wrap_socket(self.connection, server_side=True)  # takes over the socket
                tls.settimeout(None)
            except (OSError, ValueError):  # no handshake in time, or not TLS: nothing was served
                self.close_connection = True
                return
            with contextlib.suppress(OSError, ValueError):
                self.rfile.close()
                self.wfile.close()
            self._tls = tls
            self.connection = tls
            self.rfile = tls.makefile("rb")
            self.wfile = io.BufferedWriter(tls.makefile("wb", buffering=0))  # flushed after each request
            self.tunnel_host = host
            self.close_connection = False  # also after an HTTP/1.0 CONNECT: the tunnel carries requests now

        def _connect_refusal(self) -> Response | None:
            if tunnels is None or self.tunnel_host:
                return Response.text(
                    "CONNECT is not supported here\n", 405, {"Allow": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}
                )
            if not ipaddress.ip_address(self.client_address[0]).is_loopback:
                return Response.text("CONNECT is accepted from loopback clients only\n", 403)
            target = _AUTHORITY_FORM.fullmatch(self.path)
            if target is None or not valid_hostname(target.group(1).lower()):
                return Response.text(f"CONNECT needs host:port, got {self.path[:80]!r}\n", 400)
            host, port = target.group(1).lower(), int(target.group(2))
            if port != 443:
                return Response.text(f"CONNECT reaches port 443 only, not {port}\n", 403)
            if not tunnels.admits(host):
                return Response.text(f"{host} is not a host the emulator serves\n", 502)
            return None

        def finish(self) -> None:
            if self._tls is None:
                super().finish()
                return
            try:
                with contextlib.suppress(OSError, ValueError):  # a tunnel the client broke: nothing left to flush
                    super().finish()
            finally:
                with contextlib.suppress(OSError):
                    self._tls.close()

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are counted by the world, not printed (they may carry tokens in headers)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a test's deadline, a dropped connection) is not a server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


_RESERVED: dict[tuple[str, int], socket.socket] = {}  # reserve_port(): listening sockets kept for this process
_IN_USE: set[tuple[str, int]] = set()
_RESERVED_LOCK = threading.Lock()


def _host(absolute: str | None, header: str) -> str:
    """The host a request names: its absolute URI's (a proxy request) or its Host header's, lower-case, no port;
    "" when neither names one that parses."""
    if absolute:
        return absolute.lower()
    try:
        return (urlsplit("//" + header[:300]).hostname or "").lower()
    except ValueError:  # a malformed Host header (an unclosed "[", a bad port) names no host
        return ""


def reserve_port(host: str = "127.0.0.1") -> int:
    """A loopback port for this process's servers, held open from now on.

    For a server whose address must be known before it starts (google.auth reads GCE_METADATA_HOST once, at import):
    the port is bound here, by the kernel's choice, and stays bound and listening for the life of the process, and an
    HttpServer started on it later serves from this very socket. Binding a free port, closing it and binding the
    number again would let any other process take it in between.
    """
    listener = socket.create_server((host, 0))
    port = int(listener.getsockname()[1])
    with _RESERVED_LOCK:
        _RESERVED[(host, port)] = listener
    return port


class HttpServer:
    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0, tunnels: Tunnels | None = None) -> None:
        """Listens on `port` (0: one the kernel picks), or on the socket reserve_port kept for it; answers CONNECT
        when given `tunnels`."""
        key = (host, port)
        with _RESERVED_LOCK:
            reserved = _RESERVED.get(key) if port else None
            if reserved is not None:
                if key in _IN_USE:
                    raise OSError(f"{host}:{port} is served by another server of this process")
                _IN_USE.add(key)
        self._reserved = key if reserved is not None else None
        if reserved is None:
            self._server = _QuietServer((host, port), _handler_class(app, tunnels))
        else:
            self._server = _QuietServer(key, _handler_class(app, tunnels), bind_and_activate=False)
            self._server.socket.close()
            self._server.socket = reserved
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for serve_forever to notice, up to one interval (default 0.5 s).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emu-http", daemon=True
        )
        self.host = host
        self.port = self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        if self._reserved is None:
            self._server.server_close()
            return
        with _RESERVED_LOCK:  # the reserved socket stays open and listening, for the next server on the port
            _IN_USE.discard(self._reserved)
