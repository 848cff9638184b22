"""The network as Google's side of the emulator sees it, for the requests Google itself makes: Cloud Scheduler's
HTTP targets, Pub/Sub push, Cloud Monitoring's webhook notifications.

- A host that a served workload answers on (a function's or service's URL) is routed in-process to its handler,
  which applies Cloud Run's ingress checks before the workload sees the request.
- A Google API host (*.googleapis.com) is answered by the emulator's own REST front end, in-process (server.py).
- A loopback URL (a receiver a test or the demo runs) is reached with a real HTTP request.
- Any other host does not resolve, as an unreachable endpoint would not: the emulator never reaches the internet.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_REPLY = 10 * 1024 * 1024  # bytes of a reply kept; the rest is dropped


@dataclass
class Outbound:
    """One request the emulator sends."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout_s: float = 30.0

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Unreachable(OSError):
    """No answer: the host does not resolve, the connection fails, or the deadline passes. `reason` is one of
    "dns", "connect", "timeout"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Handler = Callable[[Outbound], Reply]


class Network:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, Handler] = {}
        self._domains: dict[str, Handler] = {}  # ".googleapis.com" → the handler of every host under it

    def route(self, host: str, handler: Handler) -> None:
        with self._lock:
            self._hosts[host.lower()] = handler

    def route_domain(self, suffix: str, handler: Handler) -> None:
        """Every host ending in `suffix` (e.g. ".googleapis.com") that no exact route takes."""
        with self._lock:
            self._domains[suffix.lower()] = handler

    def unroute(self, host: str) -> None:
        with self._lock:
            self._hosts.pop(host.lower(), None)

    def routed(self) -> list[str]:
        with self._lock:
            return sorted(self._hosts)

    def handler(self, host: str) -> Handler | None:
        with self._lock:
            return self._hosts.get(host.lower())

    def send(self, request: Outbound) -> Reply:
        """Deliver one request; Unreachable when nothing answers."""
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Unreachable("dns", f"not an http(s) URL: {request.url[:200]!r}")
        served = self.handler(parts.hostname)
        if served is None:
            with self._lock:
                host = parts.hostname.lower()
                served = next((h for suffix, h in self._domains.items() if host.endswith(suffix)), None)
        if served is not None:
            return served(request)
        if not _loopback(parts.hostname):
            raise Unreachable("dns", f"{parts.hostname} does not resolve from the emulator")
        return _over_loopback(request, parts.hostname, parts.port, parts.scheme)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _over_loopback(request: Outbound, host: str, port: int | None, scheme: str) -> Reply:
    if scheme != "http":
        raise Unreachable("connect", "the emulator reaches loopback receivers over plain http only")
    connection = http.client.HTTPConnection(host, port or 80, timeout=request.timeout_s)
    try:
        connection.request(request.method, request_target(request), body=request.body, headers=request.headers)
        response = connection.getresponse()
        body = response.read(MAX_REPLY)
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    except TimeoutError as err:
        raise Unreachable("timeout", f"no answer from {host}:{port} within {request.timeout_s:g} s") from err
    except OSError as err:
        raise Unreachable("connect", f"cannot reach {host}:{port}: {err}") from err
    except http.client.HTTPException as err:
        raise Unreachable("connect", f"{host}:{port} answered something that is not HTTP: {err!r}") from err
    finally:
        connection.close()


def request_target(request: Outbound) -> str:
    return request.path


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
