"""The metadata server, as Cloud Run and Cloud Functions (gen2) serve it to the workload.

`google.auth.default()` finds it through GCE_METADATA_HOST / GCE_METADATA_IP and then runs its production path:
ping, project id, the default service account, an access token. Every request must carry
`Metadata-Flavor: Google`; every answer carries it back. Identity tokens are signed by the world's signer
(core/tokens.py), so the emulator's Cloud Run ingress and google.oauth2.id_token verify them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulator.core.handlers import hang
from emulator.core.http import Request, Response
from emulator.core.world import World

PREFIX = "/computeMetadata/v1/"
_FLAVOR = {"Metadata-Flavor": "Google"}


def _text(value: str, status: int = 200) -> Response:
    return Response(status, value.encode(), {"Content-Type": "application/text", **_FLAVOR})


def _json(doc: Any) -> Response:
    return Response(200, json.dumps(doc).encode(), {"Content-Type": "application/json", **_FLAVOR})


def _kind(path: str) -> str:
    """Which fault bucket a path falls in: metadata.token, metadata.identity, metadata.project, …"""
    rest = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
    if rest.endswith("/token"):
        return "metadata.token"
    if rest.endswith("/identity"):
        return "metadata.identity"
    if rest.startswith("project/"):
        return "metadata.project"
    if rest.startswith("instance/service-accounts"):
        return "metadata.service_account"
    return "metadata.other"


def _selector(path: str) -> str | None:
    """The one path a fault may also name, within its bucket: metadata.ping (google.auth's ping of the server root),
    metadata.project_id, metadata.email (the account's e-mail, or the recursive account document google.auth reads
    it from) and metadata.region. Calls are counted by bucket only."""
    if path in ("/", ""):
        return "metadata.ping"
    rest = path[len(PREFIX) :] if path.startswith(PREFIX) else None
    if rest == "project/project-id":
        return "metadata.project_id"
    if rest == "instance/region":
        return "metadata.region"
    if rest is not None and rest.startswith("instance/service-accounts/"):
        leaf = rest[len("instance/service-accounts/") :].split("/", 1)
        if len(leaf) == 2 and leaf[1] in ("", "email"):
            return "metadata.email"
    return None


@dataclass(frozen=True)
class Identity:
    """Who the metadata server says the workload is: its service account, project and region. The emulator's own
    metadata server answers for the scenario's workload; each served function gets a server of its own that
    answers for its runtime service account (emulator/runtime)."""

    email: str
    project_id: str
    region: str
    instance_id: str
    # The VPC network the instance's calls to Google APIs leave through (projects/P/global/networks/N), "" for
    # Cloud Run's default egress; the tokens this server mints carry it (TokenInfo.network).
    network: str = ""


def default_identity(world: World) -> Identity:
    return Identity(world.workload, world.default_project, world.region, world.instance_id, world.workload_network)


def make_app(world: World, identity: Identity | None = None) -> Any:
    """The metadata server's app, answering for `identity` (default: the world's workload, read at each request so
    that a scenario change is seen)."""

    def app(request: Request) -> Response:
        kind = _kind(request.path)
        selector = _selector(request.path)
        with world.lock:
            world.count_call(kind)
            world.tick()
            fault = (world.take_fault(selector) if selector else None) or world.take_fault(kind)
            failure = world.metadata_failure
        if fault is not None:
            if fault.close:
                return Response(close=True)
            if fault.hang_seconds:
                hang(fault, None)
            if fault.malformed:
                return Response(200, b"\x00{not json", {"Content-Type": "application/json", **_FLAVOR})
            if fault.http_status:
                return _text(fault.http_body or "injected failure", fault.http_status)
        if request.headers.get("metadata-flavor") != "Google":  # the server's first gate, before any backend
            return Response(
                403,
                (
                    f"Your client does not have permission to get URL {request.path} from this server. "
                    "Missing Metadata-Flavor:Google header."
                ).encode(),
                {"Content-Type": "text/html; charset=UTF-8"},
            )
        if failure and failure.get("paths", "token") in ("all", kind.split(".")[1]):
            return _text(str(failure.get("body", "metadata server unavailable")), int(failure.get("status", 503)))
        if request.path in ("/", ""):
            return _text("computeMetadata/\n")
        with world.lock:
            return _route(world, request, identity or default_identity(world))

    return app


def _route(world: World, request: Request, who: Identity) -> Response:
    path = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else None
    if path is None:
        return _text("Not Found", 404)
    # The runtime's project; a scenario may name one the world doesn't have (a misconfigured deployment).
    project = world.project(who.project_id)
    number = project.number if project else "999999999999"
    email = who.email
    accounts = ("instance/service-accounts/default/", f"instance/service-accounts/{email}/")
    if path == "project/project-id":
        return _text(who.project_id)
    if path == "project/numeric-project-id":
        return _text(number)
    if path == "instance/region":
        return _text(f"projects/{number}/regions/{who.region}")
    if path == "instance/zone":
        return _text(f"projects/{number}/zones/{who.region}-1")
    if path == "instance/id":
        return _text(who.instance_id)
    if path == "instance/service-accounts/":
        return _text(f"default/\n{email}/\n")
    for prefix in accounts:
        if path.startswith(prefix):
            return _account(world, path[len(prefix) :], request, email, who.network)
    return _text("Not Found", 404)


def _account(world: World, leaf: str, request: Request, email: str, network: str = "") -> Response:
    if leaf == "" and request.param("recursive") == "true":
        return _json(
            {
                "aliases": ["default"],
                "email": email,
                "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            }
        )
    if leaf == "email":
        return _text(email)
    if leaf == "aliases":
        return _text("default\n")
    if leaf == "scopes":
        return _text("https://www.googleapis.com/auth/cloud-platform\n")
    if leaf == "token":
        token, info = world.mint_token(email, network=network)
        expires_in = int((info.expiry - world.clock.now()).total_seconds())
        return _json({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
    if leaf == "identity":
        audience = request.param("audience") or ""
        if not audience:
            return _text("non-empty audience parameter required", 400)
        return _text(world.signer.id_token(email, audience))
    return _text("Not Found", 404)
