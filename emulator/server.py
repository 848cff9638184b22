"""Assembles the emulator: one world, the service registry, a gRPC port, a metadata port, and an HTTP port (REST +
admin). Nothing else lives here."""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from emulator import services
from emulator.core import scenario
from emulator.core.clock import Clock
from emulator.core.handlers import JsonMethod
from emulator.core.http import Request, Response
from emulator.core.network import Outbound, Reply
from emulator.core.ticker import Ticker
from emulator.core.tls import Authority
from emulator.core.world import World
from emulator.frontends import admin, rest
from emulator.frontends.grpc import GrpcServer
from emulator.frontends.httpserver import HttpServer, Tunnels
from emulator.frontends.metadata import make_app as metadata_app
from emulator.runtime.serving import Runtime

LOOPBACK = "127.0.0.1"


def ingress_response(served: Callable[[Outbound], Reply], request: Request) -> Response:
    """A request for a served function's URL that came to the HTTP port (as a proxy, or with its Host header)."""
    query = urlencode([(k, v) for k, values in request.query.items() for v in values])
    url = f"https://{request.host}{request.path}" + (f"?{query}" if query else "")
    reply = served(Outbound(request.method, url, dict(request.headers), request.body, timeout_s=3600))
    return Response(reply.status, reply.body, {k: v for k, v in reply.headers.items() if k != "content-length"})


def api_reply(rest_handler: Callable[[Request], Response], outbound: Outbound) -> Reply:
    """A request Google's side sends to a Google API (a Scheduler job's OAuth-token target, such as Cloud Run's
    jobs.run) answered by the REST front end in-process, with the caller's token: the same checks as any call."""
    parts = urlsplit(outbound.url)
    headers = {k.lower(): v for k, v in outbound.headers.items()}
    headers["host"] = parts.netloc
    request = Request(outbound.method, parts.path or "/", parse_qs(parts.query), headers, outbound.body, host="")
    response = rest_handler(request)
    return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.body)


def google_api(host: str) -> bool:
    """A Google API host the emulator answers for inside a CONNECT tunnel."""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


def gcloud_apis() -> list[str]:
    """The CLOUDSDK_API_ENDPOINT_OVERRIDES_<NAME> suffixes of every API gcloud is pointed here for."""
    return sorted({api.gcloud for api in services.apis().values() if api.gcloud})


class Emulator:
    """`with Emulator("healthy") as emu:` — a whole local Google Cloud on free loopback ports."""

    def __init__(
        self,
        scenario_name: str = "healthy",
        *,
        host: str = LOOPBACK,
        grpc_port: int = 0,
        http_port: int = 0,
        metadata_port: int = 0,
        clock_mode: str | None = None,
        serve_functions: bool = False,
        outbox: Path | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the emulator listens on loopback only, not on {host}")
        self.scenario = scenario_name
        self.clock_mode = clock_mode
        self.world = scenario.build(scenario_name, World(Clock()), clock_mode)
        methods = services.methods()
        rules = [rule for service in services.REGISTRY for rule in service.rules]
        typed = [m for m in methods if not isinstance(m, JsonMethod)]  # JSON-only methods have no gRPC form
        self.grpc = GrpcServer(self.world, typed, host, grpc_port)
        self.metadata = HttpServer(metadata_app(self.world), host, metadata_port)
        self.world.serving = serve_functions
        self.world.outbox = outbox
        # Deployed functions run only when asked: each costs a process (emulator/runtime).
        self.runtime = Runtime(self.world, {"CANARY_EMULATOR_GRPC": self.grpc.address}) if serve_functions else None
        ticks = [service.tick for service in services.REGISTRY if service.tick is not None]
        self.ticker = Ticker(self.world, [*ticks, *([self.runtime.tick] if self.runtime else [])])
        extra = {key: route for service in services.REGISTRY for key, route in service.admin.items()}
        admin_handler = admin.make_app(
            self.world, self.reset, {m.full_name for m in methods}, self.ticker.run_once, extra
        )
        raw = [service.http for service in services.REGISTRY if service.http is not None]
        rest_handler = rest.make_app(self.world, methods, rules, raw)
        # Requests Google's side sends to Google APIs (Scheduler → Cloud Run jobs.run) reach the REST front end.
        self.world.network.route_domain(".googleapis.com", lambda outbound: api_reply(rest_handler, outbound))

        def http(request: Request) -> Response:
            served = self.world.network.handler(request.host) if request.host else None
            if served is not None:  # a served function's URL, reached through this port as a proxy
                return ingress_response(served, request)
            if request.path.startswith(admin.ADMIN_PREFIX):
                return admin_handler(request)
            return rest_handler(request)

        def tunnelled(request: Request) -> Response:
            if google_api(request.host):
                return rest_handler(request)
            served = self.world.network.handler(request.host)
            if served is None:  # the function went away after the tunnel was opened
                return Response.text(f"{request.host} is not served any more\n", 404)
            return ingress_response(served, request)

        # CONNECT host:443 reaches a served function's URL, or a Google API host (*.googleapis.com, served by path
        # like the plain port), over TLS with a certificate from the emulator's own CA: what a client that only
        # speaks https to Google (google.auth's impersonated credentials, for one) needs beside a proxy setting.
        self.authority = Authority()
        self._ca_folder: Path | None = None
        tunnels = Tunnels(
            lambda name: google_api(name) or self.world.network.handler(name) is not None, self.authority, tunnelled
        )
        self.http = HttpServer(http, host, http_port, tunnels)

    def reset(self) -> None:
        scenario.build(self.scenario, self.world, self.clock_mode)

    def start(self) -> Emulator:
        self.grpc.start()
        self.metadata.start()
        self.http.start()
        self.ticker.start()
        return self

    def stop(self) -> None:
        self.ticker.stop()
        if self.runtime is not None:
            self.runtime.stop(self.world)
        self.http.stop()
        self.metadata.stop()
        self.grpc.stop()
        if self._ca_folder is not None:
            shutil.rmtree(self._ca_folder, ignore_errors=True)
            self._ca_folder = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://{self.http.address}"

    @property
    def admin_url(self) -> str:
        return f"{self.rest_url}/_emulator"

    @property
    def ca_file(self) -> Path:
        """The PEM file of the CA whose certificates the HTTP port presents inside a CONNECT tunnel (for curl's
        CURL_CA_BUNDLE); written when first asked for, removed by stop()."""
        if self._ca_folder is None:
            self._ca_folder = Path(tempfile.mkdtemp(prefix="emulator-ca-"))
        path = self._ca_folder / "ca.pem"
        if not path.exists():
            self.authority.write_ca(path)
        return path

    def info(self) -> dict[str, Any]:
        """What `python -m emulator` prints: where everything is."""
        return {
            "grpc": self.grpc.address,
            "metadata": self.metadata.address,
            "rest": self.rest_url,
            "admin": self.admin_url,
            "ca_file": str(self.ca_file),
            "project": self.world.default_project,
            "service_account": self.world.workload,
            "scenario": self.scenario,
        }

    def gcloud_env(self, home: Path, email: str) -> dict[str, str]:
        """Environment that points the real gcloud (and the deploy tool) at this emulator as `email`.

        Beyond CLOUDSDK_API_ENDPOINT_OVERRIDES_*: gcloud builds regional Cloud Run hosts from the override
        (us-central1-127.0.0.1:P), which nothing resolves, so it is sent through this emulator as its HTTP proxy;
        the emulator serves by path, whatever the host. The token file holds a token minted for `email`.
        """
        home.mkdir(parents=True, exist_ok=True)
        token_file = home / "token"
        with self.world.lock:
            token, _ = self.world.mint_token(email)
        token_file.write_text(token)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "CLOUDSDK_CONFIG": str(home / "config"),
            "CLOUDSDK_CORE_PROJECT": self.world.default_project,
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token_file),
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": self.http.host,
            "CLOUDSDK_PROXY_PORT": str(self.http.port),
            **{f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": f"{self.rest_url}/" for api in gcloud_apis()},
            "DEPLOY_MONITORING_GRPC": self.grpc.address,  # the deploy tool's monitoring_v3 clients (gRPC only)
        }

    def client_env(self) -> dict[str, str]:
        """Environment that points google.auth and the canary's clients at this emulator."""
        return {
            "GCE_METADATA_HOST": self.metadata.address,
            "GCE_METADATA_IP": self.metadata.address,
            "CANARY_EMULATOR_GRPC": self.grpc.address,
        }
